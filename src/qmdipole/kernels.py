"""Compiled (numba) loops: the linear-tetrahedron Fermi-surface sums of :mod:`qmdipole.tetrahedron`,
the pole sums of :func:`qmdipole.ndd.apply_kernels` and the squared vertices of the Kubo route
(:func:`qmdipole.ndd.kubo_weights`).

One serial, deterministic loop visits every cell of a rectilinear grid, each orientation of the
cell's split that has weight (per axis: the standard split, weight ``widths[a][0, cell]``, and the
reflected one, ``widths[a][1, cell]``: the cell's width times 1, 1/2 or 0), the 6 Kuhn tetrahedra
of that split, and every level λ_l with e_min <= λ_l < e_max of a tetrahedron's sorted corner
energies e1 <= e2 <= e3 <= e4; it adds the exact corner weights of ∫_tet h δ(ε − λ_l) to

* ``out[l, v] += Σ_c w_c · node_values[v, node_c] · node_weight[node_c]`` (the integrals of the
  integrands times a per-node factor, e.g. the Jacobian of the grid's coordinates), or
* ``out[node_c, 0] += node_weight[l] · w_c`` (node weights, e.g. of a thermal average over
  levels; ``node_values`` has no rows).

With a clip (``clip_low``, ``clip_high`` at the nodes and ``clip_level`` μ), the integrals are
over the part of each section where clip_low < μ < clip_high, both interpolated linearly too: the
T = 0 occupation factor f_m − f_n = Θ(μ − ε_m) Θ(ε_n − μ) of a band pair, integrated exactly
rather than interpolated from its 0/1 node values (which converges as O(h) where the Fermi
surface cuts the section).

The weights are those of linear interpolation on the tetrahedron (volume V = cell volume / 6):
with the section ε = λ a triangle (λ < e2 or λ >= e3) or a quadrilateral (split into two
triangles), w_c = Σ_triangles (area / |∇ε|) / 3 · (barycentric coordinates of corner c at the
triangle's vertices, summed). Every denominator is positive on its branch, so coinciding corner
energies need no special case. A tetrahedron the clip cuts has its section (a triangle or a
quadrilateral, vertices in barycentric coordinates) clipped to the two half-planes and split into
triangles from its first vertex; a triangle of area a in a section of area A and total weight D
(the unclipped weights' sum) gives each corner D·(a/A)·(its barycentric coordinates at the three
vertices, summed)/3 (areas in the tetrahedron's barycentric coordinates: the section is planar,
so their ratio is the true one).

In hat mode (``hat``, the spectral densities of :mod:`qmdipole.ndd`) the sums are the integrals
``∫ h φ_l(ε)`` against the hat functions φ_l of the levels instead of δ(ε − λ_l): from the
closed-form integrals R_c(λ) = ∫_tet β_c (λ − ε)_+ of each tetrahedron (the part ε < λ of a
tetrahedron is a tetrahedron, a prism of three, or the whole less one), φ_l being a combination
of three ramps (λ_j − ε)_+, so that a tetrahedron deposits its whole integral on the hats it meets
however narrow its range of ε (δ-function samples at the levels would miss or overweight it).

At T > 0 (``clip_temperature``) the occupation factor is f_m − f_n = F(y0) + F(y1) − 1, with
F(y) = 1/(1 + e^(−y/T)), y0 = μ − clip_low and y1 = clip_high − μ (linear on each tetrahedron).
Where the tetrahedron resolves F (the bound spread(y)² max|F''| / 8 of the error of F's linear
interpolation on it is at most what it is at the step with y spreading over THERMAL_RESOLVED T:
0.3 %), the factor's node values multiply the corner weights (O(h²)). Where it does not, the
factor is integrated exactly on each section: the section split into triangles as above, each
corner's weight is D·(a/A)·⟨β_c Φ⟩ (β_c its barycentric coordinate, ⟨⟩ the mean over the
triangle), from one-dimensional integrals ∫ t^j F(y(t)) dt along y (Gauss–Legendre on panels of
width ~T to 1e-8, or Sommerfeld's closed form where the step lies inside). A Fermi step far
narrower than the cells then costs no accuracy (interpolated from node values, it converges only
as O(h) until the grid resolves T). Where F is 0 or 1 to THERMAL_FLAT on a whole tetrahedron, it
is taken as such. The sums are serial, in a fixed order: results are deterministic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from .geometry import hermitian_eigh
from .models import ValleyModel

__all__ = ["compile_in_background", "compile_kernels", "fermi_surface_sum", "pole_sums",
           "squared_matrix_elements"]

#: environment variable naming the file a background compilation holds locked
#: (:func:`compile_in_background`); a process importing this module waits for it
COMPILING = "QMDIPOLE_KERNELS_COMPILING"


@njit(cache=True, error_model="numpy", nogil=True)
def fermi_surface_sum(energy, level_index, widths0, widths1, widths2, levels, node_values,
                      node_weight, out, clip_low, clip_high, clip_level, clip_temperature,
                      hat):
    """Add the tetrahedron sums of a grid to ``out`` (in place).

    energy, level_index : (n1, n2, n3) float64, int64
        ε at the nodes, and ``searchsorted(levels, ε, "left")`` (levels[:k] < ε <= levels[k:]),
        so that a tetrahedron holds the levels min k <= l < max k.
    widths0, widths1, widths2 : (2, n_cells) float64
        Per axis, weight of the standard (row 0) and reflected (row 1) split of each cell: its
        width times its orientation weight. n_cells = n_a − 1 (open axis) or n_a (periodic: the
        last cell joins the last node to the first).
    levels : (nl,) float64, sorted.
    node_values : (nv, n1·n2·n3) float64
        Integrands; nv = 0 selects node weights, summed over the levels with a factor each.
    node_weight : (n1·n2·n3,) float64, or (nl,) for node weights
        Factor of every integrand at each node; for node weights, the factor of each level.
    out : (nl, nv) float64, or (n1·n2·n3, 1) float64 if nv = 0.
    clip_low, clip_high : (n1·n2·n3,) float64, or both None (no clip)
    clip_level : float; clip_temperature : float > 0, or None for T = 0
        The integrands times the occupation factor f(clip_low) − f(clip_high), f the Fermi–Dirac
        function at μ = clip_level and T = clip_temperature (T = 0: integrate only where
        clip_low < clip_level < clip_high; module docstring). Without a clip (or at T = 0), its
        code (the T > 0 code) is left out of the compiled function (Numba prunes ``is None``
        branches).
    hat : bool
        False: δ-functions at the levels (the weights of ∫ h δ(ε − λ_l)). True: the integrals
        ∫ h φ_l(ε) of the hat functions φ_l of the levels (the piecewise-linear interpolation
        basis on them, strictly increasing; the first one 1 below its level, the last one cut
        off above its level: ε > λ_(nl−1) is left out), exact on each tetrahedron the clip does
        not cut (:func:`_hat_tetrahedron`), by Gauss–Legendre in λ on those it cuts
        (:func:`_cut_tetrahedron`).

    Integrals: the weights are first summed per (node, level), S[n, l] = Σ_tetrahedra w_c, for the
    nodes of two planes n1 = i, i + 1 at a time (the cells between them deposit there; a plane is
    complete once the cells on both sides are done), each node over the window of levels of its
    cells; a completed plane adds out[l, :] += S[n, l] · node_values[:, n] · node_weight[n].
    That costs n_v multiply-adds per (node, level) instead of 4 n_v per (tetrahedron, level): a
    node is a corner of up to 24 tetrahedra. Node weights add out[n, 0] += Σ_l S[n, l] ·
    node_weight[l] instead.
    """
    n_nodes = energy.size
    plane = energy.shape[1] * energy.shape[2]
    n_planes = energy.shape[0]
    periodic = widths0.shape[1] == n_planes  # the last cells join plane n1 − 1 to plane 0
    e_flat = energy.ravel()
    k_flat = level_index.ravel()
    # offset of node (cell + bit) along each axis in the flat grid, wrapping at the last node
    node0 = _axis_offsets(n_planes, widths0.shape[1], plane)
    node1 = _axis_offsets(energy.shape[1], widths1.shape[1], energy.shape[2])
    node2 = _axis_offsets(energy.shape[2], widths2.shape[1], 1)
    by_node = node_values.shape[0] == 0
    # S[n, l] lives at sums[base[n] + l]; the planes take turns in 3 slots of `row` entries
    # (plane 0 of a periodic axis keeps slot 2 until the last cells are done)
    n_levels = levels.size
    inverse_gaps = np.empty(n_levels - 1 if hat else 0)
    for level in range(inverse_gaps.size):
        inverse_gaps[level] = 1.0 / (levels[level + 1] - levels[level])
    first, stop = _level_windows(k_flat, node0, node1, node2, n_levels if hat else -1)
    base = np.empty(n_nodes, dtype=np.int64)
    row = 0
    for p in range(n_planes):
        used = 0
        for n in range(p * plane, (p + 1) * plane):
            base[n] = used - first[n]
            used += stop[n] - first[n]
        row = max(row, used)
    for p in range(n_planes):
        slot = 2 if (periodic and p == 0) else p % 2
        for n in range(p * plane, (p + 1) * plane):
            base[n] += slot * row
    sums = np.zeros(3 * row)
    # flat node of the cell corner with bits d0 d1 d2; unsigned, as every index into the node
    # arrays (see _tetrahedron)
    corner = np.empty(8, dtype=np.uint64)
    sorted_corners = np.empty(4, dtype=np.uint64)
    clip = np.empty((2, 4))  # clip_level − clip_low, clip_high − clip_level at the sorted corners
    polygon = np.empty((2, 8, 4))  # section polygons (barycentric vertices) of the clipping
    factor = np.empty(4)  # the occupation factor at the sorted corners (T > 0)
    # work space of _cut_tetrahedron: corner weights, occupation moments, y at a triangle's
    # vertices, breaks
    scratch = (np.empty(4), np.empty(3), np.empty((2, 3)), np.empty(_MAX_BREAKS))
    fermi = np.empty((2, 0))  # F(y0), F(y1) at the nodes (T > 0)
    if clip_temperature is not None:
        fermi = np.empty((2, n_nodes))
        for n in range(n_nodes):
            fermi[0, n] = _fermi(clip_level - clip_low[n], clip_temperature)
            fermi[1, n] = _fermi(clip_high[n] - clip_level, clip_temperature)
    for i in range(widths0.shape[1]):
        for j in range(widths1.shape[1]):
            for k in range(widths2.shape[1]):
                if not _cell_corners(corner, i, j, k, node0, node1, node2, k_flat,
                                     n_levels if hat else -1):
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
                        if hat:
                            if k_flat[t0] == n_levels:  # above the last level
                                continue
                        elif k_flat[t0] == k_flat[t3]:  # no level in this tetrahedron
                            continue
                        if clip_low is not None:  # pruned when compiled without a clip
                            if clip_temperature is not None:
                                inside = _thermal_clip_values(factor, clip, fermi, clip_low,
                                                              clip_high, clip_level,
                                                              clip_temperature, t0, t1, t2, t3)
                            else:
                                inside = _clip_values(clip, clip_low, clip_high, clip_level,
                                                      t0, t1, t2, t3)
                            if inside == 0:
                                continue
                            if inside < 0:
                                sorted_corners[0], sorted_corners[1] = t0, t1
                                sorted_corners[2], sorted_corners[3] = t2, t3
                                _cut_tetrahedron(e_flat, k_flat, sorted_corners, vol, levels,
                                                 sums, base, clip, polygon, clip_temperature,
                                                 hat, scratch)
                                continue
                        if clip_temperature is not None:  # the occupation factor at the corners
                            if hat:
                                _hat_tetrahedron(e_flat, k_flat, t0, t1, t2, t3, vol, levels,
                                                 inverse_gaps, sums, base, factor)
                            else:
                                _tetrahedron(e_flat, k_flat, t0, t1, t2, t3, vol, levels, sums,
                                             base, factor)
                        elif hat:  # no factor (1), compiled without the multiplications
                            _hat_tetrahedron(e_flat, k_flat, t0, t1, t2, t3, vol, levels,
                                             inverse_gaps, sums, base, None)
                        else:
                            _tetrahedron(e_flat, k_flat, t0, t1, t2, t3, vol, levels, sums, base,
                                         None)
        if not (periodic and i == 0):  # plane i is complete
            _add_plane(i, plane, first, stop, base, sums, node_values, node_weight, out, by_node)
    # the last plane to complete: n1 − 1 (open axis) or 0 (periodic)
    _add_plane(0 if periodic else n_planes - 1, plane, first, stop, base, sums, node_values,
               node_weight, out, by_node)


@njit(cache=True)
def _cell_corners(corner, i, j, k, node0, node1, node2, k_flat, hat_levels):
    """Fill ``corner`` (8,) with the flat nodes of cell (i, j, k), corner bits d0 d1 d2 as
    d0·4 + d1·2 + d2; whether the cell deposits: a level lies in its energy range (δ mode,
    ``hat_levels`` < 0) or its energies are not all above the last of ``hat_levels`` levels (hat
    mode: the hats of the levels either side of a cell reach into it)."""
    for c in range(8):
        corner[c] = node0[c >> 2, i] + node1[(c >> 1) & 1, j] + node2[c & 1, k]
    for c in range(8):
        if k_flat[corner[c]] != k_flat[corner[0]] or k_flat[corner[c]] < hat_levels:
            return True
    return False


@njit(cache=True)
def _level_windows(k_flat, node0, node1, node2, hat_levels):
    """Per node, the range [first, stop) of the levels of the cells it is a corner of (hat
    mode, ``hat_levels`` >= 0 levels: one more either side, within them)."""
    first = np.full(k_flat.size, np.iinfo(np.int64).max)
    stop = np.zeros(k_flat.size, dtype=np.int64)
    corner = np.empty(8, dtype=np.uint64)
    for i in range(node0.shape[1]):
        for j in range(node1.shape[1]):
            for k in range(node2.shape[1]):
                if not _cell_corners(corner, i, j, k, node0, node1, node2, k_flat, hat_levels):
                    continue
                lo_cell, hi_cell = k_flat[corner[0]], k_flat[corner[7]]
                for c in range(8):
                    lo_cell = min(lo_cell, k_flat[corner[c]])
                    hi_cell = max(hi_cell, k_flat[corner[c]])
                if hat_levels >= 0:
                    lo_cell, hi_cell = max(lo_cell - 1, 0), min(hi_cell + 1, hat_levels)
                for c in range(8):
                    first[corner[c]] = min(first[corner[c]], lo_cell)
                    stop[corner[c]] = max(stop[corner[c]], hi_cell)
    for n in range(k_flat.size):
        if stop[n] == 0:
            first[n] = 0
    return first, stop


@njit(cache=True)
def _add_plane(p, plane, first, stop, base, sums, node_values, node_weight, out, by_node):
    """out[l, :] += S[n, l] · node_values[:, n] · node_weight[n] for the nodes n of plane p
    (``by_node``: out[n, 0] += Σ_l S[n, l] · node_weight[l]); clear their S."""
    h = np.empty(node_values.shape[0])  # the node's integrands, contiguous
    for n in range(p * plane, (p + 1) * plane):
        if stop[n] == first[n]:
            continue
        if by_node:
            total = 0.0
            for level in range(first[n], stop[n]):
                at = np.uint64(base[n] + level)
                total += sums[at] * node_weight[np.uint64(level)]
                sums[at] = 0.0
            out[n, 0] += total
            continue
        for v in range(h.size):
            h[v] = node_values[v, n] * node_weight[n]
        for level in range(first[n], stop[n]):  # indices >= 0: unsigned (see _tetrahedron)
            at = np.uint64(base[n] + level)
            s = sums[at]
            sums[at] = 0.0
            row = np.uint64(level)
            for v in range(h.size):
                out[row, v] += s * h[v]


@njit(cache=True)
def _axis_offsets(n_nodes, n_cells, stride):
    """(2, n_cells): flat offset of node (cell + bit) along one axis; cell n_nodes − 1 of a
    periodic axis wraps to node 0."""
    out = np.empty((2, n_cells), dtype=np.int64)
    for cell in range(n_cells):
        out[0, cell] = cell * stride
        out[1, cell] = ((cell + 1) % n_nodes) * stride
    return out


@njit(cache=True)
def _ordered(e, a, b):
    """Nodes a, b ordered by energy (kept in place if equal)."""
    return (b, a) if e[a] > e[b] else (a, b)


@njit(cache=True, error_model="numpy")
def _tetrahedron(e, k, t0, t1, t2, t3, vol, levels, sums, base, factor):
    """Add the corner weights of the tetrahedron with nodes t0..t3 (sorted by energy e) at each
    of its levels l, times ``factor`` (4,) at the corner (None: 1), to sums[base[t_c] + l].

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
    b0, b1, b2, b3 = base[t0], base[t1], base[t2], base[t3]
    p0, p1, p2, p3 = (1.0, 1.0, 1.0, 1.0) if factor is None else (
        factor[0], factor[1], factor[2], factor[3])
    # every index below is >= 0: as unsigned integers they skip numba's negative-index
    # wrap-around test, one per access (~15 % of this loop's time)
    for level in range(k[t0], k[t1]):
        x = levels[np.uint64(level)] - e1
        f2, f3, f4 = x * i21, x * i31, x * i41
        c = vol * f2 * f3 * i41
        sums[np.uint64(b0 + level)] += c * (3.0 - f2 - f3 - f4) * p0
        sums[np.uint64(b1 + level)] += c * f2 * p1
        sums[np.uint64(b2 + level)] += c * f3 * p2
        sums[np.uint64(b3 + level)] += c * f4 * p3
    for level in range(k[t1], k[t2]):
        lam = levels[np.uint64(level)]
        a13, a14 = (lam - e1) * i31, (lam - e1) * i41
        a23, a24 = (lam - e2) * i32, (lam - e2) * i42
        c1 = vol * a13 * (1.0 - a24) * i41
        c2 = vol * (1.0 - a13) * a23 * i42
        c12 = c1 + c2
        sums[np.uint64(b0 + level)] += (c12 * (1.0 - a13) + c1 * (1.0 - a14)) * p0
        sums[np.uint64(b1 + level)] += (c12 * (1.0 - a24) + c2 * (1.0 - a23)) * p1
        sums[np.uint64(b2 + level)] += (c12 * a13 + c2 * a23) * p2
        sums[np.uint64(b3 + level)] += (c1 * a14 + c12 * a24) * p3
    for level in range(k[t2], k[t3]):
        y = e4 - levels[np.uint64(level)]
        f1, f2, f3 = y * i41, y * i42, y * i43
        c = vol * f2 * f3 * i41
        sums[np.uint64(b0 + level)] += c * f1 * p0
        sums[np.uint64(b1 + level)] += c * f2 * p1
        sums[np.uint64(b2 + level)] += c * f3 * p2
        sums[np.uint64(b3 + level)] += c * (3.0 - f1 - f2 - f3) * p3


