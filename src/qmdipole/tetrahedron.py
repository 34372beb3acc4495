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

Mirror-symmetric split: the Kuhn split along one fixed diagonal (000 → 111 in index space) is
invariant under full inversion but not under reflecting a single axis, so a symmetry of the
integrand under u_a → 2m − u_a (e.g. k_z → −k_z) would hold only to O(h²) and symmetry-forbidden
integrals would come out O(h²) instead of zero. Instead, along every axis whose node set is
symmetric about a mirror point m, cells below m use the Kuhn split reflected along that axis and
cells above m the standard one; a cell that straddles m (on a periodic axis also the cell that
straddles m + P/2) gets both with half weight each. The decomposition is then mapped onto itself
by each such reflection, so symmetry relations and nulls hold to round-off whenever the grid
and the integrand are symmetric. Between an unsplit reflected and standard cell the shared face
has the same diagonal, so apart from the straddling cells the tetrahedra still tile the grid
conformingly. Every split is exact for linear ε and h, and the choice of mirror points never
affects correctness or the order of the error, only which symmetries are exact (see the
``mirror`` argument and :func:`mirror_points`).

For smooth ε and h the error is O(h²) in the grid spacing.

The cost is O(N_tet + N_pairs), with N_pairs the number of (tetrahedron, level) pairs with the
level inside the tetrahedron's energy range: tetrahedra are screened with integer level
indices, pairs are processed in bounded batches and accumulated with ``np.bincount``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from scipy import sparse

__all__ = ["fermi_surface_integral", "fermi_surface_node_weights", "mirror_points"]

# Working-set bounds: grid positions screened at once, (tetrahedron, level) pairs at once. Small
# batches keep the temporaries in cache (measured ~2x faster than batches of 2**20).
_CHUNK_POSITIONS = 1 << 15
_MAX_PAIRS = 1 << 16

# Kuhn split: tetrahedron (a, b) runs 000 -> e_a -> e_a + e_b -> 111 through the cell. With
# orientation bits r (1 = reflected along that axis) every corner is XOR-ed with r.
_KUHN_PATHS = ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))

