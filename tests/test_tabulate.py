"""Tests of qmdipole.tabulate and the NetCDF layer it writes through (qmdipole.io).

A table written with ``write_table`` and read back with ``xarray.open_dataset`` must not depend on
the slab size, the thread count or the scheduler (threads or a ``distributed`` cluster); it must be
self-describing (CF ``units``/``long_name`` on everything, provenance); bad input must fail with
an error naming the culprit and leave nothing half-written behind.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import numpy as np
import pytest
import xarray as xr

from qmdipole import io
from qmdipole.geometry import band_geometry
from qmdipole.io import DataError
from qmdipole.kgrid import KGrid, build_kgrid, read_kgrid
from qmdipole.models import PAULI, LatticeValleyModel, Model, ModelError, ValleyModel
from qmdipole.tabulate import FIELD_DIMS, write_table

MODEL = ValleyModel(delta=1.0, vprime=1.0, tau=1, v=1.0, mass=1.9)
CONFIG = {"model": {"kind": "valley", "v": 1.0, "mass": 1.9,
                    "valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1}]},
          "tabulate": {"slab_points": 700}}
FIELDS = tuple(FIELD_DIMS)
PROVENANCE = ("Conventions", "qmdipole_version", "git_commit", "created", "config")


@pytest.fixture(scope="module")
def grid() -> KGrid:
    """A small cylindrical grid (21 × 4 × 33 = 2772 points) with ρ = 0 on it."""
    return build_kgrid(MODEL, "cylindrical", (21, 4, 33), ((0.0, 3.0), None, (-2.5, 2.5)))


def _write(tmp_path, name, grid, model=MODEL, **kwargs):
    path = tmp_path / name
    kwargs.setdefault("progress", False)
    assert write_table(model, grid, path, **kwargs) == path
    return path


def _load(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def reference(grid, tmp_path_factory):
    """The table written in one slab on one thread."""
    tmp = tmp_path_factory.mktemp("reference")
    return _load(_write(tmp, "reference.nc", grid, config=CONFIG, slab_points=10**7, threads=1))


def _max_abs_diff(a: xr.Dataset, b: xr.Dataset) -> float:
    worst = 0.0
    for name in (*FIELDS, "kx", "ky", "kz", "weight"):
        assert a[name].dims == b[name].dims, name
        worst = max(worst, float(np.abs(a[name].values - b[name].values).max()))
    return worst


# ------------------------------------------------------------------------------------------
# the values
# ------------------------------------------------------------------------------------------

def test_table_holds_band_geometry_of_its_grid(grid, reference):
    """The table is band_geometry at the grid's Cartesian points, reshaped correctly."""
    kx, ky, kz = grid.cartesian()
    np.testing.assert_array_equal(reference["kx"].values, kx)
    np.testing.assert_array_equal(reference["ky"].values, ky)
    np.testing.assert_array_equal(reference["kz"].values, kz)
    np.testing.assert_array_equal(reference["weight"].values, grid.weight())
    geo = band_geometry(MODEL, kx.ravel(), ky.ravel(), kz.ravel(), method="closed_form")
    for name in FIELDS:
        expected = geo[name].reshape(geo[name].shape[:-1] + grid.shape)
        assert reference[name].shape == expected.shape, name
        np.testing.assert_allclose(reference[name].values, expected, rtol=0, atol=1e-14)
    assert reference["energy"].dims == ("band", "k1", "k2", "k3")
    assert reference["quantum_metric"].dims == ("band", "dir_i", "dir_j", "k1", "k2", "k3")
    assert list(reference["dir"].values) == ["x", "y", "z"]
    # spot check: one node against the closed form of Eq. 14
    i, j, k = 7, 1, 20
    rho, z = grid.axes[0][i], grid.axes[2][k]
    e = np.hypot(rho, 1.0 + z**2 / 3.8)
    np.testing.assert_allclose(reference["energy"].values[:, i, j, k], [z - e, z + e], rtol=1e-14)
    # and the grid read back from the table's own axes is the grid
    back = KGrid.from_dataset(reference.assign_attrs(grid_kind="cylindrical"))
    for x, y in zip(back.axes + back.axis_weights, grid.axes + grid.axis_weights):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("slab_points,threads", [(1, 1), (50, 2), (700, 1), (700, 2), (1500, 2)])