@njit(cache=True, error_model="numpy")
def _hat_tetrahedron(e, k, t0, t1, t2, t3, vol, levels, inverse_gaps, sums, base, factor):
    """Add ∫_tet β_c φ_l(ε) d³u (β_c the corners' barycentric coordinates, φ_l the hats of the
    levels, the first 1 below its level, the last cut off above it) for the levels l whose hats
    reach into the tetrahedron (nodes t0..t3 sorted by energy e), times ``factor`` (4,) at the
    corner (None: 1), to sums[base[t_c] + l]; ``inverse_gaps[l]`` = 1/(λ_(l+1) − λ_l).

    With R_c(λ) = ∫_tet β_c (λ − ε)_+ (:func:`_below`) and g_l = λ_(l+1) − λ_l, the hat
    φ_l(ε) = (λ_(l+1) − ε)_+/g_l − (λ_l − ε)_+ (1/g_l + 1/g_(l−1)) + (λ_(l−1) − ε)_+/g_(l−1), so
    its integral is the second divided difference of R at the levels (the first level's hat has
    no left part, so that it is 1 below λ_0; the last level's is (λ_(l−1) − ε)_+/g_(l−1)
    − (λ_l − ε)_+/g_(l−1) + Θ(λ_l − ε)). R is 0 below e1 and linear above e4, so only the
    levels l with k[t0] − 1 <= l <= k[t3] get weight: a tetrahedron between two levels splits its
    integral between their hats, however narrow its energy range.
    """
    n = levels.size
    p0, p1, p2, p3 = (1.0, 1.0, 1.0, 1.0) if factor is None else (
        factor[0], factor[1], factor[2], factor[3])
    e1 = e[t0]
    d2, d3, d4 = e[t1] - e1, e[t2] - e1, e[t3] - e1
    # the reciprocals each branch of _below divides by (infinite only where its branch is empty)
    shape = (d2, d3, d4, 1.0 / d2, 1.0 / d3, 1.0 / d4, 1.0 / (d3 - d2), 1.0 / (d4 - d2),
             1.0 / (d4 - d3), k[t0], k[t1], k[t2], k[t3], vol)
    first, last = max(k[t0] - 1, 0), min(k[t3], n - 1)
    b0, b1, b2, b3 = base[t0], base[t1], base[t2], base[t3]
    r0, r1, r2, r3 = 0.0, 0.0, 0.0, 0.0  # R at the level below the current one (0 below e1)
    s0, s1, s2, s3 = _below(shape, first, levels[np.uint64(first)] - e1, True)
    for level in range(first, last + 1):
        at = np.uint64(level)  # >= 0: unsigned indices skip numba's wrap-around test
        w0, w1, w2, w3 = 0.0, 0.0, 0.0, 0.0
        if level > 0:  # the left part: −(R_l − R_(l−1))/g_(l−1)
            g = inverse_gaps[np.uint64(level - 1)]
            w0, w1, w2, w3 = (r0 - s0) * g, (r1 - s1) * g, (r2 - s2) * g, (r3 - s3) * g
        if level < n - 1:  # the right part: (R_(l+1) − R_l)/g_l
            n0, n1, n2, n3 = _below(shape, level + 1, levels[at + np.uint64(1)] - e1, True)
            g = inverse_gaps[at]
            w0, w1 = w0 + (n0 - s0) * g, w1 + (n1 - s1) * g
            w2, w3 = w2 + (n2 - s2) * g, w3 + (n3 - s3) * g
        else:  # the last level: + ∫ β_c Θ(λ_l − ε)
            n0, n1, n2, n3 = _below(shape, level, levels[at] - e1, False)
            w0, w1, w2, w3 = w0 + n0, w1 + n1, w2 + n2, w3 + n3
        sums[np.uint64(b0 + level)] += w0 * p0
        sums[np.uint64(b1 + level)] += w1 * p1
        sums[np.uint64(b2 + level)] += w2 * p2
        sums[np.uint64(b3 + level)] += w3 * p3
        r0, r1, r2, r3, s0, s1, s2, s3 = s0, s1, s2, s3, n0, n1, n2, n3


