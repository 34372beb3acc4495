"""Tests of qmdipole.analytic: every reduced formula against brute-force 3-D quadrature.

The brute force here is independent of the reductions and of qmdipole.geometry: eigenvectors from
numpy.linalg.eigh, velocities ⟨m|∂H|m⟩ and the quantum metric from the sum over states
g_ij,m = Re Σ_{n≠m} ⟨m|∂_iH|n⟩⟨n|∂_jH|m⟩/(ε_m − ε_n)², integrated over a cylinder
(ρ, φ, k_z) with composite Gauss–Legendre in ρ and k_z and the periodic trapezoid rule in φ.
δ-functions are replaced by what the reductions also accept: finite T (f') and finite η
(Lorentzian, complex denominators), so no analytic step is shared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmdipole import analytic as A

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex)
VALLEY1 = dict(delta=1.0, vprime=1.0, mass=1.9, tau=1)    # Fig. 4 caption, Δ = 1
VALLEY2 = dict(delta=2.0, vprime=-1.0, mass=1.9, tau=-1)
VALLEYS = [VALLEY1, VALLEY2]


# ------------------------------------------------------------------------------------------
# brute force
# ------------------------------------------------------------------------------------------

def _gl(a, b, panels, order=6):
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(a, b, panels + 1)
    h = np.diff(edges)[:, None]
    mid = 0.5 * (edges[1:] + edges[:-1])[:, None]
    return (mid + 0.5 * h * x).ravel(), (0.5 * h * w).ravel()


def _cylinder(rho_max, kz_lo, kz_hi, n_rho, n_kz, n_phi=4):
    """Nodes kx, ky, kz and weights w with Σ w F ≈ ∫ d³k F over the cylinder."""
    rho, w_rho = _gl(0.0, rho_max, n_rho)
    kz, w_kz = _gl(kz_lo, kz_hi, n_kz)
    phi = 2 * np.pi * (np.arange(n_phi) + 0.5) / n_phi
    r, p, z = np.meshgrid(rho, phi, kz, indexing="ij")
    w = (w_rho * rho)[:, None, None] * np.full(n_phi, 2 * np.pi / n_phi)[None, :, None] * w_kz
    return (r * np.cos(p)).ravel(), (r * np.sin(p)).ravel(), z.ravel(), w.ravel()


def _hamiltonian(kx, ky, kz, delta, vprime, mass, v=1.0, tau=1):
    eye = np.eye(2)
    return ((vprime * kz)[:, None, None] * eye + (v * tau * kx)[:, None, None] * PAULI[0]
            + (v * ky)[:, None, None] * PAULI[1]
            + (delta + kz**2 / (2 * mass))[:, None, None] * PAULI[2])


def _geometry(kx, ky, kz, delta, vprime, mass, v=1.0, tau=1):
    """ε (N, 2), v (N, 2, 3), g (N, 2, 3, 3); band 0 = valence, 1 = conduction."""
    n = kx.size
    dh = np.empty((3, n, 2, 2), complex)
    dh[0] = v * tau * PAULI[0]
    dh[1] = v * PAULI[1]
    dh[2] = vprime * np.eye(2) + (kz / mass)[:, None, None] * PAULI[2]
    eps, u = np.linalg.eigh(_hamiltonian(kx, ky, kz, delta, vprime, mass, v, tau))
    mat = np.conj(np.swapaxes(u, -1, -2))[None] @ dh @ u[None]  # ⟨m|∂_iH|n⟩
    vel = np.stack([np.stack([mat[i, :, m, m].real for i in range(3)], -1) for m in range(2)], 1)
    gap2 = (eps[:, 1] - eps[:, 0]) ** 2
    g = np.empty((n, 2, 3, 3))
    for m, k in ((0, 1), (1, 0)):
        for i in range(3):
            for j in range(3):
                g[:, m, i, j] = (mat[i, :, m, k] * mat[j, :, k, m]).real / gap2
    return eps, vel, g


def _integrate(fun, grid, params, chunk=300_000):
    kx, ky, kz, w = grid
    total = 0.0
    for start in range(0, kx.size, chunk):
        sl = slice(start, start + chunk)
        total = total + np.tensordot(w[sl], fun(*_geometry(kx[sl], ky[sl], kz[sl], **params)), 1)
    return total


def _fermi(e, mu, temperature):
    if temperature == 0:
        return (e < mu).astype(float)
    return 0.5 * (1 - np.tanh((e - mu) / (2 * temperature)))


def _lorentz(y, eta):
    return eta / np.pi / (y * y + eta * eta)


def _gamma_bruteforce(mu, temperature, params, n_rho=40, n_kz=60, cut=20.0):
    """(2/π) Σ_m ∫d³k v_x g_xz f'  [γ_xxz in e²/(16π²ħ)] over a cylinder holding |ε − μ| ≤ cut·T."""
    delta, vp, m, v = params["delta"], abs(params["vprime"]), params["mass"], params.get("v", 1.0)
    reach = abs(mu) + cut * temperature
    kz_max = m * (vp + math.sqrt(vp * vp + 2 * max(reach - delta, 0.0) / m)) + 0.5
    rho_max = (reach + vp * kz_max) / v + 0.5
    grid = _cylinder(rho_max, -kz_max, kz_max, n_rho, n_kz)

    def f(eps, vel, g):
        fprime = -1 / (4 * temperature) / np.cosh((eps - mu) / (2 * temperature)) ** 2
        return (vel[:, :, 0] * g[:, :, 0, 2] * fprime).sum(1)

    return 2 / math.pi * _integrate(f, grid, params)


