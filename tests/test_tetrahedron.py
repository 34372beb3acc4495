"""Linear-tetrahedron δ-integrals against closed forms (qmdipole.tetrahedron), and the exact
mirror symmetry of the split (symmetric data give symmetric results to round-off)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, special

from qmdipole.kgrid import KGrid, slabs
from qmdipole.tetrahedron import (
    AxisMirror,
    TetrahedronGrid,
    fermi_surface_integral,
    fermi_surface_node_weights,
    mirror_points,
    occupation_vanishes,
)

TWO_PI = 2.0 * np.pi


def stretched(lo, hi, n, amp=0.15):
    """Smooth non-uniform nodes on [lo, hi] (endpoints kept), denser near the middle."""
    s = np.linspace(-1.0, 1.0, n)
    s = s + amp * np.sin(np.pi * s)
    return lo + (hi - lo) * (s + 1.0) / 2.0


def random_axis(rng, lo, hi, n):
    return np.sort(np.concatenate([[lo, hi], rng.uniform(lo, hi, n - 2)]))


def symmetric_axis(rng, lo, hi, n):
    """Random nodes on [lo, hi] symmetric about the midpoint (a node there if n is odd)."""
    half = 0.5 * (hi - lo)
    d = np.concatenate([np.sort(rng.uniform(0.05, 0.95, (n - 2) // 2)) * half, [half]])
    nodes = 0.5 * (lo + hi) + np.concatenate([-d[::-1], [0.0] * (n % 2), d])
    nodes[0], nodes[-1] = lo, hi
    return nodes


def mesh(axes):
    return np.meshgrid(*axes, indexing="ij")


# --- 1. linear energy: the method is exact --------------------------------------------------


BOX = np.array([1.0, 1.5, 0.7])
SLOPE = np.array([0.8, 1.3, 2.1])
OFFSET = -0.3


def box_plane_density(t, box=BOX):
    """∫_box δ(a·u + b − t) d³u = (area of the plane section)/|a|, by inclusion–exclusion over
    the box's corners (a > 0): (1 / 2a1a2a3) Σ_S (−1)^|S| (t − b − Σ_{i∈S} a_i L_i)_+²."""
    total = 0.0
    for corner in itertools.product((0, 1), repeat=3):
        shift = OFFSET + sum(SLOPE[i] * box[i] for i in range(3) if corner[i])
        total = total + (-1) ** sum(corner) * np.maximum(t - shift, 0.0) ** 2
    return total / (2.0 * np.prod(SLOPE))


def box_plane_moment(t, axis):
    """∫_box u_axis δ(a·u + b − t) d³u: a 1-D integral over u_axis of the (piecewise linear,
    closed-form) section length of the other two axes, integrated piece by piece."""
    j, k = (i for i in range(3) if i != axis)
    a, L = SLOPE, BOX

    def length(s):  # ∫∫ δ(a_j u_j + a_k u_k − s) du_j du_k over [0, L_j] × [0, L_k]
        parts = [s, s - a[j] * L[j], s - a[k] * L[k], s - a[j] * L[j] - a[k] * L[k]]
        signs = [1, -1, -1, 1]
        return sum(g * max(p, 0.0) for g, p in zip(signs, parts)) / (a[j] * a[k])

    s0 = t - OFFSET
    kinks = [(s0 - c) / a[axis] for c in (0.0, a[j] * L[j], a[k] * L[k], a[j] * L[j] + a[k] * L[k])]
    kinks = sorted(x for x in kinks if 0.0 < x < L[axis])
    value, _ = integrate.quad(
        lambda u: u * length(s0 - a[axis] * u), 0.0, L[axis], points=kinks or None,
        epsabs=1e-14, epsrel=1e-13,
    )
    return value


@pytest.fixture(scope="module", params=["random nodes", "symmetric nodes"])
def linear_box(request):
    """Symmetric nodes: every axis mirrored by default (6 nodes: a cell straddles the midpoint;
    9 and 5: a node on it), so the exactness covers the mirrored splits too."""
    rng = np.random.default_rng(1)
    make = random_axis if request.param == "random nodes" else symmetric_axis
    axes = [make(rng, 0.0, length, n) for length, n in zip(BOX, (6, 9, 5))]
    mirrored = [m is not False for m in mirror_points(axes)]
    assert mirrored == [request.param == "symmetric nodes"] * 3
    U = mesh(axes)
    energy = sum(a * u for a, u in zip(SLOPE, U)) + OFFSET
    e_max = OFFSET + SLOPE @ BOX
    levels = np.concatenate([[OFFSET - 0.5, OFFSET], np.linspace(OFFSET, e_max, 37)[1:-1],
                             [e_max, e_max + 0.2]])
    return axes, U, energy, levels