@njit(cache=True, error_model="numpy", inline="always")
def _below(shape, level, u, ramp):
    """∫_tet β_c (λ − ε)_+ d³u (``ramp``) or ∫_tet β_c Θ(λ − ε) d³u at the level ``level``,
    u = λ − e1, for the corners c sorted by energy; ``shape`` = (d2, d3, d4, 1/d2, 1/d3, 1/d4,
    1/(d3 − d2), 1/(d4 − d2), 1/(d4 − d3), k1, k2, k3, k4, volume), d_c = e_c − e1 and k_c the
    corners' level indices (the branches of :func:`_tetrahedron`).

    The part ε < λ of the tetrahedron is, for e1 <= λ < e2, the tetrahedron of corner 1 and the
    points P_1j where ε = λ on its edges; for e2 <= λ < e3, the prism of corners 1, 2 and P13,
    P14, P23, P24, in three tetrahedra; for e3 <= λ < e4, the whole minus the tetrahedron of
    corner 4 and P_j4. On a tetrahedron of volume V with vertex values a (of λ − ε) and b (of
    β_c), ∫ b = V Σb/4 and ∫ ab = V (Σab + Σa Σb)/20. Each branch uses only the reciprocals of
    its own denominators, positive there.
    """
    d2, d3, d4, i2, i3, i4, i32, i42, i43, k1, k2, k3, k4, vol = shape
    if level < k1:
        return 0.0, 0.0, 0.0, 0.0
    if level >= k3:  # the whole, less the corner-4 tetrahedron where λ < e4
        if ramp:  # ∫ β_c (λ − ε) over the whole tetrahedron
            total = 5.0 * u - d2 - d3 - d4
            b0, b1, b2, b3 = total, total - d2, total - d3, total - d4
        else:
            b0, b1, b2, b3 = 5.0, 5.0, 5.0, 5.0
        scale = vol / 20.0
        b0, b1, b2, b3 = b0 * scale, b1 * scale, b2 * scale, b3 * scale
        if level < k4:
            y = d4 - u  # e4 − λ
            g1, g2, g3 = y * i4, y * i42, y * i43
            cut = vol * g1 * g2 * g3 * (y / 20.0 if ramp else -0.25)
            rest = 4.0 - g1 - g2 - g3
            b0, b1, b2 = b0 + cut * g1, b1 + cut * g2, b2 + cut * g3
            b3 = b3 + cut * (rest + 1.0 if ramp else rest)
        return b0, b1, b2, b3
    if level < k2:  # the corner-1 tetrahedron: a = u at corner 1
        f2, f3, f4 = u * i2, u * i3, u * i4
        part = vol * f2 * f3 * f4 * (u / 20.0 if ramp else 0.25)
        rest = 4.0 - f2 - f3 - f4
        return part * (rest + 1.0 if ramp else rest), part * f2, part * f3, part * f4
    # the prism: (1, P13, P14, P24), (1, P13, P23, P24), (1, 2, P23, P24)
    v = u - d2  # λ − e2
    a13, a14, a23, a24 = u * i3, u * i4, v * i32, v * i42
    if ramp:  # a = u at corner 1, v at corner 2
        q1 = vol * a13 * a14 * (1.0 - a24) * u / 20.0
        q2 = vol * a13 * (1.0 - a23) * a24 * u / 20.0
        q3 = vol * a23 * a24 / 20.0
        w = u + v
        return (q1 * (4.0 - a13 - a14) + q2 * (3.0 - a13) + q3 * (u + w),
                q1 * (1.0 - a24) + q2 * (2.0 - a23 - a24) + q3 * (v + w * (3.0 - a23 - a24)),
                q1 * a13 + q2 * (a13 + a23) + q3 * w * a23,
                q1 * (a14 + a24) + q2 * a24 + q3 * w * a24)
    q1 = vol * a13 * a14 * (1.0 - a24) / 4.0
    q2 = vol * a13 * (1.0 - a23) * a24 / 4.0
    q3 = vol * a23 * a24 / 4.0
    return (q1 * (3.0 - a13 - a14) + q2 * (2.0 - a13) + q3,
            q1 * (1.0 - a24) + q2 * (2.0 - a23 - a24) + q3 * (3.0 - a23 - a24),
            q1 * a13 + q2 * (a13 + a23) + q3 * a23,
            q1 * (a14 + a24) + q2 * a24 + q3 * a24)


