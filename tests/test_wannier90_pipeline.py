"""kind: wannier90 through the pipeline: config -> Brillouin-zone grid of any lattice -> tables -> γ.

Independent routes: the built-in lattice model (closed-form two-band geometry) against the same
model written as a Wannier90 file (sum over states); BZ volumes (2π)³/V_cell and lattice plane
waves, which integrate to zero on the zone; the valley sum of γ against one block-diagonal file.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
import yaml

from qmdipole import kgrid, quadrupolar, tabulate
from qmdipole.kgrid import GridNeeds, KGrid, build_kgrid
from qmdipole.models import LatticeValleyModel, ModelError, build_model
from qmdipole.settings import GridSettings
from qmdipole.wannier90 import Wannier90Model, hoppings_from_hamiltonian, write_centres, write_hr

from conftest import REPO

LATTICE = yaml.safe_load((REPO / "config" / "lattice_ci.yaml").read_text())["model"]
NEEDS = GridNeeds((-3.0, 3.0), (0.5, 5.0), transition_cutoff=16.0, eta=0.3)
FIELDS = ("energy", "velocity", "quantum_metric", "berry_curvature", "kx", "ky", "kz", "weight")
HEXAGONAL = [[2.0, 0.0, 0.0], [-1.0, np.sqrt(3.0), 0.0], [0.0, 0.0, 3.5]]
TRICLINIC = [[1.3, 0.1, -0.2], [0.4, 1.1, 0.3], [-0.3, 0.5, 1.7]]


def lattice_valleys() -> list[LatticeValleyModel]:
    return [build_model(LATTICE, i) for i in range(len(LATTICE["valleys"]))]


def write_model(directory, models, seed="lattice", lattice=np.eye(3)):
    """The block-diagonal sum of ``models`` as ``seed_hr.dat`` + ``seed_centres.xyz`` (centres at
    the origin, the built-in models' convention); returns the ``model:`` section reading them."""
    blocks = [hoppings_from_hamiltonian(m, lattice, n=8) for m in models]
    r_vectors = np.unique(np.concatenate([r for _, r in blocks]), axis=0)
    index = {tuple(r): i for i, r in enumerate(r_vectors.tolist())}
    n_bands = sum(m.n_bands for m in models)
    hoppings = np.zeros((len(r_vectors), n_bands, n_bands), complex)
    start = 0
    for (h, r), m in zip(blocks, models):
        rows = [index[tuple(x)] for x in r.tolist()]
        hoppings[rows, start:start + m.n_bands, start:start + m.n_bands] = h
        start += m.n_bands
    directory.mkdir(parents=True, exist_ok=True)
    write_hr(directory / f"{seed}_hr.dat", hoppings, r_vectors)
    write_centres(directory / f"{seed}_centres.xyz", np.zeros((n_bands, 3)))
    return {"kind": "wannier90", "hr_file": str(directory / f"{seed}_hr.dat"),
            "centres_file": str(directory / f"{seed}_centres.xyz"),
            "lattice_vectors": np.asarray(lattice, float).tolist(), "valleys": [{}]}


def tables(section, n=(10, 8, 12)):
    """``[(model, grid, table)]`` of the ``model:`` section ``section`` on its uniform grid."""
    models = [build_model(section, i) for i in range(len(section["valleys"]))]
    return tabulate.valley_tables(models, section["kind"],
                                  GridSettings(n=tuple(n), points_per_eta=0.0), NEEDS)


# ------------------------------------------------------------------ the same model, two routes

def test_lattice_model_read_back_as_wannier90_gives_the_same_table(tmp_path):
    """One valley of kind: lattice (closed form) vs its Wannier90 file (sum over states)."""
    section = write_model(tmp_path, lattice_valleys()[:1])
    lattice_section = {**LATTICE, "valleys": LATTICE["valleys"][:1]}
    (_, grid_a, a), = tables(lattice_section)
    (model, grid_b, b), = tables(section)
    assert isinstance(model, Wannier90Model) and model.n_bands == 2
    assert a.attrs["geometry_method"] == "closed_form"
    assert b.attrs["geometry_method"] == "sum_over_states"
    np.testing.assert_array_equal(grid_a.basis, grid_b.basis)
    for name in FIELDS:
        x, y = a[name].values, b[name].values
        assert np.abs(x).max() > 0.1, name  # a field that could differ
        assert np.abs(x - y).max() <= 1e-12, f"{name}: {np.abs(x - y).max():.2e}"


def test_mp_grid_and_centres_are_checked(tmp_path):
    section = write_model(tmp_path, lattice_valleys()[:1])
    n_r = len(build_model(section, 0).r_vectors)  # written with ndegen = 1: Σ 1/ndegen = n_R
    build_model({**section, "mp_grid": [n_r, 1, 1]}, 0)
    with pytest.raises(ModelError, match="mp_grid"):
        build_model({**section, "mp_grid": [8, 8, 8]}, 0)
    with pytest.raises(ModelError, match="model.centres_file.*nowhere.xyz"):
        build_model({**section, "centres_file": str(tmp_path / "nowhere.xyz")}, 0)
    with pytest.raises(ModelError, match="model.lattice_vectors"):
        build_model({**section, "lattice_vectors": None}, 0)


# ------------------------------------------------------------------ a Brillouin zone of any cell

def one_band_model(lattice):
    """An s band, ε(k) = Σ_R t cos(k·R) over the six ±a_i and the ±(a1 + a2 − a3) neighbours."""
    r = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, -1]])
    r_vectors = np.concatenate([[[0, 0, 0]], r, -r])
    hoppings = np.concatenate([[0.2], [-0.5, -0.3, -0.7, 0.15] * 2]).reshape(-1, 1, 1)
    return Wannier90Model(hoppings, r_vectors, lattice)