def test_linear_energy_constant_h_exact(linear_box):
    axes, U, energy, levels = linear_box
    result = fermi_surface_integral(energy, np.ones((1,) + energy.shape), axes, levels)[0]
    expected = box_plane_density(levels)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)
    assert result[0] == 0.0 and result[-1] == 0.0  # levels outside the energy range
    assert expected[len(levels) // 2] > 0.1


def test_linear_energy_linear_h_exact(linear_box):
    axes, U, energy, levels = linear_box
    values = np.stack(U)  # h = u1, u2, u3: linear, so interpolated exactly as well
    result = fermi_surface_integral(energy, values, axes, levels)
    expected = np.array([[box_plane_moment(t, ax) for t in levels] for ax in range(3)])
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


def test_clipped_sections_of_linear_data_are_exact(linear_box):
    """The T = 0 occupation clip (low < μ < high, qmdipole.kernels) on linear data: ∫ δ(ε − λ)
    over the box where u1 < c1 and u2 < c2 is the plane density of the smaller box, exactly
    (the clip planes cut cells, not only node rows); a clip that keeps everything gives the
    unclipped numbers to the bit, one that keeps nothing zeros."""
    axes, U, energy, levels = linear_box
    cut = np.array([0.61, 0.97, BOX[2]])  # between nodes
    grid, ones = TetrahedronGrid(axes), np.ones((1,) + energy.shape)
    clipped = grid.integrals(energy, ones, levels, between=(U[0] - cut[0], cut[1] - U[1], 0.0))[0]
    np.testing.assert_allclose(clipped, box_plane_density(levels, box=cut), rtol=0, atol=1e-12)
    assert clipped.max() > 0.1
    whole = grid.integrals(energy, ones, levels)
    assert np.array_equal(grid.integrals(energy, ones, levels, between=(U[0] - 9, U[1] + 9, 0.0)),
                          whole)
    assert not grid.integrals(energy, ones, levels, between=(U[0] + 9, U[1] + 9, 0.0)).any()


def test_complementary_clips_add_up_to_the_whole():
    """Curved ε, h and clip function a: the parts where a > 0 and where a < 0 add up to the
    unclipped integral (the clipped polygons tile each section)."""
    axes = [stretched(-2.0, 2.0, n) for n in (13, 11, 12)]
    K = mesh(axes)
    energy = K[0] ** 2 + K[1] ** 2 + 0.7 * K[2] ** 2
    values = np.stack([1.0 + K[0] * K[2], np.cos(K[1])])
    a = 0.3 * K[0] - 0.5 * K[1] ** 2 + 0.2
    grid = TetrahedronGrid(axes)
    big = np.full(energy.shape, 9.0)
    parts = [grid.integrals(energy, values, MU, between=(s * a, big, 0.0)) for s in (-1, 1)]
    whole = grid.integrals(energy, values, MU)
    np.testing.assert_allclose(parts[0] + parts[1], whole, rtol=1e-12, atol=1e-13)
    assert np.abs(parts[0]).max() > 0.2 * np.abs(whole).max()
    assert np.abs(parts[1]).max() > 0.2 * np.abs(whole).max()


def test_node_weight_multiplies_the_integrands():
    """``weight`` (applied node by node in the compiled loop) gives the integrals of the weighted
    integrands, with and without a clip."""
    axes = [stretched(-2.0, 2.0, n) for n in (9, 10, 11)]
    K = mesh(axes)
    energy = K[0] ** 2 + K[1] ** 2 + 0.7 * K[2] ** 2
    values = np.stack([1.0 + K[0] * K[2], np.cos(K[1])])
    weight = 1.5 + np.sin(K[0] + 2 * K[2])
    grid = TetrahedronGrid(axes)
    for between in (None, (0.3 * K[0] - 0.2, np.full(energy.shape, 9.0), 0.0)):
        np.testing.assert_allclose(grid.integrals(energy, values, MU, between, weight=weight),
                                   grid.integrals(energy, values * weight, MU, between),
                                   rtol=1e-13, atol=1e-15)


def test_clipped_sphere_converges_at_second_order():
    """∫ δ(k² − μ) Θ(c − k_x) d³k = π(√μ + c) (a zone of the sphere): the clip converges as
    O(h²); the step Θ(c − k_x) interpolated from its 0/1 node values only as O(h)."""
    c = 0.3137
    expected = np.pi * (np.sqrt(MU) + c)
    errors = {"clip": [], "nodes": []}
    for n in (24, 48):
        axes = [stretched(-2.0, 2.0, n + d, amp) for d, amp in ((0, 0.15), (3, 0.1), (-2, 0.2))]
        K = mesh(axes)
        energy = K[0] ** 2 + K[1] ** 2 + K[2] ** 2
        grid = TetrahedronGrid(axes)
        clipped = grid.integrals(energy, np.ones((1,) + energy.shape), MU,
                                 between=(K[0] - c, np.full(energy.shape, 9.0), 0.0))[0]
        stepped = grid.integrals(energy, (K[0] < c)[None] * 1.0, MU)[0]
        errors["clip"].append(np.abs(clipped / expected - 1).max())
        errors["nodes"].append(np.abs(stepped / expected - 1).max())
    assert errors["clip"][1] < errors["clip"][0] / 3, errors
    assert errors["clip"][1] < 1e-2, errors  # measured 0.64 % (2.2 % at n = 24); nodes 5.3 %
    assert errors["nodes"][1] > errors["clip"][1] * 3, errors  # the clip is what converges


def fermi(y, temperature):
    """F(y) = 1/(1 + e^(−y/T)), written independently of the kernel's."""
    return 0.5 * (1.0 + np.tanh(y / (2.0 * temperature)))


def test_thermal_occupation_of_linear_data_is_exact():
    """T > 0 with a Fermi step far narrower than the cells: ε_m, ε_n = ε_m + X and h linear,
    ∫ h (f(ε_m) − f(ε_n)) δ(X − λ) d³k on a box against scipy's adaptive quadrature over the
    plane X = λ: within 2e-6 on grids of 3, 5 and 9 nodes per axis (the factor is integrated
    exactly on each section where the step is narrower than the cells; measured up to 6e-7,
    from tetrahedra away from it, where F bends little and is interpolated); its node values,
    interpolated everywhere, err by 0.07 % and more."""
    mu, lam = 0.1, 2.1

    def fields(kx, ky, kz):
        transition = 2.0 + kz + 0.2 * kx
        lower = 0.5 * kx + 0.3 * ky - 0.1 * kz
        return transition, lower, lower + transition, 1.0 + 0.7 * kx - 0.4 * ky + 0.3 * kz

    def on_plane(ky, kx):  # the plane kz = λ − 2 − 0.2 kx, dS / |∇X| = dkx dky
        _, lower, upper, h = fields(kx, ky, lam - 2.0 - 0.2 * kx)
        return h * (fermi(mu - lower, temperature) - fermi(mu - upper, temperature))

    for temperature in (0.002, 0.01):
        expected = integrate.dblquad(on_plane, -1, 1, -1, 1, epsabs=1e-13, epsrel=1e-12)[0]
        for n in (3, 5, 9):
            u = np.linspace(-1.0, 1.0, n)
            transition, lower, upper, h = fields(*mesh([u, u, u]))
            grid = TetrahedronGrid([u, u, u])
            found = grid.integrals(transition, h[None], [lam],
                                   between=(lower, upper, mu, temperature))[0, 0]
            assert abs(found / expected - 1.0) < 2e-6, (temperature, n, found, expected)
            occupation = fermi(mu - lower, temperature) - fermi(mu - upper, temperature)
            interpolated = grid.integrals(transition, (h * occupation)[None], [lam])[0, 0]
            assert abs(interpolated / expected - 1.0) > 3e-4, (temperature, n)


@pytest.mark.parametrize("temperature", [0.003, 0.03, 0.3])
def test_thermal_sphere_converges_at_second_order(temperature):
    """∫ δ(k² − μ) F(c − k_x) d³k = π T ln[(1 + e^((c + √μ)/T)) / (1 + e^((c − √μ)/T))] (a
    Fermi-smeared zone of the sphere): O(h²) from a step far narrower than the cells (T =
    0.003) to one they resolve (T = 0.3), within 1 % on 48 nodes per axis."""
    c = 0.3137
    radius = np.sqrt(MU)
    expected = np.pi * temperature * (np.logaddexp(0.0, (c + radius) / temperature)
                                      - np.logaddexp(0.0, (c - radius) / temperature))
    errors = []
    for n in (24, 48):
        axes = [stretched(-2.0, 2.0, n + d, amp) for d, amp in ((0, 0.15), (3, 0.1), (-2, 0.2))]
        K = mesh(axes)
        energy = K[0] ** 2 + K[1] ** 2 + K[2] ** 2
        found = TetrahedronGrid(axes).integrals(
            energy, np.ones((1,) + energy.shape), MU,
            between=(K[0] - c, np.full(energy.shape, 9.0), 0.0, temperature))[0]
        errors.append(np.abs(found / expected - 1).max())
    assert errors[1] < errors[0] / 3, errors
    assert errors[1] < 1e-2, errors


def test_thermal_occupation_tends_to_the_clip():
    """T → 0: the T > 0 occupation factor integrates to the T = 0 clip (to 1e-12); a factor
    that is 0 at every node vanishes (occupation_vanishes says so), and a temperature below 0
    is refused."""
    axes = [stretched(-2.0, 2.0, n) for n in (13, 11, 12)]
    K = mesh(axes)
    energy = K[0] ** 2 + K[1] ** 2 + 0.7 * K[2] ** 2
    values = np.stack([1.0 + K[0] * K[2], np.cos(K[1])])
    low, high = 0.3 * K[0] - 0.5 * K[1] ** 2, 0.2 * K[2] + 1.0
    grid = TetrahedronGrid(axes)
    clipped = grid.integrals(energy, values, MU, between=(low, high, 0.1))
    cold = grid.integrals(energy, values, MU, between=(low, high, 0.1, 1e-9))
    np.testing.assert_allclose(cold, clipped, rtol=0, atol=1e-12 * np.abs(clipped).max())
    assert np.abs(clipped).max() > 0.1
    assert low.min() + 5.0 == pytest.approx(2.4)  # f(low) − f(high) <= e^(−(2.4 − 0.1)/T)
    assert occupation_vanishes(low + 5.0, high + 5.0, 0.1, 0.1)
    assert not occupation_vanishes(low + 5.0, high + 5.0, 0.1, 0.2)
    assert not grid.integrals(energy, values, MU, between=(low + 5.0, high + 5.0, 0.1, 0.1)).any()
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        grid.integrals(energy, values, MU, between=(low, high, 0.1, -0.01))


# --- 2.-4. free electrons: DOS and moments of the sphere, O(h²) --------------------------


MU = np.linspace(0.5, 3.5, 31)


def cartesian_sphere(n, integrands):
    axes = [stretched(-2.0, 2.0, n + d, amp) for d, amp in ((0, 0.15), (3, 0.1), (-2, 0.2))]
    K = mesh(axes)
    energy = K[0] ** 2 + K[1] ** 2 + K[2] ** 2
    return fermi_surface_integral(energy, np.stack([f(*K) for f in integrands]), axes, MU)


def rms_relative_error(result, expected):
    return np.sqrt(np.mean((result / expected - 1.0) ** 2))


def hat_integrals_by_sampling(grid, energy, values, levels, between=None, samples=80_001):
    """∫ values φ_l(energy) from the δ-function integrals on ``samples`` levels across the
    energies (up to the last level), times the hats (the last cut off above its level) by the
    trapezoid rule."""
    fine = np.linspace(max(levels[0], energy.min()), min(levels[-1], energy.max()), samples)
    density = grid.integrals(energy, values, fine, between=between)
    hats = np.array([np.interp(fine, levels, row) for row in np.eye(len(levels))])
    return integrate.trapezoid(density[:, None, :] * hats[None], fine, axis=-1)


@pytest.mark.parametrize("case", ["random", "coinciding", "narrow", "clipped", "thermal"])
def test_hat_integrals_against_the_densities(case):
    """``hat=True``: ∫ h φ_l(ε) against the hat functions of non-uniform levels equals the
    δ-function densities integrated against the hats on 8e4 levels (to the trapezoid rule's
    error there), for random corner energies, energies equal along one axis (coinciding corners),
    a range far below the spacing between two levels (which the δ-functions at the levels miss
    entirely, but the hats split between them), and sections cut by the T = 0 occupation factor
    (Gauss–Legendre in λ between the levels and the energies where the clipped section changes
    form: exact) and the T > 0 one."""
    rng = np.random.default_rng(len(case))
    axes = [np.linspace(0.0, 1.0, 4), np.linspace(0.0, 0.7, 3), np.linspace(0.0, 1.3, 4)]
    grid = TetrahedronGrid(axes)
    energy = rng.uniform(0.05, 0.95, (4, 3, 4))
    between, rtol = None, 1e-5  # the sampling's own error: <= 2e-6 (O(1/samples²))
    if case == "coinciding":
        energy[:, :, 1::2] = energy[:, :, ::2][:, :, :2]
    if case == "narrow":
        energy = 0.3 + 1e-3 * energy
    if case in ("clipped", "thermal"):
        low, high = rng.uniform(-1.0, 1.0, (2,) + energy.shape)
        between = (low, high, 0.0) if case == "clipped" else (low, high, 0.0, 0.05)
    values = rng.normal(size=(2,) + energy.shape)
    levels = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0.0, 1.0, 40)]))
    if case == "thermal":  # smooth in λ but not polynomial: O(spacing²) (measured 1e-5 to
        # 1.4e-4 of the largest weight on these levels, 17-20x more on 4x coarser ones)
        levels, rtol = np.linspace(0.0, 1.0, 161), 1e-3
    if case == "narrow":
        levels = np.array([0.0, 0.25, 0.3004, 0.31, 1.0])  # the range: 0.30005-0.30095
    found = grid.integrals(energy, values, levels, between=between, hat=True)
    expected = hat_integrals_by_sampling(grid, energy, values, levels, between)
    np.testing.assert_allclose(found, expected, rtol=0, atol=rtol * np.abs(expected).max())
    if case == "narrow":  # the δ-functions at the levels see only one level inside
        assert np.count_nonzero(grid.integrals(energy, values, levels)[0]) == 1
    if between is None:  # the hats are a partition of unity: Σ_l = ∫ h (energies inside)
        whole = grid.integrals(energy, values, np.array([0.0, 1.0]), hat=True).sum(axis=1)
        np.testing.assert_allclose(found.sum(axis=1), whole, rtol=1e-12)


