"""End-to-end on the other model kinds: the lattice model and a user's model (kind: python)."""

from __future__ import annotations


import numpy as np
import pytest
import xarray as xr

from checks import serving
from conftest import assert_data_contract

pytestmark = pytest.mark.slow


LATTICE = ("--cores", "2", "--configfile", "config/lattice_ci.yaml")


@pytest.fixture(scope="module")
def lattice_run(module_workspace):
    """The lattice kind's CI configuration, run whole."""
    module_workspace.snakemake(*LATTICE)
    return module_workspace


def test_lattice_model_end_to_end(lattice_run):
    workspace = lattice_run
    assert_data_contract(workspace.root, n_valleys=2)
    with xr.open_dataset(workspace.root / "results/tables/valley1.nc") as table:
        assert table.attrs["grid_kind"] == "brillouin_zone"
        # the grid is the whole zone [-pi/a, pi/a)^3 (a = 1)
        assert np.isclose(float(table["k1"].min()), -0.5)  # reduced coordinate u1 = kx a / 2π
        assert np.isclose(float(table["kx"].min()), -np.pi)
        assert np.isclose(float(table["weight"].sum()), (2 * np.pi) ** 3)


def test_user_model_through_kgrid_and_tabulate(workspace):
    workspace.snakemake(
        "results/tables/valley1.nc", "results/tables/valley2.nc",
        "--cores", "2", "--configfile", "examples/user_model.yaml",
        "--config", "kgrid={n: [12, 4, 12]}",
    )
    for valley, delta in ((1, 1.0), (2, 1.5)):
        with xr.open_dataset(workspace.root / f"results/tables/valley{valley}.nc") as table:
            assert "tilted_dirac" in table.attrs["model"]
            assert table.attrs["grid_kind"] == "cylindrical"
            energy = table["energy"].values
            assert np.isfinite(energy).all() and np.isfinite(table["quantum_metric"].values).all()
            # gap of H = w.k + v(kx sx + ky sy) + (delta + k^2/2m) sz is at least 2 delta
            assert (energy[1] - energy[0]).min() >= 2 * delta - 1e-9


def test_failed_job_leaves_no_output_and_logs_why(workspace):
    # the factory needs `delta`: building valley 1's model fails inside the kgrid job
    bad = workspace.write_config("bad_model.yaml", {"model": {"valleys": [{"tilt": [0, 0, 1]}]}})
    proc = workspace.snakemake(
        "results/kgrid/valley1.nc", "--cores", "1",
        "--configfile", "examples/user_model.yaml", bad, check=False,
    )
    assert proc.returncode != 0
    assert not (workspace.root / "results/kgrid/valley1.nc").exists()
    assert not list(workspace.root.rglob("*.part")), "a partial file was left behind"
    log = (workspace.root / "logs/kgrid/valley1.log").read_text()
    assert "rule kgrid failed" in log and "delta" in log


DASK_CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                       host="127.0.0.1", dashboard_address=None)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
cluster.close()
"""


def test_tabulate_on_a_dask_scheduler(workspace):
    # tabulate.scheduler: the table is computed by the workers of a Dask distributed cluster
    # (started in its own process, importing the workspace's package like the jobs do)
    pytest.importorskip("distributed")
    with serving(DASK_CLUSTER, workspace.env()) as address:
        workspace.snakemake(
            "results/tables/valley1.nc", "--cores", "1", "--configfile", "config/ci.yaml",
            "--config", f"tabulate={{scheduler: '{address}'}}",
        )
    log = (workspace.root / "logs/tabulate/valley1.log").read_text()
    assert address in log
    with xr.open_dataset(workspace.root / "results/tables/valley1.nc") as table:
        assert np.isfinite(table["energy"].values).all()


def test_ndd_tensor_on_request(lattice_run):
    """results/reductions/ndd_tensor.nc, made on request (or by ndd.tensor: true): T_xxz is the
    pipeline's own Δn of the paper's geometry (q ∥ z, ê ∥ x) on the same table, T_abc = T_bac."""
    workspace = lattice_run
    assert workspace.planned(*LATTICE) == {}
    assert workspace.planned(*LATTICE, "--config", "ndd={tensor: true}") == {
        "ndd_tensor_valley": 2, "ndd_tensor": 1, "summary": 1}
    workspace.snakemake("results/reductions/ndd_tensor.nc", *LATTICE)
    root = workspace.root / "results/reductions"
    with xr.open_dataset(root / "ndd_tensor.nc") as tensor, \
            xr.open_dataset(root / "ndd_spectrum.nc") as spectrum:
        for part in ("re", "im"):
            t = tensor[f"{part}_delta_n_tensor"]
            expected = spectrum[f"{part}_delta_n"].values
            scale = np.abs(expected).max()
            assert scale > 0
            np.testing.assert_allclose(t.sel(dir_a="x", dir_b="x", dir_c="z").values, expected,
                                       rtol=0, atol=1e-12 * scale)
            np.testing.assert_array_equal(t.values, t.transpose("dir_b", "dir_a", ...).values)
            assert f"{part}_delta_n_tensor_error" in tensor
            assert f"{part}_delta_n_tensor_valley" in tensor
        assert "max_relative_to_valley_peaks" in tensor["re_delta_n_tensor_error"].attrs
