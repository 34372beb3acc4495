"""Tests of qmdipole.geometry: ε, v, g, Ω per band against closed forms and independent routes.

Routes compared (README, "What is checked, so that no wrong number passes silently"):

* the closed form for two-band d·σ models (``method="closed_form"``) against the general
  sum over states (``method="sum_over_states"``), to 1e-10 relative;
* both against central finite differences of the gauge-invariant band projector P_m(k) built here
  from ``numpy.linalg.eigh``: Q_ij = Tr[P ∂_iP ∂_jP], g = Re Q, Ω^{ij} = −2 Im Q, and
  v_i = ∂ε_m/∂k_i from finite differences of the eigenvalues (no eigenvector phase enters);
* the massive Dirac model's Berry curvature against its closed form and its half-integer Chern
  integral, which pins the sign convention independently of the package;
* symmetry nulls of the quantum-metric dipole G_ijk = v_i g_jk of the valley model.

Relative errors are measured per band and per k-point against the largest component of the
reference quantity there (so components that vanish by symmetry do not divide by zero).
"""

from __future__ import annotations

import numpy as np
from checks import assert_gradient_matches_finite_differences
import pytest

from qmdipole.geometry import BLAS_BANDS, DEFAULT_DEGENERACY_TOL, band_geometry, hermitian_eigh
from qmdipole.models import PAULI, LatticeValleyModel, Model, TwoBandModel, ValleyModel

FIELDS = ("energy", "velocity", "quantum_metric", "berry_curvature")
CURL_PAIRS = ((1, 2), (2, 0), (0, 1))  # Ω vector = (Ω^{yz}, Ω^{zx}, Ω^{xy})


# ------------------------------------------------------------------------------------------
# test models
# ------------------------------------------------------------------------------------------

class DenseTwoBand(TwoBandModel):
    """H = e₀(k) + d(k)·σ with every ∂_i d_a and ∂_i e₀ non-zero and k-dependent.

    e₀ = c₀ + a·k + k·B·k + s₀ sin(q₀·k),
    d_a = c_a + Σ_i M_ai k_i + k·S_a·k + s_a sin(q_a·k)   (S_a, B symmetric; fixed random numbers).
    """

    name = "dense_two_band"

    def __init__(self, seed=7):
        rng = np.random.default_rng(seed)
        self.c0, self.a0 = rng.normal(), rng.normal(size=3)
        b = rng.normal(size=(3, 3))
        self.b0 = 0.5 * (b + b.T)
        self.s0, self.q0 = rng.normal(), rng.normal(size=3)
        self.c = np.array([0.3, -0.2, 1.5])
        self.m = rng.normal(size=(3, 3))
        s = rng.normal(size=(3, 3, 3)) * 0.5
        self.s = 0.5 * (s + np.swapaxes(s, 1, 2))
        self.sa, self.qa = rng.normal(size=3) * 0.7, rng.normal(size=(3, 3))

    def d_vector(self, kx, ky, kz):
        k = np.stack(np.broadcast_arrays(*map(np.asarray, (kx, ky, kz))))
        e0 = (self.c0 + np.einsum("i,i...->...", self.a0, k)
              + np.einsum("i...,ij,j...->...", k, self.b0, k)
              + self.s0 * np.sin(np.einsum("i,i...->...", self.q0, k)))
        d = (self.c[:, None] + np.einsum("ai,i...->a...", self.m, k)
             + np.einsum("i...,aij,j...->a...", k, self.s, k)
             + self.sa[:, None] * np.sin(np.einsum("ai,i...->a...", self.qa, k)))
        return e0, d

    def d_gradient(self, kx, ky, kz):
        k = np.stack(np.broadcast_arrays(*map(np.asarray, (kx, ky, kz))))
        grad_e0 = (self.a0[:, None] + 2 * np.einsum("ij,j...->i...", self.b0, k)
                   + self.s0 * self.q0[:, None] * np.cos(np.einsum("i,i...->...", self.q0, k)))
        # grad_d[i, a] = ∂d_a/∂k_i
        grad_d = (self.m.T[:, :, None] + 2 * np.einsum("aij,j...->ia...", self.s, k)
                  + np.einsum("a,ai,a...->ia...", self.sa, self.qa,
                              np.cos(np.einsum("ai,i...->a...", self.qa, k))))
        return grad_e0, grad_d


