"""Convergence study of γ_xxz(μ): how far to trust a curve on a given grid.

γ_xxz is computed on a sequence of uniform grids (the configured node counts scaled by each
factor, no η-refinement) and compared with a reference: for the paper's model (``kind: valley``)
the independent semi-analytic route of :mod:`qmdipole.analytic`; for any other model the finest
grid of the sequence. The linear tetrahedron method converges as O(h²), i.e. N^(−2/3) in the
number of k-points N of a 3-D grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from . import analytic, units
from .kgrid import default_kind
from .models import ValleyModel
from .quadrupolar import gamma_from_table
from .tabulate import valley_tables


def _scaled(settings, scale: float, model_kind: str):
    """The grid settings with node counts scaled (not the azimuthal count of a cylinder) and no
    η-refinement."""
    grid_kind = default_kind(model_kind, settings.kind)
    axes = (0, 2) if grid_kind == "cylindrical" else (0, 1, 2)
    n = tuple(max(int(round(c * scale)), 2) if a in axes else int(c)
              for a, c in enumerate(settings.n))
    return dataclasses.replace(settings, n=n, points_per_eta=0.0)


def gamma_convergence(models, model_kind: str, settings, needs, mu,
                      scales=(0.5, 1.0, 2.0, 4.0)) -> xr.Dataset:
    """Max error of γ_xxz(μ) (T = 0, valley sum of ``models``) against the reference, per grid
    size: the grid settings (:class:`~qmdipole.settings.GridSettings`) scaled by each factor."""
    mu = np.asarray(mu, float)
    scales = sorted(scales)
    curves, sizes = [], []
    for scale in scales:
        tables = valley_tables(models, model_kind, _scaled(settings, scale, model_kind), needs)
        curves.append(sum(gamma_from_table(t, mu=mu)["gamma_xxz"].values for *_, t in tables))
        sizes.append(sum(grid.size for _, grid, _ in tables))
    curves = np.array(curves)
    closed_form = all(isinstance(m, ValleyModel) for m in models)
    if closed_form:
        valleys = [dataclasses.asdict(m) for m in models]
        reference = analytic.valley_sum(analytic.gamma_xxz, mu, valleys)
        label = "semi-analytic reduction of Eq. 14 (qmdipole.analytic)"
    else:
        reference, label = curves[-1], "finest grid of the sequence"
    errors = np.abs(curves - reference).max(axis=1) / (np.abs(reference).max() or 1.0)
    if not closed_form:
        errors[-1] = np.nan  # the reference itself
    ds = xr.Dataset(
        {
            "max_error": ("n_points", errors,
                          {"units": "1", "long_name": "max |gamma_xxz - reference| / max |reference|"}),
            "gamma_xxz": (("n_points", "mu"), curves, {**units.GAMMA.attrs(), "long_name": "gamma_xxz at T = 0 on each grid"}),
            "gamma_xxz_reference": ("mu", reference, {**units.GAMMA.attrs(), "long_name": f"reference gamma_xxz: {label}"}),
        },
        coords={
            "n_points": ("n_points", np.array(sizes), {"units": "1", "long_name": "k-points (all valleys)"}),
            "mu": ("mu", mu, {**units.ENERGY.attrs(), "long_name": "chemical potential"}),
            "scale": ("n_points", np.array(scales, float), {"units": "1", "long_name": "factor on the configured node counts"}),
        },
    )
    ds.attrs["reference"] = label
    return ds


def convergence_table(ds: xr.Dataset) -> str:
    """The study as CSV text: one row per grid."""
    rows = ["scale,n_points,max_relative_error"]
    for scale, n, err in zip(ds["scale"].values, ds["n_points"].values, ds["max_error"].values):
        rows.append(f"{scale:g},{n:d},{err:.6e}")
    return "\n".join(rows) + "\n"