def test_clipped_hat_integrals_of_coinciding_energies_are_exact():
    """Energies on a coarse raster (many corners equal; the clipped section's breaks within an
    ulp of a corner energy): the T = 0 clipped hat integrals stay finite and, exact on every
    piece, add up over the levels to the integral on two levels to round-off."""
    rng = np.random.default_rng(122)
    axes = [np.linspace(0.0, 1.0, 5), np.linspace(0.0, 0.7, 4), np.linspace(0.0, 1.3, 5)]
    grid = TetrahedronGrid(axes)
    energy = np.round(rng.uniform(0.05, 0.95, (5, 4, 5)), 1)
    low, high = rng.uniform(-1.0, 1.0, (2,) + energy.shape)
    values = np.stack([np.ones_like(energy), rng.normal(size=energy.shape)])
    found = grid.integrals(energy, values, np.linspace(0.0, 1.0, 41), between=(low, high, 0.0),
                           hat=True)
    assert np.all(np.isfinite(found))
    whole = grid.integrals(energy, values, [0.0, 1.0], between=(low, high, 0.0), hat=True)
    np.testing.assert_allclose(found.sum(axis=1), whole.sum(axis=1), rtol=1e-12)


def test_hat_integrals_at_the_ends_of_the_levels():
    """The last level's hat is cut off above it: a tetrahedron wholly above it deposits nothing,
    one straddling it only its part below (ε = u0 on the unit cube: ∫ φ_l(u0) du0 over
    [0, 0.5] in closed form). The first level's hat is 1 below it: energies below every level
    deposit their whole integral there, whether the occupation clip cuts their sections
    (Gauss–Legendre in λ) or not."""
    axes = [np.linspace(0.0, 1.0, 3)] * 3
    grid = TetrahedronGrid(axes)
    u = np.meshgrid(*axes, indexing="ij")
    energy, ones = u[0], np.ones((1, 3, 3, 3))
    assert not grid.integrals(energy + 2.0, ones, [0.0, 0.5, 1.0], hat=True).any()
    found = grid.integrals(energy, ones, [0.0, 0.25, 0.5], hat=True)[0]
    np.testing.assert_allclose(found, [0.125, 0.25, 0.125], rtol=1e-12)
    values = np.stack([ones[0], np.cos(3.0 * u[1])])
    for between in (None, (u[1] - 0.5, u[2] + 0.2, 0.0), (u[1] - 0.5, u[2] + 0.2, 0.0, 0.05)):
        below = grid.integrals(energy, values, [1.5, 1.6, 1.7], between=between, hat=True)
        whole = grid.integrals(energy, values, [-1.0, 2.0], between=between, hat=True).sum(axis=1)
        np.testing.assert_allclose(below[:, 0], whole, rtol=2e-3 if between else 1e-12)
        assert not below[:, 1:].any()