class ThreeBand(Model):
    """A random Hermitian 3×3 H(k) = A + Σ_i k_i B_i + Σ_ij k_i k_j C_ij (fixed random matrices)."""

    n_bands = 3
    name = "three_band"

    def __init__(self, seed=11):
        rng = np.random.default_rng(seed)

        def herm(scale=1.0):
            x = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
            return scale * 0.5 * (x + x.conj().T)

        self.a = herm() + np.diag([-2.0, 0.0, 2.0])
        self.b = np.stack([herm() for _ in range(3)])
        c = np.array([[herm(0.4) for _ in range(3)] for _ in range(3)])
        self.c = 0.5 * (c + np.swapaxes(c, 0, 1))  # C_ij = C_ji, each Hermitian

    def hamiltonian(self, kx, ky, kz):
        k = np.stack(np.broadcast_arrays(*map(np.asarray, (kx, ky, kz))))
        return (self.a + np.einsum("i...,imn->...mn", k, self.b)
                + np.einsum("i...,j...,ijmn->...mn", k, k, self.c))

    def hamiltonian_gradient(self, kx, ky, kz):
        k = np.stack(np.broadcast_arrays(*map(np.asarray, (kx, ky, kz))))
        return (self.b[:, None] * np.ones(k.shape[1:])[None, :, None, None]
                + 2 * np.einsum("j...,ijmn->i...mn", k, self.c))