@njit(cache=True)
def _clip_values(clip, clip_low, clip_high, clip_level, t0, t1, t2, t3):
    """Fill ``clip`` (2, 4) with y0 = μ − low and y1 = high − μ at the sorted corners; at T = 0,
    1 if the tetrahedron lies inside the clip (both positive at every corner), 0 if outside
    (either non-positive at every corner), −1 if the clip cuts it."""
    inside = 1
    for c in range(4):
        t = t0 if c == 0 else t1 if c == 1 else t2 if c == 2 else t3
        clip[0, c] = clip_level - clip_low[t]
        clip[1, c] = clip_high[t] - clip_level
        if clip[0, c] <= 0.0 or clip[1, c] <= 0.0:
            inside = -1
    for side in range(2):
        if max(clip[side, 0], clip[side, 1], clip[side, 2], clip[side, 3]) <= 0.0:
            return 0
    return inside


@njit(cache=True, error_model="numpy")
def _thermal_clip_values(factor, clip, fermi, clip_low, clip_high, clip_level, temperature,
                         t0, t1, t2, t3):
    """:func:`_clip_values` at T > 0, for the occupation factor Φ = F(y0) + F(y1) − 1 (``fermi``
    (2, n_nodes): F(y0), F(y1) at the nodes): 0 if Φ = 0 (F(y0) or F(y1) 0 to THERMAL_FLAT on
    the tetrahedron); −1 if F(y0) or F(y1) varies on a tetrahedron too coarse for its linear
    interpolation (below), so that Φ is integrated on each section; else 1, with ``factor`` (4,)
    filled with Φ at the corners, which interpolate it.

    F's linear interpolation errs by at most spread(y)² max|F''| / 8 on the tetrahedron, where
    |F''| T² <= min(1/(6√3), F (1 − F)), the latter largest at the corner nearest the step
    unless y changes sign: interpolated where that bound is at most what it is at the step with y
    spreading over THERMAL_RESOLVED T."""
    _clip_values(clip, clip_low, clip_high, clip_level, t0, t1, t2, t3)
    inside = 1
    for side in range(2):
        f = fermi[side]
        low, high = min(f[t0], f[t1], f[t2], f[t3]), max(f[t0], f[t1], f[t2], f[t3])
        if high <= THERMAL_FLAT:
            return 0
        if high - low <= THERMAL_FLAT:  # F constant
            continue
        curvature = _CURVATURE
        if high <= 0.5 or low >= 0.5:  # y keeps its sign
            curvature = min(curvature, max(low * (1.0 - low), high * (1.0 - high)))
        y = clip[side]
        spread = (max(y[0], y[1], y[2], y[3]) - min(y[0], y[1], y[2], y[3])) / temperature
        if spread * spread * curvature > THERMAL_RESOLVED * THERMAL_RESOLVED * _CURVATURE:
            inside = -1
    if inside > 0:
        for c in range(4):
            t = t0 if c == 0 else t1 if c == 1 else t2 if c == 2 else t3
            factor[c] = fermi[0, t] + fermi[1, t] - 1.0
    return inside