def test_free_electron_dos_second_order():
    dos = 2.0 * np.pi * np.sqrt(MU)  # ∫ δ(k² − μ) d³k
    errors = [
        rms_relative_error(cartesian_sphere(n, [lambda x, y, z: np.ones_like(x)])[0], dos)
        for n in (24, 48)
    ]
    assert errors[1] < 3e-3
    assert 3.0 < errors[0] / errors[1] < 5.5  # O(h²): halving h divides the error by ~4


def test_free_electron_weighted_integrands():
    result = cartesian_sphere(48, [lambda x, y, z: z**2, lambda x, y, z: x**2 * y**2])
    # ∫ k_z² δ(k² − μ) = (2π/3) μ^{3/2};  ∫ k_x² k_y² δ(k² − μ) = (2π/15) μ^{5/2}
    expected = [TWO_PI / 3.0 * MU**1.5, TWO_PI / 15.0 * MU**2.5]
    for res, exp in zip(result, expected):
        assert rms_relative_error(res, exp) < 4e-3


def cylinder(n):
    """ρ ∈ [0, 2.2] (open, non-uniform), φ periodic with 4 nodes, k_z ∈ [−2.2, 2.2]."""
    rho = 2.2 * np.linspace(0.0, 1.0, n) ** 1.3
    phi = np.arange(4) * (np.pi / 2)
    kz = stretched(-2.2, 2.2, 2 * n, 0.1)
    return (rho, phi, kz), (None, TWO_PI, None)


def test_cylindrical_grid_degenerate_energies():
    """ε = ρ² + k_z² does not depend on φ: many corner energies coincide exactly."""
    errors = []
    for n in (24, 48):
        axes, periods = cylinder(n)
        R, P, Z = mesh(axes)
        energy = R**2 + Z**2
        values = np.stack([R, R**3 * np.cos(P) ** 2])  # Jacobian ρ; h = 1 and h = k_x²
        with np.errstate(all="raise"):
            result = fermi_surface_integral(energy, values, axes, MU, periods)
        assert np.all(np.isfinite(result))
        errors.append(rms_relative_error(result[0], 2.0 * np.pi * np.sqrt(MU)))
        # cos²φ interpolated on 4 nodes still averages to 1/2, so only the (ρ, k_z) error remains
        assert rms_relative_error(result[1], TWO_PI / 3.0 * MU**1.5) < 8e-3
    assert errors[1] < 2e-3
    assert 3.0 < errors[0] / errors[1] < 5.5


def test_energy_depending_on_one_axis_is_exact():
    """ε = f(u3) piecewise linear in u3: triply degenerate corners; DOS = L1 L2 / |slope|, and
    a level exactly at a node energy takes the value from above."""
    rng = np.random.default_rng(2)
    axes = [random_axis(rng, 0.0, 1.3, 4), np.array([0.0, 0.5, 2.0]), random_axis(rng, 0.5, 2.0, 7)]
    energy = np.broadcast_to(axes[2] ** 2, (4, 3, 7))
    e_nodes = axes[2] ** 2
    levels = np.sort(np.concatenate([e_nodes, 0.5 * (e_nodes[1:] + e_nodes[:-1]), [0.1, 5.0]]))
    with np.errstate(all="raise"):
        result = fermi_surface_integral(energy, np.ones((1, 4, 3, 7)), axes, levels)[0]
    segment = np.searchsorted(e_nodes, levels, side="right") - 1
    inside = (segment >= 0) & (segment < len(e_nodes) - 1)
    slopes = np.diff(e_nodes) / np.diff(axes[2])
    expected = np.zeros_like(levels)
    expected[inside] = 1.3 * 2.0 / slopes[segment[inside]]
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mirror", [None, (0.5, 0.7, 0.1), (2.0, -1.0, False)],
                         ids=["default", "arbitrary mirror points", "points outside"])
