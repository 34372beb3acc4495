r"""Semi-analytic reductions of the paper's model (Eq. 14): an independent route for the tests.

One valley, ħ = 1: H = v' k_z + v τ k_x σ_x + v k_y σ_y + (Δ + k_z²/2m) σ_z, Δ > 0, m > 0.
Energies (μ, T = k_B T, ω, η, x) share the unit of ``delta`` (Δ₁ = 1 gives the units of docs/conventions.md);
momenta are in the model's own units. Valleys add: see :func:`valley_sum`.

Derivation (each step is checked against brute-force 3-D quadrature in tests/test_analytic.py)
-------------------------------------------------------------------------------------------
0. d = (vτk_x, v k_y, d_z), d_z = Δ + k_z²/2m, E = |d|, ε_± = v'k_z ± E, n̂ = d/E,
   g_ij = ¼ ∂_i n̂·∂_j n̂ (both bands) = ¼[∂_i d·∂_j d/E² − (d·∂_i d)(d·∂_j d)/E⁴]:
       g_xx = (v²/4E²)(1 − v²k_x²/E²),   g_xz = −v² k_x k_z d_z /(4 m E⁴),
       v_x,± = ± v² k_x/E,               v_z,± = v' ± k_z d_z/(m E).
   Hence G_xxz,± = v_x g_xz = ∓ v⁴ k_x² k_z d_z/(4 m E⁵)  (so G_xxz,c + G_xxz,v = 0) and
   G_zxx,c + G_zxx,v = 2 v' g_xx. τ enters only as τ² = 1.
1. In-plane integral at fixed k_z: k_x = (u/v) cos φ, d²k = u du dφ / v², u du = E dE, u² = E² − d_z²:
       ∫d²k v⁴k_x² F(E) = π ∫_{d_z}^∞ dE E (E² − d_z²) F(E),
       ∫d²k g_xx  F(E) = (π/4) ∫_{d_z}^∞ dE (E² + d_z²)/E³ F(E).
   v drops out (a window ρ ≤ ρ_max becomes E ≤ √(v²ρ_max² + d_z²)).
2. γ_xxz (Eq. 10), S ≡ Σ_m ∫d³k G_xxz,m f'_m = Σ_{s=±} (−s)(π/4m) ∫dk_z k_z d_z ∫_{d_z}^∞ dE
   (E² − d_z²)/E⁴ f'(v'k_z + sE).  At T = 0, f' = −δ(ε − μ) fixes E = E_F ≡ s(μ − v'k_z):
       S = Σ_s s (π/4m) ∫dk_z k_z d_z (E_F² − d_z²)/E_F⁴ Θ(E_F − d_z)
   (= −Σ_m∫d³k G δ(ε_m − μ), i.e. the lead's expression, confirmed). The Θ-interval is
   k_z²/2m + s v'k_z + Δ − sμ < 0, k_z ∈ m[−s v' ± √(v'² − 2(Δ − sμ)/m)], open for sμ > Δ − mv'²/2.
   γ/(e²/16π²ħ) = (16π²/8π³) S = (2/π) S = Σ_s (s/2m) ∫dk_z k_z d_z (E_F² − d_z²)/E_F⁴.
   Finite T: γ(μ,T) = ∫dμ' [−∂f/∂ε](μ' − μ) γ(μ', 0), or directly (t = (ε − μ)/T, E = E_F + T t):
       γ/(e²/16π²ħ) = Σ_s (s/8m) ∫dk_z k_z d_z ∫_{(d_z−E_F)/T}^∞ dt sech²(t/2) (E² − d_z²)/E⁴.
   Scaling k_z = √m q shows γ depends on m, v' only via m v'² (and not on v, τ); v' → −v' is
   k_z → −k_z, which flips the sign.
3. ⟨G⟩(ω) (Eq. 13) at λ = −ω < 0: only (m, n) = (v, c), ω_vc = −2E, x = G_zxx,v + G_zxx,c = 2v'g_xx:
       ⟨G⟩(ω) = ∫d³k/(8π³) 2v' g_xx (f_v − f_c) ω² δ(ω − 2E)
              = v'/(8π²) ∫dk_z (E² + d_z²)/E Θ(E − d_z) [f(v'k_z − E) − f(v'k_z + E)],   E = ω/2.
   At T = 0, f_v − f_c = 1 exactly for k_z between (μ − E)/v' and (μ + E)/v'. Insulator
   (f_v − f_c = 1), |k_z| ≤ K = √(2ma), a = E − Δ, using ∫(E² + d_z²)dk_z = P(k_z),
   P(k) = (E² + Δ²)k + Δk³/(3m) + k⁵/(20m²):
       ⟨G⟩(ω) = v'/(8π²) √(2ma) [2E² + 2Δ² + (4/3)Δa + (2/5)a²]/E   (lead's form, confirmed),
   zero for ω < 2Δ. Near the edge ⟨G⟩ ≈ sgn(v') (Δ²/π²) √(mv'²/2Δ) √(ω/2Δ − 1) (the lead's
   form with √(mv'²) read as v'√m, i.e. S(2) = sgn(v')/π²). At large ω, ⟨G⟩ ≈ (3√2 v'/(10π²))
   √m (ω/2)^{3/2} grows: the Lorentzian average ⟨G⟩_η = ∫dx ⟨G⟩(x) L_η(x − ω) diverges like
   √x_max and needs a cut-off (x_max or a k-window).
4. Δn (insulator, f' = 0, Δf = f_c − f_v = −1, ω → z = ω + iη everywhere). The braces
       4π∫d³k/8π³ {2Δf x³/(x² − z²)² (G^z_c + G^z_v) − 2Δf x/(x² − z²) (G^C_c + G^C_v)}
   with G^C_c + G^C_v = 0 and G^z_c + G^z_v = 2v'g_xx, and ∫d³k/8π³ 2v'g_xx F(2E) = ∫dx ⟨G⟩(x)F(x)/x²:
       Δn/α = −8π ∫_{2Δ}^∞ dx x ⟨G⟩(x)/(x² − z²)²   (lead's form, confirmed)
            = −4π ∫ dx ⟨G⟩'(x)/(x² − z²)            (by parts; ⟨G⟩(2Δ) = 0).
   The x-integrand decays as x^{−3/2}: the tail beyond x_max is ∝ x_max^{−1/2}.
   η → 0 (ω ≠ 2Δ): 1/(x² − z²) → P/(x² − ω²) + iπδ(x − ω)/2ω, so
       Im Δn/α = −(2π²/ω) d⟨G⟩/dω,
   which is Eq. (13) with our normalisation (the printed Eq. 13 lacks the factor e²/ħ:
   (iπ e²cμ₀/2ħω) d⟨G⟩/dλ|_{λ=−ω} = −i(2π²α/ω) d⟨G⟩/dω). Near the edge the leading singular term is
       Δn_edge/α = −(sgn v'/4) √(mv'²/2Δ) (1 − z/2Δ)^{−1/2}   (principal branch),
   so Im Δn/α → −(sgn v'/4)√(mv'²/2Δ)/√(ω/2Δ − 1) above the edge; at finite η its peak is
   −(sgn v'/4)√(mv'²/2Δ)√(2Δ/η)·(3√3/8)^{1/2} = −0.2015 sgn(v') √(mv'²/η), at ω = 2Δ + η/√3.

All public functions vectorise over their first argument (a loop over scalar quadratures).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "band_edges",
    "gamma_xxz",
    "avg_qmd_insulator",
    "avg_qmd_near_edge",
    "avg_qmd",
    "avg_qmd_broadened",
    "delta_n_insulator",
    "delta_n_edge",
    "valley_sum",
]

_QUAD = dict(epsabs=1e-15, epsrel=1e-12, limit=400)
_T_CUT = 40.0  # sech²(t/2) < 1e-16 beyond |t| = 40: the Fermi window is cut there


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _check(delta, mass, v=1.0):
    if not delta > 0:
        raise ValueError(f"delta must be > 0 (the reductions assume d_z > 0), got {delta!r}")
    if not mass > 0:
        raise ValueError(f"mass must be > 0, got {mass!r}")
    if not v > 0:
        raise ValueError(f"v must be > 0, got {v!r}")


def _vectorise(func, arg):
    arr = np.asarray(arg, dtype=float)
    out = [func(float(a)) for a in arr.ravel()]
    dtype = complex if any(isinstance(o, complex) for o in out) else float
    res = np.array(out, dtype=dtype).reshape(arr.shape)
    return res[()] if res.ndim == 0 else res


def _quad(f, a, b, points=()):
    """quad on [a, b] with interior breakpoints (sorted, clipped, deduplicated)."""
    if not b > a:
        return 0.0
    from scipy import integrate  # here: defining a model's tail (workflow parsing) needs no SciPy

    pts = sorted({p for p in points if a < p < b})
    edges = [a, *pts, b]
    total = 0.0
    with warnings.catch_warnings():
        # at ~1e-12 requested accuracy quad may report round-off; the results are checked in tests
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi > lo:
                total += integrate.quad(f, lo, hi, **_QUAD)[0]
    return total


def _fermi(eps, mu, temperature):
    if temperature == 0.0:
        return np.where(eps < mu, 1.0, np.where(eps > mu, 0.0, 0.5))
    from scipy import special

    return special.expit(-(eps - mu) / temperature)


def _roots(a2, a1, a0):
    """Real roots (lo, hi) of a2 k² + a1 k + a0 (a2 > 0), or None."""
    disc = a1 * a1 - 4 * a2 * a0
    if disc <= 0:
        return None
    r = math.sqrt(disc)
    return (-a1 - r) / (2 * a2), (-a1 + r) / (2 * a2)


def band_edges(*, delta, vprime, mass, **_):
    """(valence-band top, conduction-band bottom) of one valley: (−Δ + mv'²/2, Δ − mv'²/2).

    Reached at k = (0, 0, ±m v'); units of ``delta``.
    """
    half = 0.5 * mass * vprime**2
    return -delta + half, delta - half


# --------------------------------------------------------------------------------------------
# 1. gamma_xxz (Eq. 10)
# --------------------------------------------------------------------------------------------

def _gamma_t0(mu, delta, vprime, mass):
    """γ_xxz(μ, T=0) / (e²/16π²ħ) = Σ_s (s/2m) ∫dk_z k_z d_z (E_F² − d_z²)/E_F⁴ Θ(E_F − d_z)."""
    total = 0.0
    for s in (1, -1):
        interval = _roots(1 / (2 * mass), s * vprime, delta - s * mu)
        if interval is None:
            continue

        def integrand(kz, s=s):
            dz = delta + kz * kz / (2 * mass)
            ef = s * (mu - vprime * kz)
            return kz * dz * (ef - dz) * (ef + dz) / ef**4

        total += s / (2 * mass) * _quad(integrand, *interval)
    return total


def _gamma_direct(mu, temperature, delta, vprime, mass):
    """Finite-T 2-D reduction: Σ_s (s/8m) ∫dk_z k_z d_z ∫dt sech²(t/2) (E² − d_z²)/E⁴, E = E_F + Tt."""
    T = temperature
    total = 0.0
    for s in (1, -1):
        # k_z where the Fermi window reaches the band: d_z − E_F ≤ 40 T
        outer = _roots(1 / (2 * mass), s * vprime, delta - s * mu - _T_CUT * T)
        if outer is None:
            continue
        inner_zero = _roots(1 / (2 * mass), s * vprime, delta - s * mu)  # d_z = E_F: t0 = 0
        kz_points = []
        for root in inner_zero or ():
            # t0 changes by 1 over Δk_z = T/|∂(d_z − E_F)/∂k_z|: resolve that step explicitly
            width = T / max(abs(root / mass + s * vprime), 1e-300)
            kz_points += [root + f * width for f in (-_T_CUT, -8.0, -2.0, 0.0, 2.0, 8.0, _T_CUT)]

        def outer_integrand(kz, s=s):
            dz = delta + kz * kz / (2 * mass)
            ef = s * (mu - vprime * kz)
            t0 = (dz - ef) / T
            if t0 >= _T_CUT:
                return 0.0
            t0 = max(t0, -_T_CUT)

            def inner(t):
                e = ef + T * t
                return (e - dz) * (e + dz) / e**4 / np.cosh(0.5 * t) ** 2

            pts = [0.0] if t0 < 0.0 else []
            return kz * dz * _quad(inner, t0, _T_CUT, pts)

        total += s / (8 * mass) * _quad(outer_integrand, *outer, kz_points)
    return total


def _gamma_convolution(mu, temperature, delta, vprime, mass):
    """γ(μ, T) = (1/4) ∫dt sech²(t/2) γ(μ + T t, 0), breakpoints at the band edges."""
    T = temperature
    edges = band_edges(delta=delta, vprime=vprime, mass=mass)
    pts = [(e - mu) / T for e in edges] + [0.0]
    return 0.25 * _quad(
        lambda t: _gamma_t0(mu + T * t, delta, vprime, mass) / np.cosh(0.5 * t) ** 2,
        -_T_CUT, _T_CUT, pts,
    )


def gamma_xxz(mu, *, delta, vprime, mass, v=1.0, tau=1, temperature=0.0, method="convolution"):
    """Quadrupolar-current coefficient γ_xxz(μ, T) of Eq. (10) for one valley, in e²/(16π²ħ).

    γ_xxz = (e²/ħ) Σ_m ∫d³k/(8π³) v_x,m g_xz,m f'_m. T = 0: the 1-D k_z integral of step 2 of the
    module docstring, γ/(e²/16π²ħ) = Σ_s (s/2m) ∫dk_z k_z d_z (E_F² − d_z²)/E_F⁴ over the
    Θ-interval (exact limits). T > 0: ``method="convolution"`` (Fermi-window average of the T = 0
    curve) or ``"direct"`` (2-D reduction with f'). ``mu``, ``temperature`` (k_B T) in units of
    ``delta``. Independent of ``v`` and ``tau``; depends on m, v' only through m v'².
    """
    _check(delta, mass, v)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if temperature == 0.0:
        return _vectorise(lambda m_: _gamma_t0(m_, delta, vprime, mass), mu)
    if method == "convolution":
        return _vectorise(lambda m_: _gamma_convolution(m_, temperature, delta, vprime, mass), mu)
    if method == "direct":
        return _vectorise(lambda m_: _gamma_direct(m_, temperature, delta, vprime, mass), mu)
    raise ValueError(f"method must be 'convolution' or 'direct', got {method!r}")


# --------------------------------------------------------------------------------------------
# 2. averaged quantum metric dipole <G>(omega) (Eq. 13)
# --------------------------------------------------------------------------------------------

def _p_antiderivative(k, e, delta, mass):
    """P(k) = ∫_0^k (E² + d_z²) dk_z = (E² + Δ²)k + Δk³/(3m) + k⁵/(20m²)."""
    return (e * e + delta * delta) * k + delta * k**3 / (3 * mass) + k**5 / (20 * mass * mass)


def _intersect(intervals, lo, hi):
    out = []
    for a, b in intervals:
        a2, b2 = max(a, lo), min(b, hi)
        if b2 > a2:
            out.append((a2, b2))
    return out


def _kz_intervals(e, delta, mass, window, v):
    """k_z intervals on which the shell E = |d| (fixed E) exists inside the window.

    Shell: d_z ≤ E ⇔ |k_z| ≤ √(2m(E − Δ)). Window (ρ_max, kz_min, kz_max): kz_min ≤ k_z ≤ kz_max
    and v²ρ² = E² − d_z² ≤ v²ρ_max² ⇔ d_z ≥ √(E² − v²ρ_max²).
    """
    a = e - delta
    if a <= 0:
        return []
    kmax = math.sqrt(2 * mass * a)
    intervals = [(-kmax, kmax)]
    if window is None:
        return intervals
    rho_max, kz_lo, kz_hi = window
    intervals = _intersect(intervals, kz_lo, kz_hi)
    vr = v * rho_max
    if e > vr:
        dz_min = math.sqrt(e * e - vr * vr)
        if dz_min > delta:
            kin = math.sqrt(2 * mass * (dz_min - delta))
            intervals = _intersect(intervals, -math.inf, -kin) + _intersect(intervals, kin, math.inf)
    return intervals


def _gbar_closed(x, delta, vprime, mass, window=None, v=1.0, pauli=None):
    """⟨G⟩(x) with f_v − f_c = 1 on the k_z set (intersected with ``pauli`` if given)."""
    e = 0.5 * x
    intervals = _kz_intervals(e, delta, mass, window, v)
    if pauli is not None:
        intervals = _intersect(intervals, *pauli)
    tot = sum(_p_antiderivative(b, e, delta, mass) - _p_antiderivative(a, e, delta, mass)
              for a, b in intervals)
    return vprime / (8 * math.pi**2) * tot / e if tot else 0.0


def _gbar_general(x, delta, vprime, mass, mu, temperature, window=None, v=1.0):
    """⟨G⟩(x) = v'/(8π²E) ∫dk_z (E² + d_z²)[f(v'k_z − E) − f(v'k_z + E)] over the shell."""
    if vprime == 0.0:
        return 0.0
    e = 0.5 * x
    if temperature == 0.0:
        # f_v − f_c = 1 exactly between (μ − E)/v' and (μ + E)/v'
        a, b = sorted(((mu - e) / vprime, (mu + e) / vprime))
        return _gbar_closed(x, delta, vprime, mass, window, v, pauli=(a, b))
    intervals = _kz_intervals(e, delta, mass, window, v)
    width = temperature / abs(vprime)  # the Fermi steps in k_z: resolve them explicitly
    pts = [c + f * width for c in ((mu - e) / vprime, (mu + e) / vprime)
           for f in (-_T_CUT, -8.0, -2.0, 0.0, 2.0, 8.0, _T_CUT)]

    def integrand(kz):
        dz = delta + kz * kz / (2 * mass)
        ez = vprime * kz
        return (e * e + dz * dz) * (_fermi(ez - e, mu, temperature) - _fermi(ez + e, mu, temperature))

    tot = sum(_quad(integrand, a, b, pts) for a, b in intervals)
    return vprime / (8 * math.pi**2) * tot / e


def avg_qmd_insulator(omega, *, delta, vprime, mass, v=1.0, tau=1):
    """Averaged quantum metric dipole ⟨G⟩(ω) of Eq. (13), insulator (μ in the gap, T = 0), in Δ².

    ⟨G⟩ = ⟨G_zxx,v + G_zxx,c⟩ at λ = −ω = (v'/8π²) √(2ma) [2E² + 2Δ² + (4/3)Δa + (2/5)a²]/E with
    E = ω/2, a = E − Δ; zero for ω ≤ 2Δ. Independent of v and τ.
    """
    _check(delta, mass, v)

    def one(w):
        e = 0.5 * w
        a = e - delta
        if a <= 0:
            return 0.0
        return (vprime / (8 * math.pi**2) * math.sqrt(2 * mass * a)
                * (2 * e * e + 2 * delta**2 + 4 / 3 * delta * a + 0.4 * a * a) / e)

    return _vectorise(one, omega)


def avg_qmd_near_edge(omega, *, delta, vprime, mass, **_):
    """Leading edge term of ⟨G⟩ (Δ²): sgn(v') (Δ²/π²) √(m v'²/2Δ) √(ω/2Δ − 1) for ω ≥ 2Δ, else 0."""
    w = np.asarray(omega, dtype=float)
    res = (np.sign(vprime) * delta**2 / math.pi**2 * math.sqrt(mass * vprime**2 / (2 * delta))
           * np.sqrt(np.clip(w / (2 * delta) - 1, 0.0, None)))
    return res[()] if res.ndim == 0 else res


def avg_qmd(omega, *, delta, vprime, mass, mu, temperature=0.0, v=1.0, tau=1, window=None):
    """⟨G⟩(ω) of Eq. (13) for any μ and T (Pauli blocking), in Δ².

    ⟨G⟩ = (v'/8π²) ∫dk_z (E² + d_z²)/E Θ(E − d_z) [f(v'k_z − E) − f(v'k_z + E)], E = ω/2 (closed
    form at T = 0, quad over k_z at T > 0). ``window=(rho_max, kz_min, kz_max)`` restricts k to the
    cylinder ρ ≤ rho_max, kz_min ≤ k_z ≤ kz_max (the grid code's window; then v matters).
    """
    _check(delta, mass, v)
    return _vectorise(
        lambda w: _gbar_general(w, delta, vprime, mass, mu, temperature, window, v), omega)


def _x_support(delta, mass, window, v, x_max):
    """Upper end of the x = 2E support (window and x_max), and the kinks of ⟨G⟩ inside it."""
    top = math.inf if x_max is None else float(x_max)
    kinks = []
    if window is not None:
        rho_max, kz_lo, kz_hi = window
        vr = v * rho_max
        dz_b = [delta + k * k / (2 * mass) for k in (kz_lo, kz_hi)]
        top = min(top, 2 * math.sqrt(vr * vr + max(dz_b) ** 2))
        kinks += [2 * d for d in dz_b]
        kinks += [2 * math.sqrt(vr * vr + d * d) for d in dz_b + [delta]]
    return top, kinks


def _edge_points(center, eta, lo, hi):
    pts = [center]
    for f in (1, 3, 10, 30, 100, 300, 1000):
        pts += [center - f * eta, center + f * eta]
    return [p for p in pts if lo < p < hi]


def _integrate_x(func, lo, hi, points):
    """∫_lo^hi func(x) dx for func ~ √(x − lo) at lo, using x = lo + s²; hi may be ∞.

    For hi = ∞ the part beyond X₁ uses u = x^{−1/2} (func ~ x^{−3/2} there).
    """
    if not hi > lo:
        return 0.0
    points = sorted(p for p in points if lo < p < hi)
    if math.isinf(hi):
        x1 = max([lo + 10.0] + [2 * p for p in points])
        tail = _quad(lambda u: func(u**-2) * 2 * u**-3, 0.0, x1**-0.5)
        hi = x1
    else:
        tail = 0.0
    s_pts = [math.sqrt(p - lo) for p in points]
    body = _quad(lambda s: func(lo + s * s) * 2 * s, 0.0, math.sqrt(hi - lo), s_pts)
    return body + tail


def avg_qmd_broadened(omega, *, eta, delta, vprime, mass, v=1.0, tau=1, mu=None,
                      temperature=0.0, x_max=None, window=None, both_pairs=False):
    """η-broadened ⟨G⟩_η(ω) = ∫dx ⟨G⟩(x) L_η(x − ω), L_η(y) = (η/π)/(y² + η²), in Δ².

    ``mu=None``: insulator (closed form); else the general T, μ form of :func:`avg_qmd`. The
    integral diverges as √x_max (⟨G⟩ ~ x^{3/2}), so ``x_max`` or ``window`` is required, unless
    ``both_pairs=True``: then the (c, v) pair of Eq. (13) is kept too, ⟨x⟩(λ) being odd in λ,
    ⟨G⟩_η = ∫dx ⟨G⟩(x)[L_η(x − ω) − L_η(x + ω)], which converges.
    """
    _check(delta, mass, v)
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta!r}")
    top, kinks = _x_support(delta, mass, window, v, x_max)
    if math.isinf(top) and not both_pairs:
        raise ValueError("the Lorentzian average of <G> diverges (<G> ~ x^{3/2}): give x_max or window")
    if mu is None:
        gfun = lambda x: _gbar_closed(x, delta, vprime, mass, window, v)  # noqa: E731
    else:
        gfun = lambda x: _gbar_general(x, delta, vprime, mass, mu, temperature, window, v)  # noqa: E731

    def one(w):
        if both_pairs:
            kern = lambda x: eta / math.pi * (1 / ((x - w) ** 2 + eta**2) - 1 / ((x + w) ** 2 + eta**2))  # noqa: E731
        else:
            kern = lambda x: eta / math.pi / ((x - w) ** 2 + eta**2)  # noqa: E731
        pts = kinks + _edge_points(w, eta, 2 * delta, top)
        return _integrate_x(lambda x: gfun(x) * kern(x), 2 * delta, top, pts)

    return _vectorise(one, omega)


# --------------------------------------------------------------------------------------------
# 3. NDD Delta n (Eqs. 4, 11, 12), insulator
# --------------------------------------------------------------------------------------------

def delta_n_insulator(omega, *, eta, delta, vprime, mass, v=1.0, tau=1, x_max=None, window=None):
    """NDD Δn(ω) of Eq. (4) for the insulator, in units of α (complex; ω → z = ω + iη everywhere).

    Δn/α = −8π ∫_{2Δ}^{x_max} dx x ⟨G⟩(x)/(x² − z²)², with ⟨G⟩ of :func:`avg_qmd_insulator`
    (reduction of Eq. 12 with f' = 0, f_c − f_v = −1, G_xxz,c + G_xxz,v = 0). ``x_max``: keep only
    transitions x = 2E ≤ x_max (default ∞); ``window=(rho_max, kz_min, kz_max)``: keep only k in
    that cylinder (as a k-grid does). ``omega``, ``eta``, ``x_max`` in units of ``delta``.
    """
    _check(delta, mass, v)
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta!r}")
    top, kinks = _x_support(delta, mass, window, v, x_max)

    def one(w):
        z2 = complex(w, eta) ** 2

        def kernel(x):
            return x / (x * x - z2) ** 2

        def re(x):
            g = _gbar_closed(x, delta, vprime, mass, window, v)
            return g * kernel(x).real if g else 0.0

        def im(x):
            g = _gbar_closed(x, delta, vprime, mass, window, v)
            return g * kernel(x).imag if g else 0.0

        pts = kinks + _edge_points(w, eta, 2 * delta, top)
        val = complex(_integrate_x(re, 2 * delta, top, pts), _integrate_x(im, 2 * delta, top, pts))
        return -8 * math.pi * val

    return _vectorise(one, omega)