@njit(cache=True, error_model="numpy")
def _section_polygon(e, t, vol, branch, lam, section):
    """Fill ``section`` (8, 4) with the vertices (barycentric coordinates of the corners ``t``,
    sorted by energy ``e``) of the tetrahedron's section ε = lam on ``branch`` 0, 1, 2
    (e1 <= lam < e2, e2 <= lam < e3, e3 <= lam < e4: those of :func:`_tetrahedron`); returns
    (vertex count, the section's total weight D = 3 · Σ_c w_c of the unclipped corner
    weights)."""
    e1, e2, e3, e4 = e[t[0]], e[t[1]], e[t[2]], e[t[3]]
    for v in range(4):
        for c in range(4):
            section[v, c] = 0.0
    if branch == 0:  # triangle on edges 1-2, 1-3, 1-4
        f2, f3, f4 = (lam - e1) / (e2 - e1), (lam - e1) / (e3 - e1), (lam - e1) / (e4 - e1)
        section[0, 0], section[0, 1] = 1.0 - f2, f2
        section[1, 0], section[1, 2] = 1.0 - f3, f3
        section[2, 0], section[2, 3] = 1.0 - f4, f4
        return 3, 3.0 * vol * f2 * f3 / (e4 - e1)
    if branch == 1:  # quadrilateral P13 P14 P24 P23
        a13, a14 = (lam - e1) / (e3 - e1), (lam - e1) / (e4 - e1)
        a23, a24 = (lam - e2) / (e3 - e2), (lam - e2) / (e4 - e2)
        section[0, 0], section[0, 2] = 1.0 - a13, a13
        section[1, 0], section[1, 3] = 1.0 - a14, a14
        section[2, 1], section[2, 3] = 1.0 - a24, a24
        section[3, 1], section[3, 2] = 1.0 - a23, a23
        return 4, 3.0 * vol * (a13 * (1.0 - a24) / (e4 - e1) + (1.0 - a13) * a23 / (e4 - e2))
    # triangle on edges 1-4, 2-4, 3-4
    g1, g2, g3 = (e4 - lam) / (e4 - e1), (e4 - lam) / (e4 - e2), (e4 - lam) / (e4 - e3)
    section[0, 0], section[0, 3] = g1, 1.0 - g1
    section[1, 1], section[1, 3] = g2, 1.0 - g2
    section[2, 2], section[2, 3] = g3, 1.0 - g3
    return 3, 3.0 * vol * g2 * g3 / (e4 - e1)


@njit(cache=True, error_model="numpy")
def _cut_tetrahedron(e, k, t, vol, levels, sums, base, clip, polygon, temperature, hat,
                     scratch):
    """:func:`_tetrahedron` (δ mode) or :func:`_hat_tetrahedron` (``hat``) for a tetrahedron
    the clip cuts (corners ``t`` sorted by energy, ``clip`` (2, 4): y0, y1 at them): the
    corner weights of each section ε = λ are those of :func:`_cut_section` (T = 0: the
    clipped section; ``temperature`` > 0: times the occupation factor). δ mode takes them at
    the levels; hat mode integrates them against the hats by Gauss–Legendre (_HAT_NODES) on
    each piece of [e1, e4] between the levels and :func:`_section_breaks` (exact at T = 0, where
    the weights are cubic in λ on each piece; the part above the last level left out).
    ``polygon`` (2, 8, 4) and ``scratch`` (weights (4,), moments (3,), values (2, 3), breaks
    (_MAX_BREAKS,)) are work space."""
    weights, moments, values, breaks = scratch
    if not hat:
        for level in range(k[t[0]], k[t[3]]):
            branch = 0 if level < k[t[1]] else 1 if level < k[t[2]] else 2
            if _cut_section(e, t, vol, branch, levels[level], clip, polygon, temperature,
                            weights, moments, values):
                for c in range(4):
                    sums[base[t[c]] + level] += weights[c]
        return
    e1, e2, e3, e4 = e[t[0]], e[t[1]], e[t[2]], e[t[3]]
    n_breaks = _section_breaks(e, t, clip, temperature is None, breaks)
    # the intervals j between the levels j and j + 1 that meet [e1, e4]; j = −1: below level 0,
    # where its hat is 1
    for j in range(k[t[0]] - 1, min(k[t[3]], levels.size - 1)):
        left, right = (levels[j], levels[j + 1]) if j >= 0 else (e1, levels[0])
        start, end = max(left, e1), min(right, e4)
        for b in range(n_breaks + 1):  # the pieces between the breaks, within the interval
            stop = min(breaks[b], end) if b < n_breaks else end
            if stop <= start:
                continue
            # e2 and e3 are breaks: the piece lies within [e1, e2], [e2, e3] or [e3, e4], whose
            # branch has positive denominators (a midpoint test would fail on a piece one
            # rounding wide at coinciding energies)
            branch = 0 if stop <= e2 else 1 if stop <= e3 else 2
            for g in range(_HAT_NODES.size):
                lam = start + (stop - start) * _HAT_NODES[g]
                if not _cut_section(e, t, vol, branch, lam, clip, polygon, temperature, weights,
                                    moments, values):
                    continue
                weight = (stop - start) * _HAT_WEIGHTS[g]
                # the weight's share φ_(j+1)(λ) (all of it below level 0)
                upper = weight * (lam - left) / (right - left) if j >= 0 else weight
                for c in range(4):
                    if j >= 0:
                        sums[base[t[c]] + j] += weights[c] * (weight - upper)
                    sums[base[t[c]] + j + 1] += weights[c] * upper
            start = stop


