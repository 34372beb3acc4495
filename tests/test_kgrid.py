"""Tests of qmdipole.kgrid: quadrature weights, NetCDF round trip, boundary, grading, slabs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from qmdipole import io
from qmdipole import kgrid as kgrid_module
from qmdipole.kgrid import (
    GridError,
    KGrid,
    build_kgrid,
    graded_nodes,
    GridNeeds,
    grid_for,
    slabs,
)
from qmdipole.models import LatticeValleyModel, Model, ValleyModel, build_model
from qmdipole.settings import GridSettings

from checks import config_grid, config_needs

REPO = Path(__file__).resolve().parents[1]
VALLEY = ValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9)
LATTICE = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9, lattice_constant=0.8)


def cylinder(n_rho, n_phi=4, n_kz=2, rho_max=2.0, kz=(-0.5, 1.0), rho_min=0.0):
    return build_kgrid(VALLEY, "cylindrical", (n_rho, n_phi, n_kz), ((rho_min, rho_max), None, kz))


# ------------------------------------------------------------------------------------------
# weights
# ------------------------------------------------------------------------------------------

def test_box_volume_and_polynomials_exact():
    grid = build_kgrid(VALLEY, "cartesian", (7, 5, 9), ((-1.0, 2.0), (0.5, 1.5), (-3.0, -1.0)))
    w = grid.weight()
    assert w.shape == grid.shape
    np.testing.assert_allclose(w.sum(), 3.0 * 1.0 * 2.0, rtol=1e-14)
    kx, ky, kz = grid.cartesian()
    # the trapezoid rule is exact for multilinear functions
    np.testing.assert_allclose((w * kx * ky * kz).sum(), (2.0 - 0.5) * 1.0 * (-4.0), rtol=1e-13)


def test_cylinder_volume_second_order():
    """V = π R² L; the ρ = 0 end correction (h²/12) makes the rule O(h²), not exact, for F = 1."""
    rho_max, length = 2.0, 1.5
    errors, steps = [], []
    for n in (11, 21, 41, 81):
        grid = cylinder(n, rho_max=rho_max)
        h = rho_max / (n - 1)
        volume = np.pi * rho_max**2 * length
        error = abs(grid.weight().sum() - volume) / volume
        assert error <= 1.0001 * h**2 / (6 * rho_max**2)
        errors.append(error)
        steps.append(h)
    assert errors[-1] < 3e-5
    orders = np.diff(np.log(errors)) / np.diff(np.log(steps))
    np.testing.assert_allclose(orders, 2.0, atol=0.01)
    # and the box-shaped parts: φ exact with 4 nodes, k_z exact (constant integrand)
    grid = cylinder(81, rho_max=rho_max)
    np.testing.assert_allclose(grid.axis_weights[1].sum(), 2 * np.pi, rtol=1e-15)
    np.testing.assert_allclose(grid.axis_weights[2].sum(), length, rtol=1e-15)


def test_cylinder_rho_squared():
    """∫ ρ² d³k = π R⁴ L / 2; trapezoid error of f = ρ³ is h²/12 · 3R² (Euler–Maclaurin)."""
    rho_max, length = 2.0, 1.5
    for n in (11, 41):
        grid = cylinder(n, rho_max=rho_max)
        kx, ky, _ = grid.cartesian()
        rho2 = kx**2 + ky**2
        h = rho_max / (n - 1)
        exact = np.pi * rho_max**4 * length / 2
        value = (grid.weight() * rho2).sum()
        np.testing.assert_allclose(value, exact + 2 * np.pi * length * h**2 / 12 * 3 * rho_max**2,
                                   rtol=1e-12)
        # k_x² alone: cos²φ is integrated exactly by 4 φ nodes
        np.testing.assert_allclose((grid.weight() * kx**2).sum(), value / 2, rtol=1e-12)


def test_cylinder_gaussian_on_axis_converges_faster_than_second_order():
    """F = exp(−ρ²/s²) peaked on the axis: the ρ = 0 end correction gives order ≈ 4."""
    s, length = 0.7, 1.5
    rho_max = 7 * s  # F(ρ_max) ~ e^{-49}
    exact = np.pi * s**2 * (1 - math.exp(-((rho_max / s) ** 2))) * length
    errors, steps = [], []
    for n in (9, 17, 33, 65):
        grid = cylinder(n, rho_max=rho_max)
        kx, ky, _ = grid.cartesian()
        value = (grid.weight() * np.exp(-(kx**2 + ky**2) / s**2)).sum()
        errors.append(abs(value - exact) / exact)
        steps.append(rho_max / (n - 1))
    orders = np.diff(np.log(errors)) / np.diff(np.log(steps))
    assert np.all(orders[1:] > 3.0), (errors, orders)
    assert errors[-1] < 1e-5


def test_weight_of_slab_rows_matches_full_grid():
    grid = cylinder(17, n_phi=6, n_kz=5)
    full = grid.weight()
    np.testing.assert_array_equal(grid.weight(slice(0, 5)), full[0:5])
    np.testing.assert_array_equal(grid.weight(slice(7, 17)), full[7:17])


def test_brillouin_zone_trapezoid_exact_for_trigonometric_polynomials():
    a = LATTICE.lattice_constant
    grid = build_kgrid(LATTICE, "brillouin_zone", (8, 6, 10), None)
    assert grid.periods == (1.0,) * 3  # reduced coordinates u, k = u 2π/a on the cube
    for nodes, n in zip(grid.axes, (8, 6, 10)):
        np.testing.assert_allclose(nodes, -0.5 + np.arange(n) / n, atol=1e-15)
    kx, ky, kz = grid.cartesian()
    for k, n in zip((kx[:, 0, 0], ky[0, :, 0], kz[0, 0, :]), (8, 6, 10)):
        np.testing.assert_allclose(k, -np.pi / a + 2 * np.pi / a * np.arange(n) / n, atol=1e-14)
    w = grid.weight()
    volume = (2 * np.pi / a) ** 3
    f = (1 + np.cos(a * kx) * np.cos(2 * a * ky) + np.sin(a * kx) ** 2 * np.cos(a * kz) ** 2
         + np.cos(3 * a * kx + a * ky - 2 * a * kz) + np.sin(2 * a * ky) ** 2)
    np.testing.assert_allclose((w * f).sum(), volume * (1 + 0.25 + 0.5), rtol=1e-13)
    np.testing.assert_allclose(w.sum(), volume, rtol=1e-14)


# ------------------------------------------------------------------------------------------
# NetCDF round trip and boundary
# ------------------------------------------------------------------------------------------

def _assert_same_grid(a: KGrid, b: KGrid):
    assert a.kind == b.kind and a.periods == b.periods and a.shape == b.shape
    for x, y in zip(a.axes + a.axis_weights, b.axes + b.axis_weights):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.weight(), b.weight())


@pytest.mark.parametrize("make", [
    lambda: cylinder(9, n_phi=4, n_kz=7),
    lambda: build_kgrid(VALLEY, "cartesian", (5, 6, 7), ((-1, 1), (-2, 2), (0, 3))),
    lambda: build_kgrid(LATTICE, "brillouin_zone", (4, 6, 8), None),
])
def test_dataset_round_trip(tmp_path, make):
    grid = make()
    ds = grid.to_dataset()
    _assert_same_grid(grid, KGrid.from_dataset(ds))
    assert ds.attrs["n_points"] == grid.size
    for name, var in {**ds.data_vars, **ds.coords}.items():
        assert {"units", "long_name"} <= set(var.attrs), name
    path = tmp_path / "kgrid.nc"
    io.write_netcdf(ds, path, title="k-grid")
    with io.open_dataset(path, what="k-grid") as loaded:
        _assert_same_grid(grid, KGrid.from_dataset(loaded))


def test_dataset_round_trip_numpy_float_lattice_constant():
    model = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, lattice_constant=np.float64(0.8))
    grid = build_kgrid(model, "brillouin_zone", (4, 4, 4), None)
    _assert_same_grid(grid, KGrid.from_dataset(grid.to_dataset()))


def test_from_dataset_rejects_unknown_kind():
    ds = cylinder(5).to_dataset()
    ds.attrs["grid_kind"] = "spherical"
    with pytest.raises(GridError, match="spherical"):
        KGrid.from_dataset(ds)


def _expected_boundary(shape, open_lo, open_hi):
    mask = np.zeros(shape, bool)
    for a in range(3):
        for end, flag in ((0, open_lo[a]), (-1, open_hi[a])):
            if flag:
                index = [slice(None)] * 3
                index[a] = end
                mask[tuple(index)] = True
    return mask


def test_boundary():
    grid = cylinder(6, n_phi=5, n_kz=7)  # ρ from 0: not a boundary; φ periodic
    np.testing.assert_array_equal(
        grid.boundary(), _expected_boundary(grid.shape, (False, False, True), (True, False, True)))
    assert not grid.boundary()[0, :, 1:-1].any()  # the axis ρ = 0 is interior
    annulus = cylinder(6, n_phi=5, n_kz=7, rho_min=0.5)  # ρ from 0.5: inner face is a boundary
    np.testing.assert_array_equal(
        annulus.boundary(), _expected_boundary(annulus.shape, (True, False, True), (True, False, True)))
    box = build_kgrid(VALLEY, "cartesian", (4, 5, 6), ((-1, 1), (-1, 1), (-1, 1)))
    np.testing.assert_array_equal(box.boundary(), _expected_boundary(box.shape, (True,) * 3, (True,) * 3))
    assert box.boundary().sum() == 4 * 5 * 6 - 2 * 3 * 4
    bz = build_kgrid(LATTICE, "brillouin_zone", (4, 5, 6), None)
    assert not bz.boundary().any()


# ------------------------------------------------------------------------------------------
# graded nodes and the η-refinement
# ------------------------------------------------------------------------------------------

def _density(x):
    return 5.0 + 200.0 * np.exp(-(((x - 0.3) / 0.05) ** 2))


def _density_integral(a, b):
    """∫_a^b density, in closed form (erf)."""
    from scipy.special import erf

    g = lambda x: 200.0 * 0.05 * math.sqrt(math.pi) / 2 * erf((x - 0.3) / 0.05)  # noqa: E731
    return 5.0 * (b - a) + g(b) - g(a)


@pytest.mark.parametrize("periodic", [False, True])
def test_graded_nodes_equidistribute_density(periodic):
    sample = np.linspace(0.0, 1.0, 4001)
    nodes = graded_nodes(0.0, 1.0, sample, _density(sample), 4, periodic=periodic)  # floor 3 < 5
    total = _density_integral(0.0, 1.0)
    count = math.ceil(total)
    assert len(nodes) == (count if periodic else count + 1)
    assert nodes[0] == 0.0 and (periodic or nodes[-1] == 1.0)
    assert np.all(np.diff(nodes) > 0)
    edges = np.append(nodes, 1.0) if periodic else nodes
    cells = np.array([_density_integral(a, b) for a, b in zip(edges[:-1], edges[1:])])
    np.testing.assert_allclose(cells, total / count, rtol=1e-3)
    assert cells.max() <= 1.0 + 1e-3  # never fewer nodes than the density asks for


def test_graded_nodes_uniform_floor():
    sample = np.linspace(-2.0, 3.0, 11)
    nodes = graded_nodes(-2.0, 3.0, sample, np.zeros(11), 21)
    np.testing.assert_allclose(nodes, np.linspace(-2.0, 3.0, 21), atol=1e-14)
    nodes = graded_nodes(0.0, 2 * np.pi, np.linspace(0, 2 * np.pi, 5), np.zeros(5), 8, periodic=True)
    np.testing.assert_allclose(nodes, 2 * np.pi * np.arange(8) / 8, atol=1e-14)


@pytest.fixture(scope="module")
def paper_config():
    with open(REPO / "config" / "config.yaml") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("valley", [0, 1])
def test_eta_refinement_resolves_transitions(paper_config, valley):
    """Between neighbouring nodes x = ε₊ − ε₋ changes by ≤ η/points_per_eta (30 % slack)
    wherever x lies in the spectral window [ω_min, ω_max]."""
    config = paper_config
    model = build_model(config["model"], valley)
    needs = config_needs(config)
    grid = grid_for(model, "valley", config_grid(config), needs)
    assert grid.kind == "cylindrical"
    eta, ppe = needs.eta, config["kgrid"]["points_per_eta"]
    assert ppe > 0 and grid.size > np.prod(config["kgrid"]["n"])  # refined at all
    lo, hi = needs.omega_range
    # x depends on (ρ, k_z) only for Eq. 14; check the ρ–k_z plane at each φ node
    for phi in grid.axes[1]:
        rho, kz = np.meshgrid(grid.axes[0], grid.axes[2], indexing="ij")
        _, d = model.d_vector(rho * np.cos(phi), rho * np.sin(phi), kz)
        x = 2 * np.sqrt((d * d).sum(axis=0))
        for axis in (0, 1):
            first = np.take(x, np.arange(x.shape[axis] - 1), axis=axis)
            second = np.take(x, np.arange(1, x.shape[axis]), axis=axis)
            in_window = ((first >= lo) & (first <= hi)) | ((second >= lo) & (second <= hi))
            step = np.abs(second - first)[in_window]
            assert step.size > 0
            assert step.max() <= 1.3 * eta / ppe, (axis, step.max() / (eta / ppe))
    # and the window holds every transition up to the cutoff (auto window from k_window)
    assert grid.axes[0][-1] * model.v > needs.transition_cutoff / 2 - model.delta


@pytest.mark.parametrize("valley", [0, 1])
@pytest.mark.parametrize("points_per_eta", [1.5, 3.0])
def test_eta_refinement_interpolates_the_onset(paper_config, valley, points_per_eta):
    """At the minimum of x (the absorption onset, ρ = 0 and k_z = 0 for Eq. 14), where its slope
    vanishes, the linear interpolation of x between neighbouring nodes along ρ and k_z errs by
    ≤ η/(CURVATURE_RESOLUTION · points_per_eta²) (x from its closed form at the midpoints): the
    cells there shrink as 1/points_per_eta, as a grid refined by qmdipole.accuracy needs (with
    η/(points_per_eta · C), at 3.0 the error was 2 times the bound)."""
    config = {**paper_config, "kgrid": {**paper_config["kgrid"], "points_per_eta": points_per_eta}}
    model = build_model(config["model"], valley)
    needs = config_needs(config)
    grid = grid_for(model, "valley", config_grid(config), needs)
    bound = needs.eta / (kgrid_module.CURVATURE_RESOLUTION * points_per_eta**2)

    def x(rho, kz):
        _, d = model.d_vector(rho, 0 * rho, kz)
        return 2 * np.sqrt((d * d).sum(axis=0))

    rho, kz = grid.axes[0], grid.axes[2]
    near = np.argsort(np.abs(kz))[:2]  # the cells around k_z = 0
    along_rho = (x(rho[:-1], 0 * rho[:-1]) + x(rho[1:], 0 * rho[1:])) / 2 - x(
        (rho[:-1] + rho[1:]) / 2, 0 * rho[1:])
    lo, hi = min(near), max(near) + 1
    along_kz = (x(0 * kz[lo:hi], kz[lo:hi]) + x(0 * kz[lo + 1:hi + 1], kz[lo + 1:hi + 1])) / 2 - x(
        0 * kz[lo:hi], (kz[lo:hi] + kz[lo + 1:hi + 1]) / 2)
    assert 0 < along_rho[0] <= 1.3 * bound, along_rho[0] / bound
    assert 0 < along_kz.max() <= 1.3 * bound, along_kz.max() / bound


def test_onset_refinement_makes_avg_qmd_right_at_the_band_edge(monkeypatch):
    """⟨G⟩(ω) of Eq. 14 rises as √(ω − 2Δ), unbroadened: against the closed form just above the
    edge, the grid refined at the onset errs by < 0.5 % of the peak, and the same grid settings
    without that refinement (CURVATURE_RESOLUTION = 0) by > 3 times more."""
    from qmdipole import analytic, ndd, tabulate

    params = dict(delta=1.0, vprime=1.0, mass=1.9)
    model = ValleyModel(**params)
    omega, eta = np.linspace(1.9, 3.0, 111), 0.05
    needs = GridNeeds((-1.0, 1.0), omega_range=(omega[0], omega[-1]), transition_cutoff=6.0,
                      eta=eta)
    reference = analytic.avg_qmd_insulator(omega, **params)
    found = {}
    for resolution in (kgrid_module.CURVATURE_RESOLUTION, 0):
        monkeypatch.setattr(kgrid_module, "CURVATURE_RESOLUTION", resolution)
        grid = grid_for(model, "valley", GridSettings(n=(30, 4, 60), points_per_eta=1.5), needs)
        table = tabulate.in_memory(tabulate.tabulate(model, grid), threads=1)
        ds = ndd.spectrum_from_table(table, model, omega=omega, eta=eta, kubo=False,
                                     transition_cutoff=6.0)
        error = np.abs(ds["avg_qmd"].values - reference)
        assert (error <= ds["avg_qmd_error"].values).all()  # the estimate bounds it either way
        found[resolution] = error.max() / np.abs(reference).max()
    refined, plain = found.values()
    assert refined < 0.005 and plain > 3 * refined, found


# ------------------------------------------------------------------------------------------
# slabs
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", [
    cylinder(13, n_phi=4, n_kz=5),
    build_kgrid(LATTICE, "brillouin_zone", (11, 3, 4), None),
], ids=["open_axis1", "periodic_axis1"])
@pytest.mark.parametrize("slab_points", [1, 12, 20, 21, 40, 100, 260, 10**6])
def test_slabs_cover_nodes_and_cells_once(grid, slab_points):
    n1 = grid.shape[0]
    owned, cells = [], []
    weight = np.zeros(grid.shape)
    for index, sub, own in slabs(grid, slab_points):
        assert isinstance(sub, KGrid) and sub.kind == grid.kind
        assert sub.periods[0] is None and sub.periods[1:] == grid.periods[1:]
        assert sub.shape == (len(index),) + grid.shape[1:]
        expected = grid.axes[0][index]
        if grid.periods[0] is not None:  # the wrap slab ends at nodes[0] + period
            wrapped = (np.arange(len(index)) > 0) & (index == 0)
            expected = np.where(wrapped, expected + grid.periods[0], expected)
        np.testing.assert_allclose(sub.axes[0], expected, rtol=0, atol=1e-14)
        assert np.all(np.diff(sub.axes[0]) > 0)  # increasing, also across the periodic wrap
        for a in (1, 2):
            np.testing.assert_array_equal(sub.axes[a], grid.axes[a])
        kx, ky, kz = sub.cartesian()
        full = grid.cartesian()
        np.testing.assert_allclose(kx[own], full[0][index[own]], atol=1e-14)
        np.testing.assert_allclose(kz[own], full[2][index[own]], atol=1e-14)
        if len(index) > 1:  # (single-node slabs: see test_single_node_slab_weight)
            weight[index[own]] += sub.weight()[own]
        else:
            weight[index[own]] += grid.weight()[index[own]]
        owned.extend(index[own].tolist())
        cells.extend(zip(index[:-1].tolist(), index[1:].tolist()))
    assert sorted(owned) == list(range(n1))
    expected_cells = [(j, j + 1) for j in range(n1 - 1)]
    if grid.periods[0] is not None:
        expected_cells.append((n1 - 1, 0))
    assert sorted(cells) == sorted(expected_cells)
    # point sums over the owned nodes of the slabs reproduce the grid's weights
    np.testing.assert_allclose(weight, grid.weight(), rtol=1e-15, atol=0)


def test_single_node_slab_weight():
    grid = cylinder(13, n_phi=4, n_kz=5)
    index, sub, owned = next(iter(slabs(grid, 12)))
    assert sub.shape[0] == 1
    np.testing.assert_array_equal(sub.weight()[owned], grid.weight()[index[owned]])


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------

def test_grid_errors():
    window = ((0.0, 1.0), None, (-1.0, 1.0))
    with pytest.raises(GridError, match="kgrid.n"):
        build_kgrid(VALLEY, "cylindrical", (1, 4, 5), window)
    with pytest.raises(GridError, match="kgrid.n"):
        build_kgrid(VALLEY, "cylindrical", (4, 4), window)
    with pytest.raises(GridError, match=r"kgrid.n\[1\]"):  # 2 φ nodes cannot integrate cos²φ
        build_kgrid(VALLEY, "cylindrical", (4, 2, 5), window)
    with pytest.raises(GridError, match="max_points"):
        build_kgrid(VALLEY, "cylindrical", (100, 10, 100), window, max_points=99_999)
    assert build_kgrid(VALLEY, "cylindrical", (100, 10, 100), window, max_points=100_000).size \
        == 100_000
    with pytest.raises(GridError, match="kgrid.window axis 1"):
        build_kgrid(VALLEY, "cylindrical", (4, 4, 5), ((1.0, 1.0), None, (-1.0, 1.0)))
    with pytest.raises(GridError, match="kgrid.window axis 3"):
        build_kgrid(VALLEY, "cylindrical", (4, 4, 5), ((0.0, 1.0), None, (1.0, -1.0)))
    with pytest.raises(GridError, match="kgrid.kind.*'spherical'"):
        build_kgrid(VALLEY, "spherical", (4, 4, 5), window)
    with pytest.raises(GridError, match="lattice"):
        build_kgrid(VALLEY, "brillouin_zone", (4, 4, 5), None)
    with pytest.raises(GridError, match="eta"):
        build_kgrid(VALLEY, "cylindrical", (4, 4, 5), window, omega_range=(0.2, 8.0), eta=0.0,
                    points_per_eta=1.5)


def test_auto_window_needs_a_model_that_knows_it():
    class Opaque(Model):
        pass

    needs = GridNeeds((-1, 1), (0.2, 2.0), transition_cutoff=4.0, eta=0.1)
    with pytest.raises(GridError, match="kgrid.window"):
        grid_for(Opaque(), "python", GridSettings(n=(4, 4, 4)), needs)