# Node sets symmetric to this relative tolerance (of the span, or of the period) are mirrored by
# default. Cell classification against a mirror point uses a tolerance of _CELL_TOL times the
# cell's width, so that a node at the mirror point up to round-off is treated as exactly on it.
_SYMMETRY_TOL = 1e-10
_CELL_TOL = 1e-8



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
    mirror : None or three of (None, False, float, (float, float))
        Mirror point per axis for the symmetric split (see the module docstring). None (the
        default) is ``(None, None, None)``. Per axis: None decides from the nodes — an open axis
        is mirrored about the midpoint of its first and last node if its nodes are symmetric
        about it, a periodic axis about 0 if its nodes are invariant under u → −u modulo the
        period (relative tolerance 1e-10), otherwise not at all; False: standard split, no
        mirroring; a float m: mirror about m (on a periodic axis u → 2m − u modulo the period,
        so the cells straddling m and m + P/2 are shared); a pair (m, P): the axis is a piece of
        a periodic axis of period P mirrored about m, e.g. an open slab of it (P must equal
        ``periods[a]`` if the axis is periodic here). Pass explicit entries when the nodes are a
        piece of a larger grid (slabs): the split of a cell depends only on the cell and the
        mirror point, so slabs given the full grid's :func:`mirror_points` add up to the whole
        grid exactly. The mirror points only select the split: results are exact for linear
        data and O(h²) accurate for any choice, and exactly reflection-symmetric when the grid
        and the integrand are.

    Returns
    -------
    (nv, nl) ndarray
        The integrals, exact for ε and h linear on each tetrahedron.
    """
    energy, axes, periods = _check_grid(energy, axes, periods)
    mirror = _check_mirror(mirror, axes, periods)
    levels = _check_levels(levels)
    values = np.asarray(values, dtype=float)
    if values.ndim != 4 or values.shape[1:] != energy.shape:
        expected = ", ".join(map(str, energy.shape))
        raise ValueError(f"values must have shape (nv, {expected}), got {values.shape}")
    # node-major copy: one batch's corner rows are gathered for all integrands at once
    node_values = np.ascontiguousarray(values.reshape(values.shape[0], -1).T)
    out = np.zeros((levels.size, values.shape[0]))
    for level_index, nodes, weights in _pair_batches(energy, axes, levels, periods, mirror):
        deposit = sparse.coo_matrix(
            (weights.ravel(), (np.tile(level_index, 4), nodes.ravel())),
            shape=(levels.size, energy.size),
        )
        out += deposit @ node_values
    return out.T


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
    mirror = _check_mirror(mirror, axes, periods)
    levels = _check_levels(np.atleast_1d(np.asarray(level, dtype=float)))
    if levels.size != 1:
        raise ValueError(f"level must be a single number, got shape {np.shape(level)}")
    out = np.zeros(energy.size)
    for _, nodes, weights in _pair_batches(energy, axes, levels, periods, mirror):
        out += np.bincount(nodes.ravel(), weights=weights.ravel(), minlength=energy.size)
    return out.reshape(energy.shape)


# ----------------------------------------------------------------------------- core


def _pair_batches(
    energy: np.ndarray,
    axes: tuple[np.ndarray, ...],
    levels: np.ndarray,
    periods: tuple[float | None, ...],
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield batches ``(level_index (np,), nodes (4, np), weights (4, np))`` of tetrahedron-level
    pairs: ``Σ_pairs Σ_c weights[c] h[nodes[c]]`` (flat node indices into ``energy``) summed per
    level index is the δ-integral of h."""
    # Pad periodic axes with a copy of their first node so that every cell, including the
    # wrap-around one, joins nodes (i, j, k) and (i+1, j+1, k+1) of the padded grid.
    pad = [(0, 0 if period is None else 1) for period in periods]
    padded = np.pad(energy, pad, mode="wrap")
    to_node = None  # padded flat index -> node flat index, where they differ
    if padded.shape != energy.shape:
        to_node = np.pad(np.arange(energy.size).reshape(energy.shape), pad, mode="wrap").ravel()
    spacings = [
        np.diff(u if period is None else np.append(u, u[0] + period))
        for u, period in zip(axes, periods)
    ]
    shape = padded.shape
    strides = (shape[1] * shape[2], shape[2], 1)
    e_flat = padded.ravel()

    # Tetrahedron volume (cell volume / 6) at each cell's 000 corner; cell grid is padded-1.
    vol6 = np.zeros(shape)
    vol6[:-1, :-1, :-1] = (
        spacings[0][:, None, None] * spacings[1][None, :, None] * spacings[2][None, None, :] / 6.0
    )
    vol6 = vol6.ravel()
    # Level index of each node: levels[:k] < ε <= levels[k:]. A tetrahedron with corner indices
    # k_c holds exactly the levels with min k_c <= l < max k_c, i.e. e_min <= λ_l < e_max.
    k_flat = np.searchsorted(levels, e_flat, side="left").astype(np.int32)

    o111 = sum(strides)
    n_pos = e_flat.size - o111  # positions p whose corner p + o111 exists; covers every cell
    row_is_cell = np.zeros((shape[1], shape[2]), dtype=bool)
    row_is_cell[:-1, :-1] = True
    # is_cell pattern of one i-row, repeated so that any chunk can be sliced out of it
    is_cell_tiled = np.tile(row_is_cell.ravel(), 2 + _CHUNK_POSITIONS // strides[0])

    for p0 in range(0, n_pos, _CHUNK_POSITIONS):
        p1 = min(p0 + _CHUNK_POSITIONS, n_pos)
        k0, k111 = k_flat[p0:p1], k_flat[p0 + o111 : p1 + o111]
        lo0, hi0 = np.minimum(k0, k111), np.maximum(k0, k111)
        is_cell = is_cell_tiled[p0 % strides[0] :][: p1 - p0]
        for a, b in _KUHN_PATHS:
            oa, oab = strides[a], strides[a] + strides[b]
            ka, kab = k_flat[p0 + oa : p1 + oa], k_flat[p0 + oab : p1 + oab]
            lo = np.minimum(np.minimum(lo0, ka), kab)
            count = np.maximum(np.maximum(hi0, ka), kab)
            count -= lo
            count *= is_cell
            active = np.flatnonzero(count)
            if active.size == 0:
                continue
            cell = active + p0
            corners = (cell, cell + oa, cell + oab, cell + o111)
            yield from _tetra_pairs(
                corners, e_flat, vol6[cell], lo[active], count[active], levels, to_node
            )


def _tetra_pairs(
    corners: tuple[np.ndarray, ...],
    e_flat: np.ndarray,
    vol: np.ndarray,
    lo: np.ndarray,
    count: np.ndarray,
    levels: np.ndarray,
    to_node: np.ndarray | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Sort each tetrahedron's corners by energy, expand to its levels, yield weights."""
    e = [e_flat[c] for c in corners]
    n = list(corners)
    for i, j in ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)):  # sorting network for 4 items
        swap = e[i] > e[j]
        e[i], e[j] = np.minimum(e[i], e[j]), np.maximum(e[i], e[j])
        n[i], n[j] = np.where(swap, n[j], n[i]), np.where(swap, n[i], n[j])
    if to_node is not None:
        n = [to_node[c] for c in n]

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
            pick = slice(t0, t1)
        else:
            pick = np.repeat(np.arange(t0, t1), cnt)
            first = np.cumsum(cnt) - cnt
            level_index = np.arange(pick.size) + np.repeat(lo[t0:t1] - first, cnt)
        es = [x[pick] for x in e]
        weights = _delta_weights(*es, levels[level_index], vol[pick])
        nodes = np.stack([x[pick] for x in n])
        yield level_index, nodes, weights


def _delta_weights(e1, e2, e3, e4, lam, vol) -> np.ndarray:
    """Corner weights (4, np) of ∫_tet h δ(ε − λ) for sorted corner energies e1 <= ... <= e4
    and e1 <= λ < e4. Every denominator below is positive on its branch."""
    w = np.empty((4, lam.size))
    low = lam < e2
    high = lam >= e3
    for branch, idx in (
        (_weights_triangle_low, np.flatnonzero(low)),
        (_weights_quadrilateral, np.flatnonzero(~(low | high))),
        (_weights_triangle_high, np.flatnonzero(high)),
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