@njit(cache=True, error_model="numpy")
def _section_breaks(e, t, clip, clipped, out):
    """Fill ``out`` with the energies, sorted, where the corner weights of :func:`_cut_section`
    change form, and return their count: the corner energies e2, e3 (the section's shape) and,
    for a T = 0 clip (``clipped``), where a clip plane y = 0 crosses an edge of the tetrahedron
    (a section vertex crosses it) and where the line y0 = y1 = 0 pierces a face (the clipped
    polygon gains or loses its corner there). Between them the clipped section's vertices move
    linearly in λ, so the weights are cubic."""
    out[0], out[1] = e[t[1]], e[t[2]]
    n = 2
    if clipped:
        for a in range(4):
            for b in range(a + 1, 4):
                for side in range(2):
                    ya, yb = clip[side, a], clip[side, b]
                    if ya * yb < 0.0:
                        out[n] = e[t[a]] + (e[t[b]] - e[t[a]]) * ya / (ya - yb)
                        n += 1
        for face in range(4):  # β_face = 0: Σ β = 1, Σ β y0 = 0, Σ β y1 = 0 on the other three
            p, q, r = (face + 1) % 4, (face + 2) % 4, (face + 3) % 4
            det = _det3(1.0, 1.0, 1.0, clip[0, p], clip[0, q], clip[0, r],
                        clip[1, p], clip[1, q], clip[1, r])
            if det == 0.0:
                continue
            bp = _det3(1.0, 1.0, 1.0, 0.0, clip[0, q], clip[0, r], 0.0, clip[1, q], clip[1, r])
            bq = _det3(1.0, 1.0, 1.0, clip[0, p], 0.0, clip[0, r], clip[1, p], 0.0, clip[1, r])
            bp, bq = bp / det, bq / det
            br = 1.0 - bp - bq
            if bp >= 0.0 and bq >= 0.0 and br >= 0.0:
                out[n] = bp * e[t[p]] + bq * e[t[q]] + br * e[t[r]]
                n += 1
    out[:n].sort()
    return n


@njit(cache=True)
def _det3(a, b, c, d, f, g, h, i, j):
    """The determinant of the rows (a, b, c), (d, f, g), (h, i, j)."""
    return a * (f * j - g * i) - b * (d * j - g * h) + c * (d * i - f * h)


@njit(cache=True, error_model="numpy")
def _cut_section(e, t, vol, branch, lam, clip, polygon, temperature, weights, moments, values):
    """Fill ``weights`` (4,) with the corner weights of ∫_tet h δ(ε − lam) over the section on
    ``branch`` (:func:`_section_polygon`) clipped to y0, y1 > 0 (``temperature`` None), or times
    the occupation factor F(y0) + F(y1) − 1 at T > 0, integrated exactly over it (module
    docstring); whether any is non-zero. ``moments`` (3,), ``values`` (2, 3) are work space."""
    count, total = _section_polygon(e, t, vol, branch, lam, polygon[0])
    if not total > 0.0:
        return False
    section = polygon[0]
    if temperature is None:
        side = _section_side(section, count, clip)
        if side == 0:  # the clip excludes this section
            return False
    full = _polygon_area(section, count)
    if full <= 0.0:
        return False
    for c in range(4):
        weights[c] = 0.0
    if temperature is None:
        if side < 0:  # the clip cuts the section (else it holds on all of it)
            count = _clip_polygon(polygon, count, clip[0])
            count = _clip_polygon(polygon, count, clip[1])
        for v in range(1, count - 1):  # the fan of triangles (0, v, v + 1)
            share = total * _triangle_area(section[0], section[v], section[v + 1]) / (3.0 * full)
            for c in range(4):
                weights[c] += share * (section[0, c] + section[v, c] + section[v + 1, c])
        return True
    for v in range(1, count - 1):  # the fan of triangles (0, v, v + 1)
        for side in range(2):
            for i in range(3):
                vertex = 0 if i == 0 else v + i - 1
                values[side, i] = (section[vertex, 0] * clip[side, 0]
                                   + section[vertex, 1] * clip[side, 1]
                                   + section[vertex, 2] * clip[side, 2]
                                   + section[vertex, 3] * clip[side, 3])
        _occupation_moments(values, temperature, moments)
        share = total * _triangle_area(section[0], section[v], section[v + 1]) / full
        for c in range(4):
            weights[c] += share * (moments[0] * section[0, c] + moments[1] * section[v, c]
                                   + moments[2] * section[v + 1, c])
    return True


@njit(cache=True, error_model="numpy")
def _occupation_moments(values, temperature, moments):
    """moments[i] = ⟨β_i (F(y0) + F(y1) − 1)⟩ over a triangle (uniform measure, β_i its
    barycentric coordinates), y0, y1 linear with vertex values ``values`` (2, 3),
    F(y) = 1 / (1 + exp(−y/T)); where F is 0 or 1 (module constants), 1/3 of it."""
    reach = THERMAL_REACH * temperature
    for i in range(3):
        moments[i] = -1.0 / 3.0
    for side in range(2):
        y = values[side]
        if min(y[0], y[1], y[2]) >= reach:  # F = 1 on the whole triangle
            for i in range(3):
                moments[i] += 1.0 / 3.0
        elif max(y[0], y[1], y[2]) > -reach:  # else F = 0 on it
            _fermi_moments(y, temperature, moments)


@njit(cache=True, error_model="numpy")
def _fermi_moments(y, temperature, moments):
    """moments[i] += ⟨β_i F(y)⟩ over a triangle, y linear with vertex values ``y`` (3,).

    With the vertices ordered y_a <= y_b <= y_c and r = (y_b − y_a)/(y_c − y_a), the part
    y < y_b (area share r) is swept by the segments y = y_a + t (y_b − y_a), t in [0, 1], whose
    length grows as t and whose mean β runs linearly from vertex a to the mean of β at the
    segment's ends; with K_j = ∫_0^1 t^j F(y_a + t (y_b − y_a)) dt its moments at a, b, c are
    r (2 K1 − (1 + r) K2), r K2, r² K2; the part y > y_b likewise from c, with share 1 − r.
    """
    a, b, c = 0, 1, 2
    if y[a] > y[b]:
        a, b = b, a
    if y[b] > y[c]:
        b, c = c, b
    if y[a] > y[b]:
        a, b = b, a
    span = y[c] - y[a]
    if not span > 0.0:  # F constant on the triangle
        level = _fermi(y[a], temperature)
        for i in range(3):
            moments[i] += level / 3.0
        return
    for piece in range(2):
        first, last = (a, c) if piece == 0 else (c, a)
        share = abs(y[b] - y[first]) / span
        if share > 0.0:
            k1, k2 = _fermi_powers(y[first], y[b] - y[first], temperature)
            moments[first] += share * (2.0 * k1 - (1.0 + share) * k2)
            moments[b] += share * k2
            moments[last] += share * share * k2


