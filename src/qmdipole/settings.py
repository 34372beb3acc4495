"""Typed settings of the reductions: one place where a configuration becomes objects.

Each class holds one section of the pipeline's configuration (``kgrid``, ``quadrupolar_current``
with ``accuracy``, ``ndd``, ``band_structure``, ``qmd_field``) with the defaults of the shipped
``config/config.yaml``; :meth:`Settings.from_config` reads a (validated) configuration, keys left
out keeping these defaults. Units: energies in Δ, momenta in Δ/(ħv) (or the model's own units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np


class SettingsError(ValueError):
    """A setting has the wrong type or value; the message names its key."""


@dataclass(frozen=True)
class Sampling:
    """``num`` equally spaced values from ``start`` to ``stop`` (both included): numpy.linspace."""

    start: float
    stop: float
    num: int

    def __post_init__(self):
        if not self.stop > self.start or int(self.num) < 1:
            raise SettingsError(f"a sampling needs stop > start and num >= 1, got {self}")

    @property
    def values(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, int(self.num))

    def section(self) -> dict:
        return {"start": float(self.start), "stop": float(self.stop), "num": int(self.num)}


def sampled(values: Sampling | Sequence[float] | np.ndarray, key: str) -> np.ndarray:
    """The values of a :class:`Sampling`, or of an increasing 1-D sequence (checked)."""
    array = values.values if isinstance(values, Sampling) else np.asarray(values, float)
    if array.ndim != 1 or array.size < 1 or not np.isfinite(array).all() or \
            np.any(np.diff(array) <= 0):
        raise SettingsError(f"{key} must be increasing finite numbers (or a Sampling)")
    return array


@dataclass(frozen=True)
class GridSettings:
    """The ``kgrid`` section: node counts ``n`` per axis, the k-window (``"auto"``: from the model,
    or ``{"k1": (lo, hi), "k2": ..., "k3": ...}``), η-refinement and the size guard.

    ``kind``: ``"auto"`` (cylindrical for Eq. 14, brillouin_zone for lattice and Wannier90 models,
    cartesian otherwise), ``"cylindrical"``, ``"cartesian"`` or ``"brillouin_zone"``.
    """

    n: tuple[int, int, int] = (120, 4, 240)
    kind: str = "auto"
    window: str | Mapping[str, Sequence[float]] = "auto"
    points_per_eta: float = 1.5
    max_points: int = 40_000_000


@dataclass(frozen=True)
class GammaSettings:
    """γ_xxz(μ, T) of Eqs. 9–10 (``quadrupolar_current`` and ``accuracy``): chemical potentials
    ``mu`` (Δ), finite temperatures k_B T (Δ), and the target ``rtol`` of the estimated error
    relative to each curve's peak; ``on_miss`` (``"error"`` | ``"warn"``) for a valley that
    misses it."""

    mu: Sampling | tuple[float, ...] = Sampling(-4.0, 4.0, 801)
    temperatures: tuple[float, ...] = (0.05, 0.1)
    rtol: float = 0.002
    on_miss: str = "error"

    @property
    def mu_values(self) -> np.ndarray:
        return sampled(self.mu, "quadrupolar_current.mu")


@dataclass(frozen=True)
class NDDSettings:
    """Δn(ω) and ⟨G⟩(ω) of Eqs. 4, 11–13 (``ndd``): photon energies ``omega`` (Δ), broadening
    ``eta`` (Δ), chemical potential and temperature (Δ), ``transition_cutoff`` (``"auto"``: every
    transition, Eq. 14's highest in closed form; or a number, a hard UV cut-off in Δ), and the
    Kubo cross-check (Eq. 11) with its finite-difference step ``kubo_dq`` (Δ/(ħv)); the light
    geometry ``q_direction``, ``polarization``; ``tensor``: whether the pipeline also makes the
    NDD tensor T_abc (:func:`qmdipole.api.ndd_tensor`); the tolerances of the curves' estimated errors
    relative to their peaks, ``rtol_delta_n`` (Re/Im Δn) and ``rtol_avg_qmd`` (⟨G⟩), and
    ``on_miss`` for a valley that misses them (``accuracy:`` keys of the config)."""

    omega: Sampling | tuple[float, ...] = Sampling(0.2, 8.0, 781)
    eta: float = 0.02
    mu: float = 0.0
    temperature: float = 0.0
    transition_cutoff: str | float = "auto"
    kubo: bool = True
    kubo_dq: float = 1e-4
    q_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    polarization: tuple[float, float, float] = (1.0, 0.0, 0.0)
    tensor: bool = False
    rtol_delta_n: float = 0.01
    rtol_avg_qmd: float = 0.01
    on_miss: str = "error"

    @property
    def omega_values(self) -> np.ndarray:
        return sampled(self.omega, "ndd.omega")


@dataclass(frozen=True)
class BandSettings:
    """Fig. 2 (``band_structure``): ``n`` points of the cut k_z ∈ [−kz_max, kz_max] at k_x = k_y = 0."""

    kz_max: float = 3.0
    n: int = 601

    @property
    def kz(self) -> np.ndarray:
        return np.linspace(-self.kz_max, self.kz_max, int(self.n))


@dataclass(frozen=True)
class FieldSettings:
    """Fig. 3 (``qmd_field``): ∫dk_x v_i g_xx of ``band`` of valley ``valley`` (1-based) on an
    ``n`` × ``n`` (k_y, k_z) grid over [−k_max, k_max]², k_x over [−kx_max, kx_max] with ``n_kx``
    mapped Gauss–Legendre nodes (``kx_max = inf``: the whole line)."""

    valley: int = 1
    band: str | int = "valence"
    k_max: float = 2.5
    n: int = 161
    kx_max: float = math.inf
    n_kx: int = 128


# Which settings objects each key of the ``accuracy:`` section belongs to.
ACCURACY_KEYS = {"rtol": ("gamma",), "on_miss": ("gamma", "ndd"), "rtol_delta_n": ("ndd",),
                 "rtol_avg_qmd": ("ndd",)}


@dataclass(frozen=True)
class Settings:
    """Every setting of the reductions, one object per configuration section (``gamma`` holds
    ``quadrupolar_current`` and ``accuracy``)."""

    kgrid: GridSettings = GridSettings()
    gamma: GammaSettings = GammaSettings()
    ndd: NDDSettings = NDDSettings()
    band_structure: BandSettings = BandSettings()
    qmd_field: FieldSettings = FieldSettings()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """The settings of a pipeline configuration (as ``config/config.yaml``; keys left out keep
        their defaults, sections this class does not hold are ignored). An unknown key of a
        section read here raises :class:`SettingsError` naming it."""
        accuracy = dict(config.get("accuracy", {}))
        unknown = sorted(set(accuracy) - set(ACCURACY_KEYS))
        if unknown:
            raise SettingsError(f"accuracy: unknown key(s) {unknown} (known: {sorted(ACCURACY_KEYS)})")
        routed = {name: {k: v for k, v in accuracy.items() if name in ACCURACY_KEYS[k]}
                  for name in ("gamma", "ndd")}
        sections = {"kgrid": config.get("kgrid", {}),
                    "ndd": {**config.get("ndd", {}), **routed["ndd"]},
                    "gamma": {**config.get("quadrupolar_current", {}), **routed["gamma"]},
                    "band_structure": config.get("band_structure", {}),
                    "qmd_field": config.get("qmd_field", {})}
        return cls(**{f.name: section_settings(type(f.default), sections[f.name], f.name)
                       for f in fields(cls)})


def section_settings(kind: type, section: Mapping[str, Any], name: str):
    """The settings object ``kind`` of one configuration section (keys left out keep their
    defaults; an unknown key raises :class:`SettingsError` naming the section ``name``)."""
    values = dict(section)
    if "kubo_check" in values:  # the config's name of NDDSettings.kubo
        values["kubo"] = values.pop("kubo_check")
    known = {g.name for g in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"{name}: unknown key(s) {unknown} (known: {sorted(known)})")
    for key in ("mu", "omega"):
        if isinstance(values.get(key), Mapping):
            values[key] = Sampling(**values[key])
    for key in ("n", "temperatures", "q_direction", "polarization"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return kind(**values)
