"""Occupations: the Fermi–Dirac function, its derivative, and Fermi-surface weights on a k-grid.

At T = 0 the derivative f' = −δ(ε − μ) is a δ-function; on a grid it is integrated with the linear
tetrahedron method (:mod:`qmdipole.tetrahedron`), which converges without any smearing. At T > 0
f' is smooth and is sampled at the nodes.
"""

from __future__ import annotations

import numpy as np

from .kgrid import KGrid
from .tetrahedron import fermi_surface_node_weights, mirror_points


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

    T > 0: quadrature weight × f'(ε). T = 0: −(tetrahedron δ-weight) × Jacobian, since
    ∫ d³k F δ(ε − μ) = ∫ d³u J F δ(ε − μ) in the grid's own coordinates.
    """
    if temperature > 0:
        return grid.weight() * fermi_derivative(energy, mu, temperature)
    if not (energy.min() < mu < energy.max()):
        return np.zeros_like(energy)
    weights = fermi_surface_node_weights(energy, grid.axes, mu, grid.periods,
                                         mirror=grid_mirror(grid))
    return -weights * grid.jacobian()


def grid_mirror(grid: KGrid):
    """The tetrahedron split's mirror planes for ``grid`` (see :mod:`qmdipole.tetrahedron`).

    Symmetric open axes are mirrored about their midpoints, so that models related by a
    reflection (e.g. k_z → −k_z, the T/I partner valley of Eq. 14) integrate identically and
    symmetry-forbidden integrals vanish to round-off; Brillouin-zone axes about k = 0.
    """
    return mirror_points(grid.axes, grid.periods, periodic=grid.kind == "brillouin_zone")