def test_quantised_energies_sum_rule_exact(mirror):
    """Integer node energies (ties everywhere, levels hitting them exactly): every tetrahedron's
    weights are cubic between consecutive integers, so 2-point Gauss–Legendre per unit interval
    integrates ∫ dλ I_h(λ) = ∫ h d³u exactly; for h = 1 and h = u1 + 2 u3 that is a closed form.
    (Nodes with even i get energy 0 or 1 at random, odd i 2 or 3: the two ends of every main
    diagonal of a cell differ, so no tetrahedron of any orientation is entirely flat, which
    would put its volume in a δ-peak of the DOS.) Any mirror points give exact splits."""
    rng = np.random.default_rng(3)
    axes = [random_axis(rng, 0.0, 1.0, 5), np.array([0.0, 1.0, 1.5]),
            random_axis(rng, -1.0, 1.0, 6)]
    periods = (None, 4.0, None)
    i = np.indices((5, 3, 6))[0]
    energy = (2 * (i % 2) + rng.integers(0, 2, size=(5, 3, 6))).astype(float)
    U = mesh(axes)
    values = np.stack([np.ones_like(U[0]), U[0] + 2.0 * U[2]])
    x, w = np.polynomial.legendre.leggauss(2)
    levels = (np.arange(-1, 4)[:, None] + 0.5 * (x + 1.0)).ravel()
    with np.errstate(all="raise"):
        result = fermi_surface_integral(energy, values, axes, levels, periods, mirror=mirror)
        at_ties = fermi_surface_integral(energy, values, axes, np.arange(0.0, 4.0), periods,
                                         mirror=mirror)
    assert np.all(np.isfinite(at_ties)) and np.all(at_ties[0] >= 0)
    integral = result.reshape(2, 5, 2) @ (0.5 * w)
    volume = 1.0 * 4.0 * 2.0  # open u1 ∈ [0, 1], periodic u2 (period 4), open u3 ∈ [−1, 1]
    np.testing.assert_allclose(integral.sum(axis=1), [volume, 0.5 * volume], rtol=1e-12)


# --- 5. periodic tight binding ------------------------------------------------------------


def cubic_lattice_dos(mu):
    """Per-volume DOS of ε = −2(cos u1 + cos u2 + cos u3) from the square-lattice DOS
    ρ₂(E) = K(1 − E²/16) / (2π²): ρ₃(μ) = (1/π) ∫_0^π ρ₂(μ + 2 cos θ) dθ."""

    def rho2(theta):
        e2 = mu + 2.0 * np.cos(theta)
        return special.ellipk(1.0 - e2**2 / 16.0) / (2 * np.pi**2) if abs(e2) < 4 else 0.0

    kinks = sorted(np.arccos(x) for x in ((0 - mu) / 2, (4 - mu) / 2, (-4 - mu) / 2) if -1 < x < 1)
    value, _ = integrate.quad(rho2, 0.0, np.pi, points=kinks, limit=200, epsabs=1e-13)
    return value / np.pi


def tight_binding(n):
    u = -np.pi + TWO_PI * np.arange(n) / n
    U = mesh([u, u, u])
    return -2.0 * (np.cos(U[0]) + np.cos(U[1]) + np.cos(U[2])), (u, u, u), (TWO_PI,) * 3


@pytest.mark.parametrize("mirrored", [False, True], ids=["default", "mirrored"])
def test_tight_binding_sum_rule_and_symmetry(mirrored):
    energy, axes, periods = tight_binding(16)
    mirror = mirror_points(axes, periods, periodic=mirrored)
    half = np.arange(1, 1241) * 0.005
    levels = np.concatenate([-half[::-1], [0.0], half])  # symmetric, step 0.005, |μ| <= 6.2
    dos = fermi_surface_integral(energy, np.ones((1,) + energy.shape), axes, levels, periods,
                                 mirror=mirror)[0]
    # ∫ DOS dμ = (2π)³; the DOS is continuous piecewise quadratic, so the trapezoid rule is fine
    trapezoid = np.sum(0.5 * (dos[1:] + dos[:-1]) * np.diff(levels))
    np.testing.assert_allclose(trapezoid, TWO_PI**3, rtol=1e-5)
    # ε(u + (π, π, π)) = −ε(u) maps the grid and its tetrahedra onto themselves (mirrored: the
    # orientations alternate, and the shift is by 8 cells along each axis)
    np.testing.assert_allclose(dos, dos[::-1], rtol=1e-10, atol=1e-12)
    assert dos[0] == 0.0 and dos[-1] == 0.0


def test_tight_binding_against_lattice_dos():
    mu = np.array([1.0, 3.0, 4.5])
    reference = TWO_PI**3 * np.array([cubic_lattice_dos(m) for m in mu])
    assert reference[0] == pytest.approx(TWO_PI**3 * 0.1431612175, rel=1e-8)
    errors = []
    for n in (32, 64):
        energy, axes, periods = tight_binding(n)
        dos = fermi_surface_integral(energy, np.ones((1,) + energy.shape), axes, mu, periods)[0]
        errors.append(np.abs(dos / reference - 1.0))
    assert np.all(errors[1] < 1.5e-3)
    assert np.all(errors[1] < errors[0])


# --- 6.-7. node weights and slabs (whole-grid mirror points) -----------------------------


def random_smooth_grid(rng, n=(7, 5, 9), symmetric=False):
    """Axes open, periodic (2π), periodic (2.5); ``symmetric``: node sets mirror-symmetric."""
    if symmetric:
        axes = [symmetric_axis(rng, 0.0, 2.0, n[0]), TWO_PI * np.arange(n[1]) / n[1],
                np.linspace(-1.25, 1.25, n[2], endpoint=False)]
    else:
        axes = [random_axis(rng, 0.0, 2.0, n[0]), np.sort(rng.uniform(0, TWO_PI, n[1])),
                random_axis(rng, -1.0, 1.0, n[2])]
    periods = (None, TWO_PI, 2.5)
    U = mesh(axes)
    energy = U[0] ** 2 + np.cos(U[1]) * U[0] + 0.7 * U[2] + 0.3 * rng.standard_normal(U[0].shape)
    return energy, axes, periods


