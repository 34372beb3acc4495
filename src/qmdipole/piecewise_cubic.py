"""Sums of cubic pieces at sorted levels, at a cost O(N_pieces + L · log L).

    S[v, l] = Σ_p P_pv(λ_l),   over the pieces p whose level range [first_p, stop_p) holds l,

for levels λ_0 <= ... <= λ_{L−1}; piece p is a cubic in t = (λ − centre_p)/half_width_p, given on
its support [centre − half_width, centre + half_width], which holds the levels of its range. The
linear tetrahedron method needs this sum: a tetrahedron's δ-function weights are cubic in the
level between its corner energies (:mod:`qmdipole.tetrahedron`).

Evaluating every piece at every level of its range costs one term per (piece, level) pair, which
grows like N_pieces · L. Here a piece of n levels is added to the blocks of 2^s consecutive levels
(2^s >= n, s = ⌈log₂ n⌉) that hold its range — at most two — as a polynomial in the block's own
variable u = (λ − c)/h (c, h: centre and half-span of the block's levels): +P at its first level
(and at the first level of its second block), −P where it ends inside a block. A running sum
over each block's levels then holds, at every level, the sum of the pieces that cover it, as a
polynomial evaluated at that level's u: O(1) work per piece, O(L) per scale s.

Stability. Prefix sums of monomial coefficients about one common centre would also cost O(1) per
piece, but a narrow piece far from that centre has huge coefficients there, and their round-off
stays in every later level (relative error ~ ε·(distance/width)³). Here a piece is re-expanded
only about the centre of a block about as wide as itself, t = δ + ρ·u with |δ| + ρ <= 6 for levels
of smooth spacing, and its round-off stays inside the block: the error is a few hundred ε times
the pieces' size. A piece for which |δ| + ρ would exceed ``_MAX_REEXPANSION`` (levels of very
uneven spacing) is evaluated at each of its levels instead.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["CubicPieceSum"]

# Pieces are added in batches of at most this many coefficients (bounds the temporaries).
_BATCH_COEFFICIENTS = 1 << 18
# Largest |δ| + ρ of a re-expansion t = δ + ρ·u into a block's variable (round-off grows like its
# cube); pieces that would need more are evaluated level by level.
_MAX_REEXPANSION = 8.0


class CubicPieceSum:
    """Accumulates cubic pieces at the levels ``levels`` (sorted, non-decreasing); :meth:`add`
    pieces, then read :meth:`values`.

    A piece is a combination of node values: ``P_pv(λ) = Σ_c q_pc(λ) · node_values[nodes[c, p], v]``
    with cubics q_pc, so that pieces sharing nodes (the corners of tetrahedra) are summed with
    one sparse product per batch.
    """

    def __init__(self, levels: np.ndarray, node_values: np.ndarray):
        levels = np.asarray(levels, dtype=float)
        if levels.ndim != 1 or levels.size == 0 or np.any(np.diff(levels) < 0):
            raise ValueError("levels must be a non-empty, non-decreasing 1-D array")
        self.levels = levels
        self.node_values = np.asarray(node_values, dtype=float)  # (n_nodes, nv)
        # per block scale s: running-sum increments (4 coefficients, nv, levels padded to whole
        # blocks), allocated when a piece first needs that scale
        self._increments: dict[int, np.ndarray] = {}
        # pieces evaluated level by level: values (1, nv, L)
        self._direct = np.zeros((1, self.node_values.shape[1], levels.size))
        self._row = np.full(levels.size, -1, dtype=np.int64)  # scratch: level -> row

    def add(self, first, stop, centre, half_width, cubics, nodes) -> None:
        """Add pieces, summed at the levels with index in [first[p], stop[p]):
        ``cubics[n, c, p]`` is the coefficient of t^n in q_pc, t = (λ − centre[p])/half_width[p],
        and ``nodes[c, p]`` the row of ``node_values`` it multiplies. The levels of a piece must
        lie on its support ``|λ − centre[p]| <= half_width[p]`` (half_width > 0)."""
        first, stop = np.asarray(first, dtype=np.int64), np.asarray(stop, dtype=np.int64)
        centre, half_width = np.asarray(centre, dtype=float), np.asarray(half_width, dtype=float)
        cubics, nodes = np.asarray(cubics, dtype=float), np.asarray(nodes)
        batch = max(1, _BATCH_COEFFICIENTS // (4 * cubics.shape[1]))
        for p in range(0, first.size, batch):
            part = slice(p, p + batch)
            self._add(first[part], stop[part], centre[part], half_width[part],
                      cubics[..., part], nodes[:, part])

    def _add(self, first, stop, centre, half_width, cubics, nodes) -> None:
        n_levels = self.levels.size
        scale = np.ceil(np.log2(np.maximum(stop - first, 1))).astype(np.int64)
        end_block = (stop - 1) >> scale
        crosses = (first >> scale) != end_block
        ends_inside = (stop < n_levels) & ((stop & ((1 << scale) - 1)) != 0)
        # events (piece, level where the running sum changes, block scale, sign)
        piece = np.concatenate([np.arange(first.size), np.flatnonzero(crosses),
                                np.flatnonzero(ends_inside)])
        level = np.concatenate([first, (end_block << scale)[crosses], stop[ends_inside]])
        sign = np.repeat([1.0, 1.0, -1.0], [first.size, crosses.sum(), ends_inside.sum()])
        s = scale[piece]
        block_centre, block_half = self._block(level, s)
        delta = (block_centre - centre[piece]) / half_width[piece]
        rho = block_half / half_width[piece]
        # pieces whose re-expansion would lose accuracy: level by level
        steep = np.zeros(first.size, dtype=bool)
        steep[piece[np.abs(delta) + rho > _MAX_REEXPANSION]] = True
        if steep.any():
            self._add_direct(first[steep], stop[steep], centre[steep], half_width[steep],
                             cubics[..., steep], nodes[:, steep])
            keep = ~steep[piece]
            piece, level, sign, s = piece[keep], level[keep], sign[keep], s[keep]
            delta, rho = delta[keep], rho[keep]
        shifted = _change_variable(cubics[..., piece] * sign, delta, rho)  # (4, m, events)
        for scale_s in np.unique(s):
            at = np.flatnonzero(s == scale_s)
            self._deposit(self._scale(int(scale_s)), level[at], shifted[..., at],
                          nodes[:, piece[at]])

    def _block(self, level, s):
        """Centre and half-span of the levels of the block of 2^s levels that holds ``level``."""
        start = (level >> s) << s
        lo = self.levels[start]
        hi = self.levels[np.minimum(start + (1 << s), self.levels.size) - 1]
        return 0.5 * (lo + hi), 0.5 * (hi - lo)

    def _scale(self, s: int) -> np.ndarray:
        if s not in self._increments:
            n_blocks = -(-self.levels.size // (1 << s))
            self._increments[s] = np.zeros((4, self.node_values.shape[1], n_blocks << s))
        return self._increments[s]

    def _deposit(self, target, level, coefficients, nodes) -> None:
        """target[n, :, level[e]] += Σ_c coefficients[n, c, e] · node_values[nodes[c, e]]."""
        self._row[level] = 0
        touched = np.flatnonzero(self._row == 0)
        self._row[touched] = np.arange(touched.size)
        rows = self._row[level] + touched.size * np.arange(coefficients.shape[0])[:, None, None]
        self._row[touched] = -1
        deposit = sparse.coo_matrix(
            (coefficients.ravel(), (np.broadcast_to(rows, coefficients.shape).ravel(),
                                    np.broadcast_to(nodes, coefficients.shape).ravel())),
            shape=(coefficients.shape[0] * touched.size, self.node_values.shape[0]),
        )
        target[..., touched] += (deposit @ self.node_values).reshape(
            coefficients.shape[0], touched.size, -1).transpose(0, 2, 1)

    def _add_direct(self, first, stop, centre, half_width, cubics, nodes) -> None:
        count = stop - first
        piece = np.repeat(np.arange(first.size), count)
        level = np.arange(piece.size) + np.repeat(first - (np.cumsum(count) - count), count)
        t = (self.levels[level] - centre[piece]) / half_width[piece]
        c = cubics[..., piece]
        value = ((c[3] * t + c[2]) * t + c[1]) * t + c[0]  # (m, pairs)
        self._deposit(self._direct, level, value[None], nodes[:, piece])

    def values(self) -> np.ndarray:
        """S[v, l], (nv, L): the running sums of every block scale at their levels."""
        n_levels = self.levels.size
        out = self._direct[0].copy()
        for s, increments in self._increments.items():
            running = np.cumsum(increments.reshape(4, increments.shape[1], -1, 1 << s), axis=-1)
            running = running.reshape(increments.shape)[..., :n_levels]
            centre, half = self._block(np.arange(n_levels), s)
            u = np.divide(self.levels - centre, half, out=np.zeros(n_levels), where=half > 0)
            out += ((running[3] * u + running[2]) * u + running[1]) * u + running[0]
        return out


def _change_variable(coefficients: np.ndarray, delta: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Coefficients in u of Σ_n c_n t^n with t = δ + ρ·u, for ``coefficients`` (4, k, m) and
    δ, ρ (m,): a Taylor shift by δ (synthetic division), then powers of ρ; in place."""
    c = coefficients
    for i in range(3):
        for j in range(2, i - 1, -1):
            c[j] += delta * c[j + 1]
    c[1] *= rho
    c[2] *= rho * rho
    c[3] *= rho * rho * rho
    return c