# ------------------------------------------------------------------------------------------
# the brute-force integrand itself: closed forms of the module docstring, step 0
# ------------------------------------------------------------------------------------------

def test_bruteforce_geometry_matches_docstring_closed_forms():
    rng = np.random.default_rng(1)
    kx, ky, kz = rng.normal(size=(3, 50))
    p = dict(delta=1.0, vprime=0.7, mass=1.9, v=1.3, tau=-1)
    eps, vel, g = _geometry(kx, ky, kz, **p)
    v, m = p["v"], p["mass"]
    dz = 1.0 + kz**2 / (2 * m)
    e = np.sqrt(v * v * (kx**2 + ky**2) + dz**2)
    np.testing.assert_allclose(g[:, 0], g[:, 1], atol=1e-13)
    np.testing.assert_allclose(g[:, 1, 0, 2], -v * v * kx * kz * dz / (4 * m * e**4), atol=1e-13)
    np.testing.assert_allclose(g[:, 1, 0, 0], v * v / (4 * e * e) * (1 - v * v * kx**2 / e**2), atol=1e-13)
    np.testing.assert_allclose(vel[:, 1, 0], v * v * kx / e, atol=1e-13)
    # G_xxz,c + G_xxz,v = 0 and G_zxx,c + G_zxx,v = 2 v' g_xx
    np.testing.assert_allclose((vel[:, :, 0] * g[:, :, 0, 2]).sum(1), 0.0, atol=1e-13)
    np.testing.assert_allclose((vel[:, :, 2] * g[:, :, 0, 0]).sum(1), 2 * 0.7 * g[:, 0, 0, 0], atol=1e-13)


# ------------------------------------------------------------------------------------------
# 1. gamma_xxz
# ------------------------------------------------------------------------------------------

GAMMA_CASES = [
    (0.4, 0.25, dict(VALLEY1)),
    (-0.7, 0.2, dict(delta=1.0, vprime=-0.6, mass=3.0, v=1.7, tau=-1)),
    (2.5, 0.3, dict(VALLEY2, v=0.8)),
]


@pytest.mark.parametrize("mu, temperature, params", GAMMA_CASES)
def test_gamma_matches_bruteforce_at_finite_temperature(mu, temperature, params):
    """The T = 0 1-D formula (through the Fermi-window convolution) and the finite-T 2-D
    reduction both equal the 3-D integral of v_x g_xz f' (which needs no δ-function)."""
    brute = _gamma_bruteforce(mu, temperature, params)
    conv = A.gamma_xxz(mu, temperature=temperature, **params)
    direct = A.gamma_xxz(mu, temperature=temperature, method="direct", **params)
    assert abs(brute) > 1e-3
    assert conv == pytest.approx(brute, rel=1e-8, abs=1e-12)
    assert direct == pytest.approx(brute, rel=1e-8, abs=1e-12)


