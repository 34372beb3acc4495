"""A stacked MnPX₃-class Néel antiferromagnet: a 4-band tight-binding model and its Eq. 14 valleys.

Orbitals (A↑, B↑, A↓, B↓): one Mn d-like orbital per honeycomb site and spin. Cell (Å):
a1 = a x̂, a2 = a (x̂/2 + √3 ŷ/2), a3 = s x̂ + c ẑ (each layer shifted by s along a1: the
monoclinic stacking of MnPS₃ is s = −a/3); centres τ_A = −τ_B = −(a/√3)/2 ŷ, so the inversion
centre of the lattice is the origin and swaps A and B. Néel order: A carries spin up, B spin
down; a site is *majority* for an electron whose spin is parallel to its moment. Per spin
s = ±1 (s_z conserved; eV):

* on-site exchange: −J on majority sites, +J on minority sites;
* nearest-neighbour hopping −t (A–B, in plane);
* Kane–Mele spin–orbit coupling on the in-plane second neighbours b ∈ {a1, a2 − a1, −a2}:
  H_AA(b) = −iλs, H_BB(b) = +iλs, i.e. h_AA(k) = 2λs Σ_b sin(k·b) = −3√3λsτ at K_τ = τ(4π/3a) x̂;
* interlayer hopping between like sites of adjacent layers, along the bonds δ + c ẑ of the two
  shortest in-plane offsets |δ| (shells 1, 2; δ = s x̂ + n1 a1 + n2 a2): t_maj[j] from a majority
  site, t_min[j] from a minority site on a bond of shell j. The two differ (the valence, majority
  and conduction, minority Wannier functions have different shapes): without that, v′ = 0.

The spin-down block is then the PT image of the spin-up block (d_z → −d_z): equal bands, quantum
metric and metric dipole, so the two spins add in Δn and γ. At k_∥ = K_τ (where f(k) = Σ e^{ik·δ_NN}
vanishes) the spin-up block is exactly

    d_0 = Re(F_+ e^{ik_z c}),  d_z = −(J + 3√3λτ) + Re(F_− e^{ik_z c}),
    F_± = Σ_δ [t_maj(δ) ± t_min(δ)] e^{iK_τ·δ},

so near the k_z = k₀ where |d_z| is smallest (k₀c = −arg F_−) it is Eq. 14 with
Δ_τ = J + 3√3λτ − |F_−|, 1/m = |F_−| c², v′_τ = −|F_+| c sin(arg F_+ − arg F_−) and, in plane,
v = 3 t a_NN / 2 (a_NN = a/√3). F(K′) = F(K)* gives v′_K′ = −v′_K and m_K′ = m_K. A C3- or
mirror-z-symmetric bond set (s = 0) makes F_± real, hence v′ = 0; s → −s maps H(k_x, k_y, k_z) to
H(k_x, k_y, −k_z), which flips the sign of every response odd in z (Δn for light along z, γ_xxz).
With t_maj ∝ t_min the two F's have the same phase and v′ = 0 as well: the tilt needs the
majority and minority interlayer hoppings to weigh the two shells differently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qmdipole.wannier90 import Wannier90Model

STACKINGS = {"monoclinic": -1.0 / 3.0, "opposite": 1.0 / 3.0, "mirror": 0.0}  # s / a
A, B = 0, 1
SECOND_NEIGHBOURS = ((1, 0, 0), (-1, 1, 0), (0, -1, 0))  # b = a1, a2 − a1, −a2
NEAREST_NEIGHBOURS = ((0, 0, 0), (0, -1, 0), (1, -1, 0))  # B of the cell R seen from A of 0


@dataclass(frozen=True)
class MnPX3:
    """Parameters (eV, Å) of the model of the module docstring; defaults MnPS₃-like (README)."""

    a: float = 6.08           # in-plane lattice constant (MnPS₃)
    c: float = 6.50           # interlayer distance (MnPS₃)
    shift: float = -6.08 / 3  # s: layer shift along a1 (monoclinic MnPS₃: −a/3)
    t: float = 0.40           # in-plane nearest-neighbour hopping
    exchange: float = 0.40    # J: staggered exchange potential
    soc: float = 0.02         # λ: Kane–Mele second-neighbour spin–orbit coupling
    t_maj: tuple[float, float] = (0.035, -0.005)  # interlayer hopping from a majority site, shells 1, 2
    t_min: tuple[float, float] = (0.015, 0.005)   # the same from a minority site

    @classmethod
    def stacked(cls, stacking: str, **parameters) -> "MnPX3":
        """The model with the layer shift of ``stacking`` (a key of :data:`STACKINGS`)."""
        if stacking not in STACKINGS:
            raise ValueError(f"stacking must be one of {sorted(STACKINGS)}, got {stacking!r}")
        a = parameters.get("a", cls.a)
        return cls(**{**parameters, "shift": STACKINGS[stacking] * a})

    @property
    def lattice_vectors(self) -> np.ndarray:
        """Rows a1, a2, a3 (Å)."""
        a = self.a
        return np.array([[a, 0.0, 0.0], [a / 2, a * np.sqrt(3) / 2, 0.0], [self.shift, 0.0, self.c]])

    @property
    def centres(self) -> np.ndarray:
        """Wannier centres (Å) of (A↑, B↑, A↓, B↓)."""
        half = np.array([0.0, self.a / np.sqrt(3) / 2, 0.0])
        return np.array([-half, half, -half, half])

    def interlayer_bonds(self) -> list[tuple[tuple[int, int, int], float, float]]:
        """(R, t_maj, t_min) of every bond of shells 1, 2 from a site to a like site one layer up."""
        lattice, n = self.lattice_vectors, 3
        cells = [(n1, n2, 1) for n1 in range(-n, n + 1) for n2 in range(-n, n + 1)]
        offsets = np.array([np.hypot(*(np.array(r) @ lattice)[:2]) for r in cells])
        shells = np.unique(np.round(offsets, 9))[:2]
        return [(r, self.t_maj[j], self.t_min[j]) for r, d in zip(cells, offsets)
                for j, radius in enumerate(shells) if abs(d - radius) < 1e-6]

    def hoppings(self) -> tuple[np.ndarray, np.ndarray]:
        """H_mn(R) (nR, 4, 4) in eV for the integer R (nR, 3), exactly Hermitian."""
        terms: dict[tuple[int, int, int], np.ndarray] = {}

        def add(r, m, n, value):  # ⟨m, 0|H|n, R⟩ and its partner ⟨n, 0|H|m, −R⟩ = conj
            terms.setdefault(r, np.zeros((4, 4), complex))[m, n] += value
            minus = tuple(-x for x in r)
            terms.setdefault(minus, np.zeros((4, 4), complex))[n, m] += np.conj(value)

        for spin_index, s in enumerate((1, -1)):
            orbital = {A: 2 * spin_index + A, B: 2 * spin_index + B}
            majority = {A: s == 1, B: s == -1}
            for sub in (A, B):  # on-site: half on each of the two terms add() writes
                add((0, 0, 0), orbital[sub], orbital[sub],
                    (-self.exchange if majority[sub] else self.exchange) / 2)
            for r in NEAREST_NEIGHBOURS:
                add(r, orbital[A], orbital[B], -self.t)
            for r in SECOND_NEIGHBOURS:
                add(r, orbital[A], orbital[A], -1j * self.soc * s)
                add(r, orbital[B], orbital[B], 1j * self.soc * s)
            for r, t_maj, t_min in self.interlayer_bonds():
                for sub in (A, B):
                    add(r, orbital[sub], orbital[sub], t_maj if majority[sub] else t_min)
        r_vectors = np.array(sorted(terms))
        return np.array([terms[tuple(r)] for r in r_vectors]), r_vectors

    def model(self, spin: str | None = None) -> Wannier90Model:
        """The model as qmdipole's Wannier90 class (Bloch sum with the centres): all four bands,
        or the two-band block of ``spin`` ("up" or "down"; s_z is conserved)."""
        hoppings, r_vectors = self.hoppings()
        if spin is None:
            return Wannier90Model(hoppings, r_vectors, self.lattice_vectors, centres=self.centres)
        if spin not in ("up", "down"):
            raise ValueError(f"spin must be 'up', 'down' or None, got {spin!r}")
        block = slice(0, 2) if spin == "up" else slice(2, 4)
        return Wannier90Model(hoppings[:, block, block], r_vectors, self.lattice_vectors,
                              centres=self.centres[block])

    def valley(self, tau: int) -> np.ndarray:
        """K_τ = τ (4π/3a) x̂ (Å⁻¹), τ = ±1, the in-plane valley centres."""
        return np.array([tau * 4 * np.pi / (3 * self.a), 0.0, 0.0])

    def closed_form(self, tau: int) -> dict:
        """The Eq. 14 parameters of valley τ from the module docstring's closed forms (eV, Å).

        ``v`` is the velocity of the band edge, v² = v₀² + ⟨(∂_i d_z)² + d_z ∂_i² d_z⟩ (i = x, y
        averaged; d_z at (K_τ, k₀) from the Kane–Mele and interlayer terms), which holds the
        in-plane curvature of the mass; ``v_bare`` is v₀ = 3 t a_NN / 2 of the hopping alone.
        """
        k, lattice = self.valley(tau), self.lattice_vectors
        bonds = self.interlayer_bonds()
        delta = np.array([np.array(r) @ lattice for r, _, _ in bonds])[:, :2]  # in-plane offsets
        phase = np.exp(1j * (delta @ k[:2]))
        t_plus = np.array([t_maj + t_min for _, t_maj, t_min in bonds])
        t_minus = np.array([t_maj - t_min for _, t_maj, t_min in bonds])
        f_plus, f_minus = t_plus @ phase, t_minus @ phase
        kz0 = -np.angle(f_minus) / self.c
        b = np.array(SECOND_NEIGHBOURS) @ lattice[:, :2]
        sines = np.sin(b @ k[:2])
        z_phase = phase * np.exp(1j * kz0 * self.c)
        d_z = -self.exchange + 2 * self.soc * sines.sum() + abs(f_minus)
        slope = np.real((t_minus * z_phase) @ (1j * delta))  # ∂_i d_z (the KM slope vanishes)
        curvature = (-2 * self.soc * sines @ b**2 + np.real((t_minus * z_phase) @ -delta**2))
        v_bare = 1.5 * self.t * self.a / np.sqrt(3)
        v2 = v_bare**2 + np.mean(slope**2 + d_z * curvature)
        return {"delta": self.exchange + 3 * np.sqrt(3) * self.soc * tau - abs(f_minus),
                "v": float(np.sqrt(v2)), "v_bare": v_bare,
                "mass": 1.0 / (abs(f_minus) * self.c**2),
                "vprime": -abs(f_plus) * self.c * np.sin(np.angle(f_plus) - np.angle(f_minus)),
                "kz0": kz0, "tau": tau}

@dataclass(frozen=True)
class UnshearedMnPX3(MnPX3):
    """The valleys of a :class:`MnPX3` without its k_∥·k_z cross terms (tests what Eq. 14 misses).

    Interlayer bonds along a3 = c ẑ (no layer shift) and along b + c ẑ for the three second
    neighbours b ∈ {a1, a2 − a1, −a2}, with real amplitudes (α, β) per majority/minority site:
    F(k_∥) = α + β Σ_b e^{ik·b}, so F(K_τ) = α + 3β e^{iτ4π/3} and ∇F(K_τ) = 0 (Σ_b b = 0). With
    (α, β) from the F_maj, F_min of the sheared model at K (:meth:`matching`), the Eq. 14 Δ, v′, m
    and k₀ are those of that model, but the interlayer hopping no longer moves the k_z minimum,
    the mass or the tilt with k_∥ to first order: the valleys are not sheared. It breaks mirror-z
    (F(k_∥) is complex away from Γ) while its lattice is the AA one.
    """

    shift: float = 0.0
    vertical: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))  # (α, β) maj, min

    @classmethod
    def matching(cls, params: MnPX3) -> "UnshearedMnPX3":
        """The unsheared model with the interlayer F_maj, F_min of ``params`` at K."""
        k = params.valley(1)[:2]
        bonds = params.interlayer_bonds()
        phase = np.exp(1j * np.array([np.array(r) @ params.lattice_vectors for r, _, _ in bonds])[:, :2] @ k)
        amplitudes = []
        for which in (1, 2):
            f = np.array([bond[which] for bond in bonds]) @ phase
            beta = -2 * f.imag / (3 * np.sqrt(3))
            amplitudes.append((float(f.real + 1.5 * beta), float(beta)))
        return cls(**{**asdict(params), "shift": 0.0, "vertical": tuple(amplitudes)})

    def interlayer_bonds(self) -> list[tuple[tuple[int, int, int], float, float]]:
        """(R, t_maj, t_min): (α_maj, α_min) on R = (0, 0, 1), (β_maj, β_min) on b + a3."""
        (alpha_maj, beta_maj), (alpha_min, beta_min) = self.vertical
        return [((0, 0, 1), alpha_maj, alpha_min)] + [((n1, n2, 1), beta_maj, beta_min)
                                                       for n1, n2, _ in SECOND_NEIGHBOURS]


def fit_valley(model, valley, c: float, step: float = 1e-3) -> dict:
    """Eq. 14's Δ, v, v′, m (eV, Å) of the valley at ``valley`` (Cartesian, Å⁻¹) from the bands.

    Along the k_z line through the valley (period 2π/c) the half gap h = (ε_c − ε_v)/2, with ε_v
    the highest band below and ε_c the lowest above the middle (Kramers-like pairs count once),
    is minimised at k₀; then Δ = h(k₀), 1/m = h''(k₀) and v′ = ∂_z (ε_c + ε_v)/2 at k₀ (central
    differences of ``step`` Å⁻¹), and v² = (h² − Δ²)/q² averaged over q = ``step`` along ±x, ±y
    (the average removes the terms odd in q: trigonal warping and in-plane tilts).
    """
    from scipy.optimize import minimize_scalar

    n = model.n_bands

    def bands(dk):
        k = np.asarray(valley, float) + np.atleast_2d(dk)
        e = np.linalg.eigvalsh(model.hamiltonian(k[:, 0], k[:, 1], k[:, 2]))
        return e[:, n // 2 - 1], e[:, n // 2]

    def half_gap(dk):
        v, c_ = bands(dk)
        return (c_ - v) / 2

    z = np.linspace(-np.pi / c, np.pi / c, 401, endpoint=False)
    line = half_gap(np.stack([0 * z, 0 * z, z], axis=-1))
    if np.ptp(line) <= 1e-9 * np.abs(line).max():
        raise ValueError(f"the gap at k_∥ = {np.asarray(valley)[:2].tolist()} does not disperse along "
                         "k_z: Eq. 14's mass m is infinite (no interlayer difference t_maj − t_min)")
    start = z[np.argmin(line)]
    best = minimize_scalar(lambda x: half_gap([0.0, 0.0, x])[0],
                           bracket=(start - np.pi / (200 * c), start, start + np.pi / (200 * c)),
                           tol=1e-12)
    k0 = float(best.x)
    kz = np.array([[0.0, 0.0, k0 - step], [0.0, 0.0, k0], [0.0, 0.0, k0 + step]])
    v_, c_ = bands(kz)
    h = (c_ - v_) / 2
    delta = float(h[1])
    inverse_mass = float((h[0] - 2 * h[1] + h[2]) / step**2)
    vprime = float(((c_ + v_)[2] - (c_ + v_)[0]) / (4 * step))
    q = step * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], float)
    v2 = (half_gap(q + [0.0, 0.0, k0]) ** 2 - delta**2) / step**2
    return {"delta": delta, "v": float(np.sqrt(v2.mean())), "mass": 1.0 / inverse_mass,
            "vprime": vprime, "kz0": k0}


def fit_valleys(params: MnPX3, model=None) -> list[dict]:
    """:func:`fit_valley` at K (τ = +1) and K′ (τ = −1) of ``model`` (default: all 4 bands)."""
    model = params.model() if model is None else model
    return [{**fit_valley(model, params.valley(tau), params.c), "tau": tau} for tau in (1, -1)]


def continuum_section(fits: list[dict]) -> dict:
    """The ``model:`` section of Eq. 14 (``kind: valley``) with the fitted per-valley parameters
    (one spin: the other spin's valleys are identical, so the totals are twice this model's)."""
    keys = ("delta", "vprime", "tau", "v", "mass")
    return {"kind": "valley", "valleys": [{k: (int(f[k]) if k == "tau" else float(f[k])) for k in keys}
                                          for f in fits]}


NANO = 1e-9
STACKING_STYLE = {"monoclinic": ("C0", "-"), "opposite": ("C3", "--"), "mirror": ("0.3", ":")}


def draw_stackings(runs: dict):
    """Δα(ω) (cm⁻¹) and γ_xxz(μ) (nS) of each stacking, with their error estimates as bands.

    ``runs`` maps a key of :data:`STACKINGS` to its ``(ndd_spectrum, quadrupolar_current)``
    datasets; γ is drawn at T = 0 (lines) and at each finite temperature (thin lines).
    """
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(3.4, 4.2), layout="constrained")
    for stacking, (ndd, gamma) in runs.items():
        color, dash = STACKING_STYLE[stacking]
        omega, alpha, error = ndd.omega.values, ndd.delta_alpha.values, ndd.delta_alpha_error.values
        top.fill_between(omega, alpha - error, alpha + error, color=color, alpha=0.25, lw=0)
        top.plot(omega, alpha, color=color, ls=dash, label=stacking)
        mu = gamma.mu.values
        g, g_error = (gamma[name].values / NANO for name in ("gamma_xxz_si", "gamma_xxz_si_error"))
        bottom.fill_between(mu, g - g_error, g + g_error, color=color, alpha=0.25, lw=0)
        bottom.plot(mu, g, color=color, ls=dash)
        for temperature in gamma.coords.get("temperature", []):
            warm = gamma.gamma_xxz_temperature_si.sel(temperature=temperature).values / NANO
            bottom.plot(mu, warm, color=color, ls=dash, lw=0.6)
    top.set_xlabel(r"$\hbar\omega$ (eV)")
    top.set_ylabel(r"$\Delta\alpha$ (cm$^{-1}$)")
    top.legend(loc="upper left", frameon=False, fontsize=6.5)
    bottom.set_xlabel(r"$\mu$ (eV)")
    bottom.set_ylabel(r"$\gamma_{xxz}$ (nS)")
    temperatures = [float(t) for t in next(iter(runs.values()))[1].coords.get("temperature", [])]
    note = "thick: $T = 0$" + "".join(f"; thin: $k_BT = {t:g}$ eV" for t in temperatures)
    bottom.annotate(note, xy=(0.02, 0.03), xycoords="axes fraction", fontsize=6)
    for ax, tag in ((top, "(a)"), (bottom, "(b)")):
        ax.axhline(0.0, color="0.6", lw=0.4, zorder=0)
        ax.annotate(tag, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(0, 3),
                    textcoords="offset points", ha="left", va="bottom", fontsize=8)
    return fig
