"""The band layer (qmdipole.integrand): the slabs reassemble the table, G = v·g is the table's
v_i g_jk, and responses written in a few lines on it obey what forces them.

Independent routes: the table's arrays read directly (G_ijk = v_i g_jk by einsum); the total
derivative Σ_m ∫ v_i δ(ε_m − μ) = −∫ ∂_i Θ(μ − ε_m) = 0 on a periodic Brillouin zone; for the
Berry curvature dipole D_ij = Σ_m ∫ d³k/(2π)³ v_i Ω_j δ(ε_m − μ) (the module docstring's example,
run as printed) of one valley of Eq. 14: the mirrors k_x → −k_x, k_y → −k_y forbid every i ≠ j,
the rotation about k_z with the swap of x and y forces D_xx = D_yy, v' = 0 (k_z → −k_z) forbids
all, and Tr D = Σ_m ∫ Θ(μ − ε_m) ∇·Ω_m = 0 for a Fermi pocket inside the k-window (∇·Ω = 0 in a
gapped band).
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest

from qmdipole import integrand, kgrid, tabulate
from qmdipole.geometry import band_geometry
from qmdipole.models import LatticeValleyModel, ValleyModel

MU = np.linspace(-2.5, 2.5, 11)


def lattice_table(n):
    model = LatticeValleyModel(delta=0.5, vprime=0.6, mass=1.0)
    return tabulate.tabulate(model, kgrid.build_kgrid(model, "brillouin_zone", n, None)).compute()


def docstring_example():
    """The module docstring's example, executed as printed."""
    code = re.search(r"::\n\n(.*?)\n\n\(", integrand.__doc__, re.S).group(1)
    namespace = {}
    exec(textwrap.dedent(code), namespace)
    return namespace["berry_curvature_dipole"]


def test_slabs_reassemble_the_table_and_dipole_is_v_times_g():
    table = lattice_table((8, 6, 10))
    velocity, metric = table["velocity"].values, table["quantum_metric"].values
    expected = np.einsum("mi...,mjk...->mijk...", velocity, metric)
    d, a, b = np.array([1.0, 2.0, -2.0]) / 3, np.array([0.6, 0.0, 0.8]), np.array([0.0, 1.0, 0.0])
    along = np.einsum("i,j,k,mijk...->m...", d, a, b, expected)
    owned = {name: [] for name in ("dipole", "along", "energy", "kx")}
    for slab in integrand.table_slabs(table, slab_points=100):  # 1-2 k1-rows per slab
        owned["dipole"].append(slab.own(np.stack([
            np.stack([np.stack([slab.dipole(i, j, k) for k in range(3)], 1) for j in range(3)], 1)
            for i in range(3)], 1)))
        owned["along"].append(slab.own(slab.dipole(d, a, b)))
        owned["energy"].append(slab.own(slab.energy))
        owned["kx"].append(slab.own(slab.kpoints[0]))
    assert len(owned["kx"]) >= 4
    np.testing.assert_array_equal(np.concatenate(owned["dipole"], axis=4), expected)
    np.testing.assert_allclose(np.concatenate(owned["along"], axis=1), along, rtol=0,
                               atol=1e-14 * np.abs(along).max())
    np.testing.assert_array_equal(np.concatenate(owned["energy"], axis=1), table["energy"].values)
    np.testing.assert_array_equal(np.concatenate(owned["kx"], axis=0), table["kx"].values)


def test_an_axis_aligned_direction_reads_only_its_components():
    """v_d and a·g·b read the components of d, a, b's non-zero entries alone (a table's
    hyperslabs), the same numbers as the whole quantity's contraction; once the whole quantity is
    held, its components are views of it, read no more."""
    table = lattice_table((4, 3, 5))
    calls = []

    def read(name, index=()):
        calls.append((name, index))
        return table[name].values[(slice(None),) + index]

    slab = integrand.BandSlab(read)
    x, z, tilted = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.6, 0.0, 0.8])
    g, v = table["quantum_metric"].values, table["velocity"].values
    np.testing.assert_array_equal(slab.metric_along(x, z), g[:, 0, 2])
    np.testing.assert_array_equal(slab.velocity_along(z), v[:, 2])
    assert calls == [("quantum_metric", (0, 2)), ("velocity", (2,))]
    expected = 0.6 * (0.6 * g[:, 0, 0] + 0.8 * g[:, 2, 0]) + 0.8 * (0.6 * g[:, 0, 2] + 0.8 * g[:, 2, 2])
    np.testing.assert_array_equal(slab.metric_along(tilted, tilted), expected)
    assert len(calls) == 2 + 3  # (0, 2) is kept
    assert slab.metric.shape == g.shape  # the whole, read once
    np.testing.assert_array_equal(slab.metric_along(1, 1), g[:, 1, 1])
    assert calls[-1] == ("quantum_metric", ()) and len(calls) == 6


