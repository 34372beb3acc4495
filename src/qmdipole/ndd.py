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
with the linear tetrahedron method. For more bands, the same per band pair {m < n} with the pair
metric (:func:`pair_dipole_density`): ⟨G⟩ = Σ_pairs ∫ (v_q̂,m + v_q̂,n) g^{mn}_êê (f_m − f_n)
ε_mn² δ(ε_n − ε_m − ω), reported per pair (``avg_qmd_pair``) and summed (Δn's three-band
terms have no part in it).

**High-energy transitions.** A continuum model's transitions are unbounded and, per valley, the
part of Re Δn above a cut-off X falls only as X^(−1/2). ``transition_cutoff="auto"`` therefore
splits the x axis with a C^∞ partition of unity: the k-grid carries w(x)·(its deposits), on both
routes, and the model's closed-form tail (:meth:`~qmdipole.models.Model.transition_tail`, where
f_v − f_c = 1 exactly) adds −8π ∫ dx (1 − w) x ⟨G⟩(x)/(x² − z²)², Eq. (12) with f′ = 0,
Δf = −1, G^C_c + G^C_v = 0. A number X is a hard cut-off instead (transitions x > X left out).

**Spectral densities (both routes).** Each band pair's interband parts are spectral densities
S(x) = ∫ d³k s(k) δ(X(k) − x), s the ``single`` and ``double`` parts of :func:`pair_deposits`,
integrated against the kernels as

    Δn/α = 4π/(8π³) ∫ dx w(x) [S₁(x)/(x² − z²) + S₂(x)/(x² − z²)²]

(w the taper of the high-energy split, else 1) with the kernel w K interpolated linearly between
spectral levels x_j spaced η/``bins_per_eta`` (BINS_PER_ETA) from 0 to ω_max + TAIL_REACH η and
COARSE_LEVELS times wider above it (without a taper, wider still far out: ~(x − ω_max)/
FAR_RESOLUTION), up to the highest transition kept: Σ_j w(x_j) K(x_j) W_j
with W_j = ∫ d³k s(k) φ_j(X(k)), φ_j the hat functions of the levels. The linear tetrahedron
method gives W_j exactly for X and s linear on each tetrahedron (O(h²) in the k-spacing h,
whether or not h resolves η; :meth:`qmdipole.tetrahedron.TetrahedronGrid.integrals` with
``hat``): a tetrahedron deposits its whole integral on the hats it meets, however narrow its
range of X. (Sampling S at the x_j instead, by the δ-function integrals of each tetrahedron at
the levels, aliased near the absorption onsets, where the cells around a minimum of X span
energy ranges far below the spacing: an error that was not a smooth function of the spacing,
0.14 % of the peak at 32 levels per η in a flat valley, 0.13 % at 16, and that the
grid-vs-subgrid comparison cannot see.) The interpolation error of the kernel, c s² + O(s⁴) in
the spacing s (~0.055 (s/η)² of the peak on seeded Eq. 14 sets, insulators and metals), is
common to every grid; :func:`spectral_extrapolation` removes its s² part, from the same weights
on the hats of every other level (Richardson in s), and estimates the rest from those of every
fourth: at the default 8 levels per η, 1-4e-5 of the peak (against 128 per η; linear
interpolation at 16 per η, twice the levels: 1.5-2e-4). The Fermi-surface terms f′X′M are weights
at the nodes near μ (tetrahedron δ-weights of the Fermi surface, a 2-D set; at T > 0 their
thermal average, :func:`qmdipole.fermi.fermi_surface_weights`): they stay point deposits,
spread on the uniform nodes with 4-point Lagrange weights (error ~ (spacing/η)⁴), and, unlike
the densities, need the grid to resolve η in x on the Fermi surface (metals only; a warning
says when it does not). Cost O(N_k · (1 + Δx_cell/spacing) + N_ω N_x) per route.