@pytest.mark.parametrize("lattice", [HEXAGONAL, TRICLINIC], ids=["hexagonal", "triclinic"])
def test_brillouin_zone_of_a_non_cubic_cell(lattice):
    lattice = np.array(lattice)
    n = (7, 6, 8)
    grid = build_kgrid(one_band_model(lattice), "brillouin_zone", n, None)
    volume = (2 * np.pi) ** 3 / abs(np.linalg.det(lattice))
    weight = grid.weight()
    np.testing.assert_allclose(weight.sum(), volume, rtol=1e-13)
    np.testing.assert_allclose(grid.jacobian(), volume, rtol=1e-13)
    k = np.stack(grid.cartesian(), axis=-1)
    # reduced coordinates: k·a_i / 2π = u_i on [−½, ½)
    u = k @ lattice.T / (2 * np.pi)
    for i, count in enumerate(n):
        np.testing.assert_allclose(np.moveaxis(u[..., i], i, 0)[:, 0, 0],
                                   -0.5 + np.arange(count) / count, atol=1e-13)
    tangents = grid.tangents()
    for a in range(3):  # ∂k/∂u_a = b_a
        np.testing.assert_allclose(tangents[a], np.broadcast_to(
            2 * np.pi * np.linalg.inv(lattice)[:, a][:, None, None, None], tangents[a].shape))
    # plane waves e^{iR·k} for lattice vectors R ≠ 0 (|R_i| < n_i) integrate to zero
    for r in ([1, 0, 0], [0, -2, 1], [3, 2, -1], [1, 1, 1]):
        wave = np.exp(1j * k @ (np.array(r) @ lattice))
        assert abs(np.sum(weight * wave)) <= 1e-12 * volume, r
    # a model band is a trigonometric polynomial of the lattice: its mean is the on-site energy
    energy = one_band_model(lattice).hamiltonian(*grid.cartesian())[..., 0, 0].real
    np.testing.assert_allclose(np.sum(weight * energy) / volume, 0.2, atol=1e-13)


def test_brillouin_zone_grid_round_trip_keeps_the_basis(tmp_path):
    from qmdipole import io

    grid = build_kgrid(one_band_model(np.array(TRICLINIC)), "brillouin_zone", (4, 5, 6), None)
    path = tmp_path / "kgrid.nc"
    io.write_netcdf(grid.to_dataset(), path, title="k-grid")
    back = kgrid.read_kgrid(path)
    np.testing.assert_array_equal(back.basis, grid.basis)
    for x, y in zip(back.cartesian(), grid.cartesian()):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(back.weight(), grid.weight())
    ds = grid.to_dataset()
    del ds["k2"].attrs["basis_vector"]
    with pytest.raises(kgrid.GridError, match="basis_vector.*k2"):
        KGrid.from_dataset(ds)


def test_refined_grid_of_a_non_cubic_cell_keeps_the_volume():
    """η-refinement in reduced coordinates (a two-band model: bands ε − 1.5 and 1.5 − ε)."""
    lattice = np.array(HEXAGONAL)
    band = one_band_model(lattice)
    hoppings = np.zeros((len(band.r_vectors), 2, 2), complex)
    hoppings[:, 0, 0], hoppings[:, 1, 1] = band.hoppings[:, 0, 0], -band.hoppings[:, 0, 0]
    hoppings[~band.r_vectors.any(axis=1)] += np.diag([-1.5, 1.5])
    model = Wannier90Model(hoppings, band.r_vectors, lattice)
    grid = build_kgrid(model, "brillouin_zone", (6, 6, 6), None,
                       omega_range=(2.0, 4.0), eta=0.05, points_per_eta=1.0)
    assert grid.size > 6**3  # refined somewhere
    np.testing.assert_allclose(grid.weight().sum(), (2 * np.pi) ** 3 / abs(np.linalg.det(lattice)),
                               rtol=1e-13)


# ------------------------------------------------------------------ γ: valley sum vs one file