def test_gamma_direct_tends_to_zero_temperature_formula():
    mus = np.array([-1.3, -0.2, 0.3, 1.0, 2.2])
    g0 = A.gamma_xxz(mus, **VALLEY1)
    for temperature, tol in ((1e-3, 1e-6), (1e-4, 1e-8)):  # Sommerfeld: error O(T²)
        g_small_t = A.gamma_xxz(mus, temperature=temperature, method="direct", **VALLEY1)
        np.testing.assert_allclose(g_small_t, g0, atol=tol)
    # and convolution == direct at a low temperature, across the band edges ±0.05
    mus = np.array([-0.06, 0.0, 0.05, 0.08, 1.05])
    np.testing.assert_allclose(
        A.gamma_xxz(mus, temperature=0.03, **VALLEY1),
        A.gamma_xxz(mus, temperature=0.03, method="direct", **VALLEY1), rtol=1e-8, atol=1e-13)


def test_gamma_symmetries():
    mus = np.linspace(-4, 4, 81)
    g = A.gamma_xxz(mus, **VALLEY1)
    assert np.abs(g).max() > 0.1
    flipped = A.gamma_xxz(mus, **{**VALLEY1, "vprime": -1.0})
    np.testing.assert_allclose(flipped, -g, atol=1e-13)
    np.testing.assert_array_equal(A.gamma_xxz(mus, **{**VALLEY1, "vprime": 0.0}), 0.0)
    # particle-hole (μ → −μ with k → −k, band ± → ∓): γ is even in μ
    np.testing.assert_allclose(A.gamma_xxz(-mus, **VALLEY1), g, atol=1e-13)
    # only m v'² matters; v and τ drop out (the brute force above uses v ≠ 1, τ = −1)
    for scale in (4.0, 0.37):
        other = A.gamma_xxz(mus, delta=1.0, vprime=1.0 / math.sqrt(scale), mass=1.9 * scale)
        np.testing.assert_allclose(other, g, rtol=1e-10, atol=1e-14)
    # global gap [−0.05, 0.05] of the two-valley model: exactly zero at T = 0, not just below it
    gap = np.array([-0.0499, -0.02, 0.0, 0.03, 0.0499])
    np.testing.assert_array_equal(A.valley_sum(A.gamma_xxz, gap, VALLEYS), 0.0)
    assert abs(A.valley_sum(A.gamma_xxz, 0.06, VALLEYS)) > 0


def test_gamma_mass_scaling_bruteforce():
    """m v'² fixed, m and v' split differently: the brute force (not only the reduction) agrees."""
    params = dict(delta=1.0, vprime=2.0, mass=1.9 / 4, v=1.0, tau=1)
    brute = _gamma_bruteforce(0.4, 0.25, params)
    assert brute == pytest.approx(A.gamma_xxz(0.4, temperature=0.25, **VALLEY1), rel=1e-8)


# ------------------------------------------------------------------------------------------
# 2. <G>
# ------------------------------------------------------------------------------------------

def _avg_qmd_bruteforce(omegas, eta, params, window, mu=0.0, temperature=0.0, both_pairs=False,
                        n_rho=30, n_kz=40):
    """Eq. (13) taken literally at λ = −ω with δ → L_η: Σ over ordered pairs (v,c) [and (c,v)]
    of ∫d³k/8π³ (G_zxx,m + G_zxx,n)(f_m − f_n) ω_mn² L_η(ω_mn + ω)."""
    grid = _cylinder(*window, n_rho, n_kz)

    def f(eps, vel, g):
        x = vel[:, 0, 2] * g[:, 0, 0, 0] + vel[:, 1, 2] * g[:, 1, 0, 0]
        w_vc = eps[:, 0] - eps[:, 1]
        df_vc = _fermi(eps[:, 0], mu, temperature) - _fermi(eps[:, 1], mu, temperature)
        out = []
        for w in omegas:
            val = x * df_vc * w_vc**2 * _lorentz(w_vc + w, eta)
            if both_pairs:
                val = val + x * (-df_vc) * w_vc**2 * _lorentz(-w_vc + w, eta)
            out.append(val)
        return np.stack(out, 1)

    return _integrate(f, grid, params) / (8 * math.pi**3)


WINDOW = (4.0, -3.0, 2.5)  # (ρ_max, kz_min, kz_max): asymmetric, cuts the shells in all ways


@pytest.mark.parametrize("mu, temperature, both_pairs", [
    (0.0, 0.0, False), (0.0, 0.0, True), (0.5, 0.1, False)])