@njit(cache=True, error_model="numpy")
def _fermi_powers(y0, dy, temperature):
    """(K1, K2), K_j = ∫_0^1 t^j F(y0 + t dy) dt: exact where F is 0 or 1 (|y| >= THERMAL_REACH
    T), 5-point Gauss–Legendre on the panels _THERMAL_PANELS · T between (F's poles, at
    y = ±iπT(2n + 1), lie far enough from each panel for errors < 1e-8 of its part); in closed
    form (Sommerfeld's, exact for polynomials) where F is 0 at one end and 1 at the other."""
    reach = THERMAL_REACH * temperature
    if min(y0, y0 + dy) <= -reach and max(y0, y0 + dy) >= reach:
        # the step lies inside, F is 0 and 1 at the ends: ∫ g F = ∫ g Θ − g'(0) π² T² / 6 for
        # g quadratic in y (F − Θ is odd), the step at t = −y0/dy
        step = -y0 / dy
        correction = np.pi * np.pi / 6.0 * (temperature / dy) ** 2
        if dy > 0.0:
            return (1.0 - step * step) / 2.0 - correction, \
                (1.0 - step ** 3) / 3.0 - 2.0 * correction * step
        return step * step / 2.0 + correction, step ** 3 / 3.0 + 2.0 * correction * step
    k1, k2 = 0.0, 0.0
    start = 0.0
    n_panels = _THERMAL_PANELS.size
    for j in range(n_panels + 1):
        if j == n_panels or dy == 0.0:
            stop = 1.0
        else:  # the panel edges in the order y crosses them
            edge = _THERMAL_PANELS[j] if dy > 0.0 else _THERMAL_PANELS[n_panels - 1 - j]
            stop = min(max((edge * temperature - y0) / dy, start), 1.0)
        if stop > start:
            middle = y0 + 0.5 * (start + stop) * dy
            width = stop - start
            if middle >= THERMAL_REACH * temperature:  # F = 1
                k1 += (stop * stop - start * start) / 2.0
                k2 += (stop * stop * stop - start * start * start) / 3.0
            elif middle > -THERMAL_REACH * temperature:
                for g in range(_GAUSS_NODES.size):
                    t = start + width * _GAUSS_NODES[g]
                    weight = width * _GAUSS_WEIGHTS[g] * _fermi(y0 + t * dy, temperature)
                    k1 += weight * t
                    k2 += weight * t * t
            start = stop
        if start >= 1.0:
            break
    return k1, k2


@njit(cache=True)
def _fermi(y, temperature):
    """F(y) = 1 / (1 + exp(−y/T)): the occupation f(ε) = F(μ − ε), and 1 − f(ε) = F(ε − μ)."""
    return 1.0 / (1.0 + np.exp(-y / temperature))


@njit(cache=True)
def _section_side(section, count, clip):
    """1 if both clip functions are positive at every vertex of section[:count], 0 if either
    is non-positive at all of them, −1 if the clip cuts the section."""
    inside = 1
    for side in range(2):
        positive = 0
        for v in range(count):
            value = (section[v, 0] * clip[side, 0] + section[v, 1] * clip[side, 1]
                     + section[v, 2] * clip[side, 2] + section[v, 3] * clip[side, 3])
            positive += value > 0.0
        if positive == 0:
            return 0
        if positive < count:
            inside = -1
    return inside


@njit(cache=True)
def _clip_polygon(polygon, count, values):
    """Clip the polygon polygon[0][:count] to where the linear function with corner values
    ``values`` is positive (Sutherland–Hodgman; polygon[1] is work space). Returns its new
    vertex count."""
    given, kept = polygon[0], polygon[1]
    n = 0
    for v in range(count):
        p, q = given[v], given[(v + 1) % count]
        vp = p[0] * values[0] + p[1] * values[1] + p[2] * values[2] + p[3] * values[3]
        vq = q[0] * values[0] + q[1] * values[1] + q[2] * values[2] + q[3] * values[3]
        if vp > 0.0:
            for c in range(4):
                kept[n, c] = p[c]
            n += 1
        if (vp > 0.0) != (vq > 0.0):
            s = vp / (vp - vq)
            for c in range(4):
                kept[n, c] = p[c] + s * (q[c] - p[c])
            n += 1
    for v in range(n):
        for c in range(4):
            given[v, c] = kept[v, c]
    return n


@njit(cache=True)
def _triangle_area(p, q, r):
    """Area of a triangle with barycentric vertices p, q, r in the coordinates (b1, b2, b3)."""
    u1, u2, u3 = q[1] - p[1], q[2] - p[2], q[3] - p[3]
    w1, w2, w3 = r[1] - p[1], r[2] - p[2], r[3] - p[3]
    x, y, z = u2 * w3 - u3 * w2, u3 * w1 - u1 * w3, u1 * w2 - u2 * w1
    return 0.5 * np.sqrt(x * x + y * y + z * z)


@njit(cache=True)
def _polygon_area(polygon, count):
    """Area of the convex polygon polygon[:count] (a fan of triangles)."""
    area = 0.0
    for v in range(1, count - 1):
        area += _triangle_area(polygon[0], polygon[v], polygon[v + 1])
    return area


@njit(cache=True, error_model="numpy")
def pole_sums(x2, single, double, omega, eta, out):
    """out[c, w] = Σ_j single[c, j]/(x2[j] − z_w²) + double[c, j]/(x2[j] − z_w²)², z_w = ω_w + iη
    (in place; ``out`` complex (nc, nω)).

    Nodes j with no weight in any channel are skipped (they add exact zeros). 1/d for
    d = x² − z² = a − ib (a = x² − ω² + η², b = 2ωη) is (a + ib)/(a² + b²), finite for η > 0.
    """
    nc = single.shape[0]
    used = np.zeros(x2.size, dtype=np.bool_)
    for c in range(nc):
        for j in range(x2.size):
            if single[c, j] != 0.0 or double[c, j] != 0.0:
                used[j] = True
    nodes = np.flatnonzero(used)
    for w in range(omega.size):
        shift = eta * eta - omega[w] * omega[w]
        b = 2.0 * omega[w] * eta
        for c in range(nc):
            re, im = 0.0, 0.0
            for j in nodes:
                a = x2[j] + shift
                r = 1.0 / (a * a + b * b)
                inv_re, inv_im = a * r, b * r  # 1/d
                sq_re, sq_im = inv_re * inv_re - inv_im * inv_im, 2.0 * inv_re * inv_im  # 1/d²
                re += single[c, j] * inv_re + double[c, j] * sq_re
                im += single[c, j] * inv_im + double[c, j] * sq_im
            out[c, w] += complex(re, im)