def test_independent_of_slab_size_and_threads(grid, reference, tmp_path, slab_points, threads):
    table = _load(_write(tmp_path, "t.nc", grid, config=CONFIG, slab_points=slab_points,
                         threads=threads))
    assert _max_abs_diff(table, reference) <= 1e-14
    # (pointwise evaluation: in practice bit-identical)
    assert _max_abs_diff(table, reference) == 0.0


def test_compressed_table_holds_the_same_numbers(grid, reference, tmp_path):
    path = _write(tmp_path, "zlib.nc", grid, config=CONFIG, compression=1)
    assert _max_abs_diff(_load(path), reference) == 0.0  # lossless
    with xr.open_dataset(path) as ds:
        assert ds["quantum_metric"].encoding["zlib"] and ds["quantum_metric"].encoding["complevel"] == 1
    with xr.open_dataset(_write(tmp_path, "plain.nc", grid, config=CONFIG)) as ds:
        assert not ds["quantum_metric"].encoding.get("zlib", False)  # the default: not compressed


def test_distributed_scheduler(grid, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        path = _write(tmp_path, "dist.nc", grid, config=CONFIG, slab_points=700,
                      address=cluster.scheduler_address)
    table = _load(path)
    assert _max_abs_diff(table, reference) <= 1e-14


def test_lattice_model_on_brillouin_zone(tmp_path):
    model = LatticeValleyModel(delta=1.0, vprime=1.0, tau=-1, mass=1.9, lattice_constant=1.0)
    bz = build_kgrid(model, "brillouin_zone", (8, 6, 10), None)
    closed = _load(_write(tmp_path, "c.nc", bz, model, method="closed_form", slab_points=100,
                          threads=2))
    general = _load(_write(tmp_path, "g.nc", bz, model, method="sum_over_states", slab_points=100,
                           threads=2))
    for name in FIELDS:
        scale = np.abs(general[name].values).max()
        np.testing.assert_allclose(closed[name].values, general[name].values, rtol=0,
                                   atol=1e-12 * scale)
    assert closed.attrs["grid_kind"] == "brillouin_zone"


# ------------------------------------------------------------------------------------------
# self-description
# ------------------------------------------------------------------------------------------

def test_cf_attributes_and_provenance(reference, grid):
    ds = reference
    names = {**ds.data_vars, **ds.coords}
    assert set(FIELDS) | {"kx", "ky", "kz", "weight", "k1", "k2", "k3", "band"} <= set(names)
    for name, var in names.items():
        labels = var.dtype.kind in "OSU"  # CF labels (strings) carry no units
        for attr in ("long_name",) if labels else ("units", "long_name"):
            assert isinstance(var.attrs.get(attr), str) and var.attrs[attr], f"{name}: {attr}"
    for attr in PROVENANCE:
        assert ds.attrs.get(attr), attr
    assert ds.attrs["Conventions"].startswith("CF-")
    assert json.loads(ds.attrs["config"]) == CONFIG
    created = dt.datetime.fromisoformat(ds.attrs["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert ds.attrs["grid_kind"] == "cylindrical" and int(ds.attrs["n_points"]) == grid.size
    model = json.loads(ds.attrs["model"])  # JSON, not a Python repr
    assert model["delta"] == 1.0 and model["vprime"] == 1.0
    assert ds["energy"].attrs["units"] == "1" and ds["energy"].attrs["units_label"] == "Delta"


def test_degenerate_points_recorded_in_table(tmp_path):
    model = ValleyModel(delta=0.0, vprime=0.5, tau=1)  # d = 0 at k = 0, a grid node
    g = build_kgrid(model, "cylindrical", (5, 4, 5), ((0.0, 1.0), None, (-1.0, 1.0)))
    table = _load(_write(tmp_path, "deg.nc", g, model, slab_points=40))
    for name in FIELDS:
        assert np.isfinite(table[name].values).all()
    assert int(table.attrs.get("n_degenerate", -1)) == 4  # the 4 φ nodes at ρ = 0, k_z = 0


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------

class NonHermitian(Model):
    """H = d·σ + i c σ_z: not Hermitian (a typical user slip); ∂H is fine."""

    n_bands = 2
    name = "my_broken_model"

    def __init__(self, broken="H"):
        self.broken = broken

    def hamiltonian(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        h = kx[..., None, None] * PAULI[0] + ky[..., None, None] * PAULI[1] + PAULI[2]
        if self.broken == "H":
            h = h + 0.3j * PAULI[2]
        return h

    def hamiltonian_gradient(self, kx, ky, kz):
        kx = np.asarray(kx)
        g = np.zeros((3,) + kx.shape + (2, 2), complex)
        g[0], g[1] = PAULI[0], PAULI[1]
        if self.broken == "dH":
            g[2] = np.array([[0, 1], [0, 0]])
        return g


@pytest.mark.parametrize("broken,what", [("H", "H(k)"), ("dH", "dH/dk")])
def test_non_hermitian_model_raises_model_error(grid, tmp_path, broken, what):
    path = tmp_path / "table.nc"
    with pytest.raises(ModelError, match=r"my_broken_model.*" + what.replace("(", r"\(")
                       .replace(")", r"\)") + ".*not Hermitian"):
        write_table(NonHermitian(broken), grid, path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_kgrid_file(tmp_path):
    path = tmp_path / "results" / "kgrid" / "valley1.nc"
    with pytest.raises(DataError, match=r"k-grid .*valley1\.nc.*does not exist"):
        io.open_dataset(path, what="k-grid")


@pytest.mark.parametrize("content", [
    b"", b"this is not a NetCDF file\n" * 10, b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4,
    "truncated",
])
def test_corrupt_kgrid_file(tmp_path, grid, content):
    path = tmp_path / "valley1.nc"
    if content == "truncated":
        io.write_netcdf(grid.to_dataset(), path, title="k-grid")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=r"k-grid .*valley1\.nc"):
        ds = io.open_dataset(path, what="k-grid")
        try:  # a lazily opened file may fail only when read
            KGrid.from_dataset(ds).weight()
        finally:
            ds.close()


def test_kgrid_file_lacking_variables(tmp_path, grid):
    path = tmp_path / "valley1.nc"
    io.write_netcdf(grid.to_dataset().drop_vars("weight2"), path, title="k-grid")
    with pytest.raises(DataError, match=r"k-grid .*valley1\.nc.*weight2"):
        io.open_dataset(path, what="k-grid", required=("k1", "k2", "k3", "weight1", "weight2",
                                                        "weight3"))


@pytest.mark.parametrize("drop", ["weight2", "k3"])
def test_incomplete_kgrid_file_through_pipeline_route(tmp_path, grid, drop):
    path = tmp_path / "valley1.nc"
    io.write_netcdf(grid.to_dataset().drop_vars(drop), path, title="k-grid")
    with pytest.raises(DataError, match=rf"k-grid .*valley1\.nc.*{drop}"):
        read_kgrid(path)


def test_kgrid_file_without_kind_names_the_file(tmp_path, grid):
    path = tmp_path / "valley1.nc"
    ds = grid.to_dataset()
    ds.attrs["grid_kind"] = "hexagonal"
    io.write_netcdf(ds, path, title="k-grid")
    with pytest.raises(DataError, match=r"valley1\.nc.*grid_kind"):
        read_kgrid(path)


class FailsMidway(ValleyModel):
    """The valley model, failing from its third slab on (after the Hermiticity check and two
    slabs); with ``delay`` only the third slab fails, after sleeping ``delay`` seconds (meanwhile
    another thread computes a slab and enters a store)."""

    delay = 0.0

    def __post_init__(self):
        super().__post_init__()
        self._calls, self._lock = 0, threading.Lock()

    def d_gradient(self, kx, ky, kz):
        with self._lock:
            self._calls += 1
            calls = self._calls
        if calls == 4 or (calls > 4 and not self.delay):  # 1: check_hermitian, 2–3: first slabs
            time.sleep(self.delay)
            raise RuntimeError("model blew up mid-way")
        return super().d_gradient(kx, ky, kz)


class FailsOnceSlowly(FailsMidway):
    """Only the third slab fails, after 0.3 s."""

    delay = 0.3


@pytest.mark.parametrize("threads", [1, 2])
def test_failure_leaves_nothing_behind(grid, tmp_path, threads):
    out = tmp_path / "tables"
    out.mkdir()
    path = out / "valley1.nc"
    model = FailsMidway(delta=1.0, vprime=1.0, tau=1, mass=1.9)
    with pytest.raises(RuntimeError, match="mid-way"):
        write_table(model, grid, path, slab_points=300, threads=threads, progress=False)
    assert model._calls >= 4
    assert not path.exists()
    if threads == 1:  # no task in flight: no temporary file either (threads > 1: see below)
        assert list(out.iterdir()) == []


def test_failure_leaves_no_temporary_file_with_threads(grid, tmp_path, monkeypatch):
    from xarray.backends import netCDF4_

    original = netCDF4_.BaseNetCDF4Array.__setitem__

    def slow_setitem(self, key, value):  # a slow disk: a store is in flight when a slab fails
        if threading.current_thread() is not threading.main_thread():  # dask's stores only
            time.sleep(0.6)
        return original(self, key, value)

    monkeypatch.setattr(netCDF4_.BaseNetCDF4Array, "__setitem__", slow_setitem)
    out = tmp_path / "tables"
    out.mkdir()
    model = FailsOnceSlowly(delta=1.0, vprime=1.0, tau=1, mass=1.9)
    with pytest.raises(RuntimeError, match="mid-way"):
        write_table(model, grid, out / "valley1.nc", slab_points=300, threads=2, progress=False)
    time.sleep(0.8)  # let the straggling worker thread finish its store
    assert not (out / "valley1.nc").exists()
    assert list(out.iterdir()) == []


def test_many_band_slabs_hold_fewer_points_and_the_same_numbers():
    """Memory per k-point grows as n_bands²: an 8-band model's slabs hold 4/64 of slab_points
    (kgrid.points_per_slab); the table does not depend on the slab size (to 1e-12)."""
    from qmdipole.kgrid import points_per_slab
    from qmdipole.tabulate import tabulate
    from qmdipole.wannier90 import Wannier90Model

    rng = np.random.default_rng(3)
    r_vectors = np.array([(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1), (0, 0, -1)])
    hoppings = rng.normal(size=(5, 8, 8)) + 1j * rng.normal(size=(5, 8, 8))
    hoppings = 0.5 * (hoppings + np.conj(hoppings[[0, 2, 1, 4, 3]].transpose(0, 2, 1)))
    model = Wannier90Model(hoppings, r_vectors, np.eye(3))
    grid = build_kgrid(model, "brillouin_zone", (16, 8, 8), None)
    assert points_per_slab(1024, 8) == 64 and points_per_slab(1024, 2) == 1024
    small = tabulate(model, grid, slab_points=1024)
    assert small["energy"].chunks[1] == (1,) * 16  # 64 points: one k1 row of 8 x 8 per slab
    large = tabulate(model, grid, slab_points=2**20)
    small, large = small.compute(), large.compute()
    for name in FIELD_DIMS:  # the same to round-off (the Bloch sum's BLAS blocks change)
        scale = float(np.abs(large[name]).max())
        np.testing.assert_allclose(small[name], large[name], rtol=0, atol=1e-12 * scale, err_msg=name)


def test_in_memory_table_is_the_computed_table(grid):
    """``in_memory`` (blocks stored into one array per variable) holds exactly what
    ``Dataset.compute()`` (blocks joined) does: every variable, coordinate and attribute."""
    from qmdipole.tabulate import in_memory, tabulate

    lazy = tabulate(MODEL, grid, slab_points=700)
    assert len(lazy["energy"].chunks[1]) > 1  # several blocks
    stored = in_memory(lazy)
    assert not any(hasattr(v.data, "dask") for v in stored.variables.values())
    xr.testing.assert_identical(stored, lazy.compute())
    assert set(stored.coords) == set(lazy.coords)