class MassiveDirac(TwoBandModel):
    """H = k_x σ_x + k_y σ_y + m σ_z (no k_z dependence)."""

    name = "massive_dirac"

    def __init__(self, m):
        self.m = m

    def d_vector(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        return np.zeros(kx.shape), np.stack([kx, ky, np.full(kx.shape, self.m)])

    def d_gradient(self, kx, ky, kz):
        kx, ky, kz = np.broadcast_arrays(*map(np.asarray, (kx, ky, kz)))
        grad_d = np.zeros((3, 3) + kx.shape)
        grad_d[0, 0] = grad_d[1, 1] = 1.0
        return np.zeros((3,) + kx.shape), grad_d


class MassiveDiracMatrix(Model):
    """The same Dirac model through H and ∂H only (no d-vector): the general path's input."""

    n_bands = 2
    name = "massive_dirac_matrix"

    def __init__(self, m):
        self.m = m

    def hamiltonian(self, kx, ky, kz):
        kx, ky = np.broadcast_arrays(np.asarray(kx), np.asarray(ky))
        return (kx[..., None, None] * PAULI[0] + ky[..., None, None] * PAULI[1]
                + self.m * PAULI[2] * np.ones(kx.shape)[..., None, None])

    def hamiltonian_gradient(self, kx, ky, kz):
        kx = np.asarray(kx)
        grad = np.zeros((3,) + kx.shape + (2, 2), complex)
        grad[0], grad[1] = PAULI[0], PAULI[1]
        return grad


TWO_BAND_MODELS = {
    "valley_tau+1": ValleyModel(delta=1.0, vprime=0.7, tau=1, v=1.3, mass=1.9),
    "valley_tau-1": ValleyModel(delta=2.0, vprime=-0.7, tau=-1, v=1.3, mass=0.6),
    "lattice": LatticeValleyModel(delta=0.8, vprime=0.5, tau=-1, v=1.2, mass=1.4,
                                  lattice_constant=0.9),
    "dense": DenseTwoBand(),
}


def random_k(n, scale=1.5, seed=0, model=None, min_gap=0.2):
    """Random k-points (3, n); for ``model``, only points where every gap exceeds ``min_gap``."""
    rng = np.random.default_rng(seed)
    k = rng.uniform(-scale, scale, size=(3, 4 * n))
    if model is not None:
        energies = np.linalg.eigvalsh(model.hamiltonian(*k))
        k = k[:, np.diff(energies, axis=1).min(axis=1) > min_gap]
    assert k.shape[1] >= n
    return k[:, :n]


def rel_error(value, reference, component_axes):
    """max |value − reference| / max |reference| over the component axes, per band and k."""
    diff = np.abs(value - reference).max(axis=component_axes)
    scale = np.abs(reference).max(axis=component_axes)
    return (diff / np.maximum(scale, 1e-300)).max()


COMPONENT_AXES = {"energy": (0,), "velocity": (1,), "quantum_metric": (1, 2), "berry_curvature": (1,)}


def assert_geometry_close(geo, ref, rtol, fields=FIELDS):
    for name in fields:
        value, reference = np.asarray(geo[name]), np.asarray(ref[name])
        assert value.shape == reference.shape, name
        err = rel_error(value, reference, COMPONENT_AXES[name])
        assert err <= rtol, f"{name}: relative error {err:.3g} > {rtol:g}"


# ------------------------------------------------------------------------------------------
# independent route: finite differences of the band projector
# ------------------------------------------------------------------------------------------

def projector_fd_geometry(model, k, h=1e-3):
    """ε, v, g, Ω from 4th-order central differences of P_m(k) and ε_m(k) (numpy.linalg.eigh).

    Q_ij,m = Tr[P_m ∂_iP_m ∂_jP_m], g = Re Q, Ω^{ij} = −2 Im Q_ij; v_i,m = ∂ε_m/∂k_i.
    Returns a dict shaped like band_geometry's (bands ascending).
    """
    def eig(kk):
        energy, vectors = np.linalg.eigh(model.hamiltonian(*kk))
        proj = np.einsum("nam,nbm->nmab", vectors, vectors.conj())  # (N, nb, nb, nb): P_m
        return energy, proj

    energy, proj = eig(k)
    stencil = ((-2, 1 / 12), (-1, -8 / 12), (1, 8 / 12), (2, -1 / 12))
    d_energy, d_proj = [], []
    for i in range(3):
        de, dp = 0.0, 0.0
        for step, coef in stencil:
            shifted = k.copy()
            shifted[i] += step * h
            e, p = eig(shifted)
            de, dp = de + coef * e / h, dp + coef * p / h
        d_energy.append(de)
        d_proj.append(dp)
    d_proj = np.stack(d_proj)  # (3, N, nb, a, b)
    qgt = np.einsum("nmab,inmbc,jnmca->ijmn", proj, d_proj, d_proj)  # (3, 3, nb, N)
    curvature = np.stack([-2 * qgt[i, j].imag for i, j in CURL_PAIRS])  # (3, nb, N)
    return {
        "energy": energy.T,
        "velocity": np.moveaxis(np.stack(d_energy), 2, 0),  # (nb, 3, N)
        "quantum_metric": np.moveaxis(qgt.real, 2, 0),
        "berry_curvature": np.moveaxis(curvature, 1, 0),
    }


# ------------------------------------------------------------------------------------------
# closed form vs sum over states vs projector finite differences
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TWO_BAND_MODELS)
def test_closed_form_matches_sum_over_states(name):
    model = TWO_BAND_MODELS[name]
    k = random_k(2000, model=model, seed=1)
    closed = band_geometry(model, *k, method="closed_form")
    general = band_geometry(model, *k, method="sum_over_states")
    assert closed["n_degenerate"] == general["n_degenerate"] == 0
    assert_geometry_close(closed, general, 1e-10)
    # the metric is not trivially small: the comparison tests something
    assert np.abs(closed["quantum_metric"]).max() > 0.05
    assert np.abs(closed["berry_curvature"]).max() > 0.05


@pytest.mark.parametrize("name", TWO_BAND_MODELS)
@pytest.mark.parametrize("method", ["closed_form", "sum_over_states"])
def test_two_band_against_projector_finite_differences(name, method):
    model = TWO_BAND_MODELS[name]
    k = random_k(200, model=model, seed=2)
    geo = band_geometry(model, *k, method=method)
    assert_geometry_close(geo, projector_fd_geometry(model, k), 1e-6)


def test_dense_model_gradient_is_dense():
    """The test model exercises every component of ∇d and ∇e₀ (else the comparison is weak)."""
    model = TWO_BAND_MODELS["dense"]
    k = random_k(50, seed=3)
    grad_e0, grad_d = model.d_gradient(*k)
    assert np.abs(grad_d).min(axis=-1).min() > 0 and np.abs(grad_e0).min() > 0
    assert np.ptp(grad_d, axis=-1).min() > 1e-3  # k-dependent
    # and the gradient is the gradient of d_vector (central differences)
    h = 1e-5
    for i in range(3):
        kp, km = k.copy(), k.copy()
        kp[i] += h
        km[i] -= h
        (ep, dp), (em, dm) = model.d_vector(*kp), model.d_vector(*km)
        np.testing.assert_allclose((dp - dm) / (2 * h), grad_d[i], atol=1e-8)
        np.testing.assert_allclose((ep - em) / (2 * h), grad_e0[i], atol=1e-8)


