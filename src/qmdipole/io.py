"""NetCDF input/output: CF attributes, provenance, atomic writes, clear errors on bad files."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__

CONVENTIONS = "CF-1.10"

log = logging.getLogger(__name__)


class DataError(ValueError):
    """An input file is missing, unreadable or does not hold what the data contract promises."""


class DiskFullError(OSError):
    """Writing a file failed because the disk it goes to is full."""


# A write that failed for want of space leaves less than one chunk free (the tables' largest
# chunk is ~10 MB): a failed write with less than this free is reported as a full disk.
LOW_DISK_BYTES = 64 * 2**20


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
                 finalize=None, compute=None, **kwargs):
    """Write ``ds`` to ``path`` atomically, with provenance.

    The file is written in a private temporary folder ``.{name}.XXXX.part`` beside ``path`` and
    renamed into place; ``finalize(temporary_path)`` may amend it first. Such folders left by a
    killed earlier write of the same ``path`` are removed first (one writer per path at a time).
    A failure leaves nothing at ``path`` (and the folder is removed, so a writer thread still
    running cannot re-create a stray file); a failure on a full disk raises
    :class:`DiskFullError`. ``compute(delayed)``, if given, runs the write of a Dask-backed
    ``ds`` (e.g. on a watched cluster); ``kwargs`` go to :meth:`xarray.Dataset.to_netcdf`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_cf(ds)
    ds = ds.copy()
    ds.attrs = {**ds.attrs, **provenance(config), **({"title": title} if title else {})}
    _remove_stale_parts(path)
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = os.path.join(folder, path.name)
    try:
        if compute is None:
            ds.to_netcdf(tmp, engine="netcdf4", **kwargs)
        else:
            compute(ds.to_netcdf(tmp, engine="netcdf4", compute=False, **kwargs))
        if finalize is not None:
            finalize(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except Exception as err:
        full = _disk_full(err, path)  # while the partial file still takes its space
        if full is None:
            raise
        raise full from err
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return path


def _remove_stale_parts(path: Path) -> None:
    """Remove the temporary folders ``.{name}.XXXX.part`` that killed writes of ``path`` left."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[^.]+\.part")
    for folder in path.parent.glob(".*.part"):
        if pattern.fullmatch(folder.name) and folder.is_dir():
            log.info("removing %s, left by an interrupted write of %s", folder, path)
            shutil.rmtree(folder, ignore_errors=True)


def _disk_full(err: BaseException, path: Path) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``path`` if ``err`` came from a full disk, else None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    chain, cause = [], err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    enospc = any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain)
    if enospc or (free is not None and free < LOW_DISK_BYTES):
        left = "" if free is None else f" ({free} bytes free)"
        return DiskFullError(f"cannot write {path}: the disk holding {path.parent} is full{left}; "
                             f"the write failed with: {err}")
    return None


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