@pytest.mark.parametrize("symmetric, mirror", [
    (False, None), (True, "all axes"), (False, (0.3, 1.0, -0.2)),
], ids=["default", "mirrored symmetric grid", "arbitrary mirror points"])
def test_node_weights_match_integral(symmetric, mirror):
    rng = np.random.default_rng(4)
    energy, axes, periods = random_smooth_grid(rng, symmetric=symmetric)
    if mirror == "all axes":
        mirror = mirror_points(axes, periods, periodic=True)
        assert all(isinstance(m, AxisMirror) for m in mirror)
    h = rng.standard_normal((3,) + energy.shape)
    for level in np.quantile(energy, [0.1, 0.5, 0.9]):
        w = fermi_surface_node_weights(energy, axes, level, periods, mirror=mirror)
        assert w.shape == energy.shape and np.all(w >= 0) and w.sum() > 0
        direct = fermi_surface_integral(energy, h, axes, [level], periods, mirror=mirror)[:, 0]
        np.testing.assert_allclose(np.einsum("vijk,ijk->v", h, w), direct, rtol=1e-12, atol=1e-14)
    top = energy.max() + 1.0
    assert np.all(fermi_surface_node_weights(energy, axes, top, periods, mirror=mirror) == 0)


def test_node_weights_of_several_levels_are_their_weighted_sum():
    """Node weights with level_weights c_l (a thermal average) equal Σ_l c_l × the node weights
    of each level alone, periodic axes and a mirror included; mismatched factors are refused."""
    rng = np.random.default_rng(9)
    energy, axes, periods = random_smooth_grid(rng, symmetric=False)
    levels = np.sort(rng.uniform(np.quantile(energy, 0.1), np.quantile(energy, 0.9), 7))
    factors = rng.uniform(0.1, 1.0, levels.size)
    mirror = (0.3, 1.0, -0.2)
    together = fermi_surface_node_weights(energy, axes, levels, periods, mirror=mirror,
                                          level_weights=factors)
    alone = sum(c * fermi_surface_node_weights(energy, axes, level, periods, mirror=mirror)
                for c, level in zip(factors, levels))
    assert np.abs(alone).max() > 0
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-14 * np.abs(alone).max())
    with pytest.raises(ValueError, match="level_weights must match"):
        fermi_surface_node_weights(energy, axes, levels, periods, level_weights=factors[1:])


@pytest.mark.parametrize("symmetric, n1", [(False, 11), (True, 11), (True, 10)],
                         ids=["random nodes", "symmetric, node on the mirror",
                              "symmetric, cell across the mirror"])
def test_slabs_along_axis_1_add_up(symmetric, n1):
    """Slabs overlapping by one node add up to the whole grid when given the whole grid's
    mirror_points, also where the orientations alternate across slab boundaries."""
    rng = np.random.default_rng(5)
    energy, axes, periods = random_smooth_grid(rng, n=(n1, 4, 8), symmetric=symmetric)
    mirror = mirror_points(axes, periods, periodic=True)
    assert all(isinstance(m, AxisMirror) for m in mirror) == symmetric
    h = rng.standard_normal((2,) + energy.shape)
    levels = np.linspace(energy.min(), energy.max(), 17)
    whole = fermi_surface_integral(energy, h, axes, levels, periods, mirror=mirror)
    level = float(np.median(energy))
    w_whole = fermi_surface_node_weights(energy, axes, level, periods, mirror=mirror)
    for s in (1, 4, 5, 8):
        parts = [slice(0, s + 1), slice(s, None)]
        slab_axes = [(axes[0][p], axes[1], axes[2]) for p in parts]
        split = sum(
            fermi_surface_integral(energy[p], h[:, p], ax, levels, periods, mirror=mirror)
            for p, ax in zip(parts, slab_axes)
        )
        np.testing.assert_allclose(split, whole, rtol=1e-13, atol=1e-13)
        w_split = np.zeros_like(w_whole)
        for p, ax in zip(parts, slab_axes):
            w_split[p] += fermi_surface_node_weights(energy[p], ax, level, periods, mirror=mirror)
        np.testing.assert_allclose(w_split, w_whole, rtol=1e-13, atol=1e-15)
        if symmetric:  # a slab alone cannot know the whole axis: its own default differs
            alone = sum(fermi_surface_integral(energy[p], h[:, p], ax, levels, periods,
                                               mirror=(None,) + mirror[1:])
                        for p, ax in zip(parts, slab_axes))
            assert np.abs(alone - whole).max() > 1e-9 * np.abs(whole).max()


@pytest.mark.parametrize("kind, n", [("brillouin_zone", (9, 6, 8)), ("cartesian", (10, 5, 7))])
def test_kgrid_slabs_add_up_with_the_whole_grid_mirror(kind, n):
    """The callers' pattern: kgrid.slabs (axis 1 of every slab open, the closing cell of a
    periodic axis 1 a slab of its own) with the whole grid's mirror_points."""
    if kind == "brillouin_zone":
        axes = tuple(np.linspace(-np.pi, np.pi, m, endpoint=False) for m in n)
        periods = (TWO_PI,) * 3
    else:
        axes = tuple(stretched(-1.5, 1.5, m) for m in n)
        periods = (None,) * 3
    grid = KGrid(kind, axes, tuple(np.ones(m) for m in n), periods)
    U = mesh(axes)
    energy = -np.cos(U[0]) - np.cos(U[1]) - np.cos(U[2]) + 0.3 * np.sin(U[1] + 0.5 * U[2])
    h = np.stack([np.ones_like(energy), np.sin(U[0]) * (1.0 + np.cos(U[2]))])
    levels = np.linspace(energy.min(), energy.max(), 23)
    mirror = mirror_points(grid.axes, grid.periods, periodic=True)
    assert all(isinstance(m, AxisMirror) for m in mirror)
    whole = fermi_surface_integral(energy, h, grid.axes, levels, grid.periods, mirror=mirror)
    for slab_points in (1, 2 * n[1] * n[2], 10**6):
        split = np.zeros_like(whole)
        for index, sub, _ in slabs(grid, slab_points):
            if len(index) > 1:
                split += fermi_surface_integral(energy[index], h[:, index], sub.axes, levels,
                                                sub.periods, mirror=mirror)
        np.testing.assert_allclose(split, whole, rtol=1e-13, atol=1e-13)
    assert np.abs(whole[1]).max() < 1e-13 * whole[0].max()  # sin(u1): odd, ε even in u1


