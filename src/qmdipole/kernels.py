"""Compiled (numba) loops of the linear-tetrahedron Fermi-surface sums of :mod:`qmdipole.tetrahedron`.

One serial, deterministic loop visits every cell of a rectilinear grid, each orientation of the
cell's split that has weight (per axis: the standard split, weight ``widths[a][0, cell]``, and the
reflected one, ``widths[a][1, cell]``: the cell's width times 1, 1/2 or 0), the 6 Kuhn tetrahedra
of that split, and every level λ_l with e_min <= λ_l < e_max of a tetrahedron's sorted corner
energies e1 <= e2 <= e3 <= e4; it adds the exact corner weights of ∫_tet h δ(ε − λ_l) to

* ``out[l, v] += Σ_c w_c · node_values[node_c, v]`` (the integrals), or
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


@njit(cache=True, inline="always", error_model="numpy")
def _add(out, level, w0, w1, w2, w3, t0, t1, t2, t3, node_values):
    """out[level, :] += Σ_c w_c node_values[t_c, :]; node weights (no columns): out[t_c, 0] += w_c."""
    nv = node_values.shape[1]
    if nv == 0:
        out[t0, 0] += w0
        out[t1, 0] += w1
        out[t2, 0] += w2
        out[t3, 0] += w3
    else:
        for v in range(nv):
            out[level, v] += (w0 * node_values[t0, v] + w1 * node_values[t1, v]
                              + w2 * node_values[t2, v] + w3 * node_values[t3, v])


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
    out : (nl, nv) float64, or (n1·n2·n3, 1) float64 if nv = 0.
    """
    n1, n2, n3 = energy.shape
    e_flat = energy.ravel()
    k_flat = level_index.ravel()
    widths = (widths0, widths1, widths2)
    sizes = (n1, n2, n3)
    strides = (n2 * n3, n3, 1)
    corner = np.empty(8, dtype=np.int64)  # flat node of the cell corner with bits (d0, d1, d2)
    bits = np.empty(3, dtype=np.int64)
    tet = np.empty(4, dtype=np.int64)
    for i in range(widths0.shape[1]):
        for j in range(widths1.shape[1]):
            for k in range(widths2.shape[1]):
                cell = (i, j, k)
                for c in range(8):
                    node = 0
                    for a in range(3):
                        x = cell[a] + ((c >> (2 - a)) & 1)
                        if x == sizes[a]:  # wrap-around cell of a periodic axis
                            x = 0
                        node += x * strides[a]
                    corner[c] = node
                lo_cell = hi_cell = k_flat[corner[0]]
                for c in range(1, 8):
                    lo_cell = min(lo_cell, k_flat[corner[c]])
                    hi_cell = max(hi_cell, k_flat[corner[c]])
                if lo_cell == hi_cell:  # no level in the cell's energy range
                    continue
                for r in range(8):  # orientation bits (r0, r1, r2), 1 = reflected along axis a
                    vol = 1.0 / 6.0
                    for a in range(3):
                        vol *= widths[a][(r >> (2 - a)) & 1, cell[a]]
                    if vol == 0.0:
                        continue
                    for p in range(6):  # Kuhn path r -> r^e_a -> r^e_a^e_b -> ~r
                        a, b = _PATH_A[p], _PATH_B[p]
                        for d in range(3):
                            bits[d] = (r >> (2 - d)) & 1
                        tet[0] = corner[bits[0] * 4 + bits[1] * 2 + bits[2]]
                        bits[a] ^= 1
                        tet[1] = corner[bits[0] * 4 + bits[1] * 2 + bits[2]]
                        bits[b] ^= 1
                        tet[2] = corner[bits[0] * 4 + bits[1] * 2 + bits[2]]
                        tet[3] = corner[7 - r]
                        _sort4(tet, e_flat)
                        _tetrahedron(e_flat, k_flat, tet[0], tet[1], tet[2], tet[3], vol,
                                     levels, node_values, out)


@njit(cache=True, inline="always", error_model="numpy")
def _tetrahedron(e, k, t0, t1, t2, t3, vol, levels, node_values, out):
    """Add the weights of the tetrahedron with nodes t0..t3 (sorted by energy e) at its levels.

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
    for level in range(k[t0], k[t1]):
        x = levels[level] - e1
        f2, f3, f4 = x * i21, x * i31, x * i41
        c = vol * f2 * f3 * i41
        _add(out, level, c * (3.0 - f2 - f3 - f4), c * f2, c * f3, c * f4,
             t0, t1, t2, t3, node_values)
    for level in range(k[t1], k[t2]):
        a13, a14 = (levels[level] - e1) * i31, (levels[level] - e1) * i41
        a23, a24 = (levels[level] - e2) * i32, (levels[level] - e2) * i42
        c1 = vol * a13 * (1.0 - a24) * i41
        c2 = vol * (1.0 - a13) * a23 * i42
        c12 = c1 + c2
        _add(out, level, c12 * (1.0 - a13) + c1 * (1.0 - a14), c12 * (1.0 - a24) + c2 * (1.0 - a23),
             c12 * a13 + c2 * a23, c1 * a14 + c12 * a24, t0, t1, t2, t3, node_values)
    for level in range(k[t2], k[t3]):
        y = e4 - levels[level]
        f1, f2, f3 = y * i41, y * i42, y * i43
        c = vol * f2 * f3 * i41
        _add(out, level, c * f1, c * f2, c * f3, c * (3.0 - f1 - f2 - f3),
             t0, t1, t2, t3, node_values)


# Kuhn split: tetrahedron p runs 000 -> e_a -> e_a + e_b -> 111 through the cell (corner bits
# XOR-ed with the orientation bits).
_PATH_A = np.array([0, 0, 1, 1, 2, 2])
_PATH_B = np.array([1, 2, 0, 2, 0, 1])


@njit(cache=True, inline="always")
def _sort4(tet, e):
    """Sort the 4 nodes ``tet`` by their energy ``e[node]`` (a sorting network; ties keep order)."""
    for i, j in ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)):
        if e[tet[i]] > e[tet[j]]:
            tet[i], tet[j] = tet[j], tet[i]
