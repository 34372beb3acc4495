"""Occupations: the Fermi–Dirac function, its derivative, and Fermi-surface weights on a k-grid.

At T = 0 the derivative f' = −δ(ε − μ) is a δ-function; on a grid it is integrated with the linear
tetrahedron method (:mod:`qmdipole.tetrahedron`), which converges without any smearing. At T > 0
f' is the thermal average of those δ-functions over the chemical potential, integrated the same
way on a set of levels across the Fermi window (:func:`fermi_surface_weights`).
"""

from __future__ import annotations

import numpy as np

from .kgrid import KGrid
from .kernels import THERMAL_REACH
from .tetrahedron import fermi_surface_node_weights, mirror_points

# the spacing of the thermal levels μ' = μ + T u in u (fermi_surface_weights): with the Fermi window
# −f' ∝ 1/cosh²(u/2) smooth, the trapezoid rule errs by ~1e-4 of the sum at 0.5 (against 0.125, a
# sphere's Fermi surface at T = 0.003-0.3), far below the tetrahedra's own error
THERMAL_STEP = 0.5


def fermi_dirac(energy, mu: float, temperature: float):
    """f(ε) = 1/(e^{(ε−μ)/T} + 1); at T = 0 a step with f(μ) = ½."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    energy = np.asarray(energy, float)
    if temperature > 0:  # scipy is imported only here: it adds to every job's start-up
        from scipy.special import expit

        return expit(-(energy - mu) / temperature)
    return np.where(energy < mu, 1.0, np.where(energy > mu, 0.0, 0.5))


def fermi_derivative(energy, mu: float, temperature: float):
    """f'(ε) = ∂f/∂ε = −1/(4T cosh²((ε−μ)/2T)) for T > 0."""
    if not temperature > 0:
        raise ValueError("fermi_derivative needs T > 0; use fermi_surface_weights at T = 0")
    x = (np.asarray(energy, float) - mu) / (2 * temperature)
    return -1.0 / (4 * temperature * np.cosh(np.clip(x, -350, 350)) ** 2)


def fermi_surface_weights(grid: KGrid, energy: np.ndarray, mu: float, temperature: float):
    """Node weights W with Σ W·F ≈ ∫ d³k F f'(ε) for one band's ``energy`` (n1, n2, n3).

    T = 0: −(tetrahedron δ-weight) × Jacobian, since ∫ d³k F δ(ε − μ) = ∫ d³u J F δ(ε − μ) in
    the grid's own coordinates. T > 0: the thermal average of those, f'(ε − μ) =
    −∫ dμ' δ(ε − μ') (−f')(μ' − μ), by the trapezoid rule on the levels μ' = μ + T u,
    u = −THERMAL_REACH … THERMAL_REACH in steps of THERMAL_STEP: O(h²) like T = 0 however narrow
    the window is against the cells. f' sampled at the nodes instead is spectrally accurate
    where the cells resolve T but errs erratically where they do not (a band's thermal density
    of states, 20-80 nodes per axis: from a cell spread of ~9 T on by 1-100 %; at T = 0.002 on
    40 x 4 x 80 nodes 59 %, thermal average 0.06 %), which the grid/subgrid estimates cannot
    follow.
    """
    reach = THERMAL_REACH * temperature
    if not (energy.min() < mu + reach and mu - reach < energy.max()):  # no Fermi surface
        return np.zeros_like(energy)
    if temperature > 0:
        u = np.arange(-THERMAL_REACH, THERMAL_REACH + THERMAL_STEP / 2, THERMAL_STEP)
        levels, level_weights = mu + temperature * u, THERMAL_STEP / (4 * np.cosh(u / 2) ** 2)
    else:
        levels, level_weights = np.array([mu]), np.ones(1)
    weights = fermi_surface_node_weights(energy, grid.axes, levels, grid.periods,
                                         mirror=grid_mirror(grid), level_weights=level_weights)
    return -weights * grid.jacobian()


def grid_mirror(grid: KGrid):
    """The tetrahedron split's mirror planes for ``grid`` (see :mod:`qmdipole.tetrahedron`).

    Symmetric open axes are mirrored about their midpoints, so that models related by a
    reflection (e.g. k_z → −k_z, the T/I partner valley of Eq. 14) integrate identically and
    symmetry-forbidden integrals vanish to round-off; Brillouin-zone axes about k = 0.
    """
    return mirror_points(grid.axes, grid.periods, periodic=grid.kind == "brillouin_zone")
