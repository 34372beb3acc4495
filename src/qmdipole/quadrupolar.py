"""The static quadrupolar current γ_jik(μ, T) of Eqs. (9)–(10).

    γ_jik = (e²/ħ) Σ_m ∫ d³k/(8π³) G_ijk,m f′_m,   G_ijk,m = v_i,m g_jk,m,

taken literally (docs/conventions.md), e > 0, reported in units of e²/(16π²ħ): γ = (2/π) Σ_m ∫ d³k G f′.
γ_xxz, the coefficient of J_x = γ_xxz ∂_z E_x, uses G_xxz = v_x g_xz.

T = 0: f′ = −δ(ε − μ), a Fermi-surface integral done with the linear tetrahedron method on the
grid's own coordinates (converges as O(h²) with no smearing); every μ of the grid in one sweep
over the tetrahedra, at a cost that tends to O(N_k + N_μ log N_μ) as the μ grid gets dense
(:mod:`qmdipole.tetrahedron`).

T > 0: γ(μ, T) = ∫ dE (−∂f/∂E)(E − μ) γ(E, T = 0), the exact identity that follows from
f′(ε) = ∫ dE f′(E) δ(ε − E); the T = 0 curve is evaluated on an energy grid fine against T.

Every curve NAME comes with NAME_error, an absolute estimate of its grid error: at T = 0 from
the same reduction on the table's half-density subgrid (Richardson, :mod:`qmdipole.errors`),
sampled on an energy grid fine against the subgrid's energy step w; at T > 0 the thermal average
of the T = 0 estimate (a bound if the T = 0 estimate is one: −∂f/∂E > 0).
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from . import errors, units
from .fermi import fermi_derivative
from .integrand import over_slabs, table_slabs
from .io import open_dataset
from .kgrid import KGrid, half_density_table

GAMMA_UNIT = 2 / np.pi  # (e²/ħ)/(8π³) in units of e²/(16π²ħ)
DIRS = ("x", "y", "z")
PAIRS = tuple(itertools.combinations_with_replacement(range(3), 2))  # (j, k) with j <= k
TABLE_VARIABLES = ("energy", "velocity", "quantum_metric")
LEVELS_PER_WINDOW = 8  # samples of γ_h − γ_2h per error window (its oscillations are ~ a window wide)
T0_ERROR = (
    f"Richardson: {errors.SAFETY:g} x max over |mu' - mu| <= error_window of "
    f"|gamma_h(mu') - gamma_2h(mu')| / (2^{errors.ORDER} - 1), gamma_2h on the half-density "
    "subgrid of the same table (every other node of each axis but the azimuth of a cylindrical "
    "grid), error_window = its largest energy step between neighbouring nodes"
)
FINITE_T_ERROR = "thermal convolution (as for the curve) of the T = 0 error estimate"


class WindowError(ValueError):
    """The requested chemical potentials reach states the k-grid did not tabulate."""


def check_energy_window(grid: KGrid, energy, lo, hi, what="quadrupolar_current.mu"):
    """Refuse levels in [lo, hi] that band energies at the edge of the k-window reach."""
    boundary = grid.boundary()
    if not boundary.any():
        return
    for band, e in enumerate(energy):
        edge = e[boundary]
        inside = (edge >= lo) & (edge <= hi)
        if inside.any() or (edge.min() < lo and edge.max() > hi):
            raise WindowError(
                f"{what} spans [{lo:.4g}, {hi:.4g}] (with thermal tails) but band {band} takes "
                f"energies in [{edge.min():.4g}, {edge.max():.4g}] at the edge of the tabulated "
                "k-window: states beyond it would be missed. Enlarge kgrid.window (or use "
                "window: auto) or narrow the mu range"
            )


def fermi_surface_dipoles(ds: xr.Dataset, levels, slab_points=2**18, threads=1):
    """I[m, i, p, l] = ∫ d³k G_{i,j_p k_p,m} δ(ε_m − λ_l) for every band m, direction i, pair p
    (``threads`` slabs at a time; the same numbers for any count)."""
    def dipoles(slab):
        values = np.empty((len(slab.energy), 3, len(PAIRS)) + slab.energy.shape[1:])
        for i in range(3):
            for p, (j, k) in enumerate(PAIRS):
                slab.dipole(i, j, k, out=values[:, i, p])
        return slab.fermi_surface(values.reshape(len(values), -1, *values.shape[3:]), levels)

    out = np.zeros((ds.sizes["band"], 3, len(PAIRS), len(levels)))
    for part in over_slabs(dipoles, table_slabs(ds, slab_points), threads):
        out += part.reshape(out.shape)
    return out


def gamma_tensor(ds: xr.Dataset, levels, slab_points=2**18, threads=1) -> np.ndarray:
    """γ_jik(λ) at T = 0 for every level λ, array (j, i, k, level) in e²/(16π²ħ)."""
    dipoles = fermi_surface_dipoles(ds, levels, slab_points, threads).sum(axis=0)  # (i, pair, level)
    tensor = np.empty((3, 3, 3, len(levels)))
    for p, (j, k) in enumerate(PAIRS):
        for i in range(3):
            tensor[j, i, k] = tensor[k, i, j] = -GAMMA_UNIT * dipoles[i, p]
    return tensor


def gamma_tensor_error(ds: xr.Dataset, levels, tensor, width: float,
                       slab_points=2**18, threads=1) -> np.ndarray:
    """Absolute error of ``tensor = gamma_tensor(ds, levels)``, array (j, i, k, level).

    γ on the half-density subgrid (:func:`qmdipole.kgrid.half_density_table`) at the levels
    nearest to a spacing w/LEVELS_PER_WINDOW (``width`` = w of :func:`qmdipole.errors.subgrid_resolution`) gives the
    Richardson estimate of :func:`qmdipole.errors.estimate`, spread over |λ′ − λ| <= w.
    """
    levels = np.asarray(levels, float)
    marks = np.arange(levels[0], levels[-1], width / LEVELS_PER_WINDOW) if width > 0 else levels
    pick = np.unique(np.append(np.searchsorted(levels, marks), len(levels) - 1))
    coarse = gamma_tensor(half_density_table(ds), levels[pick], slab_points, threads)
    return errors.estimate(levels, tensor, levels[pick], coarse, width)


def thermal_average(curve_energy, curve, mu, temperature):
    """∫ dE (−∂f/∂E)(E − μ) curve(E) by the trapezoid rule on the curve's energies.

    ``curve`` (…, level) → (…, μ): every component of a tensor in one product."""
    step = np.diff(curve_energy)
    weights = np.zeros_like(curve_energy)
    weights[:-1] += step / 2
    weights[1:] += step / 2
    kernel = -fermi_derivative(curve_energy[None, :], mu[:, None], temperature) * weights
    return np.asarray(curve) @ kernel.T


def level_spacing(mu_spacing: float, temperatures=(), width: float = 0.0) -> float:
    """Spacing of the levels of the T = 0 curve: at most the μ spacing, T/4 (the finite-T curves
    are its thermal averages) and ``width``/LEVELS_PER_WINDOW (the error window, if > 0)."""
    spacing = mu_spacing
    if len(temperatures):
        spacing = min(spacing, min(temperatures) / 4)
    if width > 0:
        spacing = min(spacing, width / LEVELS_PER_WINDOW)
    return spacing


def energy_levels(mu, temperatures=(), width=0.0):
    """``(lo, hi, levels, spacing)``: the energies of the T = 0 curve, every μ among them,
    spanning the μ range widened by 20 k_B T, spaced by :func:`level_spacing`."""
    mu = np.asarray(mu, float)
    reach = 20 * max(temperatures, default=0.0)
    lo, hi = mu[0] - reach, mu[-1] + reach
    spacing = level_spacing(np.min(np.diff(mu)) if len(mu) > 1 else 0.01, temperatures, width)
    levels = np.arange(lo, hi + spacing / 2, spacing)
    return lo, hi, np.unique(np.concatenate([levels, mu])), spacing


def gamma_from_table(table, *, mu, temperatures=(), slab_points=2**18, threads=1) -> xr.Dataset:
    """γ_jik(μ) at T = 0 and at the given temperatures (whole tensor, and its γ_xxz), one valley,
    worked on ``threads`` slabs at a time (the numbers do not depend on it).

    Each curve NAME comes with NAME_error (absolute, same units; see the module docstring). The
    energy levels are spaced by at most the μ spacing, T/4 and w/LEVELS_PER_WINDOW.
    """
    mu = np.asarray(mu, float)
    temperatures = [float(t) for t in temperatures]
    if mu.ndim != 1 or len(mu) < 1 or np.any(np.diff(mu) <= 0):
        raise ValueError("quadrupolar_current.mu must be an increasing list of chemical potentials")
    if any(t <= 0 for t in temperatures):
        raise ValueError(f"quadrupolar_current.temperatures must be > 0, got {temperatures}")
    ds = table if isinstance(table, xr.Dataset) else open_dataset(
        table, required=TABLE_VARIABLES, what="geometry table")
    grid = KGrid.from_dataset(ds)
    energy = ds["energy"].values

    lo, hi, *_ = energy_levels(mu, temperatures)
    width = errors.subgrid_resolution(grid, energy, lo, hi)
    _, _, levels, spacing = energy_levels(mu, temperatures, width)
    check_energy_window(grid, energy, levels[0], levels[-1])

    tensor = gamma_tensor(ds, levels, slab_points, threads)
    tensor_error = gamma_tensor_error(ds, levels, tensor, width, slab_points, threads)
    on_mu = np.searchsorted(levels, mu)
    gamma_xxz, gamma_xxz_error = tensor[0, 0, 2], tensor_error[0, 0, 2]

    finite, finite_error = (np.zeros((3, 3, 3, len(temperatures), len(mu))) for _ in range(2))
    for index, temperature in enumerate(temperatures):
        finite[..., index, :] = thermal_average(levels, tensor, mu, temperature)
        finite_error[..., index, :] = thermal_average(levels, tensor_error, mu, temperature)
    names = {
        "gamma_xxz": "quadrupolar current coefficient gamma_xxz at T = 0 (Eq. 10)",
        "gamma": "quadrupolar current tensor gamma_jik at T = 0 (Eq. 10)",
        "gamma_xxz_temperature": "gamma_xxz at finite temperature (Eq. 10)",
        "gamma_temperature": "quadrupolar current tensor gamma_jik at finite temperature (Eq. 10)",
    }
    curves = {
        "gamma_xxz": ("mu", gamma_xxz[on_mu], gamma_xxz_error[on_mu], T0_ERROR),
        "gamma": (("dir_j", "dir_i", "dir_k", "mu"), tensor[..., on_mu], tensor_error[..., on_mu], T0_ERROR),
        "gamma_xxz_temperature": (("temperature", "mu"), finite[0, 0, 2], finite_error[0, 0, 2], FINITE_T_ERROR),
        "gamma_temperature": (("dir_j", "dir_i", "dir_k", "temperature", "mu"), finite, finite_error, FINITE_T_ERROR),
    }
    variables = {}
    for name, (dims, curve, error, method) in curves.items():
        variables[name] = (dims, curve, {**units.GAMMA.attrs(), "long_name": names[name]})
        variables[f"{name}_error"] = (dims, error, errors.attributes(
            names[name], units.GAMMA, method, errors.relative_to_peak(error, curve)))
    out = xr.Dataset(
        {
            **variables,
            "band_edge_conduction": ((), float(energy[-1].min()), {**units.ENERGY.attrs(), "long_name": "conduction band minimum on the grid"}),
            "band_edge_valence": ((), float(energy[0].max()), {**units.ENERGY.attrs(), "long_name": "valence band maximum on the grid"}),
        },
        coords={
            "mu": ("mu", mu, {**units.ENERGY.attrs(), "long_name": "chemical potential"}),
            "temperature": ("temperature", np.array(temperatures, float), {**units.ENERGY.attrs(), "long_name": "temperature k_B T"}),
            **{d: (d, list(DIRS), {"long_name": f"Cartesian direction {d[-1]}"}) for d in ("dir_j", "dir_i", "dir_k")},
        },
    )
    out.attrs["fermi_surface_method"] = "linear tetrahedron (T = 0); thermal convolution of the T = 0 curve (T > 0)"
    out.attrs["energy_spacing"] = float(spacing)
    out.attrs["error_window"] = width
    out.attrs["error_safety_factor"] = errors.SAFETY
    return out