**Richardson extrapolation and error estimates.** The reduction runs on the table, on its
half-density subgrid and on that one's (:func:`qmdipole.kgrid.half_density_table`; spacings h, 2h,
4h; the same spectral levels, taper and exact tail, which thus add no error). Δn (both routes,
each pair) is the Richardson extrapolation E_h = Δn_h + (Δn_h − Δn_2h)/3 of the tetrahedron
method's O(h²) error (:func:`qmdipole.errors.extrapolate`; on the default configuration 0.2 % of
the peak where Δn_h alone errs by ~1.8 %, mostly within η of the band edges). Every curve NAME
(each pair's too) has NAME_error (absolute, same units), from :func:`qmdipole.errors.estimate`:
for Δn, |E_h − E_2h|/(2^p − 1) (E_2h the extrapolation of 2h and 4h; the extrapolations were
observed to converge with order p = DN_ORDER = 3-3.5, and with DN_ORDER_METAL in a metal, whose
Fermi surface puts kinks in the densities) with safety DN_SAFETY, spread over
max(w, DN_WINDOW η), plus the spectral term of :func:`spectral_extrapolation` (grid h), invisible
to Richardson in k, and at least DN_FLOOR of the curve's peak.

**Occupations.** The factor f_m − f_n of each pair is a step across the Fermi surface at T = 0
and one of width ~T at T > 0; its node values interpolated on the tetrahedra converge only as
O(h) where it cuts a section (at T > 0 until the cells resolve T: a metal at T = 0.002 on the
default grid settings, ⟨G⟩ 0.12 % of its peak off, 0.012 % integrated as follows). So the
densities and ⟨G⟩ are taken unblocked and each section integrates f(ε_m) − f(ε_n) of the
linearly interpolated ε_m, ε_n exactly where the cells do not resolve T (T = 0: clipped to
ε_m < μ < ε_n; :func:`occupation_clips`, :mod:`qmdipole.kernels`), O(h²) again.

⟨G⟩ is the grid's value (a δ-function integral: its error oscillates with the level
set's position among the nodes, which extrapolation does not remove) with the order-2 estimate
from 2h, safety :data:`qmdipole.errors.SAFETY`, spread over AVG_WINDOW subgrid steps w of the
transition energy.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import xarray as xr

from . import errors, units
from .models import Model
from .geometry import hermitian_eigh
from .integrand import BandSlab, PairDerivatives, over_slabs, table_slabs
from .io import open_dataset
from .kernels import THERMAL_REACH, pole_sums, squared_matrix_elements
from .kgrid import KGrid, half_density_table

DN_PREFACTOR = 4 * np.pi / (8 * np.pi**3)  # 4π ∫ d³k/(8π³), Δn in units of α
AVG_PREFACTOR = 1 / (8 * np.pi**3)
TABLE_VARIABLES = ("energy", "velocity", "quantum_metric", "weight")
Q_DIRECTION, POLARIZATION = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)  # the paper's geometry
PERPENDICULAR_TOL = 1e-6  # |cos| of the angle between polarisation and q accepted as ⊥

# Error estimates (module docstring, "Error estimates"); calibrated against qmdipole.analytic on
# Eq. 14 (the paper's and random insulating parameter sets, η in [0.02, 0.1], kgrid.n = [60, 4,
# 120] and the default [120, 4, 240], points_per_eta 1.5, 32 spectral levels per η): the worst
# true error / estimate was 0.54 for Δn (extrapolated) and up to 5 for ⟨G⟩ before its safety
# factor, with these windows. Not covered: ω within ~1e-4 of a band edge (the √ onset of ⟨G⟩ lies below both grids'
# lowest transition there, so neither sees it)
AVG_WINDOW = 4  # ⟨G⟩: spread over |ω′ − ω| <= AVG_WINDOW w, w the subgrid's transition-energy step
DN_WINDOW = 4  # Δn: spread over |ω′ − ω| <= max(w, DN_WINDOW η): the kernels spread its error
DN_ORDER = 3  # Δn: order of the extrapolation's error (observed 3-3.5 between the 2h and h ones)
# ... in a metal (a band within 20 T of μ): the Fermi surface's kinks in the densities leave the
# extrapolation O(h²) (T = 0 metal, set 5 of the tests' metallic_sets: a grid twice as fine moved
# Δn by 1.2x the order-3 estimate at the Pauli-blocking edge)
DN_ORDER_METAL = 2
# ... never below DN_FLOOR of the curve's peak: where Δn is tiny (below an onset, ~1e-7 of its
# peak) the grids' changes are not O(h^p) (one such metal: 2x the estimate there)
DN_FLOOR = 1e-5
DN_SAFETY = 1.3
# Spectral levels above ω_max + TAIL_REACH η are every COARSE_LEVELS-th node (η apart at 8 per η):
# the kernels vary there on the scale x − ω >= 20 η, where their interpolation, extrapolated in
# the spacing, moves Δn by < 5e-5 of its peak (spectral_extrapolation covers it), while the
# tetrahedra deposit on 8x fewer levels there
TAIL_REACH, COARSE_LEVELS = 20.0, 8
# ... and, where no high-energy taper needs even levels (a Brillouin zone, a hard cut-off), the
# gaps then grow with the distance: COARSE_LEVELS + (j − j_0) // FAR_RESOLUTION nodes at node j
# (j_0 the first coarse one), ~(x − ω_max)/FAR_RESOLUTION far out, where the kernels vary on the
# scale x − ω_max: the levels up to a transition far above every ω grow only logarithmically in
# number (lattice kind, 96³, η = 0.01, transitions up to 2.2 ω_max: Δn + ⟨G⟩ 1.5x faster).
# Measured against even gaps of one node: up to 2.3e-5 of the peak, 0.08 of the estimate. Inside
# a taper, whose curvature the kernels' interpolation must follow too, growing gaps (1/40 of the
# distance) moved Re Δn by 1.3e-4 of the peak on the default configuration: there they stay even
FAR_RESOLUTION = 80
# Spectral levels per η: the kernels' linear interpolation, extrapolated in the spacing
# (spectral_extrapolation), errs by 1-4e-5 of the peak at 8 per η (6 per η: 6-14e-5; against 128
# per η, seeded Eq. 14 sets, a flat valley's onset included), while the cost of the densities
# grows with it (linear interpolation alone needed 16 per η for 2e-4: the densities cost 1.7x)
BINS_PER_ETA = 8
# spectral_extrapolation: its safety factor on |E_s − E_2s|/15 (measured: 2-8x the error at 8
# per η; the error exceeds it by at most 2e-6 of the peak, where the difference changes sign)
SPECTRAL_SAFETY = 2.0
AVG_ERROR = (
    f"Richardson: {errors.SAFETY:g} x max over |omega' - omega| <= {AVG_WINDOW} error_window of "
    f"|G_h - G_2h| / (2^{errors.ORDER} - 1), G_2h on the half-density subgrid of the same table "
    "(every other node of each axis but the azimuth of a cylindrical grid), error_window = its "
    "largest step of the transition energy between neighbouring nodes"
)
DN_ERROR = (
    f"Richardson: Dn = E_h = Dn_h + (Dn_h - Dn_2h) / (2^{errors.ORDER} - 1), Dn_2h on the "
    "half-density subgrid of the same table (every other node of each axis but the azimuth of a "
    "cylindrical grid; the same spectral nodes and high-energy tail); its error "
    f"{DN_SAFETY:g} x max over |omega' - omega| <= max(error_window, {DN_WINDOW} eta) of "
    f"|E_h - E_2h| / (2^p - 1) (p = {DN_ORDER}, in a metal {DN_ORDER_METAL}), E_2h the same "
    "extrapolation of the subgrid and its own "
    "half-density subgrid, plus the error of the kernels' interpolation between the spectral "
    "levels (spectral_bin_width apart; extrapolated, E_s = Dn_s + (Dn_s - Dn_2s) / 3, Dn_2s with "
    f"the kernels interpolated on every other level), {SPECTRAL_SAFETY:g} x max over the same "
    f"{DN_WINDOW} eta of |E_s - E_2s| / 15 of the grid h, E_2s from every other and every "
    "fourth level, plus "
    f"{DN_FLOOR:g} max|Dn|"
)