def test_three_band_sum_over_states_against_projector_finite_differences():
    model = ThreeBand()
    k = random_k(300, scale=1.0, model=model, seed=4, min_gap=0.15)
    # the model's gradient is right (else the comparison would test the test)
    assert_gradient_matches_finite_differences(model, k, atol=1e-7)
    geo = band_geometry(model, *k, method="sum_over_states")
    assert geo["energy"].shape == (3, k.shape[1])
    assert geo["quantum_metric"].shape == (3, 3, 3, k.shape[1])
    assert geo["n_degenerate"] == 0
    assert_geometry_close(geo, projector_fd_geometry(model, k), 1e-6)
    # the Berry curvatures of all bands sum to zero; the metrics do not
    assert np.abs(geo["berry_curvature"].sum(axis=0)).max() < 1e-9 * np.abs(
        geo["berry_curvature"]).max()


@pytest.mark.parametrize("n_bands", [BLAS_BANDS - 1, BLAS_BANDS + 4])
def test_many_band_sum_over_states_against_projector_finite_differences(n_bands):
    """A coupled random tight-binding model (H(R) on the 27 R of a cubic cell) on both sides of
    BLAS_BANDS, where the velocity matrices switch from loops to BLAS products."""
    from qmdipole.wannier90 import Wannier90Model

    rng = np.random.default_rng(n_bands)
    r_vectors = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    hoppings = rng.normal(size=(27, n_bands, n_bands)) + 1j * rng.normal(size=(27, n_bands, n_bands))
    partner = [int(np.flatnonzero((r_vectors == -r).all(axis=1))[0]) for r in r_vectors]
    hoppings = 0.5 * (hoppings + np.conj(hoppings[partner].transpose(0, 2, 1)))  # H(−R) = H(R)†
    model = Wannier90Model(hoppings, r_vectors, np.eye(3))
    k = random_k(60, scale=3.0, model=model, seed=5, min_gap=0.1)
    geo = band_geometry(model, *k, method="sum_over_states")
    assert geo["n_degenerate"] == 0
    assert_geometry_close(geo, projector_fd_geometry(model, k, h=1e-4), 1e-5)


def test_closed_form_blocks_and_vanishing_gradient_components():
    """More points than one block (8192), with ∂d_z/∂k_z = k_z/m vanishing on whole blocks
    (the closed form skips such components block by block) and not on others."""
    model = TWO_BAND_MODELS["valley_tau+1"]
    k = np.random.default_rng(12).uniform(-2, 2, size=(3, 3 * 8192 + 123))
    k[2, :8192] = 0.0  # block 0: k_z = 0
    k[:2, 8192:2 * 8192] = 0.0  # block 1: k_x = k_y = 0 (n ∥ z)
    closed = band_geometry(model, *k, method="closed_form")
    general = band_geometry(model, *k, method="sum_over_states")
    assert_geometry_close(closed, general, 1e-10)
    fd_points = np.r_[0:5, 8192:8197, 2 * 8192:2 * 8192 + 5, k.shape[1] - 5:k.shape[1]]
    sub = {name: closed[name][..., fd_points] for name in FIELDS}
    assert_geometry_close(sub, projector_fd_geometry(model, k[:, fd_points]), 1e-6)