@njit(cache=True, nogil=True)
def squared_matrix_elements(left, operator, right, out):
    """out[m, n, k] = |⟨l_m|O|r_n⟩|² = |Σ_ab conj(left[a, m, k]) operator[k, a, b] right[b, n, k]|²
    (in place).

    ``left``, ``right``: states (a, m, N), component a of state m, k-index last (as
    :func:`qmdipole.geometry.hermitian_eigh` gives them); ``operator``: (N, a, b), k-index first
    (as models give matrices); ``out``: float (m, n, N). Per k-point, the states are copied to
    contiguous blocks and O r, then L† (O r), formed with the band index innermost (2 nb³
    complex multiply-adds); two bands in scalars (:func:`_squared_matrix_elements_2x2`).
    """
    nb = left.shape[0]
    if nb == 2:
        _squared_matrix_elements_2x2(left, operator, right, out)
        return
    left_k = np.empty((nb, nb), dtype=np.complex128)  # conj(left[:, :, k])
    right_k = np.empty((nb, nb), dtype=np.complex128)
    o_right = np.empty((nb, nb), dtype=np.complex128)  # (O r)[a, n]
    element = np.empty((nb, nb), dtype=np.complex128)  # ⟨l_m|O|r_n⟩
    for k in range(left.shape[2]):
        for a in range(nb):
            for m in range(nb):
                left_k[a, m] = np.conj(left[a, m, k])
                right_k[a, m] = right[a, m, k]
        o_right[:, :] = 0j
        for a in range(nb):
            for b in range(nb):
                o = operator[k, a, b]
                for n in range(nb):
                    o_right[a, n] += o * right_k[b, n]
        element[:, :] = 0j
        for a in range(nb):
            for m in range(nb):
                lam = left_k[a, m]
                for n in range(nb):
                    element[m, n] += lam * o_right[a, n]
        for m in range(nb):
            for n in range(nb):
                s = element[m, n]
                out[m, n, k] = s.real * s.real + s.imag * s.imag


@njit(cache=True, nogil=True)
def _squared_matrix_elements_2x2(left, operator, right, out):
    """:func:`squared_matrix_elements` of two bands, the same products in the same order held in
    scalars (no per-k copies or loops over nb): 2.4x faster, the same numbers."""
    for k in range(left.shape[2]):
        l00, l01 = np.conj(left[0, 0, k]), np.conj(left[0, 1, k])
        l10, l11 = np.conj(left[1, 0, k]), np.conj(left[1, 1, k])
        r00, r01, r10, r11 = right[0, 0, k], right[0, 1, k], right[1, 0, k], right[1, 1, k]
        o00, o01 = operator[k, 0, 0], operator[k, 0, 1]
        o10, o11 = operator[k, 1, 0], operator[k, 1, 1]
        a00, a01 = o00 * r00 + o01 * r10, o00 * r01 + o01 * r11  # (O r)[a, n]
        a10, a11 = o10 * r00 + o11 * r10, o10 * r01 + o11 * r11
        for m, (la, lb) in enumerate(((l00, l10), (l01, l11))):
            for n, (oa, ob) in enumerate(((a00, a10), (a01, a11))):
                s = la * oa + lb * ob
                out[m, n, k] = s.real * s.real + s.imag * s.imag


def compile_in_background(directory) -> subprocess.Popen | None:
    """Run :func:`compile_kernels` in a process of its own, which holds the file
    ``directory/compiling.lock`` locked until it is done (its output in ``compiling.log``), and
    name that file in the environment variable :data:`COMPILING` of this process, so that the
    processes it starts wait for the compilation when they import this module (instead of each
    compiling the kernels). Returns the process, or None where files cannot be locked (no
    ``fcntl``): then the kernels are compiled here, before it returns.

    The pipeline's ``onstart`` calls it: the k-grids and tables, which run no kernel, are made
    meanwhile."""
    try:
        import fcntl
    except ImportError:
        compile_kernels()
        return None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = directory / "compiling.lock"
    with open(lock_path, "w") as lock, open(directory / "compiling.log", "w") as log:
        fcntl.flock(lock, fcntl.LOCK_EX)
        environment = {key: value for key, value in os.environ.items() if key != COMPILING}
        process = subprocess.Popen(  # the lock is the child's (its copy of the file) until it ends
            [sys.executable, "-c", "import qmdipole.kernels; qmdipole.kernels.compile_kernels()"],
            stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),), env=environment)
    os.environ[COMPILING] = str(lock_path.resolve())
    return process


def _await_background_compilation(timeout: float = 600.0) -> None:
    """Wait (at most ``timeout`` s) until the compilation that :data:`COMPILING` names, if any,
    has ended; then numba loads the kernels from its cache (or, if that compilation failed,
    compiles them here)."""
    path = os.environ.get(COMPILING)
    if not path:
        return
    try:
        import fcntl

        with open(path) as lock:
            end = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > end:
                        return
                    time.sleep(0.05)
    except (ImportError, OSError):  # no lock (removed, another machine): nothing to wait for
        return


def compile_kernels() -> None:
    """Compile the kernels for the argument types the reductions pass, and the Kubo route's 2×2
    matrices and eigensolver (:func:`qmdipole.geometry.hermitian_eigh`), or load them from
    numba's cache, on a tiny grid.

    Numba compiles a kernel in the first process that calls it and caches it on disk; processes
    started at the same time on a fresh cache would each compile it (~8 s each). The pipeline
    runs this once, beside its first jobs (:func:`compile_in_background`), so that the jobs that
    run kernels load them instead.
    The clipped variant of :func:`fermi_surface_sum` (T = 0 metals only) compiles when first
    needed."""
    energy = np.arange(8.0).reshape(2, 2, 2)
    widths = np.ones((2, 1))
    levels = np.array([3.5])
    out = np.zeros((1, 1))
    fermi_surface_sum(energy, np.searchsorted(levels, energy), widths, widths, widths, levels,
                      energy.reshape(1, 8), energy.ravel(), out, None, None, 0.0, None, False)
    pole_sums(levels, out, out, levels, 1.0, np.zeros((1, 1), complex))
    states = np.ones((2, 2, 1), complex)
    squared_matrix_elements(states, np.ones((1, 2, 2), complex), states, np.empty((2, 2, 1)))
    hermitian_eigh(ValleyModel(delta=1.0, vprime=0.0).hamiltonian(*np.zeros((3, 1))))  # Kubo


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
# F(y) = 1/(1 + e^(−y/T)) is taken as constant where it varies by at most THERMAL_FLAT: it is 1
# (0) to 2.1e-9 for y >= THERMAL_REACH T (y <= −THERMAL_REACH T)
THERMAL_FLAT = 2.1e-9
THERMAL_REACH = 20.0
# a tetrahedron where y spreads over at most THERMAL_RESOLVED T resolves F: its nodes interpolate it
THERMAL_RESOLVED = 0.5
_CURVATURE = 1.0 / (6.0 * np.sqrt(3.0))  # max |F''| T²
# Gauss–Legendre panels of _fermi_powers, in units of T: narrow where F bends, wide where it is flat
_THERMAL_PANELS = np.array([-20.0, -13.0, -8.0, -4.0, -1.5, 0.0, 1.5, 4.0, 8.0, 13.0, 20.0])
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(5)
_GAUSS_NODES, _GAUSS_WEIGHTS = 0.5 * (_GAUSS_NODES + 1.0), 0.5 * _GAUSS_WEIGHTS  # on [0, 1]
# Gauss–Legendre nodes of the hat integrals of cut sections, on [0, 1]: exact for the cubic
# weights of a whole section times a hat
_HAT_NODES, _HAT_WEIGHTS = np.polynomial.legendre.leggauss(3)
_HAT_NODES, _HAT_WEIGHTS = 0.5 * (_HAT_NODES + 1.0), 0.5 * _HAT_WEIGHTS
_MAX_BREAKS = 2 + 12 + 4  # e2, e3; 6 edges x 2 clip planes; 4 faces

# a process started beside a background compilation waits for it before it runs a kernel
_await_background_compilation()
