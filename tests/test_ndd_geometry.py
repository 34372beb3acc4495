"""Δn for any light direction q̂ and polarisation ê, and the multi-band Eq. 12 per band pair
(qmdipole.ndd, qmdipole.band_pairs).

Independent routes: the Kubo formula (Eq. 11, central differences in q of eigenstates at k ∓ q)
against the closed-form pair derivatives (band_pairs: H, ∂H, ∂²H at k) on a coupled three-band
lattice model and on the two-band lattice model in a geometry where the current vertex changes
along q (the term the paper's Eq. 12 does not have); rotating model and light together; the
mirror symmetries that force Δn = 0 for Eq. 14 with q ⊥ ẑ; the pair breakdown summing to the total;
⟨G⟩ of N bands (pair metric from H, ∂H) against the two-band closed-form tables.
"""

from __future__ import annotations

import numpy as np
import pytest

from qmdipole import band_pairs, kgrid, ndd, tabulate
from qmdipole.geometry import hermitian_eigh
from qmdipole.models import LatticeValleyModel, Model, ValleyModel

pytestmark = pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")

OMEGA = np.linspace(0.2, 8.0, 79)
# cyclic permutation: the rotated model H'(k') = H(R k') lives on the same cubic Brillouin zone
R = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CoupledThreeBands(Model):
    """H = D + Σ_i [sin k_i A_i + (1 − cos k_i) B_i] + sin k_x sin k_z C on the cubic lattice
    (a = 1), seeded random Hermitian A_i, B_i, C: coupled bands, k-dependent velocities and a
    vertex ∂_x∂_zH ≠ 0 (whose part of Δn cancels between the pair's two orders)."""

    n_bands = 3
    lattice_constant = 1.0
    name = "coupled three bands"

    def __init__(self, seed=7, coupling=0.4):
        rng = np.random.default_rng(seed)

        def hermitian():
            a = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
            return coupling * (a + a.conj().T) / 2

        self.a, self.b = [hermitian() for _ in range(3)], [hermitian() for _ in range(3)]
        self.c, self.d = hermitian(), np.diag([-2.0, 0.0, 2.5]).astype(complex)

    def hamiltonian(self, kx, ky, kz):
        k = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        out = np.broadcast_to(self.d, k[0].shape + (3, 3))
        for i in range(3):
            out = out + np.sin(k[i])[..., None, None] * self.a[i] \
                + (1 - np.cos(k[i]))[..., None, None] * self.b[i]
        return out + (np.sin(k[0]) * np.sin(k[2]))[..., None, None] * self.c

    def hamiltonian_gradient(self, kx, ky, kz):
        k = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        out = np.stack([np.cos(k[i])[..., None, None] * self.a[i]
                        + np.sin(k[i])[..., None, None] * self.b[i] for i in range(3)])
        out[0] += (np.cos(k[0]) * np.sin(k[2]))[..., None, None] * self.c
        out[2] += (np.sin(k[0]) * np.cos(k[2]))[..., None, None] * self.c
        return out


class ShiftedCopies(Model):
    """H ⊕ (H + shift) of a two-band model: its states twice, the copy's energies raised by
    ``shift`` (less than the gap, so that the four bands never cross: v, v + shift, c, c + shift)."""

    n_bands = 4
    lattice_constant = 1.0
    name = "shifted copies"

    def __init__(self, base, shift):
        self.base, self.shift = base, shift

    def hamiltonian(self, kx, ky, kz):
        h = self.base.hamiltonian(kx, ky, kz)
        out = np.zeros(h.shape[:-2] + (4, 4), complex)
        out[..., :2, :2], out[..., 2:, 2:] = h, h + self.shift * np.eye(2)
        return out

    def hamiltonian_gradient(self, kx, ky, kz):
        g = self.base.hamiltonian_gradient(kx, ky, kz)
        out = np.zeros(g.shape[:-2] + (4, 4), complex)
        out[..., :2, :2], out[..., 2:, 2:] = g, g
        return out


