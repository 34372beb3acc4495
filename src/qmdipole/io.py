"""NetCDF input/output: CF attributes, provenance, atomic writes, clear errors on bad files."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core.indexing import (IndexingSupport, LazilyIndexedArray,
                                   explicit_indexing_adapter)

from . import __version__, units
from .provenance import revision

CONVENTIONS = "CF-1.10"
# zlib level of numeric variables: level 1 gives most of the gain of higher levels (floats on
# smooth grids, byte-shuffled) at a fraction of their write time. Measured on a 2.5 M-point
# two-band table: 687 -> 333 MiB, but writing 0.9 -> 25 s and reading 0.4 -> 9 s; tables choose
# their own level (tabulate.compression), every other output is small and compressed.
COMPRESSION_LEVEL = 1

log = logging.getLogger(__name__)


class DataError(ValueError):
    """An input file is missing, unreadable or does not hold what the data contract promises."""


class DiskFullError(OSError):
    """Writing a file failed because the disk it goes to is full."""


# A write that failed for want of space leaves less than one chunk free (the tables' largest
# chunk is ~10 MB): a failed write with less than this free is reported as a full disk.
LOW_DISK_BYTES = 64 * 2**20


def provenance(config: dict | None = None) -> dict:
    """Global attributes recording what made a file."""
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "Conventions": CONVENTIONS,
        "institution": "qmdipole",
        "source": f"qmdipole {__version__}",
        "qmdipole_version": __version__,
        "git_commit": revision()["git_commit"],
        "git_dirty": revision()["git_dirty"],
        "created": created,
        "history": f"{created} written by qmdipole {__version__}",
        "config": json_attribute(config or {}),
        "references": "Y. Gao and D. Xiao, Nonreciprocal directional dichroism induced by the "
        "quantum metric dipole (2022)",
    }


def json_attribute(value) -> str:
    """``value`` (settings, model parameters) as a JSON attribute: keys sorted, NumPy as lists."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _is_label(var) -> bool:
    """A variable of strings (a label such as a direction's name): CF gives it no units."""
    return var.dtype.kind in "OSU"


def check_cf(ds: xr.Dataset) -> None:
    """Raise if a variable lacks ``long_name``, a numeric one ``units``, or a ``units_label`` is
    not of the vocabulary of :mod:`qmdipole.units`."""
    missing = [
        name
        for name, var in {**ds.data_vars, **ds.coords}.items()
        if not ({"long_name"} if _is_label(var) else {"units", "long_name"}) <= set(var.attrs)
    ]
    if missing:
        raise DataError(f"variables without units/long_name: {', '.join(map(str, missing))}")
    unknown = [f"{name} ({var.attrs['units_label']!r})"
               for name, var in {**ds.data_vars, **ds.coords}.items()
               if "units_label" in var.attrs and var.attrs["units_label"] not in units.VOCABULARY]
    if unknown:
        raise DataError(f"units_label outside the vocabulary of qmdipole.units: {', '.join(unknown)}")