def test_fermi_surface_of_the_velocity_vanishes_on_the_brillouin_zone():
    """Σ_m ∫ v_i δ(ε_m − μ) = 0 at every μ: v_x, v_y to round-off (odd under the grid's mirrors),
    v_z (no symmetry: v' tilts the bands) as O(h²), relative to Σ_m ∫ |v_i| δ(ε_m − μ)."""
    ratios = []
    for n in (12, 24):
        slabs = list(integrand.table_slabs(lattice_table((n, n, n)), slab_points=3000))
        total = sum(s.fermi_surface(s.velocity, MU).sum(axis=0) for s in slabs)
        scale = sum(s.fermi_surface(np.abs(s.velocity), MU).sum(axis=0) for s in slabs)
        assert scale.max(axis=1).min() > 1.0  # every component has a Fermi surface at some μ
        ratios.append(np.abs(total).max(axis=1) / scale.max(axis=1))
    assert max(ratios[0][:2].max(), ratios[1][:2].max()) < 1e-12, ratios
    assert ratios[1][2] < 1e-2 and ratios[0][2] / ratios[1][2] > 3.0, ratios  # measured 3.7


def test_a_lazy_table_is_tabulated_once_per_slab(monkeypatch):
    """A lazy table (``tabulate.tabulate``, not computed) read slab by slab: each slab's fields
    come from one model evaluation, however many components a reduction reads (here the 18
    quantum-metric dipoles of γ, 9 components), and they equal the computed table's."""
    calls = []
    slab = tabulate._slab

    def counted(*args, block_info=None):  # (Dask passes block_info to a function naming it)
        calls.append(1)
        return slab(*args, block_info=block_info)

    monkeypatch.setattr(tabulate, "_slab", counted)
    model = LatticeValleyModel(delta=0.5, vprime=0.6, mass=1.0)
    lazy = tabulate.tabulate(model, kgrid.build_kgrid(model, "brillouin_zone", (12, 12, 12), None))
    slabs = list(integrand.table_slabs(lazy, slab_points=600))
    dipoles = [[s.dipole(i, j, k) for i in range(3) for j in range(3) for k in range(j, 3)]
               for s in slabs]
    assert len(slabs) > 1 and len(calls) == len(slabs)
    computed = integrand.table_slabs(lazy.compute(), slab_points=600)
    for found, reference in zip(dipoles, computed):
        np.testing.assert_array_equal(found, [reference.dipole(i, j, k) for i in range(3)
                                              for j in range(3) for k in range(j, 3)])


@pytest.fixture(scope="module")
def berry_dipoles():
    """D_ij(μ) in valley 1's conduction pocket (μ ∈ [0.6, 1.2]) on symmetric Cartesian grids."""
    mu = np.linspace(0.6, 1.2, 7)
    out = {}
    for vprime in (0.6, 0.0):
        model = ValleyModel(delta=0.5, vprime=vprime, mass=1.0)
        rho, lo, hi = model.k_window((-1.3, 1.3), 0.0)
        window = ((-1.1 * rho, 1.1 * rho), (-1.1 * rho, 1.1 * rho), (lo - 0.2, hi + 0.2))
        for n in (16, 32):
            grid = kgrid.build_kgrid(model, "cartesian", (n, n, n), window)
            out[vprime, n] = docstring_example()(tabulate.tabulate(model, grid).compute(), mu)
    return out


def test_berry_curvature_dipole_obeys_the_valley_symmetries(berry_dipoles):
    dipole = berry_dipoles[0.6, 32]
    scale = np.abs(dipole).max()
    diagonal = np.einsum("iil->il", dipole)
    assert np.abs(diagonal[2]).min() > 0.5 * scale  # D_zz ≈ −4.7e-3 throughout: not trivial
    off = dipole - diagonal[:, None, :] * np.eye(3)[:, :, None]
    assert np.abs(off).max() <= 1e-12 * scale
    assert np.abs(diagonal[0] - diagonal[1]).max() <= 1e-12 * scale
    for n in (16, 32):
        assert np.abs(berry_dipoles[0.0, n]).max() <= 1e-12 * scale


