"""NetCDF input/output: CF attributes, provenance, atomic writes, clear errors on bad files."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__

CONVENTIONS = "CF-1.10"


class DataError(ValueError):
    """An input file is missing, unreadable or does not hold what the data contract promises."""


def git_commit() -> str:
    """The commit of the source tree this package runs from, or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(config: dict | None = None) -> dict:
    """Global attributes recording what made a file."""
    return {
        "Conventions": CONVENTIONS,
        "institution": "qmdipole",
        "source": f"qmdipole {__version__}",
        "qmdipole_version": __version__,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": json.dumps(config or {}, sort_keys=True, default=_json_default),
        "references": "Y. Gao and D. Xiao, Nonreciprocal directional dichroism induced by the "
        "quantum metric dipole (2022)",
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def check_cf(ds: xr.Dataset) -> None:
    """Raise if a data variable or coordinate lacks ``units`` or ``long_name``."""
    missing = [
        name
        for name, var in {**ds.data_vars, **ds.coords}.items()
        if not {"units", "long_name"} <= set(var.attrs)
    ]
    if missing:
        raise DataError(f"variables without units/long_name: {', '.join(map(str, missing))}")


def check_finite(ds: xr.Dataset, path, allow_nan=()) -> None:
    """Refuse to write non-finite numbers: a NaN or an infinity in a result is an error upstream,
    never a value to store (``allow_nan`` names variables where NaN means "undefined")."""
    for name, var in {**ds.data_vars, **ds.coords}.items():
        if name in allow_nan or not np.issubdtype(var.dtype, np.number) or var.chunks is not None:
            continue
        values = np.asarray(var.values)
        bad = ~np.isfinite(values)
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), values.shape)
            where = ", ".join(
                f"{dim}={var[dim].values[i] if dim in var.coords else i}"
                for dim, i in zip(var.dims, first))
            raise DataError(f"{path}: {name} holds {int(bad.sum())} non-finite value(s), the "
                            f"first at {where or 'its only entry'}; nothing was written")


def write_netcdf(ds: xr.Dataset, path, config: dict | None = None, title: str = "",
                 finalize=None, allow_nan=(), **kwargs):
    """Write ``ds`` to ``path`` atomically, with provenance; non-finite numbers are refused.

    The file is written in a private temporary folder beside ``path`` and renamed into place;
    ``finalize(temporary_path)`` may amend it first. A failure leaves nothing at ``path`` (and the
    folder is removed, so a writer thread still running cannot re-create a stray file).
    ``kwargs`` go to :meth:`xarray.Dataset.to_netcdf`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_cf(ds)
    check_finite(ds, path, allow_nan)
    ds = ds.copy()
    ds.attrs = {**ds.attrs, **provenance(config), **({"title": title} if title else {})}
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = os.path.join(folder, path.name)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", **kwargs)
        if finalize is not None:
            finalize(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def open_dataset(path, required=(), what="file", **kwargs) -> xr.Dataset:
    """Open a NetCDF file; a missing, corrupt or incomplete file raises :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    try:
        ds = xr.open_dataset(path, engine="netcdf4", **kwargs)
    except Exception as err:  # netCDF4 raises OSError, ValueError, RuntimeError...
        raise DataError(f"{what} {path} is not a readable NetCDF file: {err}") from err
    missing = [name for name in required if name not in ds.variables]
    if missing:
        ds.close()
        raise DataError(f"{what} {path} lacks the variables {', '.join(missing)}")
    return ds


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def check_made_for(ds: xr.Dataset, path, what: str = "file", **expected) -> None:
    """Refuse a file made for other settings than this run's.

    ``expected`` maps sections of the settings that made the file (its ``config`` attribute, see
    :func:`provenance`) to the values this run needs, e.g. ``model=...``: a table of another valley
    or model copied into place, or left by another configuration, is an error, not an input.
    """
    try:
        made = json.loads(ds.attrs.get("config") or "{}")
    except json.JSONDecodeError as err:
        raise DataError(f"{what} {path}: its 'config' attribute is not JSON ({err})") from err
    for key, value in expected.items():
        if key not in made:
            raise DataError(f"{what} {path} does not record the {key} settings that made it: "
                            "delete it and re-run")
        if _canonical(made[key]) != _canonical(value):
            raise DataError(
                f"{what} {path} was made for {key} = {_canonical(made[key])}, but this run needs "
                f"{key} = {_canonical(value)}: it belongs to another valley or configuration; "
                "delete it and re-run")