def test_two_by_two_eigensolver():
    """The closed-form 2×2 Hermitian eigensolver of the general path, on awkward matrices."""
    rng = np.random.default_rng(13)
    n = 4000
    c, z, bx, by = rng.normal(size=(4, n)) * np.exp(rng.uniform(-8, 3, size=(4, n)))
    special = [  # (centre, half-difference, Re b, Im b)
        (0.0, 0.0, 0.0, 0.0),      # zero matrix: exactly degenerate
        (5.0, 0.0, 0.0, 0.0),      # multiple of the identity
        (1.0, -2.0, 0.0, 0.0),     # diagonal, descending
        (1.0, 2.0, 0.0, 0.0),      # diagonal, ascending
        (0.0, 0.0, 1e-3, -2e-3),   # purely off-diagonal
        (1e6, 1e-9, 1e-9, 0.0),    # tiny splitting on a large offset
        (0.0, -1e-150, 1e-150, 0.0),   # tiny but squares still normal
    ]
    for i, values in enumerate(special):
        c[i], z[i], bx[i], by[i] = values
    h = np.empty((n, 2, 2), complex)
    h[:, 0, 0], h[:, 1, 1] = c + z, c - z
    h[:, 0, 1], h[:, 1, 0] = bx + 1j * by, bx - 1j * by
    energy, vectors = hermitian_eigh(h)  # (2, N), (2, 2, N)
    reference = np.linalg.eigvalsh(h).T
    scale = np.abs(h).max(axis=(1, 2))
    assert np.all(np.abs(energy - reference) <= 4e-15 * np.maximum(scale, 1e-300) + 1e-300)
    u = np.moveaxis(vectors, -1, 0)  # (N, a, m)
    residual = h @ u - u * energy.T[:, None, :]
    assert np.all(np.abs(residual).max(axis=(1, 2)) <= 1e-14 * np.maximum(scale, 1e-300) + 1e-300)
    gram = np.conj(np.swapaxes(u, 1, 2)) @ u
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-14)
    assert np.all(energy[0] <= energy[1])
    # larger matrices go to LAPACK, same layout
    model = ThreeBand()
    h3 = model.hamiltonian(*rng.normal(size=(3, 50)))
    e3, v3 = hermitian_eigh(h3)
    np.testing.assert_allclose(e3, np.linalg.eigvalsh(h3).T, atol=1e-13)
    assert v3.shape == (3, 3, 50)


def test_auto_method_and_bad_method():
    model = TWO_BAND_MODELS["valley_tau+1"]
    k = random_k(10, seed=5)
    auto = band_geometry(model, *k)
    closed = band_geometry(model, *k, method="closed_form")
    for name in FIELDS:
        np.testing.assert_array_equal(auto[name], closed[name])
    with pytest.raises(ValueError, match="closed_form"):
        band_geometry(ThreeBand(), *k, method="closed_form")
    with pytest.raises(ValueError, match="method"):
        band_geometry(model, *k, method="nonsense")


# ------------------------------------------------------------------------------------------
# quantum metric: symmetric, positive semi-definite
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,method", [
    *((name, method) for name in TWO_BAND_MODELS for method in ("closed_form", "sum_over_states")),
    ("three_band", "sum_over_states"),
])
def test_metric_symmetric_positive_semidefinite(name, method):
    model = ThreeBand() if name == "three_band" else TWO_BAND_MODELS[name]
    k = random_k(3000, scale=2.0, seed=6)  # any k, also near (not at) gap closings
    g = band_geometry(model, *k, method=method)["quantum_metric"]  # (nb, 3, 3, N)
    g = np.moveaxis(g, -1, 1)  # (nb, N, 3, 3)
    scale = np.abs(g).max(axis=(-1, -2), keepdims=True)
    assert np.all(np.abs(g - np.swapaxes(g, -1, -2)) <= 1e-13 * scale)
    eigenvalues = np.linalg.eigvalsh(0.5 * (g + np.swapaxes(g, -1, -2)))
    assert np.all(eigenvalues >= -1e-12 * scale[..., 0])
    assert np.all(np.isfinite(g))


