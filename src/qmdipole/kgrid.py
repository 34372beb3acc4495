"""k-grids: product grids in a coordinate system, with quadrature weights and η-adapted spacing.

A grid is the product of three 1-D axes (u1, u2, u3) mapped to Cartesian k:

* ``cylindrical`` — (ρ, φ, k_z), k = (ρ cos φ, ρ sin φ, k_z), Jacobian ρ; φ periodic (2π). The
  paper's model (Eq. 14) has energies independent of φ and integrands that are trigonometric
  polynomials of low degree in φ, so a handful of φ nodes integrate it exactly and all resolution
  goes to (ρ, k_z): the grid that converges fastest for it (see the convergence study).
* ``cartesian`` — a box (k_x, k_y, k_z), for user models without rotational structure.
* ``brillouin_zone`` — the whole Brillouin zone of a lattice model, in reduced coordinates
  u_a ∈ [−½, ½) (periodic, period 1): k = Σ_a u_a b_a with the reciprocal vectors b_a (rows of
  B = 2π A^{−T}, A the lattice vectors as rows), Jacobian |det B| = (2π)³/V_cell. For the cubic
  lattice of ``kind: lattice``, B = (2π/a) 𝟙 and the nodes are those of the cube [−π/a, π/a)³.

Each grid records its ``basis`` B (rows ∂k/∂u_a; the identity for the other kinds).

Weights: trapezoid rule on each (possibly non-uniform) axis, periodic where the axis is, times the
Jacobian, so that ``Σ weight · F ≈ ∫ d³k F``.

Spacing: each axis starts uniform with ``n`` nodes. With ``points_per_eta > 0`` an axis is then
refined where the optical reductions need it: the node density along axis a is raised to
``points_per_eta · |∂x/∂u_a| / η`` wherever some transition energy x = ε_n − ε_m lies in the
spectral window [ω_min − margin, ω_max + margin] (measured on a coarse probe grid). The k-grid then
resolves every resonance finer than η, which point quadrature of the η-broadened kernels needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import units
from .geometry import band_geometry
from .io import DataError, check_made_for, open_dataset, thinned

KINDS = ("cylindrical", "cartesian", "brillouin_zone")
AXIS_NAMES = {
    "cylindrical": ("rho", "phi", "kz"),
    "cartesian": ("kx", "ky", "kz"),
    "brillouin_zone": ("u1", "u2", "u3"),
}
AXIS_LONG_NAMES = {
    "rho": "in-plane radial momentum rho = sqrt(kx^2 + ky^2)",
    "phi": "in-plane azimuth of k",
    "kx": "crystal momentum along x",
    "ky": "crystal momentum along y",
    "kz": "crystal momentum along z",
    "u1": "reduced crystal momentum along b1 (k = u1 b1 + u2 b2 + u3 b3)",
    "u2": "reduced crystal momentum along b2 (k = u1 b1 + u2 b2 + u3 b3)",
    "u3": "reduced crystal momentum along b3 (k = u1 b1 + u2 b2 + u3 b3)",
}


class GridError(ValueError):
    """A k-grid cannot be built from the given settings."""


@dataclass(frozen=True)
class KGrid:
    """A product k-grid: node coordinates, 1-D weights and periods of its three axes.

    ``basis`` (3, 3): rows ∂k/∂u_a of the linear kinds (k = Σ_a u_a basis[a]); ``None`` gives the
    identity. Only ``brillouin_zone`` grids use another (the reciprocal vectors b_a).
    """

    kind: str
    axes: tuple[np.ndarray, np.ndarray, np.ndarray]
    axis_weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    periods: tuple[float | None, float | None, float | None]
    basis: np.ndarray | None = None

    def __post_init__(self):
        basis = np.eye(3) if self.basis is None else np.array(self.basis, float)
        if basis.shape != (3, 3) or not np.isfinite(basis).all() or np.linalg.det(basis) == 0:
            raise GridError(f"k-grid basis must be a finite, invertible 3 x 3 matrix, got "
                            f"{np.asarray(self.basis).tolist()}")
        object.__setattr__(self, "basis", basis)

    @property
    def names(self) -> tuple[str, str, str]:
        return AXIS_NAMES[self.kind]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(a) for a in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def cartesian(self, k1=slice(None)):
        """Cartesian ``kx, ky, kz`` of the nodes with axis-1 indices ``k1``, shape (n1', n2, n3)."""
        u1, u2, u3 = np.meshgrid(self.axes[0][k1], self.axes[1], self.axes[2], indexing="ij")
        if self.kind == "cylindrical":
            return u1 * np.cos(u2), u1 * np.sin(u2), u3
        if np.array_equal(self.basis, np.eye(3)):
            return u1, u2, u3
        b = self.basis
        return tuple(u1 * b[0, c] + u2 * b[1, c] + u3 * b[2, c] for c in range(3))

    def jacobian(self, k1=slice(None)):
        """|∂k/∂u| at the nodes, shape (n1', n2, n3): ρ on a cylinder, else |det basis|."""
        u1 = self.axes[0][k1][:, None, None]
        shape = (len(u1), len(self.axes[1]), len(self.axes[2]))
        return np.broadcast_to(np.abs(u1) if self.kind == "cylindrical" else self._volume, shape)

    @property
    def _volume(self) -> float:
        """|det basis|: the k-volume of a unit cell of the (linear) u-coordinates."""
        return float(abs(np.linalg.det(self.basis)))

    def weight(self, k1=slice(None)):
        """Quadrature weights (units k³) with Σ weight·F ≈ ∫ d³k F, shape (n1', n2, n3).

        On a cylindrical grid whose ρ axis starts at 0 the radial integrand is f(ρ) = ρ F(ρ²)
        with f′(0) = F(0) ≠ 0, which limits the trapezoid rule to O(h²) exactly where band
        edges sit; the Euler–Maclaurin end correction h₀²/12 · f′(0) is added as the weight of
        the ρ = 0 node (J = 0 there), making the radial rule O(h⁴) at the axis.
        """
        w1, w2, w3 = self.axis_weights
        radial = w1 * (np.abs(self.axes[0]) if self.kind == "cylindrical" else self._volume)
        if self.kind == "cylindrical" and self.axes[0][0] == 0.0:
            radial = radial.copy()
            radial[0] = w1[0] ** 2 / 3  # h₀²/12 with the trapezoid weight w1[0] = h₀/2
        return radial[k1][:, None, None] * w2[None, :, None] * w3[None, None, :]

    def tangents(self, k1=slice(None)):
        """∂k/∂u_a for a = 1, 2, 3: array (3 axes, 3 Cartesian, n1', n2, n3)."""
        u1, u2, _ = np.meshgrid(self.axes[0][k1], self.axes[1], self.axes[2], indexing="ij")
        out = np.zeros((3, 3) + u1.shape)
        if self.kind == "cylindrical":
            out[0, 0], out[0, 1] = np.cos(u2), np.sin(u2)
            out[1, 0], out[1, 1] = -u1 * np.sin(u2), u1 * np.cos(u2)
            out[2, 2] = 1.0
        else:
            out[:] = self.basis[:, :, None, None, None]
        return out

    def boundary(self) -> np.ndarray:
        """Boolean (n1, n2, n3): nodes on the outer faces of the window (not ρ = 0, not periodic)."""
        mask = np.zeros(self.shape, dtype=bool)
        for a, (nodes, period) in enumerate(zip(self.axes, self.periods)):
            if period is not None:
                continue
            index = [slice(None)] * 3
            if not (self.kind == "cylindrical" and a == 0 and nodes[0] == 0.0):
                index[a] = 0
                mask[tuple(index)] = True
            index[a] = -1
            mask[tuple(index)] = True
        return mask

    def to_dataset(self) -> xr.Dataset:
        """The grid as a Dataset: node coordinates ``k1, k2, k3`` and their 1-D weights."""
        coords, data = {}, {}
        for a, (name, nodes, weights, period) in enumerate(
            zip(self.names, self.axes, self.axis_weights, self.periods), start=1
        ):
            axis_units = {"phi": units.ANGLE, "u1": units.NUMBER, "u2": units.NUMBER,
                          "u3": units.NUMBER}.get(name, units.MOMENTUM.attrs())
            coords[f"k{a}"] = (
                f"k{a}",
                nodes,
                {**axis_units, "long_name": AXIS_LONG_NAMES[name], "coordinate": name,
                 **({} if period is None else {"period": float(period)}),
                 **({"basis_vector": self.basis[a - 1]} if self.kind == "brillouin_zone" else {})},
            )
            data[f"weight{a}"] = (
                f"k{a}",
                weights,
                {**axis_units, "long_name": f"quadrature weight along axis {a} ({name})"},
            )
        ds = xr.Dataset(data, coords=coords)
        ds.attrs["grid_kind"] = self.kind
        ds.attrs["n_points"] = self.size
        return ds

    def half_density(self) -> tuple[KGrid, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The subgrid of every other node, and the node indices it keeps along each axis.

        Every axis is coarsened except the azimuth of a cylindrical grid, whose few nodes
        integrate the trigonometric φ-dependence of the built-in model exactly (coarsening them
        would measure aliasing, not resolution). An open axis keeps nodes 0, 2, 4, … and its last
        node (so an even count ends with one step of the original spacing); a periodic axis keeps
        nodes 0, 2, 4, … and its period. Weights are those of the builder on the kept nodes
        (:func:`trapezoid_weights`, and :meth:`weight` for the 3-D ones), so any reduction runs
        unchanged on the subgrid: comparing the two estimates the discretisation error
        (Richardson, :mod:`qmdipole.errors`).
        """
        index = []
        for a, (nodes, period) in enumerate(zip(self.axes, self.periods)):
            n = len(nodes)
            if self.kind == "cylindrical" and a == 1:
                index.append(np.arange(n))
                continue
            if n < 3:
                raise GridError(f"k-grid axis {a + 1} ({self.names[a]}) has {n} nodes: at least "
                                "3 are needed for a half-density subgrid")
            keep = np.arange(0, n, 2)
            index.append(keep if period is not None else np.unique(np.append(keep, n - 1)))
        axes = tuple(nodes[keep] for nodes, keep in zip(self.axes, index))
        weights = tuple(trapezoid_weights(u, p) for u, p in zip(axes, self.periods))
        return KGrid(self.kind, axes, weights, self.periods, self.basis), tuple(index)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> KGrid:
        kind = ds.attrs.get("grid_kind")
        if kind not in KINDS:
            raise GridError(f"k-grid dataset has grid_kind {kind!r}, expected one of {KINDS}")
        periods = [ds[f"k{a}"].attrs.get("period") for a in (1, 2, 3)]
        periods = [None if p is None else float(p) for p in periods]
        vectors = [ds[f"k{a}"].attrs.get("basis_vector") for a in (1, 2, 3)]
        if kind == "brillouin_zone" and any(v is None for v in vectors):
            raise GridError("a brillouin_zone k-grid dataset needs the attribute basis_vector "
                            f"(the reciprocal vector b_a) on k1, k2 and k3; it is missing on "
                            f"k{1 + [v is None for v in vectors].index(True)}")
        return cls(
            kind,
            tuple(np.asarray(ds[f"k{a}"].values, float) for a in (1, 2, 3)),
            tuple(np.asarray(ds[f"weight{a}"].values, float) for a in (1, 2, 3)),
            tuple(periods),
            None if kind != "brillouin_zone" else np.array(vectors, float).reshape(3, 3),
        )


def read_kgrid(path, **made_for) -> KGrid:
    """The k-grid stored at ``path``; a missing, corrupt or incomplete file, one with non-finite
    nodes or weights, or one made for other settings than ``made_for`` (e.g. ``model=`` the run's
    model section, see :func:`qmdipole.io.check_made_for`) raises DataError."""
    required = [f"{v}{a}" for v in ("k", "weight") for a in (1, 2, 3)]
    with open_dataset(path, required=required, what="k-grid") as ds:
        check_made_for(ds, path, "k-grid", **made_for)
        for name in required:
            values = ds[name].values
            if not np.isfinite(values).all():
                raise DataError(f"k-grid {path}: {name} holds a non-finite value at index "
                                f"{int(np.argmax(~np.isfinite(values)))}")
        try:
            return KGrid.from_dataset(ds)
        except (GridError, ValueError) as err:
            raise DataError(f"k-grid {path}: {err}") from err


def half_density_table(ds: xr.Dataset) -> xr.Dataset:
    """A table (or any Dataset on the k1, k2, k3 nodes of a grid) on its half-density subgrid.

    Every variable is taken at the kept nodes of :meth:`KGrid.half_density`; the 1-D weights
    ``weight1..3`` and, if present, the 3-D quadrature ``weight`` are those the grid builder
    gives the subgrid. A table in a file is read lazily, each request as a contiguous hyperslab
    thinned in memory (:func:`qmdipole.io.thinned`); one in memory is thinned at once (a copy of
    1/8 of it), a Dask-backed one lazily by Dask.
    """
    grid = KGrid.from_dataset(ds)
    sub, index = grid.half_density()
    keep = dict(zip(("k1", "k2", "k3"), index))
    if any(var.chunks for var in ds.variables.values()):
        out = ds.isel(keep)
    else:
        out = thinned(ds, keep)
    for a, weights in enumerate(sub.axis_weights, start=1):
        out[f"weight{a}"] = (f"k{a}", weights, ds[f"weight{a}"].attrs)
    if "weight" in ds:
        out["weight"] = (("k1", "k2", "k3"), sub.weight(), ds["weight"].attrs)
    out.attrs["n_points"] = sub.size
    return out


# The curvature criterion of the η refinement (:func:`_refine`): near a minimum of the transition
# energy X along an axis (an absorption onset), its linear interpolation errs by at most
# η/(CURVATURE_RESOLUTION · points_per_eta²) within a cell (η/192 at the default points_per_eta =
# 1.5). Default config (Eq. 14, two valleys), measured against the closed form: the error of ⟨G⟩
# at the onsets falls from 0.31 % to 0.10 % of the valley sum's peak for 1.5 % more k-points (the
# lattice kind's default zone: 7 % more). The square makes the cells there scale as 1/points_per_eta
# like the others, so that a grid refined by s (qmdipole.accuracy) errs s² times less at the onsets.
CURVATURE_RESOLUTION = 256 / 3


def trapezoid_weights(nodes: np.ndarray, period: float | None = None) -> np.ndarray:
    """Trapezoid weights on (possibly non-uniform) nodes; periodic when ``period`` is given."""
    gaps = np.diff(nodes)
    if period is not None:
        gaps = np.append(gaps, nodes[0] + period - nodes[-1])
        return 0.5 * (gaps + np.roll(gaps, 1))
    weights = np.zeros_like(nodes)
    weights[:-1] += 0.5 * gaps
    weights[1:] += 0.5 * gaps
    return weights


def graded_nodes(lo, hi, density_nodes, density, n, periodic=False) -> np.ndarray:
    """``n`` or more nodes on [lo, hi] that equidistribute a node density (nodes per unit length).

    ``density`` is sampled at ``density_nodes`` (increasing, spanning [lo, hi]); the uniform
    density of ``n`` nodes is its floor. Open axes include both ends; periodic axes leave out hi.
    """
    intervals = n if periodic else n - 1
    density = np.maximum(density, intervals / (hi - lo))
    cumulative = np.concatenate(
        [[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(density_nodes))]
    )
    count = max(int(np.ceil(cumulative[-1] - 1e-9)), intervals)
    levels = np.linspace(0.0, cumulative[-1], count + 1)
    nodes = np.interp(levels, cumulative, density_nodes)
    nodes[0], nodes[-1] = lo, hi
    return nodes[:-1] if periodic else nodes


def build_kgrid(model, kind, n, window, *, omega_range=None, eta=None, points_per_eta=0.0,
                probe_points=(48, 16, 96), max_points=40_000_000) -> KGrid:
    """Build the k-grid of one valley.

    ``n``: coarse node counts per axis; ``window``: ``((lo, hi), (lo, hi), (lo, hi))`` per axis
    (periodic axes ignore theirs); ``omega_range``/``eta``/``points_per_eta``: the spectral window
    that the grid must resolve finer than η (no refinement when ``points_per_eta`` is 0).
    """
    if kind not in KINDS:
        raise GridError(f"kgrid.kind must be one of {KINDS}, got {kind!r}")
    n = tuple(int(x) for x in n)
    if len(n) != 3 or min(n) < 2:
        raise GridError(f"kgrid.n must be three integers >= 2, got {n}")
    if kind == "cylindrical" and n[1] < 3:
        raise GridError(f"kgrid.n[1] (azimuthal nodes) must be >= 3 on a cylindrical grid, got {n[1]}: "
                        "fewer cannot integrate cos^2(phi)")
    periods = _periods(kind)
    basis = reciprocal_basis(model) if kind == "brillouin_zone" else None
    bounds = []
    for a, period in enumerate(periods):
        if period is not None:
            bounds.append((-period / 2, period / 2) if kind == "brillouin_zone" else (0.0, period))
        else:
            lo, hi = map(float, window[a])
            if not hi > lo:
                raise GridError(f"kgrid.window axis {a + 1} must have max > min, got {window[a]}")
            bounds.append((lo, hi))

    uniform = [_uniform(lo, hi, count, p is not None) for (lo, hi), count, p in zip(bounds, n, periods)]
    if points_per_eta and omega_range is not None:
        if not eta or eta <= 0:
            raise GridError(f"ndd.eta must be > 0 to refine the k-grid, got {eta!r}")
        uniform = _refine(model, kind, basis, bounds, periods, n, omega_range, eta,
                          points_per_eta, probe_points)
    axes = tuple(uniform)
    size = int(np.prod([len(a) for a in axes]))
    if size > max_points:
        raise GridError(
            f"the k-grid would have {size:.3g} points ({' x '.join(str(len(a)) for a in axes)}), "
            f"more than kgrid.max_points = {max_points:.3g}: raise ndd.eta, lower "
            "kgrid.points_per_eta or kgrid.n, or raise kgrid.max_points"
        )
    weights = tuple(trapezoid_weights(a, p) for a, p in zip(axes, periods))
    return KGrid(kind, axes, weights, periods, basis)


def _periods(kind):
    if kind == "cylindrical":
        return (None, 2 * np.pi, None)
    if kind == "brillouin_zone":
        return (1.0,) * 3  # reduced coordinates
    return (None, None, None)


def reciprocal_basis(model) -> np.ndarray:
    """Rows b_1, b_2, b_3 of a lattice model: its ``reciprocal_vectors``, or (2π/a) 𝟙 for a
    cubic lattice given by ``lattice_constant`` a."""
    vectors = getattr(model, "reciprocal_vectors", None)
    if vectors is not None:
        return np.array(vectors, float)
    a = getattr(model, "lattice_constant", None)
    if a is None:
        raise GridError("kgrid.kind brillouin_zone needs a lattice model (one with "
                        "reciprocal_vectors, or model.lattice_constant)")
    return 2 * np.pi / float(a) * np.eye(3)


def _uniform(lo, hi, count, periodic):
    return np.linspace(lo, hi, count, endpoint=not periodic)


def _second_difference(values, axis, nodes, periodic):
    """∂²values/∂u² along ``axis`` of a probe grid with uniform ``nodes``, by central
    differences (at the ends of an open axis: those of their neighbours)."""
    step = nodes[1] - nodes[0]
    if periodic:
        return (np.roll(values, -1, axis) - 2 * values + np.roll(values, 1, axis)) / step**2
    moved = np.moveaxis(values, axis, 0)
    out = np.empty_like(moved)
    out[1:-1] = (moved[2:] - 2 * moved[1:-1] + moved[:-2]) / step**2
    out[0], out[-1] = out[1], out[-2]
    return np.moveaxis(out, 0, axis)


def _refine(model, kind, basis, bounds, periods, n, omega_range, eta, points_per_eta,
            probe_points):
    """Axes whose node density resolves the transition energies X in the window finer than η:
    between neighbours X changes by at most η/points_per_eta (slope |∂X/∂u|), and its linear
    interpolation across a cell, which the tetrahedra use, errs by at most
    η/(CURVATURE_RESOLUTION · points_per_eta²) (curvature h²|∂²X/∂u²|/8) near the minima of X
    along an axis (the absorption onsets), where the slope vanishes: the onset of ⟨G⟩(ω),
    ∝ √(ω − ω₀) and not broadened, is sampled just above ω₀."""
    probe_axes = [
        _uniform(lo, hi, max(count, probe), p is not None)
        for (lo, hi), count, probe, p in zip(bounds, n, probe_points, periods)
    ]
    probe = KGrid(kind, tuple(probe_axes), tuple(np.ones(len(a)) for a in probe_axes), periods,
                  basis)
    kx, ky, kz = probe.cartesian()
    geometry = band_geometry(model, kx.ravel(), ky.ravel(), kz.ravel())
    energy = geometry["energy"].reshape((-1,) + probe.shape)
    velocity = geometry["velocity"].reshape((energy.shape[0], 3) + probe.shape)
    tangents = probe.tangents()  # (axis, cart, ...)
    margin = max(20 * eta, 0.25)
    lo, hi = omega_range[0] - margin, omega_range[1] + margin
    slope = np.zeros((3,) + probe.shape)
    curvature = np.zeros((3,) + probe.shape)
    n_bands = energy.shape[0]
    for m in range(n_bands):
        for k in range(m + 1, n_bands):
            x = energy[k] - energy[m]
            resonant = (x >= lo) & (x <= hi)
            dv = velocity[k] - velocity[m]
            dx_du = np.abs(np.einsum("acijk,cijk->aijk", tangents, dv))
            slope = np.maximum(slope, np.where(resonant, dx_du, 0.0))
            for a, p in enumerate(periods):
                # only near a minimum of X along the axis (within four probe steps): an onset
                bend = _second_difference(x, a, probe_axes[a], p is not None)
                near = resonant & (dx_du[a] <= 4 * bend * (probe_axes[a][1] - probe_axes[a][0]))
                curvature[a] = np.maximum(curvature[a], np.where(near, bend, 0.0))
    axes = []
    for a, ((lo_a, hi_a), count, p) in enumerate(zip(bounds, n, periods)):
        other = tuple(b for b in range(3) if b != a)
        demand = points_per_eta * np.maximum(slope[a].max(axis=other) / eta, np.sqrt(
            curvature[a].max(axis=other) * CURVATURE_RESOLUTION / (8 * eta)))
        # spread each probe value over its neighbours so the refined band covers the whole cell
        demand = np.maximum.reduce([demand, np.roll(demand, 1), np.roll(demand, -1)])
        nodes = probe_axes[a]
        if p is not None:
            nodes = np.append(nodes, nodes[0] + p)
            demand = np.append(demand, demand[0])
        axes.append(graded_nodes(lo_a, hi_a if p is None else lo_a + p, nodes, demand, count,
                                 periodic=p is not None))
    return axes


@dataclass(frozen=True)
class GridNeeds:
    """What the reductions need from a k-grid.

    ``energy_range``: every chemical potential they use, widened by 20 k_B T so that Fermi tails
    are inside; ``omega_range`` and ``eta``: the spectral window the grid must resolve finer than
    η (None: none, γ alone); ``transition_cutoff``: the highest transition energy the window must
    hold (None: no bound known; 0: none needed). Energies in the model's units.
    """

    energy_range: tuple[float, float]
    omega_range: tuple[float, float] | None = None
    transition_cutoff: float | None = None
    eta: float | None = None

    def as_dict(self) -> dict:
        """Plain values, as a rule's parameters (and provenance) record them."""
        return {"energy_range": [float(x) for x in self.energy_range],
                "omega_range": None if self.omega_range is None else [float(x) for x in self.omega_range],
                "transition_cutoff": self.transition_cutoff, "eta": self.eta}

    @classmethod
    def from_dict(cls, values) -> GridNeeds:
        omega = values.get("omega_range")
        return cls(tuple(values["energy_range"]), None if omega is None else tuple(omega),
                   values.get("transition_cutoff"), values.get("eta"))


def grid_needs(gamma, ndd, models=()) -> GridNeeds:
    """The needs of a grid shared by γ (``gamma``: :class:`~qmdipole.settings.GammaSettings`) and
    the NDD reductions (``ndd``: :class:`~qmdipole.settings.NDDSettings`).

    ``transition_cutoff``: a number ``ndd.transition_cutoff`` as given; for ``auto`` the largest
    end of the closed-form tails of ``models`` (:meth:`~qmdipole.models.Model.transition_tail`,
    the split the NDD reduction uses), else None.
    """
    t_max = max([0.0, ndd.temperature, *gamma.temperatures])
    mu = gamma.mu_values
    mus = [mu[0], mu[-1], ndd.mu]
    omega = ndd.omega_values
    cutoff = ndd.transition_cutoff
    if cutoff == "auto":
        tails = [m.transition_tail(mu=ndd.mu, temperature=ndd.temperature, omega_max=omega[-1],
                                   eta=ndd.eta)
                 for m in models if callable(getattr(m, "transition_tail", None))]
        ends = [tail.end for tail in tails if tail is not None]
        cutoff = max(ends) if ends else None
    return GridNeeds((min(mus) - 20 * t_max, max(mus) + 20 * t_max), (omega[0], omega[-1]),
                     cutoff, ndd.eta)


def default_kind(model_kind: str, requested: str = "auto") -> str:
    """The grid kind: ``requested`` (``kgrid.kind``) unless it is ``"auto"``, else the one that
    suits the model kind."""
    if requested != "auto":
        return requested
    return {"valley": "cylindrical", "lattice": "brillouin_zone",
            "wannier90": "brillouin_zone"}.get(model_kind, "cartesian")


def grid_for(model, model_kind: str, settings, needs: GridNeeds) -> KGrid:
    """The k-grid of one valley from the grid settings (:class:`~qmdipole.settings.GridSettings`,
    the ``kgrid:`` section) and what the reductions need."""
    kind = default_kind(model_kind, settings.kind)
    if settings.window == "auto":
        window = auto_window(model, kind, needs)
    else:
        window = tuple(settings.window.get(f"k{a}") for a in (1, 2, 3))
    return build_kgrid(model, kind, settings.n, window, omega_range=needs.omega_range,
                       eta=needs.eta, points_per_eta=settings.points_per_eta,
                       max_points=settings.max_points)


def auto_window(model, kind, needs):
    """Per-axis window from the model's :meth:`~qmdipole.models.Model.k_window`."""
    if kind == "brillouin_zone":
        return (None, None, None)
    found = model.k_window(tuple(needs.energy_range), needs.transition_cutoff)
    if found is None:
        raise GridError(
            "kgrid.window is 'auto' but the model cannot tell its k-window: set kgrid.window "
            "to {k1: [min, max], k2: [min, max], k3: [min, max]}"
        )
    rho_max, kz_min, kz_max = found
    rho_max *= 1.02
    kz_min, kz_max = kz_min - 0.01 * (kz_max - kz_min), kz_max + 0.01 * (kz_max - kz_min)
    if kind == "cylindrical":
        return ((0.0, rho_max), None, (kz_min, kz_max))
    return ((-rho_max, rho_max), (-rho_max, rho_max), (kz_min, kz_max))


def points_per_slab(slab_points: int, n_bands: int) -> int:
    """k-points per slab of an ``n_bands`` model: ``slab_points`` counts two-band k-points; the
    working memory of a k-point grows as n_bands² (H, ∂H, eigenvectors, pair matrices), so a
    model with more bands gets proportionally fewer points per slab (bounded memory)."""
    return max(int(slab_points) * 4 // max(int(n_bands), 2) ** 2, 1)


def slabs(grid: KGrid, slab_points: int):
    """Overlapping slabs along axis 1 for streaming reductions.

    Yields ``(index, sub, owned)``: node indices along k1, the slab as a grid of its own (axis 1
    open, so its cells are exactly the slab's cells), and the slice of ``index`` that the slab
    owns for point sums. Consecutive slabs share one node so that every cell belongs to exactly
    one slab; a periodic axis 1 ends with the wrap cell. A slab of a single node has no cells.
    """
    n1 = grid.shape[0]
    rows = max(slab_points // (grid.shape[1] * grid.shape[2]), 1)
    nodes, weights = grid.axes[0], grid.axis_weights[0]

    def sub(index, axis1):
        return KGrid(grid.kind, (axis1,) + grid.axes[1:], (weights[index],) + grid.axis_weights[1:],
                     (None,) + grid.periods[1:], grid.basis)

    for start in range(0, n1, rows):
        first = max(start - 1, 0)
        index = np.arange(first, min(start + rows, n1))
        yield index, sub(index, nodes[index]), slice(start - first, None)
    if grid.periods[0] is not None:
        index = np.array([n1 - 1, 0])
        yield index, sub(index, np.array([nodes[-1], nodes[0] + grid.periods[0]])), slice(0, 0)
