"""Dask-parallel tabulation of the band geometry on a k-grid into a CF NetCDF table.

The grid is cut into slabs along its first axis; each slab is one Dask task that evaluates
:func:`qmdipole.geometry.band_geometry` on its k-points. Results are pointwise, so they do not
depend on the slab size or on the scheduler (threads, or a ``distributed`` cluster). Memory is
bounded by the slab size: the table is written slab by slab, never held whole.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time

import netCDF4
import numpy as np
import xarray as xr

from . import units
from .geometry import (DEFAULT_DEGENERACY_TOL, FIELD_SHAPES, band_geometry, model_label,
                       resolve_method)
from .io import check_made_for, json_attribute, open_dataset, refusing_non_finite, write_netcdf
from .kgrid import AXIS_LONG_NAMES, KGrid, grid_for, points_per_slab
from .models import ModelError

log = logging.getLogger(__name__)

DIRS = ["x", "y", "z"]
# (variable name, shape after band, quantity, long name)
FIELDS = tuple((name, FIELD_SHAPES[name], quantity, long_name) for name, quantity, long_name in (
    ("energy", units.ENERGY, "band energy epsilon_m"),
    ("velocity", units.VELOCITY, "band velocity v_i,m = d epsilon_m / d k_i"),
    ("quantum_metric", units.AREA, "quantum metric g_ij,m (Fubini-Study, Eq. 7)"),
    ("berry_curvature", units.AREA, "Berry curvature Omega_m = curl A_m"),
))
FIELD_DIMS = {
    "energy": ("band",),
    "velocity": ("band", "dir"),
    "quantum_metric": ("band", "dir_i", "dir_j"),
    "berry_curvature": ("band", "dir"),
}


def _slab_points(grid: KGrid, block_info=None):
    """Cartesian kx, ky, kz and the quadrature weight of one slab, stacked (4, n1', n2, n3)."""
    start, stop = block_info[None]["array-location"][1]
    part = slice(start, stop)
    return np.stack([*grid.cartesian(part), grid.weight(part)])


def _field_rows(n_bands: int):
    """(name, shape, rows) of each field of FIELDS in the stacked slabs: ``rows`` the slice of
    its n_bands · prod(shape) rows on the leading axis (band-major)."""
    start = 0
    for name, shape, *_ in FIELDS:
        size = n_bands * int(np.prod(shape))
        yield name, shape, slice(start, start + size)
        start += size


def _slab(grid: KGrid, model, method, degeneracy_tol, block_info=None):
    """All fields of one slab, stacked on a leading axis (band-major, as in FIELDS): the
    geometry is computed into the stacked array's rows."""
    start, stop = block_info[None]["array-location"][1]
    kx, ky, kz = grid.cartesian(slice(start, stop))
    n_bands = int(model.n_bands)
    fields = list(_field_rows(n_bands))
    stacked = np.empty((fields[-1][2].stop, stop - start, *grid.shape[1:]))
    flat = stacked.reshape(len(stacked), -1)
    out = {name: flat[rows].reshape(n_bands, *shape, -1) for name, shape, rows in fields}
    band_geometry(model, kx.ravel(), ky.ravel(), kz.ravel(), method, degeneracy_tol, out=out)
    for name, values in out.items():
        if not np.isfinite(values).all():
            bad = ~np.isfinite(values).reshape(-1, kx.size).any(axis=0)
            i = int(np.argmax(bad))
            raise ModelError(
                f"model {model_label(model)}: the {name} is not finite at {int(bad.sum())} "
                f"k-points, the first at k = ({kx.flat[i]:.6g}, {ky.flat[i]:.6g}, {kz.flat[i]:.6g})")
    return stacked


def tabulate(model, grid: KGrid, *, method="auto", slab_points=2**18,
             degeneracy_tol=DEFAULT_DEGENERACY_TOL) -> xr.Dataset:
    """The geometry table of ``model`` on ``grid`` as a lazy (Dask-backed) Dataset.

    Every slab checks what the model returns at each of its k-points (finite, Hermitian, of
    ``n_bands``; :func:`qmdipole.geometry.check_model_values`) and that the geometry is finite.
    """
    import dask.array as da  # here: the jobs that only read tables need no Dask

    method = resolve_method(model, method)
    n_bands = int(model.n_bands)
    fields = list(_field_rows(n_bands))
    n_fields = fields[-1][2].stop
    per_slab = max(points_per_slab(slab_points, n_bands) // (grid.shape[1] * grid.shape[2]), 1)
    chunks = ((n_fields,), _chunk_sizes(grid.shape[0], per_slab), (grid.shape[1],), (grid.shape[2],))
    stacked = da.map_blocks(
        _slab, grid, model, method, degeneracy_tol,
        chunks=chunks, dtype=float, meta=np.empty((0, 0, 0, 0)),
    )

    data_vars = {}
    for (name, shape, rows), (*_, quantity, long_name) in zip(fields, FIELDS):
        block = stacked[rows].reshape((n_bands,) + shape + grid.shape)
        data_vars[name] = (FIELD_DIMS[name] + ("k1", "k2", "k3"), block,
                           {**quantity.attrs(), "long_name": long_name})

    points = da.map_blocks(_slab_points, grid, chunks=((4,),) + chunks[1:], dtype=float,
                           meta=np.empty((0, 0, 0, 0)))
    grid_ds = grid.to_dataset()
    cart = units.MOMENTUM.attrs()
    ds = xr.Dataset(
        data_vars,
        coords={
            **{name: grid_ds[name] for name in ("k1", "k2", "k3")},
            **{c: (("k1", "k2", "k3"), points[i], {**cart, "long_name": AXIS_LONG_NAMES[c] + " (Cartesian)"})
               for i, c in enumerate(("kx", "ky", "kz"))},
            "band": ("band", np.arange(n_bands), {**units.NUMBER, "long_name": "band index, ascending energy"}),
            "dir": ("dir", DIRS, {"long_name": "Cartesian direction"}),
            "dir_i": ("dir_i", DIRS, {"long_name": "Cartesian direction i"}),
            "dir_j": ("dir_j", DIRS, {"long_name": "Cartesian direction j"}),
        },
    )
    for a in (1, 2, 3):
        ds[f"weight{a}"] = grid_ds[f"weight{a}"]
    ds["weight"] = (("k1", "k2", "k3"), points[3],
                    {**units.K_VOLUME.attrs(), "long_name": "quadrature weight: sum(weight*F) = integral d^3k F"})
    ds.attrs.update({"grid_kind": grid.kind, "n_points": grid.size, "geometry_method": method,
                     "degeneracy_tol": degeneracy_tol})
    return ds


def in_memory(table: xr.Dataset, *, threads: int | None = None) -> xr.Dataset:
    """A lazy table of :func:`tabulate` computed into memory, one array per variable filled block
    by block (``dask.array.store``): the peak is the table and a few blocks, where
    ``table.compute()`` holds every block and the joined arrays at once (twice the table).
    ``threads``: workers of Dask's threaded scheduler (None: Dask's default, all cores)."""
    import dask.array as da

    lazy = [name for name, variable in table.variables.items()
            if isinstance(variable.data, da.Array)]
    arrays = [np.empty(table[name].shape, table[name].dtype) for name in lazy]
    da.store([table[name].data for name in lazy], arrays, lock=False,
             **({} if threads is None else {"num_workers": threads}))
    out = table.copy()
    for name, array in zip(lazy, arrays):
        out[name] = table[name].variable.copy(data=array)
    return out


TABLE_VARIABLES = tuple(FIELD_DIMS) + ("weight",)


def read_table(path, *, what="geometry table", **made_for) -> xr.Dataset:
    """Open the table at ``path``, refusing one that is incomplete or was made for other settings
    than ``made_for`` (e.g. ``model=`` the run's model section; see
    :func:`qmdipole.io.check_made_for`), and, as they are read, the fields that hold a
    non-finite number (:func:`qmdipole.io.refusing_non_finite`: the error names the field and
    the k1 index). The data are read lazily, as the reductions ask for them."""
    ds = open_dataset(path, required=TABLE_VARIABLES, what=what)
    try:
        check_made_for(ds, path, what, **made_for)
    except Exception:
        ds.close()
        raise
    return refusing_non_finite(ds, what, path, along="k1")


def valley_tables(models, model_kind: str, settings, needs):
    """``[(model, grid, table)]`` for each model (one per valley), built as the pipeline builds
    them, in memory: the grid from the :class:`~qmdipole.settings.GridSettings` ``settings`` and
    the :class:`~qmdipole.kgrid.GridNeeds` ``needs``. Small grids only (the tables are computed,
    not written)."""
    out = []
    for model in models:
        grid = grid_for(model, model_kind, settings, needs)
        out.append((model, grid, in_memory(tabulate(model, grid))))
    return out


def _chunk_sizes(total, size):
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return tuple(sizes)


class SchedulerError(RuntimeError):
    """The Dask distributed scheduler does not answer, or has no workers left to compute on."""


@contextlib.contextmanager
def dask_scheduler(threads: int = 1, address: str | None = None, progress: bool = True,
                   worker_timeout: float = 60.0):
    """Run Dask computations on ``threads`` local threads, or on the cluster at ``address``.

    Yields ``compute(collection)``, which runs a Dask collection there. On a cluster it fails
    with :class:`SchedulerError` rather than wait for ever: when the scheduler does not answer
    within ``worker_timeout`` seconds, when it has had no worker for ``worker_timeout`` seconds
    (the computation is then cancelled), or when workers keep dying on a task.
    """
    import dask

    if address:
        from distributed import Client

        try:
            _handshake(address, worker_timeout)
            client = Client(address, timeout=worker_timeout)
        except (OSError, asyncio.TimeoutError) as err:
            raise SchedulerError(
                f"the Dask scheduler at {address} did not answer within {worker_timeout:g} s "
                f"(tabulate.worker_timeout): {err!r}"
            ) from err
        with client, dask.config.set(scheduler=client):
            log.info("tabulating on the distributed scheduler at %s", address)
            yield lambda collection: _watched_compute(client, address, collection, worker_timeout)
        return
    with dask.config.set(scheduler="threads", num_workers=max(int(threads), 1)):
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar(dt=1.0, minimum=2.0):
                yield dask.compute
        else:
            yield dask.compute


def _handshake(address: str, timeout: float) -> None:
    """Connect to the Dask server at ``address`` and shake hands, within ``timeout`` seconds.

    ``distributed.Client(timeout=...)`` bounds the connection but not the handshake after it,
    so a peer that accepts and stays silent would block it for ever.
    """
    from distributed.comm import connect

    async def shake():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # own event loop, whatever the caller's
        pool.submit(asyncio.run, shake()).result()


def _watched_compute(client, address: str, collection, worker_timeout: float, poll: float = 0.5):
    """``collection`` computed on ``client``, waiting for workers at most ``worker_timeout`` s."""
    from distributed import KilledWorker

    future = client.compute(collection)
    idle_since = None
    try:
        while True:
            try:
                return future.result(timeout=poll)
            except TimeoutError:
                pass
            now = time.monotonic()
            if client.scheduler_info()["workers"]:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= worker_timeout:
                raise SchedulerError(
                    f"the Dask scheduler at {address} has had no workers for {worker_timeout:g} s "
                    "(tabulate.worker_timeout); the computation was cancelled"
                )
    except KilledWorker as err:
        raise SchedulerError(
            f"workers of the Dask scheduler at {address} kept dying: {err}"
        ) from err
    finally:
        future.cancel()


def write_table(model, grid: KGrid, path, *, config=None, method="auto", slab_points=2**18,
                threads=1, address=None, progress=True, worker_timeout=60.0, compression=0):
    """Tabulate ``model`` on ``grid`` and write the table to ``path`` (NetCDF, slab by slab).

    The table records ``n_degenerate``: k-points where two bands are closer than the
    degeneracy tolerance (see :mod:`qmdipole.geometry`). On a cluster (``address``) a scheduler
    without workers for ``worker_timeout`` seconds raises :class:`SchedulerError`.
    ``compression``: zlib level (0: none; level 1 halves a table but writes ~25x slower).
    """
    ds = tabulate(model, grid, method=method, slab_points=slab_points)
    ds.attrs["model"] = json_attribute(model.describe() if hasattr(model, "describe") else
                                       {"name": model_label(model)})
    names = [*FIELD_DIMS, "kx", "ky", "kz", "weight"]
    encoding = {name: {"chunksizes": _disk_chunks(ds[name])} for name in names}
    netCDF4.set_chunk_cache(4 * 2**20)  # the default 64 MiB per variable only grows memory here
    with dask_scheduler(threads, address, progress, worker_timeout) as compute:
        write_netcdf(ds, path, config=config, title="band-geometry table", encoding=encoding,
                     finalize=_record_degeneracies, compute=compute, compression=compression)
    return path


def _record_degeneracies(path):
    """Set the table's ``n_degenerate`` attribute from its stored band energies."""
    with netCDF4.Dataset(path, "r+") as nc:
        energy, tol, count = nc["energy"], nc.getncattr("degeneracy_tol"), 0
        for start in range(0, energy.shape[1], 64):
            e = energy[:, start:start + 64]
            if e.shape[0] > 1:
                count += int((np.diff(np.asarray(e), axis=0) < tol).any(axis=0).sum())
        nc.setncattr("n_degenerate", count)


def _disk_chunks(var):
    shape = var.shape
    lead = shape[:-3]
    n2, n3 = shape[-2:]
    rows = max(1, min(shape[-3], 2**16 // max(n2 * n3, 1)))
    return tuple(lead) + (rows, n2, n3)