# ------------------------------------------------------------------------------------------
# massive Dirac model: Berry curvature closed form and Chern integral
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mass", [0.7, -0.4])
@pytest.mark.parametrize("model_cls,method", [
    (MassiveDirac, "closed_form"), (MassiveDirac, "sum_over_states"),
    (MassiveDiracMatrix, "sum_over_states"),
])
def test_massive_dirac_berry_curvature(mass, model_cls, method):
    model = model_cls(mass)
    rng = np.random.default_rng(8)
    kx, ky = rng.normal(size=(2, 500)) * 2
    geo = band_geometry(model, kx, ky, np.zeros_like(kx), method=method)
    expected = mass / (2 * (kx**2 + ky**2 + mass**2) ** 1.5)  # lower band, Ω_z = Ω^{xy}
    np.testing.assert_allclose(geo["berry_curvature"][0, 2], expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(geo["berry_curvature"][1, 2], -expected, rtol=1e-12, atol=0)
    assert np.abs(geo["berry_curvature"][:, :2]).max() < 1e-14  # no in-plane components

    # Chern-type integral ∫ Ω_z d²k/(2π) over the plane: ρ = |m| tan θ maps [0, ∞) to
    # [0, π/2), on which the integrand is smooth (Gauss–Legendre); φ by the periodic rule.
    x, w = np.polynomial.legendre.leggauss(60)
    theta, w_theta = np.pi / 4 * (x + 1), np.pi / 4 * w
    rho = abs(mass) * np.tan(theta)
    jac = rho * abs(mass) / np.cos(theta) ** 2
    phi = 2 * np.pi * np.arange(7) / 7 + 0.3
    r, p = np.meshgrid(rho, phi, indexing="ij")
    weights = (w_theta * jac)[:, None] * np.full(phi.size, 2 * np.pi / phi.size)
    geo = band_geometry(model, (r * np.cos(p)).ravel(), (r * np.sin(p)).ravel(),
                        np.zeros(r.size), method=method)
    chern = geo["berry_curvature"][:, 2] @ weights.ravel() / (2 * np.pi)
    np.testing.assert_allclose(chern, [np.sign(mass) / 2, -np.sign(mass) / 2], atol=1e-10)


# ------------------------------------------------------------------------------------------
# degenerate points
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["closed_form", "sum_over_states"])
def test_exact_degeneracy_is_finite_and_counted(method):
    model = ValleyModel(delta=0.0, vprime=0.3, tau=1)  # d = 0 exactly at k = 0
    rng = np.random.default_rng(9)
    k = rng.normal(size=(3, 40))
    k[:, [3, 17, 31]] = 0.0
    geo = band_geometry(model, *k, method=method)
    assert geo["n_degenerate"] == 3
    for name in FIELDS:
        assert np.all(np.isfinite(geo[name])), name
    # at the degenerate points: both bands at e₀ = 0, no geometry between them
    at = [3, 17, 31]
    np.testing.assert_array_equal(geo["energy"][:, at], 0.0)
    np.testing.assert_array_equal(geo["quantum_metric"][..., at], 0.0)
    np.testing.assert_array_equal(geo["berry_curvature"][..., at], 0.0)
    # elsewhere the usual values (compare with the other method)
    other = band_geometry(model, *k, method="sum_over_states" if method == "closed_form"
                          else "closed_form")
    keep = np.setdiff1d(np.arange(40), at)
    for name in FIELDS:
        np.testing.assert_allclose(geo[name][..., keep], other[name][..., keep], rtol=1e-10,
                                   atol=1e-12)


def test_degenerate_in_three_bands_counted_and_finite():
    """A 3-band H with a twofold degenerate pair at k = 0 (and one isolated band)."""

    class Degenerate3(ThreeBand):
        def __init__(self):
            super().__init__()
            self.a = np.diag([-1.0, 1.0, 1.0]).astype(complex)

    model = Degenerate3()
    k = np.zeros((3, 5))
    k[:, 1:] = np.random.default_rng(10).normal(size=(3, 4))
    geo = band_geometry(model, *k, method="sum_over_states")
    assert geo["n_degenerate"] >= 1
    for name in FIELDS:
        assert np.all(np.isfinite(geo[name])), name


@pytest.mark.parametrize("fraction", [0.3, 0.49, 0.51, 0.75, 2.0])
def test_methods_agree_on_degeneracy_threshold(fraction):
    """Both methods call a pair degenerate when its gap 2|d| is below degeneracy_tol."""
    tol = DEFAULT_DEGENERACY_TOL
    model = ValleyModel(delta=fraction * tol, vprime=0.0, tau=1)  # |d| = fraction·tol at k = 0
    k = np.zeros((3, 1))
    closed = band_geometry(model, *k, method="closed_form")
    general = band_geometry(model, *k, method="sum_over_states")
    assert closed["n_degenerate"] == general["n_degenerate"] == int(2 * fraction < 1)
    for name in FIELDS:
        assert np.all(np.isfinite(closed[name])) and np.all(np.isfinite(general[name]))
        np.testing.assert_allclose(closed[name], general[name], rtol=1e-10, atol=0)