def cf_encoding(ds: xr.Dataset, encoding: dict | None = None,
                compression: int = COMPRESSION_LEVEL) -> dict:
    """NetCDF encoding of ``ds`` for CF: numeric variables zlib-compressed at level
    ``compression`` (0: not compressed) with byte shuffling, coordinates without ``_FillValue``,
    labels (strings) as character arrays; ``encoding`` (e.g. chunk sizes) is merged over it."""
    packed = {"zlib": True, "complevel": compression, "shuffle": True} if compression else {}
    out = {}
    for name, var in {**ds.data_vars, **ds.coords}.items():
        if _is_label(var):
            out[name] = {"dtype": "S1"}
        else:
            out[name] = {**packed, **({"_FillValue": None} if name in ds.coords else {})}
        out[name].update((encoding or {}).get(name, {}))
    return out


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
                 finalize=None, compute=None, allow_nan=(), compression=COMPRESSION_LEVEL,
                 **kwargs):
    """Write ``ds`` to ``path`` atomically, with provenance; non-finite numbers are refused
    (``allow_nan`` names variables where NaN means "undefined").

    The file is written in a private temporary folder ``.{name}.XXXX.part`` beside ``path`` and
    renamed into place; ``finalize(temporary_path)`` may amend it first. Such folders left by a
    killed earlier write of the same ``path`` are removed first (one writer per path at a time).
    A failure leaves nothing at ``path`` (and the folder is removed, so a writer thread still
    running cannot re-create a stray file); a failure on a full disk raises
    :class:`DiskFullError`. ``compute(delayed)``, if given, runs the write of a Dask-backed
    ``ds`` (e.g. on a watched cluster); ``kwargs`` go to :meth:`xarray.Dataset.to_netcdf`.

    Units are relabelled for the ``units`` of ``config`` (:func:`qmdipole.units.apply`: model
    units by default); variables are compressed (zlib level ``compression``, 0: none) and encoded
    for CF (:func:`cf_encoding`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = units.apply(ds, units.system(config))
    check_cf(ds)
    check_finite(ds, path, allow_nan)
    ds.attrs = {**ds.attrs, **provenance(config), **({"title": title} if title else {})}
    kwargs["encoding"] = cf_encoding(ds, kwargs.get("encoding"), compression)
    _remove_stale_parts(path)
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    _WRITING.add(folder)
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
        _WRITING.discard(folder)
    return path


# Temporary folders of the writes under way in this process (see remove_partial_writes).
_WRITING: set[str] = set()


def remove_partial_writes() -> None:
    """Remove the temporary folders of every write under way in this process: for a process that
    is being stopped (SIGTERM) and exits at once, without unwinding through library code that
    may hold locks."""
    for folder in list(_WRITING):
        shutil.rmtree(folder, ignore_errors=True)
        _WRITING.discard(folder)


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
        if json_attribute(made[key]) != json_attribute(value):
            raise DataError(
                f"{what} {path} was made for {key} = {json_attribute(made[key])}, but this run needs "
                f"{key} = {json_attribute(value)}: it belongs to another valley or configuration; "
                "delete it and re-run")


def thinned(ds: xr.Dataset, keep: dict) -> xr.Dataset:
    """``ds`` at the nodes ``keep`` (``{dim: indices}``, increasing) of its dimensions, read
    lazily: a variable of a file is read, when asked, as the contiguous hyperslab from the first
    to the last node it needs along each dimension, and thinned in memory (strided reads of a
    NetCDF file are orders of magnitude slower than contiguous ones). Variables in memory and
    dimension coordinates are thinned at once."""
    variables = {}
    for name, var in ds.variables.items():
        axes = {axis: np.asarray(keep[dim]) for axis, dim in enumerate(var.dims) if dim in keep}
        if not axes or name in ds.indexes or getattr(var, "_in_memory", False):
            variables[name] = var.isel({dim: keep[dim] for dim in var.dims if dim in keep})
        else:
            variables[name] = _lazy(var, axes=axes)
    return _replaced(ds, variables)


def refusing_non_finite(ds: xr.Dataset, what: str, path, along: str) -> xr.Dataset:
    """``ds`` (of a file) whose floating-point data variables refuse, when read, any non-finite
    number: a read that holds one raises :class:`DataError` naming ``what`` at ``path``, the
    variable, and the first index along the dimension ``along`` where it lies (with the value
    of that coordinate). The check costs no pass of its own over the file: only what is read is
    checked, as it is read."""
    variables = dict(ds.variables)
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f" and along in var.dims and not var.variable._in_memory:
            coordinate = ds[along]

            def refuse(index, name=name, coordinate=coordinate):
                return DataError(f"{what} {path}: {name} holds non-finite values at {along} index "
                                 f"{index} ({coordinate.attrs.get('coordinate', along)} = "
                                 f"{float(coordinate[index]):.6g})")

            variables[name] = _lazy(var.variable, refuse=(var.dims.index(along), refuse))
    return _replaced(ds, variables)


def _lazy(var: xr.Variable, axes=None, refuse=None) -> xr.Variable:
    return xr.Variable(var.dims, LazilyIndexedArray(_LazyArray(var, axes or {}, refuse)),
                       var.attrs, var.encoding)


def _replaced(ds: xr.Dataset, variables: dict) -> xr.Dataset:
    out = xr.Dataset({name: variables[name] for name in ds.data_vars},
                     coords={name: variables[name] for name in ds.coords}, attrs=ds.attrs)
    out.set_close(ds.close)
    return out


class _LazyArray(BackendArray):
    """A variable read lazily, at the nodes ``axes`` (``{axis: indices}``) of its axes
    (:func:`thinned`), refusing non-finite numbers if ``refuse`` = (axis, error of an index along
    it) (:func:`refusing_non_finite`)."""

    def __init__(self, variable: xr.Variable, axes: dict, refuse=None):
        self.variable, self.axes, self.refuse = variable, axes, refuse
        self.shape = tuple(len(axes[a]) if a in axes else n for a, n in enumerate(variable.shape))
        self.dtype = variable.dtype

    def __getitem__(self, key):
        return explicit_indexing_adapter(key, self.shape, IndexingSupport.OUTER, self._read)

    def _read(self, key):
        """The outer indexer ``key`` (per axis an int, slice or index array): the hyperslab of
        the variable that holds it, then the nodes taken in memory."""
        hyperslab, picks, squeeze, absolute = [], [], [], []  # absolute: nodes of the variable
        for axis, k in enumerate(key):
            nodes = np.arange(self.shape[axis])[k]
            if np.ndim(nodes) == 0:
                squeeze.append(axis)
            nodes = np.atleast_1d(self.axes[axis][nodes] if axis in self.axes else nodes)
            start = int(nodes[0]) if nodes.size else 0
            stop = int(nodes.max()) + 1 if nodes.size else 0
            hyperslab.append(slice(start, stop))
            picks.append(_as_slice(nodes - start))
            absolute.append(nodes)
        data = self.variable[tuple(hyperslab)].values
        for axis, pick in enumerate(picks):
            if not isinstance(pick, slice) or pick != slice(None):
                data = data[(slice(None),) * axis + (pick,)]
        if self.refuse is not None:
            finite = np.isfinite(data)
            if not finite.all():
                axis, error = self.refuse
                bad = ~np.moveaxis(finite, axis, 0).reshape(finite.shape[axis], -1).all(axis=1)
                raise error(int(absolute[axis][np.argmax(bad)]))
        return np.squeeze(data, axis=tuple(squeeze)) if squeeze else np.ascontiguousarray(data)


def _as_slice(offsets: np.ndarray):
    """A slice selecting ``offsets`` (increasing, from 0) if they are evenly spaced, else them."""
    if offsets.size < 2:
        return slice(None) if offsets.size == 1 else offsets
    step = offsets[1] - offsets[0]
    if step > 0 and np.all(np.diff(offsets) == step):
        return slice(None) if step == 1 else slice(None, None, int(step))
    return offsets