class SpectrumError(ValueError):
    """The requested spectrum cannot be computed faithfully on this table."""


class SpectralAccumulator:
    """Spectral weights of Δn on uniform transition energies x_j = j·spacing, j = 0 … top/spacing
    (``nodes``; two guard nodes either side for the spreading), in ``channels`` separate sums
    (one per band pair) of the kernels 1/(x² − z²) (``single``) and 1/(x² − z²)² (``double``).

    :meth:`add_density` takes the weights W_j = ∫ dx S(x) φ_j(x) of spectral densities
    S(x) = ∫ d³k s(k) δ(X(k) − x) on the hat functions φ_j of the ``levels`` (so that
    Σ_j W_j K(x_j) = ∫ S K_lin, K_lin the linear interpolant of the kernel K on the levels, the
    part x > top left out); :meth:`add` spreads point deposits at energies x with cubic Lagrange
    weights on the nodes (transitions above ``top`` left out). With ``taper = (start, end)``
    (end ≤ top) both are multiplied by :func:`partition_of_unity` w(x), the k-grid's share of x.
    The levels are every node up to ``dense_up_to`` (None: all of them) and every
    COARSE_LEVELS-th node above it (without a ``taper``, further apart with the distance,
    FAR_RESOLUTION), and the last: beyond ω_max + TAIL_REACH η the kernels are smooth on the
    scale of the gap to the nearest ω, where coarser hats are as exact and the tetrahedra deposit
    on fewer levels. The levels are the same for every ``top``.
    :meth:`node_weights` also gives the densities' weights on the hats of every other and every
    fourth level (and the last), for the extrapolation of the kernels' interpolation and its
    error (:func:`spectral_extrapolation`).
    """

    def __init__(self, top: float, spacing: float, taper=None, channels: int = 1,
                 dense_up_to: float | None = None):
        self.spacing, self.top, self.taper = spacing, top, taper
        count = int(np.floor(top / spacing * (1 + 1e-12))) + 1
        self.nodes = np.arange(-2, count + 2) * spacing
        dense = count if dense_up_to is None else min(count, int(dense_up_to / spacing) + 1)
        far = [dense]  # gaps growing in proportion to the distance from the dense levels' end
        growth = FAR_RESOLUTION if taper is None else np.inf  # (the taper needs even ones)
        while far[-1] < count:
            far.append(far[-1] + COARSE_LEVELS + int((far[-1] - dense) // growth))
        self._index = np.unique(np.concatenate([np.arange(dense), np.array(far[:-1], int),
                                                [count - 1]]))
        self.levels = self.nodes[2 + self._index]
        self.level_share = self._share(self.levels)
        self.sums = {name: np.zeros((channels, len(self.nodes))) for name in ("single", "double")}
        self.densities = {name: np.zeros((channels, len(self.levels))) for name in self.sums}
        self._coarsening = {step: self._hats_of_every(step) for step in (2, 4)}

    def _hats_of_every(self, step):
        """The hats of every ``step``-th level (and the last) as sums of the levels' hats: per
        level, the coarse levels either side and its share of the right one's hat."""
        coarse = np.unique(np.append(np.arange(0, len(self.levels), step), len(self.levels) - 1))
        right = np.minimum(np.searchsorted(coarse, np.arange(len(self.levels))), len(coarse) - 1)
        left = np.maximum(right - 1, 0)
        x, span = self.levels, self.levels[coarse[right]] - self.levels[coarse[left]]
        upper = np.divide(x - x[coarse[left]], span, out=np.ones_like(x), where=span > 0)
        return coarse[left], coarse[right], upper

    def _share(self, x):
        return 1.0 if self.taper is None else partition_of_unity(x, *self.taper)

    def add_density(self, channel: int = 0, **densities):
        """Add w(x_j) W_j for each ``name=W``, W_j = ∫ dx S(x) φ_j(x) the weights of a spectral
        density S on the hat functions φ_j of the ``levels`` (:meth:`TetrahedronGrid.integrals
        <qmdipole.tetrahedron.TetrahedronGrid.integrals>` with ``hat``)."""
        for name, density in densities.items():
            self.densities[name][channel] += self.level_share * density

    def node_weights(self, name: str, step: int = 1) -> np.ndarray:
        """The weights (channels, nodes) of the kernel ``name`` at the nodes: the point deposits
        and the densities' weights on the levels' hats, or (``step`` 2 or 4) on the hats of
        every ``step``-th level and the last (φ_J = Σ_j φ_J(x_j) φ_j: the same densities, the
        kernel interpolated on ``step`` times the spacing)."""
        out = self.sums[name].copy()
        density = self.densities[name]
        if step == 1:
            out[:, 2 + self._index] += density
            return out
        left, right, upper = self._coarsening[step]
        for at, share in ((left, 1.0 - upper), (right, upper)):
            np.add.at(out, (slice(None), 2 + self._index[at]), density * share)
        return out

    def add(self, x, channel: int = 0, **values):
        """Deposit ``values`` at transition energies ``x`` (times w(x) if tapered) in ``channel``."""
        x = np.asarray(x).ravel()
        keep = x <= self.top
        share = self._share(x[keep])
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


def apply_kernels(acc: SpectralAccumulator, omega, eta, step: int = 1):
    """Δn/α per channel (channel, ω) from the deposited single- and double-pole weights:
    DN_PREFACTOR Σ_j [single_j/(x_j² − z²) + double_j/(x_j² − z²)²], z = ω + iη (compiled);
    ``step`` 2 or 4: the densities on the hats of every ``step``-th level
    (:meth:`~SpectralAccumulator.node_weights`)."""
    out = np.zeros((len(acc.sums["single"]), len(omega)), complex)
    pole_sums(acc.nodes**2, acc.node_weights("single", step), acc.node_weights("double", step),
              np.asarray(omega, float), float(eta), out)
    return DN_PREFACTOR * out


def spectral_extrapolation(acc: SpectralAccumulator, omega, eta, error: bool = False):
    """Δn/α per channel (channel, ω) with the kernels' linear interpolation error removed:
    E_s = Δn_s + (Δn_s − Δn_2s)/3 (:func:`apply_kernels` on every level and on every other one:
    the error c s² + O(s⁴) of a spacing s, on densities smooth on its scale); ``error``: also
    its estimated error (complex: that of Re Δn in the real part, of Im Δn in the imaginary
    part), SPECTRAL_SAFETY × max over |ω′ − ω| <= DN_WINDOW η of |E_s − E_2s| per part (E_2s
    from every other and every fourth level)/15: the O(s⁴) remainder of E_s is −4 c₄ s⁴, and
    E_s − E_2s = 60 c₄ s⁴. The window: where the difference changes sign, the error need not."""
    fine, coarse = (apply_kernels(acc, omega, eta, step) for step in (1, 2))
    value = fine + (fine - coarse) / 3
    if not error:
        return value
    coarser = apply_kernels(acc, omega, eta, 4)
    difference = (value - coarse - (coarse - coarser) / 3) * (SPECTRAL_SAFETY / 15)
    real, imag = (errors.window_max(omega, np.abs(part), omega, DN_WINDOW * eta)
                  for part in (difference.real, difference.imag))
    return value, real + 1j * imag


def light_geometry(q_direction=Q_DIRECTION, polarization=POLARIZATION, transverse=True):
    """Unit vectors ``(q̂, ê)`` of ``ndd.q_direction`` and ``ndd.polarization``.

    Each must be three finite numbers, not all zero; ê must be ⊥ q̂ to |cos| ≤ PERPENDICULAR_TOL
    (its residual component along q̂ is then projected out, so that ê·q̂ = 0 to round-off).
    ``transverse=False`` (the tensor of :func:`tensor_from_table`) allows any ê.
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
    if not transverse:
        return q_hat, e_hat
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


def pair_deposits(pairs: PairDerivatives, fprime):
    """Per-k parts of ∂_q[N_mn/(X_mn² − z²)] at q = 0, both orders (m, n) and (n, m) of each
    band pair summed (they share |X|):

        N′ = (f_m − f_n) M′ + f′_m X′ M   (on 1/(X² − z²)): ``single`` = (f_m − f_n) M′, a
                                           density, and ``surface`` = f′_m X′ M, point weights,
        −2XX′N = −2 X X′ (f_m − f_n) M    (on 1/(X² − z²)²): ``double`` = that, a density,

    X = ε_m − ε_n, f′ the Fermi-surface node weights (quadrature weight and Jacobian included;
    :meth:`~qmdipole.integrand.BandSlab.fermi_weights`), ``fprime`` (nb, …). The densities are
    unblocked, f_m − f_n = 1: their integrals carry the occupation factor
    (:func:`occupation_clips`). Returns ``(|X|, deposits)``: arrays (n_pairs, …), the pairs in
    the order of :func:`band_pairs`, and a dict of them per part.
    """
    energy, x_prime, m, m_prime = pairs
    x_pairs, parts = [], {"single": [], "double": [], "surface": []}
    for pair in band_pairs(len(energy)):
        deposits = {"single": 0.0, "double": 0.0, "surface": 0.0}
        for (a, b), delta_f in ((pair, 1.0), (pair[::-1], -1.0)):
            x = energy[a] - energy[b]
            deposits["single"] = deposits["single"] + delta_f * m_prime[a, b]
            deposits["double"] = deposits["double"] - 2 * x * x_prime[a] * delta_f * m[a, b]
            deposits["surface"] = deposits["surface"] + fprime[a] * x_prime[a] * m[a, b]
        x_pairs.append(np.abs(x))
        for name, value in deposits.items():
            parts[name].append(value)
    return np.stack(x_pairs), {name: np.stack(values) for name, values in parts.items()}


def pair_dipole_density(pairs: PairDerivatives):
    """The integrand of Eq. (13) per band pair {m < n} at λ = −x, unblocked (its integrals carry
    f_m − f_n, :func:`occupation_clips`): (G_m + G_n) x² with G_l = v_q̂,l g^{mn}_êê (G_zxx of the
    paper's geometry), i.e. −(X′_m + X′_n) M_mn in the notation of :func:`pair_deposits`
    (M_mn = x² g^{mn}_êê; for two bands g^{cv} is either band's metric and this is the paper's
    (G_c + G_v)(f_v − f_c) ω_cv² without f_v − f_c). Returns (n_pairs, …)."""
    x_prime, m = pairs.x_prime, pairs.m
    return np.stack([-(x_prime[a] + x_prime[b]) * m[a, b] for a, b in band_pairs(len(x_prime))])


def occupation_clips(energy, mu, temperature):
    """The occupation factors of the interband densities, per band pair in the order of
    :func:`band_pairs` (``between`` of :meth:`~qmdipole.integrand.BandSlab.fermi_surface`),
    ``energy`` (nb, …) at the nodes.

    The occupation factor f_m − f_n (m < n) is a step across the Fermi surface at T = 0, and at
    T > 0 one of width ~T, often narrower than the cells: interpolated from its node values on
    the tetrahedra it converges only as O(h) where the Fermi surface cuts a section δ(X − ω)
    (until the grid resolves T). So the densities are unblocked (:func:`pair_deposits`) and
    each pair's integrals carry f(ε_m) − f(ε_n), ε_m and ε_n interpolated linearly, integrated
    on each section (``clips[p] = (ε_m, ε_n, μ, T)``; T = 0: the section clipped to
    ε_m < μ < ε_n; :mod:`qmdipole.kernels`). A pair whose occupation factor is 1 at every node
    to 2e-9 (ε_m < μ − 20 T, ε_n > μ + 20 T; e.g. an insulator) gets None: no cost.
    """
    reach = THERMAL_REACH * temperature
    clips = []
    for m, n in band_pairs(len(energy)):
        inside = np.all((energy[m] < mu - reach) & (energy[n] > mu + reach))
        clips.append(None if inside else (energy[m], energy[n], mu, temperature))
    return clips


def kubo_weights(slab: BandSlab, fprime, dq, q_hat=Q_DIRECTION, e_hat=POLARIZATION):
    """Per-k deposits of the q-derivative of Eq. (11) (all ordered band pairs m ≠ n) at the
    nodes of ``slab``, q along q̂, vertex ê·∂H, by central differences in q of the eigenstates
    of ``slab.model`` at k ∓ dq q̂. ``fprime`` (nb, *S). Returns :func:`pair_deposits`.
    """
    kx = slab.kpoints[0]
    shape = np.shape(kx)
    k = np.stack([np.ravel(c) for c in slab.kpoints])
    q_hat = np.asarray(q_hat, float)[:, None]
    model = slab.model

    def states(shift):  # eigenpairs at k − q q̂
        return hermitian_eigh(model.hamiltonian(*(k - shift * q_hat)))

    # a duck-typed model without hamiltonian_derivative gets Model's: its gradient projected
    derivative = getattr(model, "hamiltonian_derivative", None) or functools.partial(
        Model.hamiltonian_derivative, model)

    def vertex_squared(shifted, shift):  # |⟨m,k−q|ê·∂H|n,k⟩|², ê·∂H at the midpoint k − q q̂/2
        out = np.empty((shifted.shape[1], u0.shape[1], shifted.shape[2]))
        squared_matrix_elements(shifted, np.ascontiguousarray(
            derivative(*(k - shift / 2 * q_hat), e_hat), dtype=complex), u0, out)
        return out  # (m, n, N)

    (e0, u0), (ep, up), (em, um) = states(0.0), states(dq), states(-dq)
    m_plus, m_minus = vertex_squared(up, dq), vertex_squared(um, -dq)
    m_zero = 0.5 * (m_plus + m_minus)  # = M(q = 0) + O(dq²)
    m_prime = (m_plus - m_minus) / (2 * dq)
    x_prime = (ep - em) / (2 * dq)  # ∂_q ε_{m,k−q}
    pairs = PairDerivatives(*(a.reshape(a.shape[:-1] + shape)
                              for a in (e0, x_prime, m_zero, m_prime)))
    return pair_deposits(pairs, fprime)


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
            slab_points, q_hat, e_hat, threads=1, dense_up_to=None):
    """One pass over a table: ∫ d³k (Eq. 13 integrand) δ(x − ω) at ``omega`` per band pair, the
    per-pair :class:`SpectralAccumulator` of Eq. (12) generalised (two bands from the table, more
    bands from the model's H and ∂H), that of Eq. (11) (None unless ``kubo``), and
    ∫ d³k Σ_m f′_m v_q v_e² of the intraband term (prefactors left out).

    The interband densities S(x_j) = ∫ d³k s(k) δ(X(k) − x_j) are linear-tetrahedron integrals
    on each slab's cells; the Fermi-surface terms (f′, weights at the nodes) are point deposits
    of the nodes the slab owns. ``threads`` slabs are worked on at a time; their parts are added
    in slab order (the same numbers for any count). ``dense_up_to``: the densities are taken on
    every spectral node up to it, on coarser ones above (:class:`SpectralAccumulator`)."""
    n_pairs = len(band_pairs(ds.sizes["band"]))
    routes = [SpectralAccumulator(top, spacing, taper, n_pairs, dense_up_to)
              for _ in range(1 + bool(kubo))]
    levels = routes[0].levels

    def slab_parts(slab):
        """The slab's intraband sum, ⟨G⟩ densities at ω, owned |X|, point deposits per route
        and spectral densities (pair, route, single/double, level)."""
        fprime = slab.fermi_weights(mu, temperature)
        intraband = np.sum(slab.own(fprime * slab.velocity_along(q_hat)
                                    * slab.velocity_along(e_hat) ** 2))
        pairs = slab.pair_derivatives(q_hat, e_hat)
        clips = occupation_clips(pairs.energy, mu, temperature)
        x, parts = pair_deposits(pairs, fprime)
        found = [parts]
        avg = slab.fermi_surface(pair_dipole_density(pairs)[:, None], omega,
                                 energy=x, between=clips)[:, 0]
        if kubo:
            found.append(kubo_weights(slab, fprime, dq, q_hat, e_hat)[1])
        surfaces = [slab.own(deposits["surface"]) for deposits in found]
        densities = slab.fermi_surface(
            np.stack([d[name] for d in found for name in ("single", "double")], axis=1),
            levels, energy=x, between=clips, hat=True)
        return (intraband, avg, slab.own(x), surfaces,
                densities.reshape(n_pairs, -1, 2, len(levels)))

    avg = np.zeros((n_pairs, len(omega)))
    intraband = 0.0
    for part in over_slabs(slab_parts, table_slabs(ds, slab_points, model), threads):
        slab_intraband, slab_avg, x_owned, surfaces, densities = part
        intraband += slab_intraband
        avg += slab_avg
        for acc, surface in zip(routes, surfaces):
            for channel in range(n_pairs):
                if np.any(surface[channel]):
                    acc.add(x_owned[channel], channel, single=surface[channel])
        for channel, by_route in enumerate(densities):
            for acc, (single, double) in zip(routes, by_route):
                acc.add_density(channel, single=single, double=double)
    return avg, routes[0], routes[1] if kubo else None, intraband


def spectrum_from_table(table, model, *, omega, eta, mu=0.0, temperature=0.0, kubo=True,
                        dq=1e-4, transition_cutoff="auto", bins_per_eta=BINS_PER_ETA,
                        slab_points=2**18, q_direction=Q_DIRECTION,
                        polarization=POLARIZATION, transverse=True, threads=1) -> xr.Dataset:
    """Δn(ω) (Eq. 12 generalised, and Eq. 11 if ``kubo``) for light along ``q_direction``
    polarised along ``polarization``, and ⟨G⟩(ω) (Eq. 13), per band pair and summed, of one
    valley's table.

    ``transition_cutoff``: ``"auto"`` (default) gives every transition (see :func:`resolve_cutoff`):
    the continuum model's Re Δn converges only as X^(−1/2) in a cut-off X, so the k-grid carries
    w(x)·(its deposits), w a C^∞ step from 1 at the tail's start to 0 at its end, and
    :func:`tail_delta_n` adds the rest in closed form (the paper's geometry only). A number X is
    an explicit UV cut-off: transitions x > X are left out. The k-window must hold every
    transition the grid deposits. ``dq``: the Kubo route's step in q. ``transverse=False``
    allows ê ∦ ⊥ q̂ (the longitudinal parts of :func:`tensor_from_table`). ``threads``: slabs
    worked on at a time (the numbers do not depend on it).
    """
    omega = np.asarray(omega, float)
    if omega.ndim != 1 or omega.size < 1 or np.any(np.diff(omega) <= 0) or omega[0] < 0:
        raise SpectrumError("ndd.omega must be increasing, non-negative photon energies")
    if not eta > 0:
        raise SpectrumError(f"ndd.eta must be > 0, got {eta!r}")
    if temperature < 0:
        raise SpectrumError(f"ndd.temperature must be >= 0, got {temperature!r}")
    q_hat, e_hat = light_geometry(q_direction, polarization, transverse)
    ds = table if isinstance(table, xr.Dataset) else open_dataset(
        table, required=TABLE_VARIABLES, what="geometry table")
    grid = KGrid.from_dataset(ds)
    energy = ds["energy"].values
    n_bands = energy.shape[0]
    reach = THERMAL_REACH * temperature
    fermi_surface = any(e.min() <= mu + reach and e.max() >= mu - reach for e in energy)
    order = DN_ORDER_METAL if fermi_surface else DN_ORDER
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
    if top is None:  # no cut-off: every transition of the grid, up to a level above the highest
        top = spacing * float(np.ceil(x_all.max() / spacing))
    taper = None if tail is None else (tail.start, tail.end)
    options = dict(omega=omega, mu=mu, temperature=temperature, kubo=kubo, dq=dq, top=top,
                   spacing=spacing, taper=taper, slab_points=slab_points, q_hat=q_hat,
                   e_hat=e_hat, threads=threads, dense_up_to=omega.max() + TAIL_REACH * eta)
    half = half_density_table(ds)
    # Δn: Richardson extrapolation of the grid (h) and its subgrid (2h); its error from the
    # extrapolation of the subgrid (2h) and its own subgrid (4h). ⟨G⟩: the grid, error from 2h.
    grids = [deposit(level, model, **options) for level in (ds, half, half_density_table(half))]
    avg, intraband = grids[0][0], grids[0][3]

    z = omega + 1j * eta
    high = 0.0 if tail is None else tail_delta_n(tail, omega, eta)
    step = errors.subgrid_resolution(grid, x_all[None], omega.min() - 5 * eta,
                                     omega.max() + 5 * eta)
    width = max(step, DN_WINDOW * eta)
    avg_pairs = [(AVG_PREFACTOR * value, AVG_PREFACTOR * errors.estimate(
        omega, value, omega, coarse, AVG_WINDOW * step)) for value, coarse in zip(avg, grids[1][0])]
    axes = "" if default_geometry else " (z = q_direction, x = polarization)"
    avg_name = ("averaged quantum metric dipole <G_zxx,m + G_zxx,n> at lambda = -omega "
                f"(Eq. 13){axes}")
    total = avg.sum(axis=0)
    curves = {  # name: (value, error, quantity, long name, error method)
        "avg_qmd": (AVG_PREFACTOR * total, AVG_PREFACTOR * errors.estimate(
            omega, total, omega, grids[1][0].sum(axis=0), AVG_WINDOW * step),
            units.ENERGY_SQUARED, avg_name, AVG_ERROR)}
    routes = {"": (1, "interband (Eqs. 4, 12)"), "_kubo": (2, "from the Kubo formula (Eqs. 4, 11)")}
    if not kubo:
        del routes["_kubo"]
    delta_n, pairs = {}, {}
    for suffix, (route, what) in routes.items():
        (fine, spectral), coarse, coarser = (
            spectral_extrapolation(g[route], omega, eta, error=g is grids[0]) for g in grids)
        value, previous = errors.extrapolate(fine, coarse), errors.extrapolate(coarse, coarser)
        delta_n[suffix] = value.sum(axis=0) + high
        errors_of = delta_n_error(value.sum(axis=0), previous.sum(axis=0), omega, width,
                                  spectral.sum(axis=0), order)
        for part, take in (("re", np.real), ("im", np.imag)):
            curves[f"{part}_delta_n{suffix}"] = (take(delta_n[suffix]), errors_of[part], units.ALPHA,
                                                 f"{part.capitalize()} Delta n, {what}", DN_ERROR)
        if suffix == "":
            pairs = {part: (take(value), [delta_n_error(v, p, omega, width, b, order)[part]
                                          for v, p, b in zip(value, previous, spectral)])
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
    value, error = (np.array(a) for a in zip(*avg_pairs))
    long_name = f"{avg_name} of the band pair (band_m, band_n); the pairs sum to avg_qmd"
    variables["avg_qmd_pair"] = (("pair", "omega"), value,
                                 {**units.ENERGY_SQUARED.attrs(), "long_name": long_name})
    variables["avg_qmd_pair_error"] = (("pair", "omega"), error, errors.attributes(
        long_name, units.ENERGY_SQUARED, AVG_ERROR, errors.relative_to_peak(error, value)))
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
    if fermi_surface and ratio > 1.0:  # the point deposits of the f′ terms need it
        warnings.warn(f"the k-grid resolves transition energies only to {ratio:.2g} eta in the "
                      "spectral window, which the Fermi-surface terms of a metal need; raise "
                      "kgrid.points_per_eta or eta", stacklevel=2)
    return out


#: the independent (a, b) of the tensor, symmetric in a and b
TENSOR_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def tensor_from_table(table, model, **options) -> xr.Dataset:
    """The NDD tensor T_abc(ω) of one valley's table: Δn(ê, q̂) = Σ_abc ê_a ê_b q̂_c T_abc, the
    NDD part of the conductivity σ_abc(ω, q) = σ_ab(ω) + σ_abc(ω) q_c expressed in Δn (α);
    symmetric in (a, b).

    Δn is quadratic in ê and linear in q̂ (at every k, Eq. 12 per pair), so 18 reductions give
    it: T_aac = Δn(ê = â, q̂ = ĉ) and, a ≠ b, T_abc = Δn(ê = (â + b̂)/√2, q̂ = ĉ) − (T_aac + T_bbc)/2
    (ê ∥ q̂ included: the longitudinal components complete the tensor that light off the axes
    contracts). Errors: the reductions' estimates combined as a bound. ``options``: those of
    :func:`spectrum_from_table` but the light geometry (the Kubo route is left out).
    """
    omega = np.asarray(options["omega"], float)
    options = {**options, "omega": omega, "kubo": False, "transverse": False}
    axes = np.eye(3)
    value = np.zeros((2, 3, 3, 3, len(omega)))  # (re/im, a, b, c, ω)
    error = np.zeros_like(value)
    for c in range(3):
        for a, b in TENSOR_PAIRS:
            e_hat = axes[a] if a == b else (axes[a] + axes[b]) / np.sqrt(2)
            ds = spectrum_from_table(table, model, q_direction=axes[c], polarization=e_hat,
                                     **options)
            for part, name in enumerate(("re_delta_n", "im_delta_n")):
                value[part, a, b, c], error[part, a, b, c] = ds[name].values, ds[f"{name}_error"].values
    for c in range(3):
        for a, b in TENSOR_PAIRS[3:]:
            value[:, a, b, c] -= (value[:, a, a, c] + value[:, b, b, c]) / 2
            error[:, a, b, c] += (error[:, a, a, c] + error[:, b, b, c]) / 2
            value[:, b, a, c], error[:, b, a, c] = value[:, a, b, c], error[:, a, b, c]
    dims = ("dir_a", "dir_b", "dir_c", "omega")
    variables = {}
    for part, name in enumerate(("re_delta_n_tensor", "im_delta_n_tensor")):
        long_name = (f"{'Re' if part == 0 else 'Im'} T_abc: Delta n(e, q) = sum e_a e_b q_c T_abc "
                     "(the NDD part of sigma_abc, Eqs. 4, 12)")
        variables[name] = (dims, value[part], {**units.ALPHA.attrs(), "long_name": long_name})
        variables[f"{name}_error"] = (dims, error[part], errors.attributes(
            long_name, units.ALPHA, DN_ERROR + "; off-diagonal (a, b): the three reductions' sum",
            errors.relative_to_peak(error[part], value[part])))
    return xr.Dataset(variables, coords={
        "omega": ("omega", omega, {**units.ENERGY.attrs(), "long_name": "photon energy hbar omega"}),
        **{d: (d, ["x", "y", "z"], {"long_name": f"Cartesian direction {d[-1]}"})
           for d in ("dir_a", "dir_b", "dir_c")}},
        attrs={"eta": options["eta"]})


def delta_n_error(value, previous, omega, width, spectral, order=DN_ORDER) -> dict:
    """Absolute errors ``{"re": …, "im": …}`` of the k-grid's share ``value`` of Δn (the
    extrapolation of the grid and its subgrid), from ``previous`` (that of the subgrid and its
    subgrid; same spectral nodes) with ``order`` (DN_ORDER, in a metal DN_ORDER_METAL), spread over
    |ω′ − ω| <= ``width``, plus the ``spectral`` term (:func:`spectral_extrapolation`, common to
    every grid), at least DN_FLOOR of the peak of ``value``."""
    return {part: errors.estimate(omega, take(value), omega, take(previous), width,
                                  safety=DN_SAFETY, order=order) + take(spectral)
            + DN_FLOOR * np.abs(take(value)).max(initial=0.0)
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