def delta_n_edge(omega, *, eta, delta, vprime, mass, **_):
    """Leading band-edge singular term of Δn/α (complex): −(sgn v'/4)√(mv'²/2Δ) (1 − z/2Δ)^{−1/2}.

    From ⟨G⟩ ≈ sgn(v')(Δ²/π²)√(mv'²/2Δ)√(x/2Δ − 1) in Δn/α = −4π∫dx ⟨G⟩'(x)/(x² − z²); principal
    square root, z = ω + iη. Δn − Δn_edge stays finite at the edge as η → 0.
    """
    z = np.asarray(omega, dtype=float) + 1j * eta
    res = (-np.sign(vprime) / 4 * math.sqrt(mass * vprime**2 / (2 * delta))
           / np.sqrt(1 - z / (2 * delta)))
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------------------------
# 4. valleys
# --------------------------------------------------------------------------------------------

_VALLEY_KEYS = ("delta", "vprime", "mass", "v", "tau")


def valley_sum(func, arg, valleys, **common):
    """Σ over valleys of ``func(arg, **common, **valley)`` (valleys add; e.g. two-valley γ, ⟨G⟩, Δn).

    ``valleys``: iterable of dicts with keys among delta, vprime, mass, v, tau (a valley's keys
    override ``common``, e.g. a common ``mass``); other keys are ignored.
    """
    total = 0.0
    for valley in valleys:
        params = {**common, **{k: valley[k] for k in _VALLEY_KEYS if k in valley}}
        total = total + func(arg, **params)
    return total