# --- 8. mirror symmetry of the split ------------------------------------------------------


def cylinder_model(axes, kz_sign, tilt):
    """ε = v' k_z + sqrt(ρ² + (1 + k_z²/2)²) and a few integrands (Jacobian ρ), at k_z·kz_sign."""
    R, P, Z = mesh(axes)
    Z = kz_sign * Z
    energy = tilt * Z + np.sqrt(R**2 + (1.0 + 0.5 * Z**2) ** 2)
    values = np.stack([R, R**2 * np.cos(P) ** 2 * (Z + 0.5 * Z**2), R * np.sin(P) ** 2 * Z**3])
    return energy, values


def test_kz_mirror_image_integrates_identically_on_a_cylindrical_grid():
    """(ρ, φ, k_z) grid, 4 φ nodes, k_z nodes symmetric: a model and its image under k_z → −k_z
    give the same integrals to round-off (k_z mirrored by default); the standard split differed
    at O(h²)."""
    axes, periods = cylinder(24)
    assert [isinstance(m, AxisMirror) for m in mirror_points(axes, periods)] == [False, False, True]
    levels = np.linspace(1.1, 3.5, 25)
    for old in (False, True):
        mirror = (False,) * 3 if old else None
        model, image = (fermi_surface_integral(*cylinder_model(axes, sign, 0.6), axes, levels,
                                               periods, mirror=mirror) for sign in (1, -1))
        scale = np.abs(model).max(axis=1)
        difference = np.abs(model - image).max(axis=1) / scale
        if old:
            assert np.all(difference[1:] > 1e-5), difference
        else:
            assert np.all(difference < 1e-13), difference


def test_kz_odd_integrands_vanish_when_the_energy_is_kz_even():
    """v' = 0: ε even in k_z, so integrands odd in k_z integrate to zero at every level."""
    axes, periods = cylinder(24)
    levels = np.linspace(1.1, 3.5, 25)
    energy, values = cylinder_model(axes, 1, 0.0)
    odd = values[[2]]  # R sin²φ k_z³
    scale = fermi_surface_integral(energy, np.abs(odd), axes, levels, periods).max()
    assert np.abs(fermi_surface_integral(energy, odd, axes, levels, periods)).max() < 1e-13 * scale
    old = fermi_surface_integral(energy, odd, axes, levels, periods, mirror=(False,) * 3)
    assert np.abs(old).max() > 1e-5 * scale


@pytest.mark.parametrize("n", [(9, 8, 7), (10, 7, 8)], ids=["nodes on", "cells across"])
def test_odd_integrand_vanishes_on_a_symmetric_box(n):
    """Cartesian box, each axis symmetric about 0 (odd node counts: a node on the mirror point;
    even: a cell across it, shared by both orientations): an integrand odd under u_a → −u_a with
    ε even in u_a (and nothing else symmetric) integrates to zero at every level, for each a."""
    rng = np.random.default_rng(6)
    axes = [stretched(-2.0, 2.0, n[0]), symmetric_axis(rng, -1.5, 1.5, n[1]),
            stretched(-1.0, 1.0, n[2], 0.1)]
    U = mesh(axes)
    for a in range(3):
        x, y, z = U[a], U[(a + 1) % 3], U[(a + 2) % 3]
        energy = x**2 + y**2 + 0.8 * z + 0.5 * x**2 * y + 0.3 * y * z
        h = np.stack([x * (1.0 + y + z**2), x**3 * z, np.sin(x) * np.exp(y)])
        levels = np.linspace(energy.min(), energy.max(), 41)
        scale = fermi_surface_integral(energy, np.abs(h), axes, levels).max()
        result = fermi_surface_integral(energy, h, axes, levels)
        assert np.abs(result).max() < 1e-13 * scale, (a, np.abs(result).max() / scale)
        old = fermi_surface_integral(energy, h, axes, levels, mirror=(False,) * 3)
        assert np.abs(old).max() > 1e-5 * scale


@pytest.mark.parametrize("n", [(12, 10, 8), (11, 9, 12)], ids=["even", "odd node counts"])
def test_odd_integrand_vanishes_on_a_brillouin_zone(n):
    """Periodic axes [−π, π): mirrored on request (mirror_points(periodic=True), or mirror point
    floats), an integrand odd under u1 → −u1 with ε even in u1 integrates to zero; the default
    leaves periodic axes unmirrored (standard split, O(h²) residue)."""
    axes = [np.linspace(-np.pi, np.pi, m, endpoint=False) for m in n]
    periods = (TWO_PI,) * 3
    U = mesh(axes)
    energy = -2.0 * (np.cos(U[0]) + np.cos(U[1]) + np.cos(U[2])) + 0.5 * np.sin(U[1]) \
        + 0.4 * np.cos(U[0]) * np.sin(U[2])
    h = np.sin(U[0]) * (1.0 + np.cos(U[1]) + np.sin(U[2]))
    h = np.stack([h, np.sin(2 * U[0]) * np.exp(np.sin(U[1]))])
    levels = np.linspace(energy.min(), energy.max(), 41)
    scale = fermi_surface_integral(energy, np.abs(h), axes, levels, periods).max()
    mirror = mirror_points(axes, periods, periodic=True)
    assert all(isinstance(m, AxisMirror) and m.point == 0.0 for m in mirror)
    result = fermi_surface_integral(energy, h, axes, levels, periods, mirror=mirror)
    assert np.abs(result).max() < 1e-13 * scale
    floats = fermi_surface_integral(energy, h, axes, levels, periods, mirror=(0.0, 0.0, 0.0))
    np.testing.assert_array_equal(floats, result)
    default = fermi_surface_integral(energy, h, axes, levels, periods)
    np.testing.assert_array_equal(
        default, fermi_surface_integral(energy, h, axes, levels, periods, mirror=(False,) * 3))
    assert np.abs(default).max() > 1e-5 * scale


