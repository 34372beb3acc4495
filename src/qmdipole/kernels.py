"""Compiled (numba) loops of the linear-tetrahedron Fermi-surface sums of :mod:`qmdipole.tetrahedron`.

One serial, deterministic loop visits every cell of a rectilinear grid, each orientation of the
cell's split that has weight (per axis: the standard split, weight ``widths[a][0, cell]``, and the
reflected one, ``widths[a][1, cell]``: the cell's width times 1, 1/2 or 0), the 6 Kuhn tetrahedra
of that split, and every level λ_l with e_min <= λ_l < e_max of a tetrahedron's sorted corner
energies e1 <= e2 <= e3 <= e4; it adds the exact corner weights of ∫_tet h δ(ε − λ_l) to

* ``out[v, l] += Σ_c w_c · node_values[node_c, v]`` (the integrals), or
* ``out[node_c, 0] += w_c`` (node weights at one level; ``node_values`` has no columns).

The weights are those of linear interpolation on the tetrahedron (volume V = cell volume / 6):
with the section ε = λ a triangle (λ < e2 or λ >= e3) or a quadrilateral (split into two
triangles), w_c = Σ_triangles (area / |∇ε|) / 3 · (barycentric coordinates of corner c at the
triangle's vertices, summed). Every denominator is positive on its branch, so coinciding corner
energies need no special case. The sums are serial, in a fixed order: results are deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fermi_surface_sum"]


@njit(cache=True, error_model="numpy")
def fermi_surface_sum(energy, level_index, widths0, widths1, widths2, levels, node_values, out):
    """Add the tetrahedron sums of a grid to ``out`` (in place).

    energy, level_index : (n1, n2, n3) float64, int64
        ε at the nodes, and ``searchsorted(levels, ε, "left")`` (levels[:k] < ε <= levels[k:]),
        so that a tetrahedron holds the levels min k <= l < max k.
    widths0, widths1, widths2 : (2, n_cells) float64
        Per axis, weight of the standard (row 0) and reflected (row 1) split of each cell: its
        width times its orientation weight. n_cells = n_a − 1 (open axis) or n_a (periodic: the
        last cell joins the last node to the first).
    levels : (nl,) float64, sorted.
    node_values : (n1·n2·n3, nv) float64
        Integrands, node-major; nv = 0 selects node weights.
    out : (nv, nl) float64, or (n1·n2·n3, 1) float64 if nv = 0.
    """
    e_flat = energy.ravel()
    k_flat = level_index.ravel()
    # offset of node (cell + bit) along each axis in the flat grid, wrapping at the last node
    node0 = _axis_offsets(energy.shape[0], widths0.shape[1], energy.shape[1] * energy.shape[2])
    node1 = _axis_offsets(energy.shape[1], widths1.shape[1], energy.shape[2])
    node2 = _axis_offsets(energy.shape[2], widths2.shape[1], 1)
    corner = np.empty(8, dtype=np.int64)  # flat node of the cell corner with bits d0 d1 d2
    w = np.empty((4, levels.size))  # corner weights of one tetrahedron at its levels
    for i in range(widths0.shape[1]):
        for j in range(widths1.shape[1]):
            for k in range(widths2.shape[1]):
                for c in range(8):
                    corner[c] = node0[c >> 2, i] + node1[(c >> 1) & 1, j] + node2[c & 1, k]
                lo_cell = hi_cell = k_flat[corner[0]]
                for c in range(1, 8):
                    lo_cell = min(lo_cell, k_flat[corner[c]])
                    hi_cell = max(hi_cell, k_flat[corner[c]])
                if lo_cell == hi_cell:  # no level in the cell's energy range
                    continue
                for r in range(8):  # orientation bits r0 r1 r2, 1 = reflected along that axis
                    vol = widths0[r >> 2, i] * widths1[(r >> 1) & 1, j] * widths2[r & 1, k] / 6.0
                    if vol == 0.0:
                        continue
                    for p in range(6):
                        t0, t1 = corner[_TETRAHEDRA[r, p, 0]], corner[_TETRAHEDRA[r, p, 1]]
                        t2, t3 = corner[_TETRAHEDRA[r, p, 2]], corner[_TETRAHEDRA[r, p, 3]]
                        # sort the corners by energy (a sorting network)
                        t0, t1 = _ordered(e_flat, t0, t1)
                        t2, t3 = _ordered(e_flat, t2, t3)
                        t0, t2 = _ordered(e_flat, t0, t2)
                        t1, t3 = _ordered(e_flat, t1, t3)
                        t1, t2 = _ordered(e_flat, t1, t2)
                        _tetrahedron(e_flat, k_flat, t0, t1, t2, t3, vol, levels, node_values,
                                     out, w)


@njit(cache=True)
def _axis_offsets(n_nodes, n_cells, stride):
    """(2, n_cells): flat offset of node (cell + bit) along one axis; cell n_nodes − 1 of a
    periodic axis wraps to node 0."""
    out = np.empty((2, n_cells), dtype=np.int64)
    for cell in range(n_cells):
        out[0, cell] = cell * stride
        out[1, cell] = ((cell + 1) % n_nodes) * stride
    return out


@njit(cache=True, inline="always")
def _ordered(e, a, b):
    """Nodes a, b ordered by energy (kept in place if equal)."""
    return (b, a) if e[a] > e[b] else (a, b)


@njit(cache=True, inline="always", error_model="numpy")
def _tetrahedron(e, k, t0, t1, t2, t3, vol, levels, node_values, out, w):
    """Add the weights of the tetrahedron with nodes t0..t3 (sorted by energy e) at its levels
    (``w``: scratch, (4, ≥ its level count)).

    With e1 <= e2 <= e3 <= e4 its corner energies, the section ε = λ is the triangle cut from
    edges 1-2, 1-3, 1-4 for e1 <= λ < e2, the quadrilateral P13 P14 P24 P23 (P_ij on edge i-j;
    split along P13-P24 into two triangles) for e2 <= λ < e3 and the triangle cut from edges 1-4,
    2-4, 3-4 for e3 <= λ < e4: the levels k[t0] <= l < k[t1], k[t1] <= l < k[t2] and
    k[t2] <= l < k[t3]. Only the denominators of a level's own branch are used, and they are
    positive there; ``c`` is one third of a triangle's area / |∇ε|.
    """
    e1, e2, e3, e4 = e[t0], e[t1], e[t2], e[t3]
    i21, i31, i41 = 1.0 / (e2 - e1), 1.0 / (e3 - e1), 1.0 / (e4 - e1)
    i32, i42, i43 = 1.0 / (e3 - e2), 1.0 / (e4 - e2), 1.0 / (e4 - e3)
    first = k[t0]
    for level in range(first, k[t1]):
        x = levels[level] - e1
        f2, f3, f4 = x * i21, x * i31, x * i41
        c = vol * f2 * f3 * i41
        j = level - first
        w[0, j], w[1, j], w[2, j], w[3, j] = c * (3.0 - f2 - f3 - f4), c * f2, c * f3, c * f4
    for level in range(k[t1], k[t2]):
        a13, a14 = (levels[level] - e1) * i31, (levels[level] - e1) * i41
        a23, a24 = (levels[level] - e2) * i32, (levels[level] - e2) * i42
        c1 = vol * a13 * (1.0 - a24) * i41
        c2 = vol * (1.0 - a13) * a23 * i42
        c12 = c1 + c2
        j = level - first
        w[0, j] = c12 * (1.0 - a13) + c1 * (1.0 - a14)
        w[1, j] = c12 * (1.0 - a24) + c2 * (1.0 - a23)
        w[2, j] = c12 * a13 + c2 * a23
        w[3, j] = c1 * a14 + c12 * a24
    for level in range(k[t2], k[t3]):
        y = e4 - levels[level]
        f1, f2, f3 = y * i41, y * i42, y * i43
        c = vol * f2 * f3 * i41
        j = level - first
        w[0, j], w[1, j], w[2, j], w[3, j] = c * f1, c * f2, c * f3, c * (3.0 - f1 - f2 - f3)
    count = k[t3] - first
    if node_values.shape[1] == 0:  # node weights
        for j in range(count):
            out[t0, 0] += w[0, j]
            out[t1, 0] += w[1, j]
            out[t2, 0] += w[2, j]
            out[t3, 0] += w[3, j]
        return
    for v in range(node_values.shape[1]):
        h0, h1, h2, h3 = node_values[t0, v], node_values[t1, v], node_values[t2, v], node_values[t3, v]
        for j in range(count):
            out[v, first + j] += w[0, j] * h0 + w[1, j] * h1 + w[2, j] * h2 + w[3, j] * h3


def _kuhn_tetrahedra() -> np.ndarray:
    """(8, 6, 4): corners (index d0·4 + d1·2 + d2) of the 6 tetrahedra of each orientation r of
    the Kuhn split: tetrahedron (a, b) runs 000 -> e_a -> e_a + e_b -> 111 with every corner's
    bits XOR-ed with r's."""
    out = np.empty((8, 6, 4), dtype=np.int64)
    for r in range(8):
        for p, (a, b) in enumerate(((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))):
            bits = [(r >> 2) & 1, (r >> 1) & 1, r & 1]
            path = [list(bits)]
            for axis in (a, b):
                bits[axis] ^= 1
                path.append(list(bits))
            path.append([1 - x for x in path[0]])
            out[r, p] = [4 * d0 + 2 * d1 + d2 for d0, d1, d2 in path]
    return out


_TETRAHEDRA = _kuhn_tetrahedra()