class Rotated(Model):
    """H'(k') = H(R k') of a lattice model: ∂'_i H' = Σ_j R_ji ∂_jH."""

    lattice_constant = 1.0

    def __init__(self, base, rotation):
        self.base, self.rotation = base, rotation
        self.n_bands, self.name = base.n_bands, f"rotated {base.name}"

    def _k(self, kx, ky, kz):
        return np.einsum("ij,j...->i...", self.rotation, np.stack(np.broadcast_arrays(kx, ky, kz)))

    def hamiltonian(self, kx, ky, kz):
        return self.base.hamiltonian(*self._k(kx, ky, kz))

    def hamiltonian_gradient(self, kx, ky, kz):
        return np.einsum("ji,j...->i...", self.rotation,
                         self.base.hamiltonian_gradient(*self._k(kx, ky, kz)))


def table_of(model, n=(12, 12, 12)):
    grid = kgrid.build_kgrid(model, "brillouin_zone", n, None)
    return tabulate.tabulate(model, grid, method="sum_over_states").load()


def spectrum(model, table, q, e, **options):
    settings = dict(omega=OMEGA, eta=0.3, mu=-1.0, temperature=0.05, kubo=True, dq=1e-4,
                    transition_cutoff="auto", q_direction=q, polarization=e)
    settings.update(options)
    return ndd.spectrum_from_table(table, model, **settings)


def complex_delta_n(ds, suffix=""):
    return ds[f"re_delta_n{suffix}"].values + 1j * ds[f"im_delta_n{suffix}"].values


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def three_bands():
    model = CoupledThreeBands()
    return model, table_of(model)


# ----------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("q, e, match", [
    ([0, 0, 0], [1, 0, 0], "ndd.q_direction must be three finite numbers"),
    ([0, 0, 1], [np.nan, 1, 0], "ndd.polarization must be three finite numbers"),
    ([0, 1], [1, 0, 0], "ndd.q_direction must be three finite numbers"),
    ([0, 0, 1], [1, 0, 1], r"not perpendicular to ndd.q_direction \[0, 0, 1\]: angle 45 degrees"),
])
def test_bad_light_geometry_is_refused(q, e, match):
    with pytest.raises(ndd.SpectrumError, match=match):
        ndd.light_geometry(q, e)


def test_light_geometry_is_normalised_and_made_exactly_transverse():
    q_hat, e_hat = ndd.light_geometry([0, 0, 2], [3, 0, 1e-7])
    np.testing.assert_array_equal(q_hat, [0, 0, 1])
    np.testing.assert_array_equal(e_hat, [1, 0, 0])
    q_hat, e_hat = ndd.light_geometry([1, 2, 2], [2, 1, -2])
    assert abs(q_hat @ e_hat) < 1e-16 and np.linalg.norm(e_hat) == pytest.approx(1, abs=1e-15)


def test_default_geometry_is_the_papers_and_recorded():
    """Unnormalised [0, 0, 2], [5, 0, 0] give the default spectrum bit for bit; the attributes
    record the unit vectors."""
    model = LatticeValleyModel(delta=1.0, vprime=1.0)
    table = table_of(model, (8, 8, 12))
    default = spectrum(model, table, ndd.Q_DIRECTION, ndd.POLARIZATION, mu=0.0, temperature=0.0)
    scaled = spectrum(model, table, [0, 0, 2], [5, 0, 0], mu=0.0, temperature=0.0)
    for name in default.data_vars:
        np.testing.assert_array_equal(scaled[name].values, default[name].values, err_msg=name)
    assert default.attrs["q_direction"] == [0.0, 0.0, 1.0]
    assert default.attrs["polarization"] == [1.0, 0.0, 0.0]


def test_the_continuum_tail_refuses_other_geometries():
    model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)
    grid = kgrid.build_kgrid(model, "cylindrical", (8, 4, 16), ((0, 6), None, (-4, 4)))
    table = tabulate.tabulate(model, grid).load()
    with pytest.raises(ndd.SpectrumError, match="set ndd.transition_cutoff to a number"):
        spectrum(model, table, [1, 0, 0], [0, 1, 0], omega=np.linspace(0.2, 2, 5), mu=0.0,
                 temperature=0.0)


# ------------------------------------------------------------------- closed form vs Kubo (q)

