"""Sums of cubic pieces at sorted levels (qmdipole.piecewise_cubic) against evaluating every
piece at every level of its range, including pieces far narrower than the level range."""

from __future__ import annotations

import numpy as np
import pytest

import qmdipole.piecewise_cubic as piecewise_cubic
from qmdipole.piecewise_cubic import CubicPieceSum


def direct_sum(levels, node_values, first, stop, centre, half_width, cubics, nodes):
    """S[v, l] by evaluating each piece at each level of its range."""
    out = np.zeros((node_values.shape[1], levels.size))
    for p in range(first.size):
        t = (levels[first[p] : stop[p]] - centre[p]) / half_width[p]
        q = t[:, None] ** np.arange(4) @ cubics[:, :, p]  # (levels, m)
        out[:, first[p] : stop[p]] += (q @ node_values[nodes[:, p]]).T
    return out


def random_pieces(rng, levels, n, n_nodes, width, m=3):
    """Pieces on [a, b) with random ends, their level ranges, cubics of size ~1 on m nodes."""
    a = rng.choice(levels, n) + rng.uniform(-0.2, 0.05, n)
    b = a + width(n)
    first = np.searchsorted(levels, a, side="left")
    stop = np.searchsorted(levels, b, side="left")
    keep = stop > first
    cubics = rng.normal(size=(4, m, n))
    nodes = rng.integers(0, n_nodes, size=(m, n))
    return (first[keep], stop[keep], (0.5 * (a + b))[keep], (0.5 * (b - a))[keep],
            cubics[..., keep], nodes[:, keep])


@pytest.mark.parametrize("n_levels", [1, 2, 7, 64, 1000])
def test_matches_direct_sum(n_levels):
    rng = np.random.default_rng(n_levels)
    levels = np.sort(rng.uniform(-1.0, 1.0, n_levels))
    if n_levels > 2:
        levels[3:5] = levels[2]  # repeated levels
    node_values = rng.normal(size=(50, 3))
    pieces = random_pieces(rng, levels, 400, 50, lambda n: rng.exponential(0.5, n))
    tree = CubicPieceSum(levels, node_values)
    tree.add(*pieces)
    expected = direct_sum(levels, node_values, *pieces)
    np.testing.assert_allclose(tree.values(), expected, rtol=0,
                               atol=1e-13 * max(1.0, np.abs(expected).max()))


def test_narrow_pieces_keep_full_accuracy(monkeypatch):
    """Pieces 1e-9 wide have coefficients ~1e27 about the centre of the level range; their
    round-off must not leak into other levels (it would with global prefix sums)."""
    monkeypatch.setattr(piecewise_cubic, "_BATCH_COEFFICIENTS", 64)  # several batches
    rng = np.random.default_rng(1)
    levels = np.linspace(-1.0, 1.0, 4001)
    node_values = np.eye(2)
    wide = random_pieces(rng, levels, 300, 2, lambda n: rng.uniform(0.3, 1.5, n), m=2)
    a = rng.choice(levels, 2000) - 4e-10  # each holds exactly one level
    narrow = (np.searchsorted(levels, a), np.searchsorted(levels, a) + 1, a + 5e-10,
              np.full(a.size, 5e-10), rng.normal(size=(4, 2, a.size)),
              np.repeat([[0], [1]], a.size, axis=1))
    tree = CubicPieceSum(levels, node_values)
    for part in (wide, narrow):
        tree.add(*part)
    expected = direct_sum(levels, node_values, *wide) + direct_sum(levels, node_values, *narrow)
    np.testing.assert_allclose(tree.values(), expected, rtol=0, atol=1e-12)


def test_levels_of_very_uneven_spacing():
    """Blocks that reach far beyond a piece (a level gap 1e4 times the spacing) would need an
    ill-conditioned re-expansion: such pieces are evaluated level by level, still exactly."""
    rng = np.random.default_rng(4)
    levels = np.concatenate([np.linspace(0.0, 1.0, 50), [1e4, 1e4 + 1.0],
                             np.linspace(2e4, 2e4 + 1, 70)])
    node_values = rng.normal(size=(20, 2))
    pieces = random_pieces(rng, levels, 3000, 20, lambda n: rng.uniform(0.05, 0.6, n))
    tree = CubicPieceSum(levels, node_values)
    tree.add(*pieces)
    expected = direct_sum(levels, node_values, *pieces)
    np.testing.assert_allclose(tree.values(), expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_cubic_spanning_every_level_is_reproduced():
    """One piece over all levels gives the cubic itself at every level."""
    levels = np.sort(np.random.default_rng(2).uniform(-3.0, 5.0, 333))
    coefficients = np.array([0.5, -1.0, 2.0, 0.25])
    tree = CubicPieceSum(levels, np.ones((1, 1)))
    tree.add([0], [levels.size], [1.0], [4.0], coefficients[:, None, None], [[0]])
    t = (levels - 1.0) / 4.0
    np.testing.assert_allclose(tree.values()[0], np.polyval(coefficients[::-1], t),
                               rtol=0, atol=1e-14)


def test_rejects_unsorted_levels():
    with pytest.raises(ValueError, match="non-decreasing"):
        CubicPieceSum(np.array([0.0, 1.0, 0.5]), np.ones((1, 1)))
    with pytest.raises(ValueError, match="non-empty"):
        CubicPieceSum(np.array([]), np.ones((1, 1)))