def test_gamma_is_the_sum_over_one_wannier90_file_per_valley(tmp_path):
    """γ_xxz(μ) of the two-valley lattice model (closed-form tables) equals the sum over two
    Wannier90 models, one file per valley (sum-over-states tables)."""
    mu = np.linspace(-3.0, 3.0, 25)
    n = (12, 12, 16)
    expected = sum(quadrupolar.gamma_from_table(t, mu=mu, temperatures=[0.1])
                   for _, _, t in tables(LATTICE, n))
    found = sum(
        quadrupolar.gamma_from_table(t, mu=mu, temperatures=[0.1])
        for i, model in enumerate(lattice_valleys())
        for _, _, t in tables(write_model(tmp_path, [model], seed=f"v{i}"), n))
    for name in ("gamma", "gamma_xxz_temperature"):
        scale = np.abs(expected[name].values).max()
        assert scale > 1e-3, name
        error = np.abs(found[name].values - expected[name].values).max() / scale
        assert error <= 1e-10, f"{name}: {error:.2e}"


def test_block_diagonal_file_holds_the_states_of_both_valleys(tmp_path):
    """One 4-band file of both valleys: at every k its states (energy, velocity, metric, Berry
    curvature) are those of the two valleys, ordered by energy (N > 2 bands, sum over states)."""
    n = (8, 8, 10)
    valleys = tables(LATTICE, n)
    (model, _, table), = tables(write_model(tmp_path, lattice_valleys()), n)
    assert model.n_bands == 4 and table.sizes["band"] == 4
    both = {name: np.concatenate([t[name].values for _, _, t in valleys]) for name in FIELDS[:4]}
    order = np.argsort(both["energy"], axis=0)
    gaps = np.diff(np.sort(both["energy"], axis=0), axis=0).min()
    assert gaps > 1e-6  # no degeneracy on the grid: the order is unambiguous
    for name, values in both.items():
        index = order.reshape(order.shape[:1] + (1,) * (values.ndim - 4) + order.shape[1:])
        expected = np.take_along_axis(values, index, axis=0)
        error = np.abs(table[name].values - expected).max()
        assert error <= 1e-10, f"{name}: {error:.2e}"


# ------------------------------------------------------------------ the pipeline

def test_dry_run_refuses_a_missing_hr_file(workspace):
    proc = workspace.snakemake("--dry-run", "--cores", "1", "--configfile",
                               "config/wannier90_ci.yaml", check=False)
    assert proc.returncode != 0
    assert "model.hr_file" in proc.output and "wannier90/lattice_hr.dat" in proc.output


def test_dry_run_refuses_a_wannier90_config_without_hr_file(workspace):
    config = workspace.write_config("bad.yaml", {"model": {"kind": "wannier90"}})
    proc = workspace.snakemake("--dry-run", "--cores", "1", "--configfile", config, check=False)
    assert proc.returncode != 0 and "model.hr_file" in proc.output


@pytest.mark.slow
def test_wannier90_model_end_to_end(workspace, tmp_path):
    """config/wannier90_ci.yaml: kgrid -> one 4-band table -> γ_xxz, the γ of the same files
    computed in memory (the physics of the files is checked by the tests above)."""
    section = write_model(tmp_path / "wannier90", lattice_valleys())
    shutil.copytree(tmp_path / "wannier90", workspace.root / "wannier90")
    workspace.snakemake("results/reductions/quadrupolar_current.nc", "--cores", "2",
                        "--configfile", "config/wannier90_ci.yaml")
    assert not (workspace.root / "results/kgrid/gamma/valley2.nc").exists()  # one component
    with xr.open_dataset(workspace.root / "results/kgrid/gamma/valley1.nc") as grid:
        assert grid.attrs["grid_kind"] == "brillouin_zone"
        # reduced coordinates: each axis's weights add up to its period, 1
        assert np.allclose([float(grid[f"weight{a}"].sum()) for a in (1, 2, 3)], 1.0)
        n = [grid.sizes[f"k{a}"] for a in (1, 2, 3)]  # gamma's grid (refined for accuracy.rtol)
    with xr.open_dataset(workspace.root / "results/reductions/quadrupolar_current.nc") as ds:
        found, mu = ds["gamma_xxz"].values, ds["mu"].values
    (_, _, table), = tables(section, n)
    assert table.sizes["band"] == 4 and table.attrs["geometry_method"] == "sum_over_states"
    assert np.isclose(float(table["weight"].sum()), (2 * np.pi) ** 3)
    expected = quadrupolar.gamma_from_table(table, mu=mu)["gamma_xxz"].values
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    # the model's files are tracked by content: editing the hr file re-runs the pipeline
    hr = workspace.root / "wannier90" / "lattice_hr.dat"
    hr.write_text(hr.read_text().replace("written by", "edited, written by"))
    assert "quadrupolar_valley" in workspace.planned("results/reductions/quadrupolar_current.nc",
                                              "--configfile", "config/wannier90_ci.yaml")
