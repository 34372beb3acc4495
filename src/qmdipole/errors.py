"""Error estimates of grid reductions from the data itself: a grid and its half-density subgrid.

A reduction R whose error on a grid of spacing h behaves as C h^p gives, on the subgrid of
:meth:`qmdipole.kgrid.KGrid.half_density` (spacing 2h), the Richardson estimate

    |R_h − R_exact| ≈ |R_h − R_2h| / (2^p − 1).

Curves R(x) of a spectral variable x (μ, ω) need two more things to make this an honest bound:

* the error of a δ-function (Fermi-surface) integral oscillates in x as the level set sweeps over
  the grid's nodes, on the scale of the energy step between neighbouring nodes, and the two
  grids oscillate out of phase: |R_h − R_2h| has zeros where R_h − R_exact has none. The estimate
  is therefore the running maximum over |x′ − x| ≤ w, w the subgrid's largest energy step
  (:func:`energy_resolution`);
* near kinks of R(x) (band edges, tangencies of the level set with grid lines) the convergence
  is slower than h^p, and on coarse grids both errors are noise of similar size; a safety factor
  (:data:`SAFETY`) covers it, measured on the paper's model.

The estimate is absolute, in the curve's units.

Where the error is C h^p with a smooth C, the two grids also give a better value, the Richardson
extrapolation E_h = R_h + (R_h − R_2h)/(2^p − 1) (:func:`extrapolate`). Its own error is estimated
in the same way, |E_h − E_2h|/(2^q − 1), from E_2h, the extrapolation of the subgrid (2h) and of
its own half-density subgrid (4h), with the order q > p of the next term.
"""

from __future__ import annotations

import numpy as np

ORDER = 2  # the linear tetrahedron method: O(h²) on smooth parts
# measured on Eq. 14 (random parameter sets, grids of 60 x 4 x 120 and 120 x 4 x 240 in (ρ, φ, k_z)):
# true error / spread Richardson estimate up to ~5 where the grid is pre-asymptotic (the errors
# of both grids are alignment noise of similar size, not C h² and 4 C h²)
SAFETY = 6.0


def richardson(fine, coarse, order: int = ORDER):
    """|fine − coarse| / (2^order − 1): the error of ``fine`` if errors scale as h^order."""
    return np.abs(np.asarray(fine) - np.asarray(coarse)) / (2.0**order - 1.0)


def extrapolate(fine, coarse, order: int = ORDER):
    """Richardson extrapolation fine + (fine − coarse)/(2^order − 1): the h → 0 limit of a
    reduction whose error is C h^order, from the grid (h) and its half-density subgrid (2h)."""
    fine = np.asarray(fine)
    return fine + (fine - np.asarray(coarse)) / (2.0**order - 1.0)


def window_max(x, values, at, half_width: float) -> np.ndarray:
    """max of ``values[..., j]`` over the samples with |x_j − at_i| <= half_width, last axis.

    ``x`` increasing; a window holding no sample takes its nearest samples on both sides, so
    that sparse samples are never dropped. Sparse table: O(n log n) for n samples.
    """
    x, at, values = np.asarray(x, float), np.asarray(at, float), np.asarray(values, float)
    n = len(x)
    lo = np.searchsorted(x, at - half_width, side="left")
    hi = np.searchsorted(x, at + half_width, side="right")
    empty = hi <= lo  # then hi is the first sample right of the window
    lo, hi = np.where(empty, np.maximum(hi - 1, 0), lo), np.where(empty, np.minimum(hi + 1, n), hi)
    tables = [values]
    while 2 ** len(tables) <= n:
        span, last = 2 ** (len(tables) - 1), tables[-1]
        tables.append(np.maximum(last[..., :-span], last[..., span:]))
    level = np.floor(np.log2(hi - lo)).astype(int)
    out = np.empty(values.shape[:-1] + (len(at),))
    for k in np.unique(level):
        pick = level == k
        table = tables[k]
        out[..., pick] = np.maximum(table[..., lo[pick]], table[..., hi[pick] - 2**k])
    return out


def energy_resolution(energy, lo: float, hi: float) -> float:
    """Largest |ε(node) − ε(neighbour)| along any axis of a grid, over the node pairs of one band
    that span some energy in [lo, hi]. ``energy`` (band, n1, n2, n3); 0 if no pair does."""
    width = 0.0
    for band in np.asarray(energy, float):
        for axis in range(3):
            a = np.moveaxis(band, axis, 0)
            low, high = np.minimum(a[1:], a[:-1]), np.maximum(a[1:], a[:-1])
            inside = (high >= lo) & (low <= hi)
            if inside.any():
                width = max(width, float((high - low)[inside].max()))
    return width


def subgrid_resolution(grid, energy, lo: float, hi: float) -> float:
    """w of ``grid``'s half-density subgrid (:meth:`qmdipole.kgrid.KGrid.half_density`): its
    largest energy step between neighbouring nodes over the pairs spanning [lo, hi], for energies
    ``energy`` (band, n1, n2, n3) on ``grid`` (:func:`energy_resolution`)."""
    _, index = grid.half_density()
    return energy_resolution(np.asarray(energy)[np.ix_(np.arange(len(energy)), *index)], lo, hi)


def estimate(levels, fine, coarse_levels, coarse, width: float, *, safety: float = SAFETY,
             order: int = ORDER) -> np.ndarray:
    """Absolute error of ``fine`` (…, level) from ``coarse`` (…, coarse level) on the subgrid.

    ``coarse_levels`` is a subset of ``levels``; the Richardson estimate there is spread over
    |λ′ − λ| <= ``width`` (:func:`window_max`) onto every level and multiplied by ``safety``.
    """
    levels, coarse_levels = np.asarray(levels, float), np.asarray(coarse_levels, float)
    on_fine = np.searchsorted(levels, coarse_levels)
    if not np.array_equal(levels[np.minimum(on_fine, len(levels) - 1)], coarse_levels):
        raise ValueError("coarse_levels must be a subset of levels")
    local = richardson(np.asarray(fine)[..., on_fine], coarse, order)
    return safety * window_max(coarse_levels, local, levels, width)


def relative_to_peak(error, curve) -> float:
    """max error / max |curve| (0 if both vanish or are empty, inf if only the curve vanishes)."""
    error, curve = np.abs(np.asarray(error, float)), np.abs(np.asarray(curve, float))
    top, peak = float(error.max(initial=0.0)), float(curve.max(initial=0.0))
    if peak > 0:
        return top / peak
    return 0.0 if top == 0 else float("inf")


def relative_to_parts(error, parts) -> float:
    """max error / Σ_v max |part_v|: the error of a sum Σ_v part_v (a valley sum) relative to the
    sum of its parts' peaks. It is what tolerances on the parts guarantee for the sum (each
    part's error <= rtol × its peak gives this <= rtol); where the parts cancel, the sum's own
    peak is smaller and :func:`relative_to_peak` larger. ``parts`` (part, …)."""
    parts = np.abs(np.asarray(parts, float))
    scale = float(parts.reshape(len(parts), -1).max(axis=1, initial=0.0).sum())
    return relative_to_peak(error, scale)


def attributes(curve_long_name: str, quantity, method: str, relative: float) -> dict:
    """CF attributes of an ``*_error`` variable (in the units of its curve, a
    :class:`qmdipole.units.Quantity`)."""
    return {
        **quantity.attrs(),
        "long_name": f"estimated absolute error of {curve_long_name}",
        "error_method": method,
        "max_relative_to_peak": relative,
    }