def test_berry_curvature_dipole_is_traceless(berry_dipoles):
    """Tr D = 0 (∇·Ω = 0): O(h²) on the grid (measured 3.0e-2, 9.2e-3 of max|D| at n = 16, 32)."""
    trace = [np.abs(np.einsum("iil->l", berry_dipoles[0.6, n])).max()
             / np.abs(berry_dipoles[0.6, n]).max() for n in (16, 32)]
    assert trace[1] < 1.5e-2 and trace[0] / trace[1] > 2.5, trace


def test_model_blocks_and_what_they_cannot_do():
    """model_slabs: blocks of whole rows whose geometry is band_geometry's; no δ-integrals or
    Fermi-surface weights without a grid, no N-band pair derivatives without a model, and a
    missing table variable is named."""
    model = ValleyModel(delta=1.0, vprime=1.0)
    k = np.random.default_rng(1).normal(size=(3, 7, 5))
    blocks = list(integrand.model_slabs(model, *k, slab_points=12))
    assert [rows for rows, _ in blocks] == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 7)]
    rows, slab = blocks[1]
    geometry = band_geometry(model, *(c[rows].ravel() for c in k))
    np.testing.assert_array_equal(slab.dipole(2, 0, 0), (geometry["velocity"][:, 2]
                                  * geometry["quantum_metric"][:, 0, 0]).reshape(2, 2, 5))
    with pytest.raises(ValueError, match="needs a k-grid"):
        slab.fermi_surface(slab.velocity, MU)
    with pytest.raises(ValueError, match="need the whole k-grid"):
        slab.fermi_weights(0.0, 0.0)
    three = integrand.BandSlab(lambda name: np.zeros((3, 2, 2, 2)))
    with pytest.raises(ValueError, match="pair derivatives of 3 bands need the model"):
        three.pair_derivatives(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    table = lattice_table((4, 4, 4)).drop_vars("berry_curvature")
    with pytest.raises(KeyError, match="no variable 'berry_curvature'"):
        next(integrand.table_slabs(table)).berry_curvature


def test_over_slabs_keeps_slab_order_with_threads():
    found = list(integrand.over_slabs(lambda i: i * i, range(50), threads=3))
    assert found == [i * i for i in range(50)]


def test_reductions_do_not_depend_on_the_thread_count():
    """γ (every T) and Δn, ⟨G⟩ of both routes of a metal at T > 0 (point deposits and densities)
    on a coupled three-band model in many small slabs: bitwise the same on 1 and 3 threads."""
    from qmdipole import ndd, quadrupolar
    from qmdipole.wannier90 import Wannier90Model

    rng = np.random.default_rng(3)
    r_vectors = np.array([(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 1), (0, -1, -1)])
    hoppings = rng.normal(size=(5, 3, 3)) + 1j * rng.normal(size=(5, 3, 3))
    hoppings[0] = hoppings[0] + hoppings[0].conj().T
    hoppings[2], hoppings[4] = hoppings[1].conj().T, hoppings[3].conj().T  # H(−R) = H(R)†
    model = Wannier90Model(hoppings, r_vectors, np.eye(3))
    table = tabulate.tabulate(model, kgrid.build_kgrid(model, "brillouin_zone", (10, 8, 6),
                                                       None)).compute()
    energy = table["energy"].values
    mu = float(np.median(energy[1]))
    found = []
    for threads in (1, 3):
        gamma = quadrupolar.gamma_from_table(table, mu=np.linspace(mu - 0.5, mu + 0.5, 21),
                                             temperatures=[0.2], slab_points=200, threads=threads)
        spectrum = ndd.spectrum_from_table(table, model, omega=np.linspace(0.5, 6.0, 23), eta=0.4,
                                           mu=mu, temperature=0.1, kubo=True, slab_points=200,
                                           threads=threads)
        found.append((gamma, spectrum))
    for one, three in zip(*found):
        for name in one.data_vars:
            np.testing.assert_array_equal(one[name].values, three[name].values, err_msg=name)