def test_avg_qmd_broadened_matches_bruteforce(mu, temperature, both_pairs):
    params = dict(VALLEY1, v=1.3, tau=-1)
    omegas = [1.0, 2.2, 3.5, 6.0]
    brute = _avg_qmd_bruteforce(omegas, 0.3, params, WINDOW, mu, temperature, both_pairs)
    kw = dict(eta=0.3, window=WINDOW, both_pairs=both_pairs, **params)
    if temperature or mu:
        kw.update(mu=mu, temperature=temperature)
    red = A.avg_qmd_broadened(omegas, **kw)
    np.testing.assert_allclose(red, brute, rtol=1e-7, atol=1e-12)


def test_avg_qmd_closed_form_and_general_form():
    w = np.array([1.5, 2.0, 2.001, 2.5, 3.7, 8.0])
    closed = A.avg_qmd_insulator(w, **VALLEY1)
    assert closed[0] == 0.0 and closed[1] == 0.0 and closed[2] > 0
    np.testing.assert_allclose(A.avg_qmd(w, mu=0.0, **VALLEY1), closed, rtol=1e-13)
    np.testing.assert_allclose(A.avg_qmd(w, mu=0.0, temperature=2e-3, **VALLEY1), closed, rtol=1e-12)
    # the closed form is the k_z integral v'/(8π²) ∫ (E² + d_z²)/E dk_z (numerically)
    from scipy.integrate import quad
    for omega in (2.3, 5.0):
        e = omega / 2
        k = math.sqrt(2 * 1.9 * (e - 1))
        num = quad(lambda q: (e * e + (1 + q * q / 3.8) ** 2) / e, -k, k, epsrel=1e-13)[0]
        assert A.avg_qmd_insulator(omega, **VALLEY1) == pytest.approx(num / (8 * math.pi**2), rel=1e-12)
    # Pauli blocking: a metal at T = 0 (closed form on intervals) vs small T (quad)
    np.testing.assert_allclose(A.avg_qmd(w, mu=0.7, **VALLEY1),
                               A.avg_qmd(w, mu=0.7, temperature=1e-5, **VALLEY1), atol=1e-10)
    assert A.avg_qmd(2.5, mu=0.7, **VALLEY1) < A.avg_qmd_insulator(2.5, **VALLEY1)


def test_avg_qmd_near_edge_and_symmetries():
    for eps in (1e-3, 1e-4, 1e-5):
        for p in VALLEYS:
            w = 2 * p["delta"] * (1 + eps)
            ratio = A.avg_qmd_insulator(w, **p) / A.avg_qmd_near_edge(w, **p)
            assert abs(ratio - 1) < 3 * eps
    w = np.linspace(0.2, 8, 40)
    g = A.avg_qmd_insulator(w, **VALLEY1)
    np.testing.assert_allclose(A.avg_qmd_insulator(w, **{**VALLEY1, "vprime": -1.0}), -g)
    np.testing.assert_array_equal(A.avg_qmd_insulator(w, **{**VALLEY1, "vprime": 0.0}), 0.0)
    np.testing.assert_allclose(A.avg_qmd_insulator(w, delta=1.0, vprime=0.5, mass=7.6), g, rtol=1e-13)
    # the T- or I-symmetric partner valley (same Δ, opposite v') cancels it
    partner = dict(VALLEY1, vprime=-1.0, tau=-1)
    np.testing.assert_allclose(A.valley_sum(A.avg_qmd_insulator, w, [VALLEY1, partner]), 0.0, atol=1e-15)


def test_avg_qmd_broadened_needs_a_cutoff():
    with pytest.raises(ValueError, match="diverges"):
        A.avg_qmd_broadened(3.0, eta=0.02, **VALLEY1)
    assert A.avg_qmd_broadened(3.0, eta=0.02, both_pairs=True, **VALLEY1) > 0


# ------------------------------------------------------------------------------------------
# 3. Delta n
# ------------------------------------------------------------------------------------------

