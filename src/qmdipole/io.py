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


def write_netcdf(ds: xr.Dataset, path, config: dict | None = None, title: str = "",
                 finalize=None, **kwargs):
    """Write ``ds`` to ``path`` atomically, with provenance.

    The file is written in a private temporary folder beside ``path`` and renamed into place;
    ``finalize(temporary_path)`` may amend it first. A failure leaves nothing at ``path`` (and the
    folder is removed, so a writer thread still running cannot re-create a stray file).
    ``kwargs`` go to :meth:`xarray.Dataset.to_netcdf`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_cf(ds)
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