def test_pair_derivatives_match_finite_differences_in_q():
    """M_mn, X′ and M′_mn − M′_nm (what enters Δn) of band_pairs against the Kubo route's central
    differences in q, pointwise at random k, every pair, a generic geometry. The Kubo M′ holds
    the vertex term −Re[V^e_nm ∂_d(ê·∂H)_mn], even in m ↔ n: it cancels in the difference, while
    M′_mn alone differs from it."""
    model = CoupledThreeBands()
    rng = np.random.default_rng(3)
    k = rng.uniform(-np.pi, np.pi, size=(3, 200))
    q_hat, e_hat = ndd.light_geometry([1, 2, 2], [2, 1, -2])
    energy, x_prime, m, m_prime = band_pairs.pair_derivatives(model, *k, q_hat, e_hat)

    def matrix(shift, dq):
        e0, u0 = hermitian_eigh(model.hamiltonian(*k))
        es, us = hermitian_eigh(model.hamiltonian(*(k - shift * dq * q_hat[:, None])))
        vertex = band_pairs.along(model.hamiltonian_gradient(*(k - shift * dq / 2 * q_hat[:, None])), e_hat)
        return es, np.abs(np.einsum("amk,kab,bnk->mnk", np.conj(us), vertex, u0)) ** 2

    dq = 1e-4
    (ep, mp), (em, mm) = matrix(1, dq), matrix(-1, dq)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(x_prime, (ep - em) / (2 * dq), atol=1e-7)
    np.testing.assert_allclose(m[off], (0.5 * (mp + mm))[off], rtol=1e-5, atol=1e-9)  # O(dq²)
    fd = (mp - mm) / (2 * dq)
    odd, fd_odd = m_prime - np.swapaxes(m_prime, 0, 1), fd - np.swapaxes(fd, 0, 1)
    scale = np.abs(fd_odd[off]).max()
    assert np.abs(odd[off] - fd_odd[off]).max() < 1e-6 * scale
    assert np.abs(m_prime[off] - fd[off]).max() > 1e-2 * np.abs(fd[off]).max()  # the vertex term


@pytest.mark.parametrize("q, e", [([0, 0, 1], [1, 0, 0]), ([1, 2, 2], [2, 1, -2]),
                                  ([1, 0, 0], [0, 1, 1])], ids=["z-x", "generic", "x-yz"])
def test_three_band_eq12_agrees_with_kubo(three_bands, q, e):
    """The multi-band Eq. 12 (pair sum, closed form) and Eq. 11 differentiated in q agree to 1e-6
    of the peak on a coupled three-band model; the pairs sum to the total; pair errors exist."""
    model, table = three_bands
    ds = spectrum(model, table, q, e)
    total, kubo = complex_delta_n(ds), complex_delta_n(ds, "_kubo")
    assert np.abs(total).max() > 1e-3
    assert rel(kubo, total) <= 1e-6, rel(kubo, total)
    assert ds.attrs["kubo_max_relative_difference"] <= 1e-6
    pairs = ds["re_delta_n_pair"].values + 1j * ds["im_delta_n_pair"].values
    assert pairs.shape == (3, len(OMEGA))
    assert list(zip(ds["band_m"].values, ds["band_n"].values)) == [(0, 1), (0, 2), (1, 2)]
    assert rel(pairs.sum(axis=0), total) <= 1e-12
    assert np.all(np.abs(pairs).max(axis=1) > 1e-3 * np.abs(total).max())  # every pair couples
    for part in ("re", "im"):
        error = ds[f"{part}_delta_n_pair_error"]
        assert error.dims == ("pair", "omega") and np.all(error.values > 0)
        assert error.attrs["units"] == "1" and error.attrs["units_label"] == "alpha"


@pytest.mark.parametrize("q, e", [([1, 0, 1], [1, 0, -1]), ([0, 1, 1], [0, 1, -1])])
def test_two_band_table_route_with_a_vertex_term(q, e):
    """Lattice Eq. 14 with q, ê in the xz (yz) plane, where the current vertex changes along q
    (∂_q(ê·∂H) = e_x d_x ∂²_xH + e_z d_z ∂²_zH ≠ 0): the two-band table route (Eq. 12 with ê, q̂)
    agrees with Kubo to 1e-6 (the vertex term cancels within the pair)."""
    model = LatticeValleyModel(delta=1.0, vprime=1.0)
    table = table_of(model, (12, 12, 16))
    ds = spectrum(model, table, q, e, mu=0.3, temperature=0.05)
    total = complex_delta_n(ds)
    assert np.abs(total).max() > 0.1
    assert rel(complex_delta_n(ds, "_kubo"), total) <= 1e-6


