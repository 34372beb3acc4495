"""The compiled loops of qmdipole.kernels. The tetrahedron loop (through qmdipole.tetrahedron) against a
pure-NumPy reference written independently here: every cell and orientation vectorised,
corners sorted with a stable argsort (the kernel: a sorting network; tie order must not matter,
the section of a tetrahedron being unique), levels found per tetrahedron, corner weights from
masks per branch, deposited with np.add.at; the pole sums of qmdipole.ndd.apply_kernels against
the complex NumPy formula."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from qmdipole import ndd
from qmdipole.ndd import DN_PREFACTOR, SpectralAccumulator, apply_kernels
from qmdipole.tetrahedron import (
    _cell_widths,
    _orientations,
    fermi_surface_integral,
    fermi_surface_node_weights,
    mirror_points,
)

KUHN = ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))


def reference_pairs(energy, axes, levels, periods, mirror):
    """All (tetrahedron, level) pairs: level index (np,), nodes (4, np), weights (4, np)."""
    widths = _cell_widths(axes, periods, _orientations(mirror, axes, periods))
    shape = energy.shape
    cells = [np.arange(w.shape[1]) for w in widths]
    e_flat = energy.ravel()
    all_level, all_nodes, all_weights = [], [], []
    for r in itertools.product((0, 1), repeat=3):
        vol = np.einsum("i,j,k->ijk", *(widths[a][r[a]] for a in range(3))).ravel() / 6.0

        def nodes_at(bits):
            index = np.meshgrid(*((cells[a] + bits[a]) % shape[a] for a in range(3)),
                                indexing="ij")
            return np.ravel_multi_index(index, shape).ravel()

        for a, b in KUHN:
            c1 = list(r)
            c1[a] ^= 1
            c2 = list(c1)
            c2[b] ^= 1
            nodes = np.stack([nodes_at(c) for c in (r, c1, c2, [1 - x for x in r])])
            order = np.argsort(e_flat[nodes], axis=0, kind="stable")
            nodes = np.take_along_axis(nodes, order, axis=0)
            e = e_flat[nodes]
            lo = np.searchsorted(levels, e[0], side="left")
            count = np.searchsorted(levels, e[3], side="left") - lo
            count[vol == 0] = 0
            pick = np.repeat(np.arange(vol.size), count)
            level = np.arange(pick.size) + np.repeat(lo - (np.cumsum(count) - count), count)
            all_level.append(level)
            all_nodes.append(nodes[:, pick])
            all_weights.append(delta_weights(*e[:, pick], levels[level], vol[pick]))
    return (np.concatenate(all_level), np.concatenate(all_nodes, axis=1),
            np.concatenate(all_weights, axis=1))


def delta_weights(e1, e2, e3, e4, lam, vol):
    """Corner weights of ∫_tet h δ(ε − λ) (Blöchl-style linear tetrahedron), e1 <= λ < e4."""
    w = np.zeros((4, lam.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = lam < e2, lam >= e3
        quad = ~(low | high)
        x = lam - e1
        f2, f3, f4 = x / (e2 - e1), x / (e3 - e1), x / (e4 - e1)
        c = vol * f2 * f3 / (e4 - e1)
        for i, wi in enumerate((c * (3 - f2 - f3 - f4), c * f2, c * f3, c * f4)):
            w[i, low] = wi[low]
        y = e4 - lam
        g1, g2, g3 = y / (e4 - e1), y / (e4 - e2), y / (e4 - e3)
        c = vol * g2 * g3 / (e4 - e1)
        for i, wi in enumerate((c * g1, c * g2, c * g3, c * (3 - g1 - g2 - g3))):
            w[i, high] = wi[high]
        a13, a14, a23, a24 = x / (e3 - e1), x / (e4 - e1), (lam - e2) / (e3 - e2), (lam - e2) / (e4 - e2)
        c1 = vol * a13 * (1 - a24) / (e4 - e1)
        c2 = vol * (1 - a13) * a23 / (e4 - e2)
        c12 = c1 + c2
        for i, wi in enumerate((c12 * (1 - a13) + c1 * (1 - a14), c12 * (1 - a24) + c2 * (1 - a23),
                                c12 * a13 + c2 * a23, c1 * a14 + c12 * a24)):
            w[i, quad] = wi[quad]
    return w


def reference_integral(energy, values, axes, levels, periods, mirror):
    level, nodes, weights = reference_pairs(energy, axes, levels, periods, mirror)
    h = values.reshape(values.shape[0], -1)
    out = np.zeros((values.shape[0], levels.size))
    np.add.at(out.T, level, np.einsum("cp,vcp->pv", weights, h[:, nodes]))
    return out


def reference_node_weights(energy, axes, level, periods, mirror):
    _, nodes, weights = reference_pairs(energy, axes, np.array([level]), periods, mirror)
    return np.bincount(nodes.ravel(), weights.ravel(), minlength=energy.size).reshape(energy.shape)


def random_case(seed):
    """Random non-uniform axes (some periodic), energies with many exact ties (rounded to a
    coarse step), levels that hit node energies and repeat, a random choice of mirrors."""
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 8, 3)
    periods = [None if rng.random() < 0.5 else 7.0 for _ in range(3)]
    axes = [np.sort(rng.choice(np.linspace(0.0, 6.0, 61), size, replace=False)) for size in n]
    energy = np.round(rng.normal(size=tuple(n)) * 4) / 4  # ties: repeated corner energies
    values = rng.normal(size=(3,) + tuple(n))
    levels = np.sort(np.concatenate([rng.uniform(-2.5, 2.5, 200), np.unique(energy),
                                     np.full(3, np.median(energy))]))
    mirror = [rng.choice([None, False, float(rng.uniform(-1, 7))]) for _ in range(3)]
    if rng.random() < 0.3:
        mirror = mirror_points(axes, periods, periodic=True)
    return energy, values, axes, levels, periods, mirror


@pytest.mark.parametrize("seed", range(12))
def test_kernel_matches_numpy_reference(seed):
    energy, values, axes, levels, periods, mirror = random_case(seed)
    result = fermi_surface_integral(energy, values, axes, levels, periods, mirror=mirror)
    expected = reference_integral(energy, values, axes, levels, periods, mirror)
    scale = reference_integral(energy, np.abs(values), axes, levels, periods, mirror).max()
    assert scale > 0
    assert np.abs(result - expected).max() <= 1e-12 * scale
    level = float(np.median(energy))  # a tie: many nodes sit on it
    weights = fermi_surface_node_weights(energy, axes, level, periods, mirror=mirror)
    expected_w = reference_node_weights(energy, axes, level, periods, mirror)
    assert np.abs(weights - expected_w).max() <= 1e-12 * max(expected_w.max(), 1e-300)


def test_symmetric_mirror_of_a_symmetric_grid():
    """Symmetric open axes (mirrored by default, a cell straddling the midpoint on one): an
    integrand odd under u1 → −u1 with an even energy integrates to zero to round-off, in both."""
    rng = np.random.default_rng(7)
    half = np.sort(rng.uniform(0.1, 1.0, 4))
    axes = [np.concatenate([-half[::-1], half]), np.linspace(-1, 1, 5), np.linspace(0, 1, 4)]
    U = np.meshgrid(*axes, indexing="ij")
    energy = U[0] ** 2 + np.cos(U[1]) + U[2]
    values = np.stack([U[0] * np.exp(U[2]), np.ones_like(U[0])])
    levels = np.linspace(energy.min(), energy.max(), 101)
    result = fermi_surface_integral(energy, values, axes, levels)
    expected = reference_integral(energy, values, axes, levels, (None,) * 3, None)
    scale = np.abs(expected[1]).max()
    assert np.abs(result - expected).max() <= 1e-12 * scale
    assert np.abs(result[0]).max() <= 1e-13 * scale and np.abs(expected[0]).max() <= 1e-13 * scale


def test_dense_levels():
    """Hundreds of levels per tetrahedron (non-uniform, some repeated) on a periodic box."""
    axes = [np.linspace(-np.pi, np.pi, n, endpoint=False) for n in (7, 9, 8)]
    periods = (2 * np.pi,) * 3
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    energy = np.cos(X) + 0.7 * np.cos(Y) * np.sin(Z) + 0.3 * np.sin(2 * X + Z)
    values = np.stack([np.ones_like(X), np.sin(X + Y), np.cos(Z) ** 2])
    levels = np.sort(np.random.default_rng(3).uniform(energy.min(), energy.max(), 3000))
    levels[100:110] = levels[99]
    result = fermi_surface_integral(energy, values, axes, levels, periods)
    expected = reference_integral(energy, values, axes, levels, periods, None)
    scale = reference_integral(energy, np.abs(values), axes, levels, periods, None).max()
    assert np.abs(result - expected).max() <= 1e-12 * scale


def test_no_integrands():
    axes = [np.linspace(0, 1, 3)] * 3
    assert fermi_surface_integral(np.zeros((3, 3, 3)), np.zeros((0, 3, 3, 3)), axes,
                                  np.array([0.5])).shape == (0, 1)


def test_pole_sums_match_numpy():
    """apply_kernels (compiled pole sums) against the complex NumPy formula, on random weights
    with empty nodes, ω at 0, on and between the nodes, and a small η."""
    rng = np.random.default_rng(11)
    acc = SpectralAccumulator(top=3.0, spacing=0.01, channels=3)
    for name in ("single", "double"):
        acc.sums[name][:] = rng.normal(size=acc.sums[name].shape)
        acc.sums[name][:, rng.random(acc.nodes.size) < 0.3] = 0.0
    acc.sums["double"][1] = 0.0
    omega = np.sort(np.concatenate([[0.0], rng.uniform(0, 3.2, 200), acc.levels[::37]]))
    eta = 1e-3
    result = apply_kernels(acc, omega, eta)
    inverse = 1.0 / (acc.nodes[None, :] ** 2 - (omega[:, None] + 1j * eta) ** 2)
    expected = DN_PREFACTOR * (acc.sums["single"] @ inverse.T + acc.sums["double"] @ (inverse**2).T)
    scale = DN_PREFACTOR * (np.abs(acc.sums["single"]) @ np.abs(inverse.T)
                            + np.abs(acc.sums["double"]) @ np.abs(inverse.T) ** 2)
    assert np.all(np.abs(result - expected) <= 1e-12 * scale)
    assert np.abs(expected).max() > 1e-6 * scale.max()  # not all cancelled: the test can fail


def test_compile_kernels_covers_the_reductions():
    """After compile_kernels (the pipeline's background compilation), γ and the NDD spectrum of
    an insulator with the Kubo route compile nothing more: the jobs then load every kernel they
    run from numba's cache."""
    from qmdipole import geometry, kernels, models, quadrupolar, tabulate
    from qmdipole.kgrid import build_kgrid
    from qmdipole.models import LatticeValleyModel

    model = LatticeValleyModel(delta=1.0, vprime=1.0, tau=1, mass=1.9)
    table = tabulate.tabulate(model, build_kgrid(model, "brillouin_zone", (10, 10, 10),
                                                 None)).compute()
    kernels.compile_kernels()
    watched = (kernels.fermi_surface_sum, kernels.pole_sums, kernels.squared_matrix_elements,
               geometry._eigh_2x2, models._fill_pauli)
    compiled = {f: len(f.signatures) for f in watched}
    assert all(compiled.values())
    quadrupolar.gamma_from_table(table, mu=np.linspace(-3, 3, 61), temperatures=[0.1])
    ndd.spectrum_from_table(table, model, omega=np.linspace(0.5, 4, 36), eta=0.2, mu=0.0,
                            kubo=True)
    assert {f: len(f.signatures) for f in watched} == compiled


@pytest.mark.parametrize("bands", [1, 2, 3, 5])
def test_squared_matrix_elements_match_numpy(bands):
    """|⟨l_m|O|r_n⟩|² of the Kubo route against the NumPy contraction, random complex states
    and operators."""
    from qmdipole.kernels import squared_matrix_elements

    rng = np.random.default_rng(bands)
    n = 37

    def random(*shape):
        return rng.normal(size=shape) + 1j * rng.normal(size=shape)

    left, right, operator = random(bands, bands, n), random(bands, bands, n), random(n, bands, bands)
    out = np.empty((bands, bands, n))
    squared_matrix_elements(left, operator, right, out)
    expected = np.abs(np.einsum("amk,kab,bnk->mnk", np.conj(left), operator, right)) ** 2
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13 * expected.max())


def test_background_compilation_holds_its_lock_until_done(tmp_path, monkeypatch):
    """compile_in_background (the pipeline's onstart): the compiling process holds the lock that
    the environment names for the jobs it starts; waiting for it returns once that process has
    ended, successfully; a lock file that is gone is nothing to wait for."""
    import fcntl

    from qmdipole import kernels

    monkeypatch.delenv(kernels.COMPILING, raising=False)
    process = kernels.compile_in_background(tmp_path / "compile")
    lock_path = tmp_path / "compile" / "compiling.lock"
    assert os.environ[kernels.COMPILING] == str(lock_path.resolve())
    monkeypatch.setenv(kernels.COMPILING, str(lock_path.resolve()))  # restored after the test
    with open(lock_path) as lock, pytest.raises(BlockingIOError):
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while it compiles
    kernels._await_background_compilation()
    assert process.wait(timeout=30) == 0
    monkeypatch.setenv(kernels.COMPILING, str(tmp_path / "gone.lock"))
    kernels._await_background_compilation()  # returns at once
