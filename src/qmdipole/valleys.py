"""Valley sums: the totals of a multi-valley model and its per-valley contributions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import errors


def combine_valleys(datasets, dim: str) -> xr.Dataset:
    """Sum per-valley results over valleys, keeping each valley's curve as ``{name}_valley``.

    Variables with dimension ``dim`` (the spectral axis, e.g. ``mu`` or ``omega``) are summed;
    the others (band edges, gaps) become per-valley variables on a 1-based ``valley`` axis.
    Error estimates ``{name}_error`` combine as errors: the total is the sum of the per-valley
    estimates (a bound: valley errors may not cancel), its ``max_relative_to_peak`` is taken
    against the total curve and its ``max_relative_to_valley_peaks`` against the sum of the
    valleys' peaks (:func:`qmdipole.errors.relative_to_parts`, what per-valley tolerances
    guarantee; larger than the former only where valleys cancel). Attributes shared by all valleys are kept; numeric diagnostics keep
    their worst value.
    """
    datasets = list(datasets)
    stacked = xr.concat(datasets, dim="valley", coords="minimal", compat="override",
                        combine_attrs="drop_conflicts")
    valley = ("valley", np.arange(1, len(datasets) + 1), {"units": "1", "long_name": "valley number"})
    stacked = stacked.assign_coords(valley=valley)
    out = xr.Dataset(coords={name: c for name, c in stacked.coords.items()})
    for name, var in stacked.data_vars.items():
        if dim in var.dims:
            out[name] = var.sum("valley", skipna=False, keep_attrs=True)  # a NaN stays a NaN
            out[f"{name}_valley"] = var.assign_attrs(long_name=f"{var.attrs['long_name']}, per valley")
        else:
            out[name] = var
    for name in [n for n in out.data_vars if n.endswith("_error") and dim in out[n].dims]:
        out[f"{name}_valley"].attrs.pop("max_relative_to_peak", None)
        out[name].attrs.update(
            valley_combination="sum of the per-valley estimates (a bound)",
            max_relative_to_peak=errors.relative_to_peak(out[name], out[name.removesuffix("_error")]),
            max_relative_to_valley_peaks=errors.relative_to_parts(
                out[name], out[name.removesuffix("_error") + "_valley"]),
        )
    out.attrs.update(stacked.attrs)
    for key in {k for d in datasets for k in d.attrs} - set(stacked.attrs):
        values = [d.attrs[key] for d in datasets if key in d.attrs]
        if all(isinstance(v, (int, float)) for v in values):
            out.attrs[key] = float(max(values))
    return out
