"""Nonreciprocal directional dichroism Δn(ω) and the averaged quantum metric dipole ⟨G⟩(ω).

Conventions (docs/conventions.md): ħ = 1, ω → z = ω + iη everywhere, Δn in units of α (e²cμ₀/ħ = 4πα),
⟨G⟩ in units of Δ².

**Eq. (4) with the Kubo formula (11).** With z everywhere, σ_xx(z, q) − σ*_xx(−z*, q) turns every
resonant denominator of Eq. (11) into the even kernel 2/(X² − z²), and

    Δn/α = 4π ∂_q K(q)|_{q=0},   K(q) = Σ_{m≠n} ∫ d³k/(8π³) N_mn(k, q) / (X_mn(k, q)² − z²),

with q ∥ ẑ, X_mn = ε_{m,k−q} − ε_{n,k}, N_mn = (f_{m,k−q} − f_{n,k}) |⟨u_{m,k−q}|∂_xH|u_{n,k}⟩|²
(the current vertex ∂_xH is taken at the midpoint k − q/2; for Eq. 14 and its lattice version it
does not depend on k_z, so Eq. (11) at finite q is unambiguous). Hence

    ∂_q [N/(X² − z²)] = N′/(X² − z²) − 2XX′N/(X² − z²)².

:func:`kubo_weights` evaluates N′ and X′ by central differences in q of the eigenstates at k ± q;
occupation factors are differentiated analytically (f′ at T > 0, tetrahedron δ-weights at T = 0).

**Eq. (12)** (two bands c, v; x = ε_c − ε_v, Δf = f_c − f_v, G^z = G_zxx = v_z g_xx,
G^C = G_xxz = v_x g_xz). The same q-derivative, done by hand for two bands (ordered pairs
(m, n) = (c, v), (v, c) summed), gives pointwise in k

    Δn/α = 4π ∫ d³k/(8π³) [ −x²(G^z_c f′_c + G^z_v f′_v)/(x² − z²)
                             + 2Δf x³ (G^z_c + G^z_v)/(x² − z²)² − 2Δf x (G^C_c + G^C_v)/(x² − z²) ],

the paper's A, B, C terms with ω → z (their principal parts and δ-functions are its η → 0 limit).
The interband sum of Eq. (11) is what Eq. (12) holds; the intraband (Drude-like) term
Δn_intra/α = 4π ∫ d³k/(8π³) Σ_m v_z v_x² f′_m / z², which vanishes in insulators, is reported
separately.

**Any light direction q̂ and polarisation ê** (``ndd.q_direction``, ``ndd.polarization``):
q ∥ q̂, vertex ê·∂H, and in Eq. (12) G^z → v_q̂ g_êê, G^C → v_ê g_êq̂ (x → ê, z → q̂ throughout).

**Any number of bands.** The same derivative per ordered pair (m, n) (:mod:`qmdipole.band_pairs`)
gives N′ = (f_m − f_n) M′ − f′_m v_q̂,m M and X′ = −v_q̂,m with M = ε_mn² g^{mn}_êê (the pair metric)
and M′ = −2 ε_mn v_ê,n g^{mn}_êq̂ plus three-band terms; the two-band Eq. (12) is its case of two
bands. Δn is reported per pair {m < n} (both orders; ``*_delta_n_pair``, summing to the total
minus any closed-form tail), each with its error estimate. Two-band tables use the tabulated ε, v,
g; more bands evaluate H, ∂H of the model per slab.

**Eq. (13).** ⟨G⟩(ω) = ⟨G_zxx,m + G_zxx,n⟩(λ = −ω) = ∫ d³k/(8π³) (G^z_c + G^z_v)(f_v − f_c) x² δ(x − ω),
a spectral density in the transition energy x = ε_c − ε_v, integrated exactly (no broadening)
with the linear tetrahedron method.

**High-energy transitions.** A continuum model's transitions are unbounded and, per valley, the
part of Re Δn above a cut-off X falls only as X^(−1/2). ``transition_cutoff="auto"`` therefore
splits the x axis with a C^∞ partition of unity: the k-grid carries w(x)·(its deposits), on both
routes, and the model's closed-form tail (:meth:`~qmdipole.models.Model.transition_tail`, where
f_v − f_c = 1 exactly) adds −8π ∫ dx (1 − w) x ⟨G⟩(x)/(x² − z²)², Eq. (12) with f′ = 0,
Δf = −1, G^C_c + G^C_v = 0. A number X is a hard cut-off instead (transitions x > X left out).

**Cost O(N_k + N_ω).** Every k-point deposits its weights on a uniform grid of transition energies
(spacing η/``bins_per_eta``) with 4-point Lagrange interpolation weights (exact for cubics); the
kernels are then applied once per bin. The error of this step is that of cubic interpolation of
kernels of width η, ≈ (h/η)⁴ ~ 1e-4 relative at 8 bins per η, common to both routes.

**Error estimates.** Every curve NAME (each pair's too) has NAME_error (absolute, same units): the reduction runs
again on the table's half-density subgrid (:func:`qmdipole.kgrid.half_density_table`; same
spectral bins, same taper, same exact tail, which thus adds no error) and
:func:`qmdipole.errors.estimate` turns the difference into a bound. ⟨G⟩ (tetrahedra, O(h²)): order 2,
safety :data:`qmdipole.errors.SAFETY`, spread over AVG_WINDOW subgrid steps w of the transition
energy. Δn (point quadrature of η-wide kernels): the observed order between grid and subgrid is
3–5 while the subgrid does not resolve the kernels (points_per_eta ≤ 1.5) and ~2 once it does
(points_per_eta ~3); the estimate uses the asymptotic order 2 (a bound in both regimes, loose in
the first), safety DN_SAFETY, spread over max(w, DN_WINDOW η) since the error has the kernel's
tails. The spectral-bin error is common to both grids, so Richardson cannot see it: it is added
as BIN_ERROR (bin width/η)⁴ max|Δn| of the grid's share.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from . import errors, units
from .band_pairs import along, pair_derivatives
from .fermi import fermi_dirac, fermi_surface_weights, grid_mirror
from .geometry import hermitian_eigh, sandwich
from .io import open_dataset
from .kgrid import KGrid, half_density_table, slabs
from .tetrahedron import fermi_surface_integral

DN_PREFACTOR = 4 * np.pi / (8 * np.pi**3)  # 4π ∫ d³k/(8π³), Δn in units of α
AVG_PREFACTOR = 1 / (8 * np.pi**3)
TABLE_VARIABLES = ("energy", "velocity", "quantum_metric", "weight")
Q_DIRECTION, POLARIZATION = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)  # the paper's geometry
PERPENDICULAR_TOL = 1e-6  # |cos| of the angle between polarisation and q accepted as ⊥

# Error estimates (module docstring, "Error estimates"); calibrated against qmdipole.analytic on
# Eq. 14 (the paper's and random insulating parameter sets, η in [0.02, 0.1], kgrid.n = [60, 4,
# 120], points_per_eta 1, 1.5, 2, 3): the worst true error / (Richardson, spread) was 1.3 for ⟨G⟩
# and 1.1 for Δn with these windows. Not covered: ω within ~1e-4 of a band edge (the √ onset of
# ⟨G⟩ lies below both grids' lowest transition there, so neither sees it)
AVG_WINDOW = 4  # ⟨G⟩: spread over |ω′ − ω| <= AVG_WINDOW w, w the subgrid's transition-energy step
DN_WINDOW = 8  # Δn: spread over |ω′ − ω| <= max(w, DN_WINDOW η): its error has the kernel's tails
DN_SAFETY = 4.0
BIN_ERROR = 1.0  # spectral-bin term: BIN_ERROR (bin width/η)⁴ max|Δn| (measured 0.4-0.5)
AVG_ERROR = (
    f"Richardson: {errors.SAFETY:g} x max over |omega' - omega| <= {AVG_WINDOW} error_window of "
    f"|G_h - G_2h| / (2^{errors.ORDER} - 1), G_2h on the half-density subgrid of the same table "
    "(every other node of each axis but the azimuth of a cylindrical grid), error_window = its "
    "largest step of the transition energy between neighbouring nodes"
)
DN_ERROR = (
    f"Richardson: {DN_SAFETY:g} x max over |omega' - omega| <= max(error_window, {DN_WINDOW} eta) of "
    f"|Dn_h - Dn_2h| / (2^{errors.ORDER} - 1), Dn_2h on the half-density subgrid of the same table "
    "(the same spectral bins and high-energy tail), plus the spectral-bin interpolation error "
    f"{BIN_ERROR:g} (spectral_bin_width/eta)^4 max|Dn| of the k-grid's share"
)


class SpectrumError(ValueError):
    """The requested spectrum cannot be computed faithfully on this table."""


class SpectralAccumulator:
    """Weights deposited on a uniform grid of transition energies x (cubic Lagrange spreading),
    in ``channels`` separate sums (one per band pair).

    Transitions above ``top`` are left out; with ``taper = (start, end)`` (end ≤ top) every
    deposit is multiplied by :func:`partition_of_unity` w(x), the k-grid's share of x.
    """

    def __init__(self, top: float, spacing: float, names, taper=None, channels: int = 1):
        self.spacing, self.top, self.taper = spacing, top, taper
        self.nodes = np.arange(-2, int(np.ceil(top / spacing)) + 4) * spacing
        self.sums = {name: np.zeros((channels, len(self.nodes))) for name in names}

    def add(self, x, channel: int = 0, **values):
        """Deposit ``values`` at transition energies ``x`` (times w(x) if tapered) in ``channel``."""
        x = np.asarray(x).ravel()
        keep = x <= self.top
        share = 1.0 if self.taper is None else partition_of_unity(x[keep], *self.taper)
        values = {name: np.asarray(value).ravel()[keep] * share for name, value in values.items()}
        s = x[keep] / self.spacing + 2.0
        j = np.floor(s).astype(np.int64)
        t = s - j
        stencil = (
            -t * (t - 1) * (t - 2) / 6,
            (t + 1) * (t - 1) * (t - 2) / 2,
            -(t + 1) * t * (t - 2) / 2,
            (t + 1) * t * (t - 1) / 6,
        )
        size = len(self.nodes)
        for name, value in values.items():
            for offset, weight in zip((-1, 0, 1, 2), stencil):
                self.sums[name][channel] += np.bincount(j + offset, weights=value * weight,
                                                        minlength=size)


def partition_of_unity(x, start, end):
    """C^∞ step w(x): 1 for x ≤ start, 0 for x ≥ end; w = ψ(1 − t)/(ψ(1 − t) + ψ(t)) between,
    t = (x − start)/(end − start), ψ(t) = exp(−1/t) for t > 0 (every derivative vanishes at both ends).
    """
    t = np.clip((np.asarray(x, float) - start) / (end - start), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        rising = np.where(t > 0, np.exp(-1 / np.where(t > 0, t, 1.0)), 0.0)
        falling = np.where(t < 1, np.exp(-1 / np.where(t < 1, 1 - t, 1.0)), 0.0)
    return falling / (falling + rising)


def tail_delta_n(tail, omega, eta, nodes=64):
    """Δn/α of the transitions the k-grid leaves to ``tail`` (a :class:`~qmdipole.models.TransitionTail`):

        −8π ∫_{start}^∞ dx (1 − w(x)) x ⟨G⟩(x)/(x² − z²)²,   z = ω + iη,

    Eq. (12) with f′ = 0, f_c − f_v = −1 and G^C_c + G^C_v = 0. Gauss–Legendre with ``nodes``
    nodes on (start, end) and on u = x^(−1/2) ∈ (0, end^(−1/2)), where x⟨G⟩/(x² − z²)² dx is smooth
    (⟨G⟩ ~ x^(3/2)); 1 − w vanishes to all orders at start ≥ ω + 20η, so a resonance just below
    the split costs no accuracy (64 nodes: ~1e-12 relative or better).
    """
    t, weight = np.polynomial.legendre.leggauss(nodes)
    start, end = tail.start, tail.end
    x_body = start + 0.5 * (end - start) * (t + 1)
    w_body = 0.5 * (end - start) * weight * (1 - partition_of_unity(x_body, start, end))
    u_max = end**-0.5
    u = 0.5 * u_max * (t + 1)
    x_far, w_far = u**-2, 0.5 * u_max * weight * 2 * u**-3
    x, w = np.concatenate([x_body, x_far]), np.concatenate([w_body, w_far])
    z2 = (np.asarray(omega, float) + 1j * eta)[:, None] ** 2
    return -8 * np.pi * ((w * x * tail.avg_qmd(x))[None, :] / (x**2 - z2) ** 2).sum(axis=1)


def apply_kernels(acc: SpectralAccumulator, omega, eta, chunk=64):
    """Δn/α per channel (channel, ω) from the deposited single- and double-pole weights."""
    x2 = acc.nodes**2
    out = np.empty((len(acc.sums["single"]), len(omega)), complex)
    for start in range(0, len(omega), chunk):
        z2 = (omega[start:start + chunk] + 1j * eta)[:, None] ** 2
        single = 1.0 / (x2[None, :] - z2)
        out[:, start:start + chunk] = (acc.sums["single"] @ single.T
                                       + acc.sums["double"] @ (single**2).T)
    return DN_PREFACTOR * out


def light_geometry(q_direction=Q_DIRECTION, polarization=POLARIZATION):
    """Unit vectors ``(q̂, ê)`` of ``ndd.q_direction`` and ``ndd.polarization``.

    Each must be three finite numbers, not all zero; ê must be ⊥ q̂ to |cos| ≤ PERPENDICULAR_TOL
    (its residual component along q̂ is then projected out, so that ê·q̂ = 0 to round-off).
    """
    unit = {}
    for key, value in (("q_direction", q_direction), ("polarization", polarization)):
        vector = np.asarray(value, float) if np.ndim(value) == 1 and len(value) == 3 else None
        if vector is None or not np.all(np.isfinite(vector)) or not np.any(vector):
            raise SpectrumError(f"ndd.{key} must be three finite numbers, not all zero; "
                                f"got {value!r}")
        unit[key] = vector / np.linalg.norm(vector)
    q_hat, e_hat = unit["q_direction"], unit["polarization"]
    cosine = float(q_hat @ e_hat)
    if abs(cosine) > PERPENDICULAR_TOL:
        raise SpectrumError(
            f"ndd.polarization {list(polarization)} is not perpendicular to ndd.q_direction "
            f"{list(q_direction)}: angle {np.degrees(np.arccos(np.clip(cosine, -1, 1))):.6g} "
            f"degrees (dot product of the unit vectors {cosine:.3g}); light is transverse")
    if cosine:
        e_hat = e_hat - cosine * q_hat
        e_hat /= np.linalg.norm(e_hat)
    return q_hat, e_hat


def band_pairs(n_bands: int):
    """The band pairs {m, n}, m < n, in the order of every ``pair`` axis."""
    return [(m, n) for m in range(n_bands) for n in range(m + 1, n_bands)]


def pair_deposits(energy, x_prime, m, m_prime, weight, fprime, occupation):
    """Per-k deposits of ∂_q[N_mn/(X_mn² − z²)] at q = 0 for every ordered pair (m, n), m ≠ n:

        N′ = w (f_m − f_n) M′ + f′_m X′ M   (``single``, on 1/(X² − z²)),
        −2XX′N = −2 X X′ w (f_m − f_n) M   (``double``, on 1/(X² − z²)²),

    X = ε_m − ε_n. ``energy``, ``x_prime``, ``fprime``, ``occupation`` (nb, N); ``m``,
    ``m_prime`` (nb, nb, N); ``weight`` (N,). Returns a list of (channel, |X|, deposits), the
    channel being the index of {m, n} in :func:`band_pairs`.
    """
    out = []
    for channel, pair in enumerate(band_pairs(len(energy))):
        for a, b in (pair, pair[::-1]):
            x = energy[a] - energy[b]
            delta_f = weight * (occupation[a] - occupation[b])
            single = delta_f * m_prime[a, b] + fprime[a] * x_prime[a] * m[a, b]
            out.append((channel, np.abs(x),
                        {"single": single, "double": -2 * x * x_prime[a] * delta_f * m[a, b]}))
    return out


def table_pair_derivatives(velocity, metric, energy, q_hat, e_hat):
    """X′, M, M′ (:func:`pair_deposits`) of a two-band table (band 0 = v, 1 = c):
    X′_m = −v^d_m, M_mn = x² g_ee, M′_mn = −2 ε_mn v^e_n g_ed (:mod:`qmdipole.band_pairs`; with
    two bands the pair metric is either band's metric)."""
    x = energy[1] - energy[0]
    g_e = along(metric, e_hat, 1)  # (band, j, N)
    g_ee, g_ed = along(g_e, e_hat, 1), along(g_e, q_hat, 1)
    v_e = along(velocity, e_hat, 1)
    zero = np.zeros_like(x)
    m = x**2 * np.stack([[zero, g_ee[0]], [g_ee[1], zero]])
    m_prime = 2 * x * np.stack([[zero, v_e[1] * g_ed[1]], [-v_e[0] * g_ed[0], zero]])
    return -along(velocity, q_hat, 1), m, m_prime


def average_dipole_density(energy, velocity, metric, mu, temperature, q_hat, e_hat):
    """(G_c + G_v)(f_v − f_c) x², G_m = v^d_m g_ee (G_zxx of the paper's geometry), the integrand
    of Eq. (13) at λ = −x (two bands)."""
    occupation = fermi_dirac(energy, mu, temperature)
    x = energy[1] - energy[0]
    dipole = along(velocity[0] + velocity[1], q_hat, 0) * along(along(metric[0], e_hat, 0), e_hat, 0)
    return dipole * (occupation[0] - occupation[1]) * x**2


def kubo_weights(model, kx, ky, kz, weight, fprime, mu, temperature, dq, q_hat=Q_DIRECTION,
                 e_hat=POLARIZATION):
    """Per-k deposits of the q-derivative of Eq. (11) (all ordered band pairs m ≠ n), q along q̂,
    vertex ê·∂H, by central differences in q of the eigenstates at k ∓ dq q̂.

    ``kx, ky, kz, weight`` have one shape S, ``fprime`` (nb,) + S. Returns
    :func:`pair_deposits`: (channel, |X|, {"single": N′, "double": −2XX′N}) per ordered pair.
    """
    k = np.stack([np.ravel(c) for c in (kx, ky, kz)])
    weight, fprime = np.ravel(weight), np.reshape(fprime, (len(fprime), -1))
    q_hat = np.asarray(q_hat, float)[:, None]

    def states(shift):  # eigenpairs at k − q q̂
        return hermitian_eigh(model.hamiltonian(*(k - shift * q_hat)))

    def vertex(shift):  # ê·∂H at the midpoint k − q q̂/2, as (a, b, N)
        gradient = along(model.hamiltonian_gradient(*(k - shift / 2 * q_hat)), e_hat, 0)
        return np.moveaxis(gradient, 0, -1)

    (e0, u0), (ep, up), (em, um) = states(0.0), states(dq), states(-dq)
    m_plus = np.abs(sandwich(up, vertex(dq), u0)) ** 2  # |⟨m,k−q|ê·∂H|n,k⟩|², (m, n, N)
    m_minus = np.abs(sandwich(um, vertex(-dq), u0)) ** 2
    m_zero = 0.5 * (m_plus + m_minus)  # = M(q = 0) + O(dq²)
    m_prime = (m_plus - m_minus) / (2 * dq)
    x_prime = (ep - em) / (2 * dq)  # ∂_q ε_{m,k−q}
    return pair_deposits(e0, x_prime, m_zero, m_prime, weight, fprime,
                         fermi_dirac(e0, mu, temperature))


def check_window(grid: KGrid, energy, omega_max, eta, mu, temperature, top, label):
    """Refuse spectra whose transitions or Fermi surface are cut off by the k-window.

    ``top``: the highest transition energy the k-grid must hold (None: no bound); ``label`` says
    where it comes from, for the messages.
    """
    if top is not None and omega_max + 10 * eta > top:
        raise SpectrumError(
            f"ndd.omega reaches {omega_max:g}, within 10 eta of the highest transition kept, "
            f"{label}: raise ndd.transition_cutoff or lower ndd.omega.stop"
        )
    boundary = grid.boundary()
    if not boundary.any():
        return
    x_edge = (energy[-1] - energy[0])[boundary]
    if top is not None and x_edge.min() < top:
        raise SpectrumError(
            f"{label} but the tabulated k-window holds transitions only "
            f"up to {x_edge.min():.4g} at its edge: transitions would be cut off by the grid, not "
            "by the cutoff; enlarge kgrid.window (or use window: auto) or lower the cutoff"
        )
    reach = 20 * temperature
    for band, e in enumerate(energy):
        edge = e[boundary]
        if ((edge > mu - reach) & (edge < mu + reach)).any() or (edge.min() < mu < edge.max()):
            raise SpectrumError(
                f"ndd.mu = {mu:g}: band {band} crosses the chemical potential at the edge of the "
                "tabulated k-window; enlarge kgrid.window"
            )


def resolve_cutoff(grid: KGrid, model, transition_cutoff, *, mu, temperature, omega_max, eta):
    """What ``ndd.transition_cutoff`` means on this grid: ``(top, tail, label)``.

    A number X is a hard cut-off (transitions x > X left out, ``tail`` None). ``"auto"`` is the
    model's converged limit: no cut-off on a Brillouin zone (transitions are bounded; ``top``
    None); on a finite k-window the model's :meth:`~qmdipole.models.Model.transition_tail`
    takes over the high transitions (``top`` = its end), and a model without one is refused.
    """
    if transition_cutoff == "auto":
        if grid.kind == "brillouin_zone":
            return None, None, "ndd.transition_cutoff: auto (no cut-off)"
        tail_of = getattr(model, "transition_tail", None)
        tail = tail_of(mu=mu, temperature=temperature, omega_max=omega_max, eta=eta) if callable(
            tail_of) else None
        if tail is None:
            raise SpectrumError(
                f"ndd.transition_cutoff is 'auto' but the model ({getattr(model, 'name', model)!r}) "
                f"on a finite {grid.kind} k-window offers no closed-form high-energy tail "
                "(transition_tail): set ndd.transition_cutoff to a number, an explicit UV cut-off "
                "on the transition energy (the result then depends on it)"
            )
        return tail.end, tail, (f"ndd.transition_cutoff: auto (the grid's share of the "
                                f"transitions ends at {tail.end:.4g})")
    if isinstance(transition_cutoff, bool) or not isinstance(transition_cutoff, (int, float)) or \
            not transition_cutoff > 0:
        raise SpectrumError(f"ndd.transition_cutoff must be 'auto' or a positive number, "
                            f"got {transition_cutoff!r}")
    cutoff = float(transition_cutoff)
    return cutoff, None, f"ndd.transition_cutoff = {cutoff:g}"


def deposit(ds: xr.Dataset, model, *, omega, mu, temperature, kubo, dq, top, spacing, taper,
            slab_points, q_hat, e_hat):
    """One pass over a table: ∫ d³k (Eq. 13 integrand) δ(x − ω) at ``omega`` (tetrahedra; two
    bands), the per-pair :class:`SpectralAccumulator` of Eq. (12) generalised (two bands from the
    table, more bands from the model's H and ∂H),
    that of Eq. (11) (None unless ``kubo``), and Σ_k f′ v_q v_e² of the intraband term
    (prefactors left out)."""
    grid = KGrid.from_dataset(ds)
    energy = ds["energy"].values
    n_bands = energy.shape[0]
    n_pairs = len(band_pairs(n_bands))
    fprime = np.stack([fermi_surface_weights(grid, e, mu, temperature) for e in energy])
    x_all = energy[-1] - energy[0]
    names = ("single", "double")
    geometric = SpectralAccumulator(top, spacing, names, taper, n_pairs)
    kubo_acc = SpectralAccumulator(top, spacing, names, taper, n_pairs) if kubo else None
    avg = np.zeros(len(omega))
    intraband = 0.0
    mirror = grid_mirror(grid)
    for index, sub, owned in slabs(grid, slab_points):
        slab = ds.isel(k1=index)
        e, v, fp = energy[:, index], slab["velocity"].values, fprime[:, index]
        if n_bands == 2:
            metric = slab["quantum_metric"].values
            if len(index) > 1:  # Eq. (13): δ(x − ω) on the slab's tetrahedra
                density = sub.jacobian() * average_dipole_density(e, v, metric, mu, temperature,
                                                                  q_hat, e_hat)
                avg += fermi_surface_integral(x_all[index], density[None], sub.axes, omega,
                                              sub.periods, mirror=mirror)[0]
        w, fp, v, e = slab["weight"].values[owned], fp[:, owned], v[:, :, owned], e[:, owned]
        intraband += np.sum(fp * along(v, q_hat, 1) * along(v, e_hat, 1) ** 2)
        k = [slab[c].values[owned] for c in ("kx", "ky", "kz")]
        if n_bands == 2:
            x_prime, m, m_prime = table_pair_derivatives(v, metric[:, :, :, owned], e, q_hat, e_hat)
        else:
            e_model, x_prime, m, m_prime = pair_derivatives(model, *k, q_hat, e_hat)
            e = e_model.reshape(e.shape)
            x_prime, m, m_prime = (a.reshape(a.shape[:-1] + e.shape[1:])
                                   for a in (x_prime, m, m_prime))
        occupation = fermi_dirac(e, mu, temperature)
        for channel, x_pair, deposits in pair_deposits(e, x_prime, m, m_prime, w, fp, occupation):
            geometric.add(x_pair, channel, **deposits)
        if kubo:
            for channel, x_pair, deposits in kubo_weights(model, *k, w, fp, mu, temperature, dq,
                                                          q_hat, e_hat):
                kubo_acc.add(x_pair, channel, **deposits)
    return avg, geometric, kubo_acc, intraband


def spectrum_from_table(table, model, *, omega, eta, mu=0.0, temperature=0.0, kubo=True,
                        dq=1e-4, transition_cutoff="auto", bins_per_eta=8,
                        slab_points=2**18, q_direction=Q_DIRECTION,
                        polarization=POLARIZATION) -> xr.Dataset:
    """Δn(ω) (Eq. 12 generalised, and Eq. 11 if ``kubo``) for light along ``q_direction``
    polarised along ``polarization``, per band pair and summed, and ⟨G⟩(ω) (Eq. 13; two
    bands) of one valley's table.

    ``transition_cutoff``: ``"auto"`` (default) gives every transition (see :func:`resolve_cutoff`):
    the continuum model's Re Δn converges only as X^(−1/2) in a cut-off X, so the k-grid carries
    w(x)·(its deposits), w a C^∞ step from 1 at the tail's start to 0 at its end, and
    :func:`tail_delta_n` adds the rest in closed form (the paper's geometry only). A number X is
    an explicit UV cut-off: transitions x > X are left out. The k-window must hold every
    transition the grid deposits. ``dq``: the Kubo route's step in q.
    """
    omega = np.asarray(omega, float)
    if omega.ndim != 1 or omega.size < 1 or np.any(np.diff(omega) <= 0) or omega[0] < 0:
        raise SpectrumError("ndd.omega must be increasing, non-negative photon energies")
    if not eta > 0:
        raise SpectrumError(f"ndd.eta must be > 0, got {eta!r}")
    if temperature < 0:
        raise SpectrumError(f"ndd.temperature must be >= 0, got {temperature!r}")
    q_hat, e_hat = light_geometry(q_direction, polarization)
    ds = table if isinstance(table, xr.Dataset) else open_dataset(
        table, required=TABLE_VARIABLES, what="geometry table")
    grid = KGrid.from_dataset(ds)
    energy = ds["energy"].values
    n_bands = energy.shape[0]
    top, tail, label = resolve_cutoff(grid, model, transition_cutoff, mu=mu, temperature=temperature,
                                      omega_max=omega.max(), eta=eta)
    default_geometry = np.array_equal(q_hat, Q_DIRECTION) and np.array_equal(e_hat, POLARIZATION)
    if tail is not None and not default_geometry:
        raise SpectrumError(
            f"{label}: the model's closed-form high-energy tail holds only light along z polarised "
            f"along x, not ndd.q_direction {list(q_direction)}, ndd.polarization "
            f"{list(polarization)}: set ndd.transition_cutoff to a number")
    check_window(grid, energy, omega.max(), eta, mu, temperature, top, label)
    x_all = energy[-1] - energy[0]
    spacing = eta / bins_per_eta
    top = float(x_all.max()) if top is None else top  # no cut-off: every transition of the grid
    taper = None if tail is None else (tail.start, tail.end)
    options = dict(omega=omega, mu=mu, temperature=temperature, kubo=kubo, dq=dq, top=top,
                   spacing=spacing, taper=taper, slab_points=slab_points, q_hat=q_hat,
                   e_hat=e_hat)
    avg, geometric, kubo_acc, intraband = deposit(ds, model, **options)
    coarse = deposit(half_density_table(ds), model, **options)  # the error estimates' subgrid

    z = omega + 1j * eta
    high = 0.0 if tail is None else tail_delta_n(tail, omega, eta)
    step = errors.subgrid_resolution(grid, x_all[None], omega.min() - 5 * eta,
                                     omega.max() + 5 * eta)
    width, bins = max(step, DN_WINDOW * eta), (spacing / eta) ** 4
    curves = {}  # name: (value, error, quantity, long name, error method)
    if n_bands == 2:
        avg_error = errors.estimate(omega, avg, omega, coarse[0], AVG_WINDOW * step)
        axes = "" if default_geometry else " (z = q_direction, x = polarization)"
        curves["avg_qmd"] = (AVG_PREFACTOR * avg, AVG_PREFACTOR * avg_error, units.ENERGY_SQUARED,
                             "averaged quantum metric dipole <G_zxx,m + G_zxx,n> at lambda = -omega "
                             f"(Eq. 13){axes}", AVG_ERROR)
    routes = {"": (geometric, coarse[1], "interband (Eqs. 4, 12)"),
              "_kubo": (kubo_acc, coarse[2], "from the Kubo formula (Eqs. 4, 11)")}
    if not kubo:
        del routes["_kubo"]
    delta_n, pairs = {}, {}
    for suffix, (fine_acc, coarse_acc, what) in routes.items():
        fine_pairs, coarse_pairs = apply_kernels(fine_acc, omega, eta), apply_kernels(coarse_acc, omega, eta)
        binned = fine_pairs.sum(axis=0)
        delta_n[suffix] = binned + high
        errors_of = delta_n_error(binned, coarse_pairs.sum(axis=0), omega, width, bins)
        for part, take in (("re", np.real), ("im", np.imag)):
            curves[f"{part}_delta_n{suffix}"] = (take(delta_n[suffix]), errors_of[part], units.ALPHA,
                                                 f"{part.capitalize()} Delta n, {what}", DN_ERROR)
        if suffix == "":
            pairs = {part: (take(fine_pairs), [delta_n_error(f, c, omega, width, bins)[part]
                                               for f, c in zip(fine_pairs, coarse_pairs)])
                     for part, take in (("re", np.real), ("im", np.imag))}
    drude = DN_PREFACTOR * intraband / z**2
    variables = {name: ("omega", value, {**quantity.attrs(), "long_name": long_name})
                 for name, (value, _, quantity, long_name, _) in curves.items()}
    for name, (value, error, quantity, long_name, method) in curves.items():
        variables[f"{name}_error"] = ("omega", error, errors.attributes(
            long_name, quantity, method, errors.relative_to_peak(error, value)))
    remainder = "" if tail is None else " minus the closed-form high-energy tail"
    for part, (value, error) in pairs.items():
        long_name = (f"{part.capitalize()} Delta n of the band pair (band_m, band_n), both orders "
                     f"(Eqs. 4, 12 per pair); the pairs sum to {part}_delta_n{remainder}")
        error = np.array(error)
        variables[f"{part}_delta_n_pair"] = (("pair", "omega"), value,
                                             {**units.ALPHA.attrs(), "long_name": long_name})
        variables[f"{part}_delta_n_pair_error"] = (("pair", "omega"), error, errors.attributes(
            long_name, units.ALPHA, DN_ERROR, errors.relative_to_peak(error, value)))
    for part, take in (("re", np.real), ("im", np.imag)):
        variables[f"{part}_delta_n_intraband"] = ("omega", take(drude), {
            **units.ALPHA.attrs(),
            "long_name": f"{part.capitalize()} Delta n, intraband (Drude-like) term, not part of Eq. 12"})

    pair_index = np.array(band_pairs(n_bands)).reshape(-1, 2)
    out = xr.Dataset(
        variables,
        coords={"omega": ("omega", omega, {**units.ENERGY.attrs(), "long_name": "photon energy hbar omega"}),
                "pair": ("pair", np.arange(len(pair_index)), {**units.NUMBER, "long_name": "band pair index"}),
                "band_m": ("pair", pair_index[:, 0], {**units.NUMBER, "long_name": "lower band m of the pair (0-based, ascending energy)"}),
                "band_n": ("pair", pair_index[:, 1], {**units.NUMBER, "long_name": "upper band n of the pair (0-based, ascending energy)"})},
    )
    out["optical_gap"] = ((), float(x_all.min()), {**units.ENERGY.attrs(), "long_name": "minimum transition energy on the grid"})
    out.attrs.update({"eta": eta, "mu": mu, "temperature": temperature,
                      "q_direction": q_hat.tolist(), "polarization": e_hat.tolist(),
                      "transition_cutoff": "none" if transition_cutoff == "auto" else top,
                      "spectral_bin_width": spacing,
                      "error_window": step, "error_safety_factor_avg_qmd": errors.SAFETY,
                      "error_safety_factor_delta_n": DN_SAFETY,
                      "transition_step_over_eta": transition_step(grid, x_all, omega, eta) / eta})
    if tail is None:
        out.attrs["high_energy_tail"] = ("none: every transition is on the k-grid"
                                         if transition_cutoff == "auto" else
                                         "none: transitions above transition_cutoff are left out")
    else:
        out.attrs.update({
            "high_energy_tail": "closed form (insulator <G>, Eq. 12) beyond high_energy_tail_start; "
                                "the k-grid's share tapers smoothly from 1 there to 0 at "
                                "high_energy_tail_end",
            "high_energy_tail_start": float(tail.start), "high_energy_tail_end": float(tail.end),
            "high_energy_tail_share": float(np.abs(high).max() / max(np.abs(delta_n[""]).max(), 1e-300)),
        })
    if kubo:
        scale = np.abs(delta_n[""]).max()
        out.attrs["kubo_max_relative_difference"] = float(
            np.abs(delta_n[""] - delta_n["_kubo"]).max() / scale) if scale else 0.0
    ratio = out.attrs["transition_step_over_eta"]
    if ratio > 1.0:
        warnings.warn(f"the k-grid resolves transition energies only to {ratio:.2g} eta in the "
                      "spectral window; raise kgrid.points_per_eta or eta", stacklevel=2)
    return out


def delta_n_error(fine, coarse, omega, width, bins) -> dict:
    """Absolute errors ``{"re": …, "im": …}`` of the k-grid's share ``fine`` of Δn, from its value
    ``coarse`` on the half-density subgrid (same spectral bins), spread over |ω′ − ω| <= ``width``;
    ``bins`` = (bin width/η)⁴ scales the spectral-bin term, common to both grids."""
    binned = BIN_ERROR * bins * np.abs(fine).max(initial=0.0)
    return {part: errors.estimate(omega, take(fine), omega, take(coarse), width,
                                  safety=DN_SAFETY) + binned
            for part, take in (("re", np.real), ("im", np.imag))}


def transition_step(grid: KGrid, x, omega, eta):
    """Largest change of the transition energy between neighbouring nodes inside the window."""
    lo, hi = omega.min() - 5 * eta, omega.max() + 5 * eta
    inside = (x >= lo) & (x <= hi)
    step = 0.0
    for axis in range(3):
        dx = np.abs(np.diff(x, axis=axis))
        both = inside.take(range(x.shape[axis] - 1), axis=axis) & inside.take(range(1, x.shape[axis]), axis=axis)
        if both.any():
            step = max(step, float(dx[both].max()))
    return step
