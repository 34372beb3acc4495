"""Linear-tetrahedron Fermi-surface integrals on a rectilinear 3-D grid.

Computes ``I[v, l] = ∫ d³u h_v(u) δ(ε(u) − λ_l)`` at zero temperature (no smearing), where ε and
h_v are known at the nodes of a product grid ``u1[i] × u2[j] × u3[k]`` (non-uniform spacing,
each axis open or periodic) and ``u`` are the grid's own coordinates: the caller folds any
Jacobian into h.

Method (Blöchl-style linear tetrahedra, without Blöchl's curvature correction): every grid
cell is split into 6 tetrahedra of equal volume sharing one of the cell's main diagonals (Kuhn /
Freudenthal split), and on each tetrahedron both ε and h are interpolated linearly between its
corners. The δ-integral over one tetrahedron is then exact: the level set ε = λ is a triangle or a
quadrilateral, and the integral is a weighted sum of the four corner values of h, with weights
that are piecewise cubic in λ (their sum, the tetrahedron's density of states, is piecewise
quadratic and continuous). Corner energies that coincide exactly (e.g. ε independent of one axis)
are handled by formulas whose denominators never vanish. Where the δ-integral jumps (three equal
corner energies), a level equal to such an energy gets the limit from above; a tetrahedron with
four equal corner energies (a δ-peak in the density of states) contributes nothing.

Mirror-symmetric split. The same split in every cell (diagonal 000 → 111 in index space) is
invariant under the full inversion of the grid but not under the reflection of a single axis, so a
symmetry of the integrand under u_a → 2m − u_a (k_z → −k_z, k_x → −k_x) would hold only to O(h²):
forbidden integrals would come out O(h²) instead of zero, mirror-image valleys would not cancel.
Each cell therefore has an orientation bit per axis, 1 meaning the split reflected along that axis
(each corner's offset bit along the axis flipped). Along a mirrored axis, with mirror point m, the
bits alternate from cell to cell, counted outward from m with opposite parity on the two sides:
cells at the same distance from m have opposite bits, so the reflection maps the decomposition
onto itself; a cell that straddles m (on a periodic axis of period P, also m + P/2) gets both
orientations with half weight each. Integrals of mirror-symmetric data are then exactly symmetric,
and those of antisymmetric data zero, to round-off. Alternating, rather than reflecting whole
half-axes, matters for accuracy: the orientation-dependent part of the O(h²) interpolation error
(from mixed second derivatives, with the sign of the product of two axes' bits) cancels between
neighbouring cells instead of adding up over each half (with half-axes the error of
∫ k_x² k_y² δ(k² − μ) on a symmetric box grew 4- to 10-fold). Neighbouring cells give their
shared face the same diagonal, so the tetrahedra still tile the grid conformingly, except in
straddling cells. Every split is exact for linear ε and h: the orientations affect neither
exactness nor the O(h²) order. A cell's orientation depends on the whole axis (the parity of its
distance from m), so a call on a piece of a grid (a slab) must be given the whole axis:
:class:`AxisMirror`.

By default an open axis is mirrored about its midpoint if its nodes are symmetric about it, and a
periodic axis is not mirrored. The standard split is invariant under every translation of a
periodic axis by whole cells (rotations of the azimuth φ of a cylindrical grid); a mirrored one
is not (alternating: at best by an even number of cells; half-axes: by none), and it resonates
with the highest harmonic a coarse axis carries. On the 4-node azimuth that integrates the
trigonometric integrands of the valley model exactly, mirroring φ made the error first order in
the other spacings (alternating) or produced O(h) symmetry-forbidden components (half-axes).
Periodic axes that are well resolved and whose reflections matter (Brillouin-zone grids) are
mirrored on request, with ``mirror`` or :func:`mirror_points` (``periodic=True``).

For smooth ε and h the error is O(h²) in the grid spacing.

Cost. One compiled pass (:mod:`qmdipole.kernels`) over the cells, their orientations, the 6
tetrahedra of each and the levels in each tetrahedron's energy range (found from each node's
index in the sorted levels) sums the corner weights per (node, level); each node's sums then
multiply its integrands once. Time O(N_tet + N_pairs + N_nodelevels · n_v) for N_pairs
(tetrahedron, level) pairs, N_nodelevels (node, level) pairs and n_v integrands; memory beyond
the inputs and the result: three integers per node and the sums of two planes of nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .kernels import THERMAL_REACH, fermi_surface_sum

__all__ = ["AxisMirror", "fermi_surface_integral", "fermi_surface_node_weights", "mirror_points",
           "occupation_vanishes"]

# Node sets symmetric to this tolerance (relative to the span, or to the period) are mirrored by
# default. A cell counts as straddling a mirror point only if the point is farther than _CELL_TOL
# cell widths inside it, so that a node on the mirror point up to round-off is taken as on it.
_SYMMETRY_TOL = 1e-10
_CELL_TOL = 1e-8


@dataclass(frozen=True, eq=False)
class AxisMirror:
    """Mirror point of one whole axis, for the ``mirror`` argument of the integrals.

    The split is mirrored about ``point`` (u → 2·point − u, modulo ``period`` on a periodic
    axis); ``nodes`` are the whole axis's nodes and ``period`` its period (None: open axis). A
    call may then pass any run of consecutive nodes of that axis (a slab; for a periodic axis
    also its closing cell ``[nodes[-1], nodes[0] + period]``, given as an open axis): every cell
    gets the orientation it has in the whole axis, so slabs add up to the whole grid exactly.
    :func:`mirror_points` makes them; made by hand, any point is valid (e.g. 0 for two grids
    that are mirror images of each other but not symmetric themselves).
    """

    point: float
    nodes: np.ndarray = field(repr=False)
    period: float | None = None


def fermi_surface_integral(
    energy: np.ndarray,
    values: np.ndarray,
    axes: Sequence[np.ndarray],
    levels: np.ndarray,
    periods: Sequence[float | None] = (None, None, None),
    *,
    mirror: Sequence | None = None,
) -> np.ndarray:
    """δ-function integrals ``I[v, l] = ∫ d³u values[v](u) δ(energy(u) − levels[l])``.

    Parameters
    ----------
    energy : (n1, n2, n3) array
        ε at the grid nodes.
    values : (nv, n1, n2, n3) array
        Integrands h_v at the grid nodes (Jacobian included by the caller).
    axes : three 1-D arrays
        Node coordinates along each axis, strictly increasing, at least 2 nodes each.
    levels : (nl,) array
        Levels λ, sorted in non-decreasing order.
    periods : three of float or None
        None: open axis (cells only between consecutive nodes). A float P: periodic axis, with
        one more cell joining the last node to the first node shifted by P.
    mirror : None, or three of None, False, float or AxisMirror
        Orientation of the split along each axis (see the module docstring); None stands for
        ``(None, None, None)``. Per axis: None — mirrored about the midpoint of the first and
        last node if the axis is open and its nodes are symmetric about that midpoint (relative
        tolerance 1e-10), otherwise not mirrored (periodic axes neither), i.e. what
        ``mirror_points(axes, periods)`` gives for a whole grid; False — not mirrored (the
        standard split); a float m — mirrored about m, the given nodes being the whole axis (on
        a periodic axis the reflection u → 2m − u is taken modulo the period; not for slabs:
        the orientations would be counted on the slab's nodes); an
        :class:`AxisMirror` — mirrored as in the whole axis it describes, of which the given
        nodes are a piece (slabs: pass the whole grid's :func:`mirror_points` with every slab).
        Results are exact for linear data and O(h²) accurate for every choice; a mirror point
        of a symmetric grid makes results of symmetric data symmetric to round-off.

    Returns
    -------
    (nv, nl) ndarray
        The integrals, exact for ε and h linear on each tetrahedron.
    """
    return TetrahedronGrid(axes, periods, mirror=mirror).integrals(energy, values, levels)


class TetrahedronGrid:
    """A grid's cells and their split (the ``axes``, ``periods`` and ``mirror`` of
    :func:`fermi_surface_integral`), resolved once for many integrals on it."""

    def __init__(self, axes, periods=(None, None, None), *, mirror=None):
        shape = tuple(np.size(u) for u in axes)
        _, self.axes, self.periods = _check_grid(np.zeros(shape), axes, periods)
        self.mirror = mirror
        self.widths = _cell_widths(self.axes, self.periods,
                                   _orientations(mirror, self.axes, self.periods))

    def integrals(self, energy, values, levels, between=None, weight=None,
                  hat=False) -> np.ndarray:
        """``I[v, l] = ∫ d³u weight(u) values[v](u) δ(energy(u) − levels[l])``, (nv, nl): see
        :func:`fermi_surface_integral`. ``hat``: ∫ d³u weight values[v] φ_l(energy) instead,
        φ_l the hat functions of the (strictly increasing) levels, the piecewise-linear
        interpolation basis on them (the first taken as 1 below its level, the last as 0 above
        it): Σ_l I[v, l] K(levels[l]) is then ∫ values[v] K_lin(energy) for K_lin the linear
        interpolant of any K, exact on every tetrahedron however narrow its energy range (a
        spectral density's integral against a smooth kernel, without sampling it at the levels);
        sections that ``between`` cuts are integrated against the hats by Gauss–Legendre.
        ``between = (low, high, mu)``: only where low(u) < mu < high(u) (``low``, ``high``
        node arrays like ``energy``, interpolated linearly; the T = 0 occupation factor of a
        band pair, :mod:`qmdipole.kernels`);
        ``(low, high, mu, T)`` with T > 0: times f(low(u)) − f(high(u)), f the Fermi–Dirac
        function at mu and T, integrated on each section where the cells do not resolve T
        (interpolated from the nodes where they do; :mod:`qmdipole.kernels`).
        ``weight``: a factor of every integrand at the nodes (like ``energy``; e.g. the
        Jacobian of the coordinates u), None for 1: applied node by node in the compiled loop,
        without a weighted copy of ``values``."""
        energy, *_ = _check_grid(energy, self.axes, self.periods)
        levels = _check_levels(levels)
        if hat and (levels.size < 2 or not np.all(np.diff(levels) > 0)):
            raise ValueError("hat functions need at least 2 strictly increasing levels")
        values = np.asarray(values, dtype=float)
        if values.ndim != 4 or values.shape[1:] != energy.shape:
            expected = ", ".join(map(str, energy.shape))
            raise ValueError(f"values must have shape (nv, {expected}), got {values.shape}")
        node_values = np.ascontiguousarray(values.reshape(values.shape[0], energy.size))
        node_weight = _flat_nodes(1.0 if weight is None else weight, energy.shape)
        out = np.zeros((levels.size, values.shape[0]))
        if values.shape[0]:
            fermi_surface_sum(energy, np.searchsorted(levels, energy, side="left"),
                              *self.widths, levels, node_values, node_weight, out,
                              *_clip(between, energy), bool(hat))
        return out.T


def fermi_surface_node_weights(
    energy: np.ndarray,
    axes: Sequence[np.ndarray],
    level,
    periods: Sequence[float | None] = (None, None, None),
    *,
    mirror: Sequence | None = None,
    level_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Node weights w of the δ-function at one level, or of Σ_l level_weights[l] δ(ε − level[l])
    (sorted levels, e.g. a thermal average over them).

    ``np.sum(w * h) == ∫ d³u h(u) δ(energy(u) − level)`` for any node values h (interpolated
    linearly on each tetrahedron). Parameters (``mirror`` included) as in
    :func:`fermi_surface_integral`.

    Returns
    -------
    (n1, n2, n3) ndarray
        The weights (zero away from the level set; non-negative for non-negative
        ``level_weights``).
    """
    energy, axes, periods = _check_grid(energy, axes, periods)
    orientation = _orientations(mirror, axes, periods)
    levels = _check_levels(np.atleast_1d(np.asarray(level, dtype=float)))
    if level_weights is None and levels.size != 1:
        raise ValueError(f"level must be a single number (or come with level_weights), got "
                         f"shape {np.shape(level)}")
    factors = np.ones(1) if level_weights is None else np.asarray(level_weights, dtype=float)
    if factors.shape != levels.shape:
        raise ValueError(f"level_weights must match the levels, shape {levels.shape}, "
                         f"got {np.shape(level_weights)}")
    out = np.zeros((energy.size, 1))
    fermi_surface_sum(energy, np.searchsorted(levels, energy, side="left"),
                      *_cell_widths(axes, periods, orientation), levels, np.empty((0, 0)),
                      factors, out, *_clip(None, energy), False)
    return out.reshape(energy.shape)


def occupation_vanishes(low, high, mu, temperature=0.0) -> bool:
    """Whether the occupation factor f(low) − f(high) of ``between = (low, high, mu[, T])`` is 0
    everywhere, to 2e-9 (every low >= mu + 20 T, or every high <= mu − 20 T: THERMAL_REACH), so
    that every integral it multiplies is 0."""
    reach = THERMAL_REACH * temperature
    return bool(np.all(np.asarray(low) >= mu + reach) or np.all(np.asarray(high) <= mu - reach))


def _clip(between, energy) -> tuple:
    """The kernel's clip arguments: flat ``low``, ``high``, ``mu`` and the temperature (None at
    T = 0; None, None, 0, None: no clip) from ``between = (low, high, mu[, temperature])``."""
    if between is None:
        return None, None, 0.0, None
    low, high, mu, *temperature = between
    temperature = float(temperature[0]) if temperature else 0.0
    if not temperature >= 0:
        raise ValueError(f"the occupation factor's temperature must be >= 0, got {temperature!r}")
    return (_flat_nodes(low, energy.shape), _flat_nodes(high, energy.shape), float(mu),
            temperature if temperature > 0 else None)


def _flat_nodes(values, shape) -> np.ndarray:
    """``values`` (broadcast to the grid's ``shape``) as the kernel's flat, contiguous node array."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(values, float), shape)).ravel()


def mirror_points(
    axes: Sequence[np.ndarray],
    periods: Sequence[float | None] = (None, None, None),
    *,
    periodic: bool = False,
) -> tuple:
    """The mirror of each axis of a whole grid, to pass as ``mirror=`` with the grid or any slab.

    Per axis: ``AxisMirror(m, nodes)`` for an open axis whose nodes are symmetric about the
    midpoint m of its first and last node (to 1e-10 of its span); with ``periodic=True``,
    ``AxisMirror(0.0, nodes, P)`` for a periodic axis whose node set is invariant under u → −u
    modulo its period P (to 1e-10 of P); False otherwise. ``periodic=False`` gives the default
    of the integrals for whole grids (see the module docstring for why periodic axes are not
    mirrored by default; pass ``periodic=True`` for Brillouin-zone grids).
    """
    if len(axes) != 3 or len(periods) != 3:
        raise ValueError("axes and periods must each have exactly 3 entries")
    out = []
    for u, period in zip(axes, periods):
        u = np.asarray(u, dtype=float)
        period = None if period is None else float(period)
        if period is None:
            point = _symmetric_midpoint(u)
        else:
            point = 0.0 if periodic and _invariant_under_negation(u, period) else None
        out.append(False if point is None else AxisMirror(point, u, period))
    return tuple(out)


# ----------------------------------------------------------------------------- core


def _cell_widths(axes, periods, orientation) -> list[np.ndarray]:
    """Per axis, (2, n_cells): each cell's width times the weight of its standard (row 0) and
    reflected (row 1) split."""
    out = []
    for u, period, w in zip(axes, periods, orientation):
        width = np.diff(_cell_edges(u, period))
        pair = (width, np.zeros_like(width)) if w is None else (width * w[0], width * w[1])
        out.append(np.ascontiguousarray(np.stack(pair)))
    return out


# ----------------------------------------------------------------------------- orientation


def _cell_edges(u: np.ndarray, period: float | None) -> np.ndarray:
    """Cell boundaries along one axis: the nodes, closed by ``u[0] + period`` if periodic."""
    return u if period is None else np.append(u, u[0] + period)


def _orientation_weights(edges: np.ndarray, m: float, period: float | None):
    """Weights (w0, w1) of the standard and the reflected split of the cells between ``edges``,
    mirrored about m (modulo ``period`` if not None): 1/2 each in a cell straddling a fixed
    point of the reflection, else bits alternating outward from m, opposite on either side."""
    x0, x1 = edges[:-1], edges[1:]
    half = 0.5 * (x1 - x0)
    inside = half * (1.0 - _CELL_TOL)  # a fixed point farther inside than this: straddling
    centre = 0.5 * (x0 + x1) - m
    if period is None:
        straddle = np.abs(centre) < inside
        below = centre < 0
        distance = np.abs(centre)
    else:
        d = np.mod(centre, period)  # (0, P/2): above m; (P/2, P): below m
        straddle = (np.minimum(d, period - d) < inside) | (np.abs(d - 0.5 * period) < inside)
        below = d > 0.5 * period
        distance = np.minimum(d, period - d)
    below &= ~straddle
    above = ~(below | straddle)
    # q = number of cells between a cell and m on its side; bit = (q + below) mod 2
    q = np.zeros(edges.size - 1, dtype=np.int64)
    for side in (above, below):
        q[side] = np.argsort(np.argsort(distance[side], kind="stable"), kind="stable")
    bit = (q + below) % 2
    w1 = np.where(straddle, 0.5, bit.astype(float))
    w0 = np.where(straddle, 0.5, 1.0 - bit)
    return w0, w1


def _symmetric_midpoint(u: np.ndarray) -> float | None:
    """Midpoint of an open axis if its nodes are symmetric about it, else None."""
    m = 0.5 * (u[0] + u[-1])
    asymmetry = np.max(np.abs((u - m) + (u[::-1] - m)))
    return float(m) if asymmetry <= _SYMMETRY_TOL * (u[-1] - u[0]) else None


def _invariant_under_negation(u: np.ndarray, period: float) -> bool:
    """Whether the node set of a periodic axis is invariant under u → −u modulo ``period``."""
    residues = np.sort(np.mod(u, period))
    images = np.mod(-u, period)
    nearest = np.searchsorted(residues, images)
    distance = np.full(u.size, np.inf)
    for neighbour in (residues[nearest % u.size], residues[nearest - 1]):
        gap = np.abs(images - neighbour)
        distance = np.minimum(distance, np.minimum(gap, period - gap))
    return bool(np.max(distance) <= _SYMMETRY_TOL * period)


def _orientations(mirror, axes, periods) -> tuple:
    """Resolve ``mirror`` to per-axis None (standard split) or cell weights (w0, w1)."""
    if mirror is None:
        mirror = (None, None, None)
    if isinstance(mirror, str) or not isinstance(mirror, (Sequence, np.ndarray)) \
            or len(mirror) != 3:
        raise ValueError(f"mirror must be None or have exactly 3 entries, got {mirror!r}")
    out = []
    for ax, (spec, u, period) in enumerate(zip(mirror, axes, periods)):
        edges = _cell_edges(u, period)
        if spec is None:
            point = _symmetric_midpoint(u) if period is None else None
            out.append(None if point is None else _orientation_weights(edges, point, None))
        elif spec is False or (isinstance(spec, np.bool_) and not spec):
            out.append(None)
        elif isinstance(spec, AxisMirror):
            out.append(_piece_of_axis(spec, edges, period, ax))
        elif isinstance(spec, (bool, np.bool_)) or np.ndim(spec) != 0:
            raise ValueError(
                f"mirror[{ax}] must be None, False, a mirror point or an AxisMirror, "
                f"got {spec!r}"
            )
        else:
            point = float(spec)
            if not np.isfinite(point):
                raise ValueError(f"mirror[{ax}] must be finite, got {spec!r}")
            out.append(_orientation_weights(edges, point, period))
    return tuple(out)


def _piece_of_axis(spec: AxisMirror, edges: np.ndarray, period: float | None, ax: int):
    """Cell weights of ``edges`` (cells of a call) as cells of the whole axis of ``spec``."""
    nodes = np.asarray(spec.nodes, dtype=float)
    point = float(spec.point)
    whole_period = None if spec.period is None else float(spec.period)
    if nodes.ndim != 1 or nodes.size < 2 or not np.all(np.diff(nodes) > 0):
        raise ValueError(f"mirror[{ax}].nodes must be strictly increasing, at least 2 nodes")
    if not np.isfinite(point) or (whole_period is not None and not (
            np.isfinite(whole_period) and nodes[0] + whole_period > nodes[-1])):
        raise ValueError(f"mirror[{ax}]: point and period must be finite, the period must "
                         "exceed the span of the nodes")
    if period is not None and whole_period != period:
        raise ValueError(f"mirror[{ax}].period = {whole_period} differs from periods[{ax}] = "
                         f"{period} of a periodic axis")
    whole = _cell_edges(nodes, whole_period)
    start = int(np.argmin(np.abs(whole - edges[0])))
    piece = whole[start : start + edges.size]
    tol = 1e-12 * (whole[-1] - whole[0])
    if piece.size != edges.size or np.max(np.abs(piece - edges)) > tol:
        raise ValueError(f"axes[{ax}] is not a run of consecutive nodes of mirror[{ax}].nodes")
    w0, w1 = _orientation_weights(whole, point, whole_period)
    stop = start + edges.size - 1
    return w0[start:stop], w1[start:stop]


# ----------------------------------------------------------------------------- input checks


def _check_grid(energy, axes, periods) -> tuple[np.ndarray, tuple, tuple]:
    energy = np.ascontiguousarray(energy, dtype=float)
    if energy.ndim != 3:
        raise ValueError(f"energy must be a 3-D array (n1, n2, n3), got shape {energy.shape}")
    if len(axes) != 3 or len(periods) != 3:
        raise ValueError("axes and periods must each have exactly 3 entries")
    checked_axes, checked_periods = [], []
    for ax, (u, period) in enumerate(zip(axes, periods)):
        u = np.asarray(u, dtype=float)
        if u.ndim != 1 or u.size < 2:
            raise ValueError(
                f"axes[{ax}] must be a 1-D array of at least 2 nodes, got shape {u.shape}"
            )
        if u.size != energy.shape[ax]:
            raise ValueError(
                f"axes[{ax}] has {u.size} nodes but energy has {energy.shape[ax]} along axis {ax}"
            )
        if not np.all(np.isfinite(u)) or not np.all(np.diff(u) > 0):
            raise ValueError(f"axes[{ax}] must be finite and strictly increasing")
        if period is not None:
            period = float(period)
            if not np.isfinite(period) or u[0] + period <= u[-1]:
                raise ValueError(
                    f"periods[{ax}] = {period} must exceed the span of axes[{ax}] "
                    f"({u[-1] - u[0]}) so that the wrap-around cell has positive width"
                )
        checked_axes.append(u)
        checked_periods.append(period)
    if not np.all(np.isfinite(energy)):
        raise ValueError("energy contains non-finite values")
    return energy, tuple(checked_axes), tuple(checked_periods)


def _check_levels(levels) -> np.ndarray:
    levels = np.ascontiguousarray(levels, dtype=float)
    if levels.ndim != 1:
        raise ValueError(f"levels must be a 1-D array, got shape {levels.shape}")
    if not np.all(np.isfinite(levels)):
        raise ValueError("levels contains non-finite values")
    if np.any(np.diff(levels) < 0):
        raise ValueError("levels must be sorted in non-decreasing order")
    return levels