def test_non_symmetric_nodes_keep_the_standard_split():
    rng = np.random.default_rng(7)
    energy, axes, periods = random_smooth_grid(rng)
    assert mirror_points(axes, periods) == (False, False, False)
    assert mirror_points(axes, periods, periodic=True) == (False, False, False)
    h = rng.standard_normal((2,) + energy.shape)
    levels = np.linspace(energy.min(), energy.max(), 9)
    standard = (False, False, False)
    np.testing.assert_array_equal(
        fermi_surface_integral(energy, h, axes, levels, periods),
        fermi_surface_integral(energy, h, axes, levels, periods, mirror=standard))
    level = float(np.median(energy))
    np.testing.assert_array_equal(
        fermi_surface_node_weights(energy, axes, level, periods),
        fermi_surface_node_weights(energy, axes, level, periods, mirror=standard))


def test_mirror_points_of_node_sets():
    rng = np.random.default_rng(8)
    open_axes = {
        "uniform": (np.linspace(-1.0, 3.0, 7), 1.0),
        "stretched": (stretched(-2.0, 2.0, 10), 0.0),
        "symmetric to round-off": (np.linspace(0.1, 0.7, 13) * (1 + 1e-15), 0.4 * (1 + 1e-15)),
        "random": (random_axis(rng, 0.0, 1.0, 6), None),
        "off by 1e-6": (np.linspace(-1.0, 1.0, 5) + [0, 0, 1e-6, 0, 0], None),
    }
    for name, (u, point) in open_axes.items():
        m = mirror_points([u, u, u])[0]
        if point is None:
            assert m is False, name
        else:
            assert isinstance(m, AxisMirror) and m.period is None, name
            assert m.point == pytest.approx(point, abs=1e-15), name
            assert m.nodes is u or np.array_equal(m.nodes, u)
    n = 8
    periodic_axes = {
        "[-pi, pi)": (np.linspace(-np.pi, np.pi, n, endpoint=False), True),
        "[-pi, pi) odd": (np.linspace(-np.pi, np.pi, n + 1, endpoint=False), True),
        "azimuth": (TWO_PI * np.arange(n) / n, True),
        "shifted by half a cell": (TWO_PI * (np.arange(n) + 0.5) / n, True),
        "azimuth from pi/4": (np.pi / 4 + np.pi / 2 * np.arange(4), True),
        "not invariant": (np.array([0.0, 1.0, 2.5]), False),
    }
    for name, (u, symmetric) in periodic_axes.items():
        axes, periods = [u, u, u], (TWO_PI, None, None)
        assert mirror_points(axes, periods)[0] is False, name  # periodic: only on request
        m = mirror_points(axes, periods, periodic=True)[0]
        if symmetric:
            assert isinstance(m, AxisMirror) and (m.point, m.period) == (0.0, TWO_PI), name
        else:
            assert m is False, name


# --- 9. bad input -------------------------------------------------------------------------


def test_bad_input_raises():
    axes = (np.linspace(0, 1, 3), np.linspace(0, 1, 4), np.linspace(0, 1, 5))
    energy = np.zeros((3, 4, 5))
    values = np.zeros((1, 3, 4, 5))
    levels = np.array([0.1, 0.2])
    bad_axes = (axes[0], np.array([0.0, 0.5, 0.5, 1.0]), axes[2])
    with pytest.raises(ValueError, match=r"axes\[1\].*strictly increasing"):
        fermi_surface_integral(energy, values, bad_axes, levels)
    with pytest.raises(ValueError, match=r"axes\[2\] has 4 nodes"):
        fermi_surface_integral(energy, values, (axes[0], axes[1], axes[2][:4]), levels)
    with pytest.raises(ValueError, match=r"axes\[0\].*at least 2"):
        fermi_surface_integral(energy[:1], values[:, :1], (axes[0][:1],) + axes[1:], levels)
    with pytest.raises(ValueError, match="values must have shape"):
        fermi_surface_integral(energy, values[:, :, :3], axes, levels)
    with pytest.raises(ValueError, match="values must have shape"):
        fermi_surface_integral(energy, values[0], axes, levels)
    with pytest.raises(ValueError, match="energy must be a 3-D"):
        fermi_surface_integral(energy[0], values, axes, levels)
    with pytest.raises(ValueError, match="levels must be sorted"):
        fermi_surface_integral(energy, values, axes, levels[::-1])
    with pytest.raises(ValueError, match=r"periods\[1\]"):
        fermi_surface_integral(energy, values, axes, levels, periods=(None, 1.0, None))
    with pytest.raises(ValueError, match="non-finite"):
        fermi_surface_integral(np.full((3, 4, 5), np.nan), values, axes, levels)
    with pytest.raises(ValueError, match="single number"):
        fermi_surface_node_weights(energy, axes, levels)
    with pytest.raises(ValueError, match=r"axes\[0\].*strictly increasing"):
        fermi_surface_node_weights(energy, (axes[0][::-1],) + axes[1:], 0.1)
    with pytest.raises(ValueError, match="mirror must be None or have exactly 3"):
        fermi_surface_integral(energy, values, axes, levels, mirror=(None, None))
    with pytest.raises(ValueError, match="mirror must be None or have exactly 3"):
        fermi_surface_node_weights(energy, axes, 0.1, mirror=0.5)
    with pytest.raises(ValueError, match=r"mirror\[1\] must be None, False"):
        fermi_surface_integral(energy, values, axes, levels, mirror=(None, True, None))
    with pytest.raises(ValueError, match=r"mirror\[2\] must be finite"):
        fermi_surface_integral(energy, values, axes, levels, mirror=(None, None, np.nan))
    with pytest.raises(ValueError, match=r"axes\[0\] is not a run of consecutive nodes"):
        fermi_surface_integral(energy, values, axes, levels,
                               mirror=(AxisMirror(0.5, np.linspace(0, 1, 4)), None, None))
    with pytest.raises(ValueError, match=r"mirror\[1\].period = None differs"):
        fermi_surface_integral(energy, values, axes, levels, periods=(None, 2.0, None),
                               mirror=(None, AxisMirror(0.0, axes[1]), None))
    with pytest.raises(ValueError, match=r"mirror\[0\].nodes must be strictly increasing"):
        fermi_surface_integral(energy, values, axes, levels,
                               mirror=(AxisMirror(0.5, axes[0][::-1]), None, None))