# ------------------------------------------------------------------------------------------
# symmetry of the quantum-metric dipole G_ijk = v_i g_jk
# ------------------------------------------------------------------------------------------

def _valley_box(vprime, n=(41, 41, 60), half=(2.5, 2.5, 2.0)):
    """Geometry of the valley model on a Cartesian box whose nodes are symmetric in k_z."""
    model = ValleyModel(delta=1.0, vprime=vprime, tau=1, mass=1.9)
    axes = [np.linspace(-h, h, m) for h, m in zip(half, n)]  # symmetric node sets
    kx, ky, kz = (c.ravel() for c in np.meshgrid(*axes, indexing="ij"))
    geo = band_geometry(model, kx, ky, kz, method="closed_form")
    g, v = geo["quantum_metric"], geo["velocity"]
    g_zxx = v[:, 2] * g[:, 0, 0]  # G_zxx,m = v_z g_xx
    g_xxz = v[:, 0] * g[:, 0, 2]  # G_xxz,m = v_x g_xz
    return geo, kz, g_zxx, g_xxz


def test_qmd_integral_vanishes_without_tilt():
    geo, kz, g_zxx, g_xxz = _valley_box(vprime=0.0)
    for G in (g_zxx, g_xxz):
        total = G.sum(axis=1)  # per band (uniform weights)
        scale = np.abs(G).sum(axis=1)
        assert np.all(scale > 1.0)
        assert np.all(np.abs(total) <= 1e-13 * scale), total / scale


def test_qmd_integral_nonzero_with_tilt():
    """v' ≠ 0: the Fermi sea of the lower band (ε < μ) is not symmetric in k_z and G survives."""
    mu = -1.2
    geo, kz, g_zxx, g_xxz = _valley_box(vprime=0.8)
    occupied = geo["energy"][0] < mu
    assert 0 < occupied.sum() < occupied.size
    for G in (g_zxx, g_xxz):
        total = G[0][occupied].sum()
        scale = np.abs(G[0][occupied]).sum()
        assert abs(total) > 1e-2 * scale
    # and over the symmetric box G_zxx integrates to v' ∫ g_xx ≠ 0 (g does not depend on v')
    total = g_zxx.sum(axis=1)
    g_xx = geo["quantum_metric"][:, 0, 0].sum(axis=1)
    np.testing.assert_allclose(total, 0.8 * g_xx, rtol=1e-10)


@pytest.mark.parametrize("method", ["closed_form", "sum_over_states"])
def test_geometry_does_not_depend_on_the_block_size(method):
    """k-points are worked on in blocks (bounded memory), every one on its own: blocks of 5
    points give the numbers of one block, and the count of degenerate points adds up."""
    model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)
    k = np.random.default_rng(2).uniform(-2, 2, (3, 23))
    k[:, 7] = k[:, 19] = 0.0  # gapped: no degeneracy; the count must stay 0
    whole = band_geometry(model, *k, method=method)
    blocks = band_geometry(model, *k, method=method, block_elements=4 * 5)
    assert blocks.keys() == whole.keys() and blocks["n_degenerate"] == whole["n_degenerate"]
    for name in ("energy", "velocity", "quantum_metric", "berry_curvature"):
        assert blocks[name].shape == whole[name].shape, name
        np.testing.assert_allclose(blocks[name], whole[name], rtol=0,
                                   atol=1e-14 * np.abs(whole[name]).max(), err_msg=name)


@pytest.mark.parametrize("method", ["closed_form", "sum_over_states"])
def test_geometry_fills_given_arrays(method):
    """``out``: the arrays are filled in place, block by block, every entry (NaN-filled before),
    with the numbers of a call that makes its own; a table's slab is filled this way."""
    model = ValleyModel(delta=1.0, vprime=1.0, mass=1.9)
    k = np.random.default_rng(3).uniform(-2, 2, (3, 23))
    whole = band_geometry(model, *k, method=method)
    out = {name: np.full_like(whole[name], np.nan) for name in FIELDS}
    filled = band_geometry(model, *k, method=method, block_elements=4 * 5, out=out)
    assert filled["n_degenerate"] == whole["n_degenerate"]
    for name in FIELDS:
        assert filled[name] is out[name], name
        np.testing.assert_array_equal(out[name], whole[name], err_msg=name)
