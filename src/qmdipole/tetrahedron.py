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

Cost. The cells of each orientation form a few (strided) boxes of the grid, whose tetrahedra are
screened with integer level indices. A tetrahedron whose energy range holds at most
``_PAIR_LEVELS`` levels is summed level by level, one (tetrahedron, level) pair at a time. Of one
that holds more (levels dense against the spread of energies within a cell), each of the three
pieces of its energy range that does too is added whole, as a cubic in the level, to running
sums over blocks of levels (:class:`~qmdipole.piecewise_cubic.CubicPieceSum`), at a cost that does
not depend on its level count. The total is O(N_tet · min(n̄, _PAIR_LEVELS + c) + N_levels ·
log N_levels), with n̄ the mean number of levels in a tetrahedron's range: a level does not add a
sum over the ~N_tet^{2/3} tetrahedra its surface crosses, as level-by-level sums would, once the
levels are dense.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import sparse

from .piecewise_cubic import CubicPieceSum

__all__ = ["AxisMirror", "fermi_surface_integral", "fermi_surface_node_weights", "mirror_points"]

# Working-set bounds: grid cells screened at once, (tetrahedron, level) pairs at once. Small
# batches keep the temporaries in cache (measured ~2x faster than batches of 2**20). Blocks of
# _BLOCK_CHUNKS * _CHUNK_POSITIONS cells are visited one orientation after the other (the corners
# gathered stay in cache), and the tetrahedra found are passed on in batches of at least
# _FLUSH_TETRAHEDRA (the cells of one orientation in one chunk can be few).
_CHUNK_POSITIONS = 1 << 15
_MAX_PAIRS = 1 << 16
_BLOCK_CHUNKS = 4
_FLUSH_TETRAHEDRA = 1 << 14

# A piece of a tetrahedron's energy range that holds more levels than this is added whole, as a
# cubic in the level (CubicPieceSum: O(1), as costly as ~20 pairs); fewer: pair by pair. 32 was
# fastest of 16, 32, 64 on the default valley-1 table at 3201 and 12801 levels.
_PAIR_LEVELS = 32
# Memory bound of those running sums (several integrands of many levels: a group at a time).
_MAX_RUNNING_SUM_BYTES = 1 << 29
# The corner weights on a piece are cubics in t = (λ − centre)/half_width, found from their
# values at 4 Chebyshev points: coefficients = _FROM_SAMPLES @ values.
_CHEBYSHEV = np.cos((2 * np.arange(4) + 1) * np.pi / 8)
_FROM_SAMPLES = np.linalg.inv(np.vander(_CHEBYSHEV, 4, increasing=True))

