"""Band structure along k_z at k_x = k_y = 0 and its gap markers (the data of Fig. 2).

Conventions (docs/conventions.md): ħ = 1, energies in units of Δ ≡ Δ₁, momenta in Δ/(ħv).

For each valley model the bands ε_m(0, 0, k_z) are evaluated through the generic model interface
(:func:`qmdipole.geometry.band_geometry`), and the gap markers are found numerically, so that any
model (Eq. 14, its lattice regularisation, a user's model) gets the same treatment:

* ``delta``: half the direct gap at k = 0, Δ_i = [ε_c(0) − ε_v(0)]/2;
* ``kz_conduction_min``, ``conduction_min``: the minimum of the conduction band along the cut,
  ``kz_valence_max``, ``valence_max``: the maximum of the valence band along the cut; found by a
  dense search over the k_z window followed by a refinement between the neighbours of the best
  node: Brent's root search of v_z = ∂ε/∂k_z = 0 (from the model's ∂H/∂k_z, located to round-off),
  or, where v_z does not change sign there (a kink), a bounded minimisation of the energy;
* ``indirect_gap`` = conduction_min − valence_max per valley;
* ``global_gap`` = min_i conduction_min_i − max_i valence_max_i, the gap of the union of valleys
  (negative for a semimetal), with the two edges ``global_conduction_min``, ``global_valence_max``.

The extrema are those of the plotted cut. A local 3-D optimisation started from each extremum checks
that it is a band extremum in the full k-space; if it is not (the band edge lies off the k_x = k_y = 0
axis), a warning says so. For Eq. (14) the extrema sit at k_z = ∓ m v'_i with values
±(Δ_i − m v'_i²/2); the tests compare with this closed form.

"valence" is band ``n_bands // 2 − 1`` and "conduction" band ``n_bands // 2`` (half filling, bands in
ascending energy); for the paper's two-band models these are bands 0 and 1.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy import optimize

from . import units
from .geometry import band_geometry
from .io import json_attribute

SEARCH_POINTS = 20001
_XTOL = 1e-12


def band_energies(model, kx, ky, kz) -> np.ndarray:
    """Band energies ``(n_bands, N)`` of ``model`` at flat k arrays (ascending energy)."""
    kx, ky, kz = (np.atleast_1d(np.asarray(c, dtype=float)).ravel() for c in np.broadcast_arrays(kx, ky, kz))
    return band_geometry(model, kx, ky, kz)["energy"]


def _band_indices(model) -> tuple[int, int]:
    n_bands = int(getattr(model, "n_bands", 2))
    if n_bands < 2 or n_bands % 2:
        raise ValueError(f"band_structure needs an even number of bands >= 2, got {n_bands}")
    return n_bands // 2 - 1, n_bands // 2


def _extremum_on_cut(model, band: int, sign: float, kz_lo: float, kz_hi: float):
    """(k_z, ε, interior) of the minimum of sign·ε_band(0, 0, k_z) on [kz_lo, kz_hi].

    Dense search + refinement; ``interior`` is False when the extremum sits on the window's edge.
    """
    kz = np.linspace(kz_lo, kz_hi, SEARCH_POINTS)
    zero = np.zeros_like(kz)
    values = sign * band_energies(model, zero, zero, kz)[band]
    i = int(np.argmin(values))
    if i in (0, kz.size - 1):
        warnings.warn(
            f"band {band}: the extremum along k_z lies at the edge of the window "
            f"[{kz_lo:g}, {kz_hi:g}]; widen the k_z range",
            RuntimeWarning,
            stacklevel=3,
        )
        return float(kz[i]), float(sign * values[i]), False
    lo, hi = kz[i - 1], kz[i + 1]

    def slope(k):  # v_z = dε/dk_z of the band, from the model's ∂H/∂k_z
        return float(band_geometry(model, np.zeros(1), np.zeros(1), np.array([k]))["velocity"][band, 2, 0])

    def f(k):
        return float(sign * band_energies(model, 0.0, 0.0, k)[band, 0])

    s_lo, s_hi = slope(lo), slope(hi)
    if s_lo * s_hi < 0:  # a smooth extremum: the root of v_z is located to round-off
        k_best = optimize.brentq(slope, lo, hi, xtol=_XTOL, rtol=4 * np.finfo(float).eps)
    else:  # a kink or a flat top: minimise the energy itself (|δk| ~ sqrt(eps))
        k_best = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                          options={"xatol": _XTOL, "maxiter": 500}).x
    v_best = f(k_best)
    if v_best > values[i]:
        k_best, v_best = kz[i], values[i]
    return float(k_best), float(sign * v_best), True


def _check_extremum_3d(model, band: int, sign: float, kz0: float, value: float, scale: float,
                       kz_range: tuple[float, float]) -> bool:
    """True if a local 3-D search from (0, 0, kz0) finds no lower sign·ε than ``value`` (warn if it does).

    The search stays in the box |k_x|, |k_y| ≤ (kz_hi − kz_lo)/2, kz_lo ≤ k_z ≤ kz_hi.
    """
    half = 0.5 * (kz_range[1] - kz_range[0])

    def f(k):
        with np.errstate(all="ignore"):
            return float(sign * band_energies(model, k[0], k[1], k[2])[band, 0])

    res = optimize.minimize(f, x0=np.array([1e-3, 1e-3, kz0]), method="Nelder-Mead",
                            bounds=[(-half, half), (-half, half), kz_range],
                            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000})
    tol = 1e-8 * max(scale, 1.0)
    if res.fun < sign * value - tol:
        warnings.warn(
            f"band {band}: the extremum on the k_x = k_y = 0 cut ({value:.6g} at k_z = {kz0:.6g}) is "
            f"not a band extremum in 3-D (found {sign * res.fun:.6g} at k = {np.round(res.x, 6)}); "
            "the gap markers refer to the cut",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def band_markers(model, kz_range: tuple[float, float]) -> dict:
    """Gap markers of one valley model along the k_z cut (see the module docstring)."""
    iv, ic = _band_indices(model)
    kz_lo, kz_hi = map(float, kz_range)
    at_zero = band_energies(model, 0.0, 0.0, 0.0)[:, 0]
    delta = 0.5 * (at_zero[ic] - at_zero[iv])
    kz_cmin, cmin, c_inside = _extremum_on_cut(model, ic, +1.0, kz_lo, kz_hi)
    kz_vmax, vmax, v_inside = _extremum_on_cut(model, iv, -1.0, kz_lo, kz_hi)
    scale, window = abs(delta), (kz_lo, kz_hi)
    on_axis = True
    if c_inside:  # an extremum on the window's edge has been warned about already
        on_axis &= _check_extremum_3d(model, ic, +1.0, kz_cmin, cmin, scale, window)
    if v_inside:
        on_axis &= _check_extremum_3d(model, iv, -1.0, kz_vmax, vmax, scale, window)
    return {
        "delta": delta,
        "kz_conduction_min": kz_cmin,
        "conduction_min": cmin,
        "kz_valence_max": kz_vmax,
        "valence_max": vmax,
        "indirect_gap": cmin - vmax,
        "extrema_on_axis": bool(on_axis),
    }


_MARKER_ATTRS = {
    "delta": (units.ENERGY, "half the direct gap at k = 0, Delta_i = [eps_c(0) - eps_v(0)]/2"),
    "kz_conduction_min": (units.MOMENTUM, "k_z of the conduction-band minimum along k_x = k_y = 0"),
    "conduction_min": (units.ENERGY, "conduction-band minimum along k_x = k_y = 0"),
    "kz_valence_max": (units.MOMENTUM, "k_z of the valence-band maximum along k_x = k_y = 0"),
    "valence_max": (units.ENERGY, "valence-band maximum along k_x = k_y = 0"),
    "indirect_gap": (units.ENERGY, "indirect gap of the valley, conduction_min - valence_max"),
}


def band_structure(models: list, kz: np.ndarray) -> xr.Dataset:
    """ε_m(k_x = 0, k_y = 0, k_z) of each valley model and the gap markers of Fig. 2.

    ``models[i]`` is valley ``i + 1``; ``kz`` (1-D) is the cut, and its range is the window in which
    the band extrema are searched. Returns a Dataset with ``energy(valley, band, kz)``, the per-valley
    markers ``delta``, ``kz_conduction_min``, ``conduction_min``, ``kz_valence_max``,
    ``valence_max``, ``indirect_gap`` and the scalars ``global_gap``, ``global_conduction_min``,
    ``global_valence_max`` (energies in Δ, momenta in Δ/(ħv)).
    """
    kz = np.asarray(kz, dtype=float).ravel()
    if kz.size < 3 or not np.all(np.diff(kz) > 0):
        raise ValueError("kz must be increasing with at least 3 points")
    if not models:
        raise ValueError("band_structure needs at least one valley model")
    n_bands = {int(getattr(m, "n_bands", 2)) for m in models}
    if len(n_bands) != 1:
        raise ValueError(f"all valleys must have the same number of bands, got {sorted(n_bands)}")
    n_bands = n_bands.pop()
    iv, ic = _band_indices(models[0])

    zero = np.zeros_like(kz)
    energy = np.stack([band_energies(m, zero, zero, kz) for m in models])
    markers = [band_markers(m, (kz[0], kz[-1])) for m in models]

    valley = np.arange(1, len(models) + 1)
    ds = xr.Dataset(
        coords={
            "valley": ("valley", valley, {"units": "1", "long_name": "valley index (1-based)"}),
            "band": ("band", np.arange(n_bands),
                     {"units": "1", "long_name": "band index, ascending energy",
                      "valence_band": iv, "conduction_band": ic}),
            "kz": ("kz", kz, {**units.MOMENTUM.attrs(), "long_name": "momentum k_z (k_x = k_y = 0)"}),
        }
    )
    ds["energy"] = (("valley", "band", "kz"), energy,
                    {**units.ENERGY.attrs(), "long_name": "band energy eps_m(0, 0, k_z)"})
    for name, (quantity, long_name) in _MARKER_ATTRS.items():
        ds[name] = ("valley", np.array([mk[name] for mk in markers]),
                    {**quantity.attrs(), "long_name": long_name})
    cmin = float(ds["conduction_min"].min())
    vmax = float(ds["valence_max"].max())
    ds["global_conduction_min"] = ((), cmin, {**units.ENERGY.attrs(),
                                              "long_name": "lowest conduction-band minimum over valleys"})
    ds["global_valence_max"] = ((), vmax, {**units.ENERGY.attrs(),
                                           "long_name": "highest valence-band maximum over valleys"})
    ds["global_gap"] = ((), cmin - vmax, {**units.ENERGY.attrs(),
                                          "long_name": "global gap of the union of valleys "
                                                       "(negative: semimetal)"})
    ds.attrs.update({
        "title": "band structure along k_z at k_x = k_y = 0 (Fig. 2)",
        "valence_band": iv,
        "conduction_band": ic,
        "extrema_on_axis": int(all(mk["extrema_on_axis"] for mk in markers)),
        "models": json_attribute([m.describe() if hasattr(m, "describe") else repr(m) for m in models]),
    })
    return ds