def _delta_n_braces_bruteforce(omegas, eta, params, window, n_rho=30, n_kz=40):
    """Δn/α = 4π ∫d³k/8π³ {2Δf x³/(x²−z²)² (G^z_c + G^z_v) − 2Δf x/(x²−z²) (G^C_c + G^C_v)},
    insulator: f' = 0, Δf = f_c − f_v = −1; G^z = v_z g_xx, G^C = v_x g_xz."""
    grid = _cylinder(*window, n_rho, n_kz)

    def f(eps, vel, g):
        x = eps[:, 1] - eps[:, 0]
        gz = (vel[:, :, 2] * g[:, :, 0, 0]).sum(1)
        gc = (vel[:, :, 0] * g[:, :, 0, 2]).sum(1)
        out = []
        for w in omegas:
            z2 = complex(w, eta) ** 2
            out.append(-2 * x**3 / (x * x - z2) ** 2 * gz + 2 * x / (x * x - z2) * gc)
        return np.stack(out, 1)

    return 4 * math.pi / (8 * math.pi**3) * _integrate(f, grid, params)


def test_delta_n_matches_3d_braces():
    params = dict(VALLEY1, v=1.3, tau=-1)
    omegas = [0.5, 2.0, 3.5, 6.0]
    brute = _delta_n_braces_bruteforce(omegas, 0.3, params, WINDOW, n_rho=45, n_kz=70)
    red = A.delta_n_insulator(omegas, eta=0.3, window=WINDOW, **params)
    np.testing.assert_allclose(red, brute, rtol=1e-7, atol=1e-12)
    # the window matters: the untruncated value differs (slowly converging x^{-3/2} tail)
    assert abs(A.delta_n_insulator(0.5, eta=0.3, **params) - red[0]) > 0.1


def _kubo_sum(zs, q, params, grid, chunk=300_000):
    """Σ_{m≠n} ∫d³k/8π³ (f_m − f_n) |⟨m,k−q/2|v̂_x|n,k+q/2⟩|²/(ε_m(k−q/2) − ε_n(k+q/2) + z)."""
    kx, ky, kz, w = grid
    vx = params.get("v", 1.0) * params.get("tau", 1) * PAULI[0]
    occupation = np.array([1.0, 0.0])  # insulator: valence full
    total = np.zeros(len(zs), complex)
    for start in range(0, kx.size, chunk):
        sl = slice(start, start + chunk)
        e1, u1 = np.linalg.eigh(_hamiltonian(kx[sl], ky[sl], kz[sl] - q / 2, **params))
        e2, u2 = np.linalg.eigh(_hamiltonian(kx[sl], ky[sl], kz[sl] + q / 2, **params))
        mat = np.conj(np.swapaxes(u1, -1, -2)) @ vx @ u2
        for m, n in ((0, 1), (1, 0)):
            weight = w[sl] * (occupation[m] - occupation[n]) * np.abs(mat[:, m, n]) ** 2
            for i, z in enumerate(zs):
                total[i] += np.sum(weight / (e1[:, m] - e2[:, n] + z))
    return total / (8 * math.pi**3)


def test_delta_n_braces_equal_kubo_eq11_and_eq4():
    """Eq. (11) differentiated in q_z (central differences, Richardson) then Eq. (4):
    Δn/α = 2πi [s(z) − s*(−z*)], σ_xxz = e² s, s(z) = −(1/iz) ∂_q Σ∫..., same window."""
    params = dict(VALLEY1)
    omegas = np.array([0.5, 2.0, 3.5])
    eta = 0.3
    grid = _cylinder(*WINDOW, 30, 40, n_phi=8)
    zs = np.concatenate([omegas + 1j * eta, -omegas + 1j * eta])

    def derivative(h):
        return (_kubo_sum(zs, h, params, grid) - _kubo_sum(zs, -h, params, grid)) / (2 * h)

    d = (4 * derivative(1e-3) - derivative(2e-3)) / 3
    s = -d / (1j * zs)
    kubo = 2j * math.pi * (s[:3] - np.conj(s[3:]))
    red = A.delta_n_insulator(omegas, eta=eta, window=WINDOW, **params)
    np.testing.assert_allclose(kubo, red, rtol=1e-7, atol=1e-9)