# ----------------------------------------------------------------------------- symmetries

@pytest.mark.parametrize("q, e", [([1, 2, 2], [2, 1, -2]), ([0, 0, 1], [1, 0, 0])])
def test_rotating_model_and_light_together_changes_nothing(three_bands, q, e):
    model, table = three_bands
    rotated = Rotated(model, R)
    ds = spectrum(model, table, q, e)
    turned = spectrum(rotated, table_of(rotated), R.T @ np.array(q, float), R.T @ np.array(e, float))
    for suffix in ("", "_kubo"):
        assert rel(complex_delta_n(turned, suffix), complex_delta_n(ds, suffix)) <= 1e-10


def test_rotated_two_band_lattice_model():
    """The lattice Eq. 14 (two-band table route) rotated by R with the light: same Δn and ⟨G⟩."""
    model = LatticeValleyModel(delta=1.0, vprime=1.0)
    rotated = Rotated(model, R)
    options = dict(mu=0.0, temperature=0.0)
    ds = spectrum(model, table_of(model), [0, 0, 1], [1, 0, 0], **options)
    turned = spectrum(rotated, table_of(rotated), R.T @ [0, 0, 1.0], R.T @ [1.0, 0, 0], **options)
    for suffix in ("", "_kubo"):
        assert rel(complex_delta_n(turned, suffix), complex_delta_n(ds, suffix)) <= 1e-10
    assert rel(turned["avg_qmd"].values, ds["avg_qmd"].values) <= 1e-10


@pytest.mark.parametrize("kind", ["valley", "lattice"])
@pytest.mark.parametrize("q, e", [([1, 0, 0], [0, 1, 0]), ([1, 0, 0], [0, 0, 1]),
                                  ([0, 1, 0], [1, 0, 0]), ([0, 1, 0], [0, 0, 1]),
                                  ([1, 0, 0], [0, 1, 1])])
def test_eq14_with_q_perpendicular_to_z_gives_zero(kind, q, e):
    """Eq. 14's mirrors k_x → −k_x and k_y → −k_y (v′k_z breaks only mirror z): Δn is odd in q̂ and
    vanishes for q̂ ∥ x̂ or ŷ, any polarisation, on both routes (to round-off of the paper's
    geometry's Δn); ⟨G⟩ too."""
    if kind == "valley":
        model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)
        grid = kgrid.build_kgrid(model, "cylindrical", (40, 4, 80), ((0, 4.0), None, (-3.0, 3.0)))
        table = tabulate.tabulate(model, grid).load()
        options = dict(transition_cutoff=6.0, omega=np.linspace(0.2, 4.0, 39), eta=0.2, mu=0.0,
                       temperature=0.0)
    else:
        model = LatticeValleyModel(delta=1.0, vprime=1.0)
        table = table_of(model, (10, 10, 16))
        options = dict(mu=0.3, temperature=0.05)
    reference = complex_delta_n(spectrum(model, table, [0, 0, 1], [1, 0, 0], **options))
    ds = spectrum(model, table, q, e, **options)
    scale = np.abs(reference).max()
    assert scale > 0.05
    for suffix in ("", "_kubo"):
        assert np.abs(complex_delta_n(ds, suffix)).max() <= 1e-12 * scale, suffix
    assert np.abs(ds["avg_qmd"].values).max() <= 1e-12 * max(np.abs(reference).max(), 1.0)


# ------------------------------------------------------------------------ ⟨G⟩ of N bands