# Kuhn split: tetrahedron (a, b) runs 000 -> e_a -> e_a + e_b -> 111 through the cell. With
# orientation bits r (1 = reflected along that axis) every corner is XOR-ed with r.
_KUHN_PATHS = ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))

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
    energy, axes, periods = _check_grid(energy, axes, periods)
    orientation = _orientations(mirror, axes, periods)
    levels = _check_levels(levels)
    values = np.asarray(values, dtype=float)
    if values.ndim != 4 or values.shape[1:] != energy.shape:
        expected = ", ".join(map(str, energy.shape))
        raise ValueError(f"values must have shape (nv, {expected}), got {values.shape}")
    # the running sums of the pieces take ~32 bytes per level, integrand and block scale: bound
    # them by taking the integrands a group at a time
    scales = max(1.0, np.log2(levels.size / max(_PAIR_LEVELS, 1)))
    group = max(1, int(_MAX_RUNNING_SUM_BYTES // (32 * levels.size * scales)))
    if values.shape[0] > group:
        return np.concatenate([
            fermi_surface_integral(energy, values[i : i + group], axes, levels, periods,
                                   mirror=mirror)
            for i in range(0, values.shape[0], group)
        ])
    # node-major copy: one batch's corner rows are gathered for all integrands at once
    node_values = np.ascontiguousarray(values.reshape(values.shape[0], -1).T)
    out = np.zeros((levels.size, values.shape[0]))
    pieces = CubicPieceSum(levels, node_values)
    for tetra in _tetrahedra(energy, axes, levels, periods, orientation):
        many = tetra.count > _PAIR_LEVELS
        if many.any():
            short = _add_long_pieces(pieces, tetra.subset(many))
            tetra = Tetrahedra(*(np.concatenate(parts, axis=-1)
                                 for parts in zip(tetra.subset(~many), short)))
        for level_index, nodes, weights in _pairs(tetra, levels):
            deposit = sparse.coo_matrix(
                (weights.ravel(), (np.tile(level_index, 4), nodes.ravel())),
                shape=(levels.size, energy.size),
            )
            out += deposit @ node_values
    return out.T + pieces.values()


def fermi_surface_node_weights(
    energy: np.ndarray,
    axes: Sequence[np.ndarray],
    level: float,
    periods: Sequence[float | None] = (None, None, None),
    *,
    mirror: Sequence | None = None,
) -> np.ndarray:
    """Node weights w of the δ-function at one level.

    ``np.sum(w * h) == ∫ d³u h(u) δ(energy(u) − level)`` for any node values h (interpolated
    linearly on each tetrahedron). Parameters (``mirror`` included) as in
    :func:`fermi_surface_integral`.

    Returns
    -------
    (n1, n2, n3) ndarray
        The weights (non-negative; zero away from the level set).
    """
    energy, axes, periods = _check_grid(energy, axes, periods)
    orientation = _orientations(mirror, axes, periods)
    levels = _check_levels(np.atleast_1d(np.asarray(level, dtype=float)))
    if levels.size != 1:
        raise ValueError(f"level must be a single number, got shape {np.shape(level)}")
    out = np.zeros(energy.size)
    for tetra in _tetrahedra(energy, axes, levels, periods, orientation):
        for _, nodes, weights in _pairs(tetra, levels):
            out += np.bincount(nodes.ravel(), weights=weights.ravel(), minlength=energy.size)
    return out.reshape(energy.shape)


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


def _tetrahedra(
    energy: np.ndarray,
    axes: tuple[np.ndarray, ...],
    levels: np.ndarray,
    periods: tuple[float | None, ...],
    orientation: tuple,
) -> Iterator[Tetrahedra]:
    """Yield batches of the tetrahedra with a level in their energy range, corners sorted by
    energy. ``orientation``: per axis None (standard split) or the per-cell weights (w0, w1) of
    the standard and the reflected split."""
    # Pad periodic axes with a copy of their first node so that every cell, including the
    # wrap-around one, joins nodes (i, j, k) and (i+1, j+1, k+1) of the padded grid.
    pad = [(0, 0 if period is None else 1) for period in periods]
    padded = np.pad(energy, pad, mode="wrap")
    to_node = None  # padded flat index -> node flat index, where they differ
    if padded.shape != energy.shape:
        to_node = np.pad(np.arange(energy.size).reshape(energy.shape), pad, mode="wrap").ravel()
    spacings = [np.diff(_cell_edges(u, period)) for u, period in zip(axes, periods)]
    shape = padded.shape
    strides = (shape[1] * shape[2], shape[2], 1)
    e_flat = padded.ravel()

    # Level index of each node: levels[:k] < ε <= levels[k:]. A tetrahedron with corner indices
    # k_c holds exactly the levels with min k_c <= l < max k_c, i.e. e_min <= λ_l < e_max.
    k_flat = np.searchsorted(levels, e_flat, side="left").astype(np.int32)
    k_grid = k_flat.reshape(shape)

    # Per axis and orientation bit b: weight of each cell (its width, times 1/2 in a straddling
    # cell, 0 where the cell does not use b) and a few ranges covering the cells with weight.
    widths = []
    for s, w in zip(spacings, orientation):
        if w is None:
            widths.append((s, np.zeros_like(s)))
        else:
            widths.append((s * w[0], s * w[1]))
    cell_ranges = [tuple(_ranges(w > 0) for w in pair) for pair in widths]
    k_split = None  # for every other cell along the last axis, screened from a contiguous copy
    if any(c.step != 1 for ranges in cell_ranges[2] for c in ranges):
        k_split = np.concatenate([k_grid[:, :, 0::2], k_grid[:, :, 1::2]], axis=2)
    # Visit the grid in blocks of axis-1 cells, all orientations of a block together, so that
    # the corners gathered for the tetrahedra stay in cache.
    per_row = (shape[1] - 1) * (shape[2] - 1)
    rows = max(1, (_BLOCK_CHUNKS * _CHUNK_POSITIONS) // per_row)
    # Tetrahedra of several screening chunks are passed on together (fewer, larger batches).
    pending, n_pending = [], 0
    for i0 in range(0, shape[0] - 1, rows):
        for tetra in _block_tetrahedra(i0, min(i0 + rows, shape[0] - 1), cell_ranges, widths,
                                       k_grid, k_split, strides):
            pending.append(tetra)
            n_pending += tetra[1].size
            if n_pending >= _FLUSH_TETRAHEDRA:
                yield _sort_corners(*_concatenate(pending), e_flat, to_node)
                pending, n_pending = [], 0
    if pending:
        yield _sort_corners(*_concatenate(pending), e_flat, to_node)


def _concatenate(pending: list) -> tuple:
    """Join tetrahedron batches ``(corners (4, nt), vol, lo, count)``."""
    if len(pending) == 1:
        return pending[0]
    return tuple(np.concatenate(parts, axis=-1) for parts in zip(*pending))


def _block_tetrahedra(i0, i1, cell_ranges, widths, k_grid, k_split, strides):
    """Yield ``(corners (4, nt), vol, lo, count)`` of the tetrahedra with a level in their
    energy range (level indices lo .. lo + count − 1) among the cells with axis-1 index in
    [i0, i1), orientation by orientation; corners are flat indices into the padded grid.
    ``k_split``: ``k_grid`` with even then odd indices along the last axis (or None)."""
    k_split_half = None if k_split is None else (k_grid.shape[2] + 1) // 2
    for r in itertools.product((0, 1), repeat=3):
        # corner bits of the 6 tetrahedra: r, r ^ e_a, r ^ e_a ^ e_b, ~r
        paths = []
        for a, b in _KUHN_PATHS:
            c1 = list(r)
            c1[a] ^= 1
            c2 = list(c1)
            c2[b] ^= 1
            paths.append((tuple(c1), tuple(c2)))
        c3 = tuple(1 - x for x in r)
        width = [widths[a][r[a]] for a in range(3)]
        for box in itertools.product(*(cell_ranges[a][r[a]] for a in range(3))):
            box = (_clip(box[0], i0, i1),) + box[1:]
            if len(box[0]) == 0:
                continue
            for cells in _sub_boxes(box, _CHUNK_POSITIONS):

                def k_at(bits, cells=cells):  # level indices at one corner of every cell
                    (ri, rj, rl), (di, dj, dl) = cells, bits
                    if rl.step == 1:
                        return k_grid[ri.start + di : ri.stop + di : ri.step,
                                      rj.start + dj : rj.stop + dj : rj.step,
                                      rl.start + dl : rl.stop + dl]
                    # every other cell along the last axis: contiguous in the split copy
                    first = rl.start + dl
                    first = (first % 2) * k_split_half + first // 2
                    return k_split[ri.start + di : ri.stop + di : ri.step,
                                   rj.start + dj : rj.stop + dj : rj.step,
                                   first : first + len(rl)]

                k0, k111 = k_at(r), k_at(c3)
                lo0, hi0 = np.minimum(k0, k111), np.maximum(k0, k111)
                position = None  # per cell: flat padded index of the 000 corner, volume / 6
                for c1, c2 in paths:
                    ka, kab = k_at(c1), k_at(c2)
                    lo = np.minimum(np.minimum(lo0, ka), kab)
                    count = np.maximum(np.maximum(hi0, ka), kab)
                    count -= lo
                    active = np.flatnonzero(count)
                    if active.size == 0:
                        continue
                    if position is None:
                        ci, cj, cl = (np.arange(c.start, c.stop, c.step) for c in cells)
                        position = (
                            ci[:, None, None] * strides[0] + cj[None, :, None] * strides[1]
                            + cl[None, None, :]
                        ).ravel()
                        vol6 = (
                            (width[0][ci] / 6.0)[:, None, None] * width[1][cj][None, :, None]
                            * width[2][cl][None, None, :]
                        ).ravel()
                    cell = position[active]
                    corners = np.stack([
                        cell + (bits[0] * strides[0] + bits[1] * strides[1] + bits[2])
                        for bits in (r, c1, c2, c3)
                    ])
                    yield corners, vol6[active], lo.ravel()[active], count.ravel()[active]


def _clip(cells: range, lo: int, hi: int) -> range:
    """The part of ``cells`` in [lo, hi)."""
    first = max(0, -((cells.start - lo) // cells.step))
    last = max(0, -((cells.start - hi) // cells.step))
    return cells[first:last]


def _ranges(mask: np.ndarray) -> list:
    """The indices where ``mask`` holds as a few ranges: contiguous runs, or runs of every other
    index where that takes fewer."""

    def runs(m, first=0, step=1):
        if m.size == 0:
            return []
        change = np.flatnonzero(np.diff(m)) + 1
        bounds = np.concatenate([[0], change, [m.size]])
        return [
            range(first + step * s, first + step * t, step)
            for s, t in zip(bounds[:-1], bounds[1:])
            if m[s]
        ]

    plain = runs(mask)
    strided = runs(mask[0::2], 0, 2) + runs(mask[1::2], 1, 2)
    return plain if len(plain) <= len(strided) else strided


def _sub_boxes(cells: tuple, limit: int) -> Iterator[tuple]:
    """Split a box of cells (three ranges of cell indices) into boxes of at most
    ``max(limit, 1)`` cells, whole rows along the last axes where possible."""
    ri, rj, rl = cells
    nj, nl = len(rj), len(rl)
    limit = max(limit, 1)
    if nj * nl <= limit:
        step = limit // (nj * nl)
        for i in range(0, len(ri), step):
            yield ri[i : i + step], rj, rl
    elif nl <= limit:
        step = limit // nl
        for i in range(len(ri)):
            for j in range(0, nj, step):
                yield ri[i : i + 1], rj[j : j + step], rl
    else:
        for i in range(len(ri)):
            for j in range(nj):
                for k in range(0, nl, limit):
                    yield ri[i : i + 1], rj[j : j + 1], rl[k : k + limit]


class Tetrahedra(NamedTuple):
    """A batch of tetrahedra: corner energies sorted, energy[0] <= ... <= energy[3], (4, nt);
    their flat node indices, (4, nt); the volume of each in the grid's coordinates (its cell's
    volume / 6, times 1/2 in a straddling cell); the indices lo .. lo + count − 1 of the levels
    in [energy[0], energy[3]) (for a piece of the range: the levels of that piece)."""

    energy: np.ndarray
    node: np.ndarray
    vol: np.ndarray
    lo: np.ndarray
    count: np.ndarray

    def subset(self, mask: np.ndarray) -> Tetrahedra:
        return Tetrahedra(self.energy[:, mask], self.node[:, mask], self.vol[mask],
                          self.lo[mask], self.count[mask])


def _sort_corners(corners, vol, lo, count, e_flat, to_node) -> Tetrahedra:
    """Sort each tetrahedron's corners by energy (a sorting network for 4 items)."""
    e = [e_flat[c] for c in corners]
    n = list(corners)
    for i, j in ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)):
        swap = e[i] > e[j]
        e[i], e[j] = np.minimum(e[i], e[j]), np.maximum(e[i], e[j])
        n[i], n[j] = np.where(swap, n[j], n[i]), np.where(swap, n[i], n[j])
    if to_node is not None:
        n = [to_node[c] for c in n]
    return Tetrahedra(np.stack(e), np.stack(n), vol, lo, count)


def _pairs(tetra: Tetrahedra, levels: np.ndarray) -> Iterator[tuple]:
    """Yield batches ``(level_index (np,), nodes (4, np), weights (4, np))`` of tetrahedron-level
    pairs: ``Σ_pairs Σ_c weights[c] h[nodes[c]]`` summed per level index is the δ-integral of h."""
    count, lo = tetra.count, tetra.lo
    # Split the tetrahedra into groups of at most ~_MAX_PAIRS pairs (at least one tetrahedron).
    ends = np.cumsum(count)
    bounds = [0]
    while bounds[-1] < count.size:
        target = ends[bounds[-1] - 1] + _MAX_PAIRS if bounds[-1] else _MAX_PAIRS
        bounds.append(max(int(np.searchsorted(ends, target, side="right")), bounds[-1] + 1))
    for t0, t1 in zip(bounds[:-1], bounds[1:]):
        cnt = count[t0:t1]
        if np.all(cnt == 1):
            level_index = lo[t0:t1]
            energy, node, vol = tetra.energy[:, t0:t1], tetra.node[:, t0:t1], tetra.vol[t0:t1]
        else:
            pick = np.repeat(np.arange(t0, t1), cnt)
            first = np.cumsum(cnt) - cnt
            level_index = np.arange(pick.size) + np.repeat(lo[t0:t1] - first, cnt)
            energy, node, vol = (np.take(x, pick, axis=-1)
                                 for x in (tetra.energy, tetra.node, tetra.vol))
        yield level_index, node, _delta_weights(*energy, levels[level_index], vol)


def _add_long_pieces(pieces: CubicPieceSum, tetra: Tetrahedra) -> Tetrahedra:
    """Add the pieces of the tetrahedra that hold more than ``_PAIR_LEVELS`` levels to
    ``pieces``; return the other pieces, to be summed pair by pair (as tetrahedra whose level
    ranges are those pieces').

    On each piece [e1, e2), [e2, e3), [e3, e4) of a tetrahedron's energy range the corner weights
    are cubic in the level (exactly; found from their values at 4 Chebyshev points of the
    piece); they multiply the values at the corner nodes."""
    k = np.searchsorted(pieces.levels, tetra.energy, side="left")
    short = []
    for branch_index, branch in enumerate(_BRANCHES):
        count = k[branch_index + 1] - k[branch_index]
        few = (count > 0) & (count <= _PAIR_LEVELS)
        short.append(tetra.subset(few)._replace(lo=k[branch_index, few], count=count[few]))
        many = np.flatnonzero(count > _PAIR_LEVELS)
        if many.size == 0:
            continue
        e = tetra.energy[:, many]
        centre = 0.5 * (e[branch_index] + e[branch_index + 1])
        half_width = 0.5 * (e[branch_index + 1] - e[branch_index])
        samples = centre + half_width * _CHEBYSHEV[:, None]  # (4 points, np)
        weights = np.stack(branch(*e, samples, tetra.vol[many]))  # (4 corners, 4 points, np)
        pieces.add(k[branch_index, many], k[branch_index + 1, many], centre, half_width,
                   np.einsum("nq,cqp->ncp", _FROM_SAMPLES, weights), tetra.node[:, many])
    return Tetrahedra(*(np.concatenate(parts, axis=-1) for parts in zip(*short)))


def _delta_weights(e1, e2, e3, e4, lam, vol) -> np.ndarray:
    """Corner weights (4, np) of ∫_tet h δ(ε − λ) for sorted corner energies e1 <= ... <= e4
    and e1 <= λ < e4. Every denominator below is positive on its branch."""
    w = np.empty((4, lam.size))
    low = lam < e2
    high = lam >= e3
    for branch, idx in zip(
        _BRANCHES, (np.flatnonzero(low), np.flatnonzero(~(low | high)), np.flatnonzero(high))
    ):
        if idx.size:
            w[:, idx] = branch(e1[idx], e2[idx], e3[idx], e4[idx], lam[idx], vol[idx])
    return w


def _weights_triangle_low(e1, e2, e3, e4, lam, vol):
    """e1 <= λ < e2: section is the triangle cut from edges 1-2, 1-3, 1-4."""
    x = lam - e1
    f2, f3, f4 = x / (e2 - e1), x / (e3 - e1), x / (e4 - e1)
    c = vol * f2 * f3 / (e4 - e1)  # one third of the section's area / |∇ε|
    return c * (3.0 - f2 - f3 - f4), c * f2, c * f3, c * f4


def _weights_triangle_high(e1, e2, e3, e4, lam, vol):
    """e3 <= λ < e4: section is the triangle cut from edges 1-4, 2-4, 3-4."""
    y = e4 - lam
    f1, f2, f3 = y / (e4 - e1), y / (e4 - e2), y / (e4 - e3)
    c = vol * f2 * f3 / (e4 - e1)
    return c * f1, c * f2, c * f3, c * (3.0 - f1 - f2 - f3)


def _weights_quadrilateral(e1, e2, e3, e4, lam, vol):
    """e2 <= λ < e3: section is the quadrilateral P13 P14 P24 P23 (P_ij on edge i-j), split
    along P13-P24 into two triangles of areas/|∇ε| 3*c1 and 3*c2."""
    a13, a14 = (lam - e1) / (e3 - e1), (lam - e1) / (e4 - e1)
    a23, a24 = (lam - e2) / (e3 - e2), (lam - e2) / (e4 - e2)
    c1 = vol * a13 * (1.0 - a24) / (e4 - e1)
    c2 = vol * (1.0 - a13) * a23 / (e4 - e2)
    c12 = c1 + c2
    return (
        c12 * (1.0 - a13) + c1 * (1.0 - a14),
        c12 * (1.0 - a24) + c2 * (1.0 - a23),
        c12 * a13 + c2 * a23,
        c1 * a14 + c12 * a24,
    )


_BRANCHES = (_weights_triangle_low, _weights_quadrilateral, _weights_triangle_high)


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
    energy = np.asarray(energy, dtype=float)
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
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1:
        raise ValueError(f"levels must be a 1-D array, got shape {levels.shape}")
    if not np.all(np.isfinite(levels)):
        raise ValueError("levels contains non-finite values")
    if np.any(np.diff(levels) < 0):
        raise ValueError("levels must be sorted in non-decreasing order")
    return levels