def test_delta_n_quadrature_accuracy_small_eta():
    """Against a plain quad in x (no substitution, dense breakpoints) at η = 0.02."""
    from scipy.integrate import quad
    for omega in (2.0, 3.0):
        eta = 0.02
        z2 = complex(omega, eta) ** 2
        pts = [omega + k * eta for k in np.arange(-300.0, 301.0)]
        pts = [p for p in pts if 2.0 < p < 40.0]
        ref = 0j
        for part, unit in ((np.real, 1.0), (np.imag, 1j)):
            f = lambda x: part(x * A.avg_qmd_insulator(x, **VALLEY1) / (x * x - z2) ** 2)  # noqa: E731
            val = quad(f, 2.0, 40.0, points=pts, limit=5000, epsabs=1e-13, epsrel=1e-12)[0]
            val += quad(f, 40.0, np.inf, limit=500, epsabs=1e-13, epsrel=1e-12)[0]
            ref += unit * val
        ref *= -8 * math.pi
        assert abs(A.delta_n_insulator(omega, eta=eta, **VALLEY1) - ref) < 1e-10


def test_delta_n_eta_to_zero_is_eq13():
    """Im Δn/α → −(2π²/ω) d⟨G⟩/dω as η → 0 (the B term, Eq. 13, with e²/ħ restored)."""
    h = 1e-5
    for p in VALLEYS:
        for omega in (1.5 * p["delta"] + 2.0, 3.0 * p["delta"] + 1.0):
            slope = (A.avg_qmd_insulator(omega + h, **p) - A.avg_qmd_insulator(omega - h, **p)) / (2 * h)
            limit = -2 * math.pi**2 / omega * slope
            errors = [abs(A.delta_n_insulator(omega, eta=eta, **p).imag - limit) for eta in (1e-2, 1e-3)]
            assert abs(limit) > 0.05
            assert errors[1] < 0.2 * errors[0] and errors[1] < 1e-4  # O(η)
    # below the edge there is no absorption: Im Δn = O(η)
    assert abs(A.delta_n_insulator(1.5, eta=1e-4, **VALLEY1).imag) < 1e-4


def test_delta_n_edge_singularity():
    """Δn − Δn_edge stays finite at the peak ω = 2Δ + η/√3 while Δn_edge ~ η^{-1/2}."""
    for p in VALLEYS:
        rest = []
        for eta in (1e-3, 1e-4, 1e-5):
            omega = 2 * p["delta"] + eta / math.sqrt(3)
            dn = A.delta_n_insulator(omega, eta=eta, **p)
            edge = A.delta_n_edge(omega, eta=eta, **p)
            peak = -0.25 * np.sign(p["vprime"]) * math.sqrt(p["mass"] * p["vprime"] ** 2 / (2 * p["delta"])) \
                * math.sqrt(2 * p["delta"] / eta) * math.sqrt(3 * math.sqrt(3) / 8)
            assert edge.imag == pytest.approx(peak, rel=1e-12)
            rest.append(dn - edge)
        assert abs(peak) > 20
        assert abs(rest[2] - rest[1]) < 0.35 * abs(rest[1] - rest[0]) + 1e-9
        assert abs(rest[2] - rest[1]) < 1e-3


def test_delta_n_symmetries_and_cutoff():
    omegas = np.array([0.5, 1.9, 2.05, 3.0, 6.0])
    dn = A.delta_n_insulator(omegas, eta=0.05, **VALLEY1)
    np.testing.assert_allclose(A.delta_n_insulator(omegas, eta=0.05, **{**VALLEY1, "vprime": -1.0}), -dn)
    np.testing.assert_array_equal(A.delta_n_insulator(omegas, eta=0.05, **{**VALLEY1, "vprime": 0.0}), 0.0)
    np.testing.assert_allclose(
        A.delta_n_insulator(omegas, eta=0.05, delta=1.0, vprime=2.0, mass=1.9 / 4, v=3.0), dn, rtol=1e-10)
    # x_max: the tail is ∝ x_max^{-1/2}
    tail = [A.delta_n_insulator(3.0, eta=0.05, **VALLEY1)
            - A.delta_n_insulator(3.0, eta=0.05, x_max=x, **VALLEY1) for x in (400.0, 1600.0)]
    assert abs(tail[0] / tail[1]) == pytest.approx(2.0, rel=0.05)
    # T/I-symmetric two-valley model: zero
    partner = dict(VALLEY1, vprime=-1.0, tau=-1)
    np.testing.assert_allclose(
        A.valley_sum(A.delta_n_insulator, omegas, [VALLEY1, partner], eta=0.05), 0.0, atol=1e-14)