@pytest.mark.parametrize("q, e", [([0, 0, 1], [1, 0, 0]), ([1, 0, 1], [1, 0, -1])])
def test_avg_qmd_of_four_bands_is_twice_the_two_band_tables(q, e):
    """H ⊕ (H + 0.3) with μ in both gaps: ⟨G⟩ of the four bands (pair metric from H, ∂H per slab)
    is twice ⟨G⟩ of H's two-band table (closed-form metric), pair by pair: only the pairs of one
    copy, (v, c) = (0, 2) and (1, 3), contribute, each as the two-band ⟨G⟩; the other pairs have
    no matrix element (their bands lie in different blocks) or no occupation difference."""
    base = LatticeValleyModel(delta=1.0, vprime=1.0)
    copies = ShiftedCopies(base, 0.3)
    n = (10, 10, 14)
    two = spectrum(base, table_of(base, n), q, e, mu=0.15, temperature=0.0, kubo=False)
    four = spectrum(copies, table_of(copies, n), q, e, mu=0.15, temperature=0.0, kubo=False)
    expected = two["avg_qmd"].values
    assert np.abs(expected).max() > 1e-3
    assert rel(four["avg_qmd"].values, 2 * expected) <= 1e-10
    pairs = dict(zip(zip(four["band_m"].values, four["band_n"].values), four["avg_qmd_pair"].values))
    for pair, value in pairs.items():
        target = expected if pair in ((0, 2), (1, 3)) else 0 * expected
        assert np.abs(value - target).max() <= 1e-10 * np.abs(expected).max(), pair
    assert rel(four["avg_qmd_pair"].sum("pair").values, four["avg_qmd"].values) <= 1e-12
    error = four["avg_qmd_pair_error"]
    assert error.dims == ("pair", "omega") and np.all(error.sel(pair=[1, 4]).values > 0)


# ------------------------------------------------------------------------ the rank-3 tensor

def test_tensor_contracts_to_the_spectrum_of_any_light(three_bands):
    """T_abc of the coupled three-band model from 18 axis-aligned (partly longitudinal)
    reductions: contracted with ê_a ê_b q̂_c it gives the spectrum computed directly for light off
    every axis, to round-off; symmetric in (a, b)."""
    model, table = three_bands
    options = dict(omega=OMEGA, eta=0.3, mu=-1.0, temperature=0.05, transition_cutoff="auto")
    tensor = ndd.tensor_from_table(table, model, **options)
    t = tensor["re_delta_n_tensor"].values + 1j * tensor["im_delta_n_tensor"].values
    np.testing.assert_array_equal(t, np.swapaxes(t, 0, 1))
    for q, e in (([1, 2, 2], [2, 1, -2]), ([0, 1, 1], [0, 1, -1]), ([1, 0, 0], [0, 3, 4])):
        q_hat, e_hat = ndd.light_geometry(q, e)
        direct = complex_delta_n(spectrum(model, table, q, e, kubo=False))
        contracted = np.einsum("a,b,c,abcw->w", e_hat, e_hat, q_hat, t)
        assert np.abs(direct).max() > 1e-3
        assert rel(contracted, direct) <= 1e-10, (q, e, rel(contracted, direct))
    assert np.all(tensor["re_delta_n_tensor_error"].values >= 0)


def test_tensor_of_eq14_has_only_the_allowed_components():
    """Lattice Eq. 14: mirror x and y (k_x → −k_x, k_y → −k_y) forbid the components with an
    odd number of x or of y indices; T_xxz, the paper's geometry, is there."""
    model = LatticeValleyModel(delta=1.0, vprime=1.0)
    table = table_of(model, (10, 10, 14))
    tensor = ndd.tensor_from_table(table, model, omega=OMEGA, eta=0.3, mu=0.0, temperature=0.0)
    t = np.abs(tensor["re_delta_n_tensor"].values) + np.abs(tensor["im_delta_n_tensor"].values)
    scale = t.max()
    assert t[0, 0, 2].max() > 1e-2 * scale
    for a, b, c in np.ndindex(3, 3, 3):
        indices = (a, b, c)
        if indices.count(0) % 2 or indices.count(1) % 2:
            assert t[a, b, c].max() <= 1e-12 * scale, (a, b, c)


def test_pair_derivatives_do_not_depend_on_the_block_size():
    """Worked out in blocks of k-points (bounded memory), every k-point on its own: blocks of
    7 points give the numbers of one block."""
    model = CoupledThreeBands()
    k = np.random.default_rng(5).uniform(-np.pi, np.pi, (3, 100))
    q_hat, e_hat = np.array([0.3, 0.0, 1.0]) / np.hypot(0.3, 1.0), np.array([0.0, 1.0, 0.0])
    whole = band_pairs.pair_derivatives(model, *k, q_hat, e_hat)
    blocks = band_pairs.pair_derivatives(model, *k, q_hat, e_hat, block_elements=9 * 7)
    for name, a, b in zip(("energy", "x_prime", "m", "m_prime"), whole, blocks):
        assert a.shape == b.shape and a.shape[-1] == 100, name
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-14 * np.abs(a).max(), err_msg=name)
