"""Units of every output: one vocabulary, udunits-parseable, in model or physical units.

The computation never depends on units: with ħ = 1 a model gives its energies in some unit E₀
and its momenta in 1/L₀, and every result follows in E₀ and L₀. ``units:`` of the config only
*declares* E₀ and L₀:

- ``model`` (the default of the built-in models): E₀ = Δ (valley 1's half gap), L₀ = ħv/Δ. A
  quantity then has ``units = "1"`` (udunits' dimensionless unit: its value is a ratio) and the
  attribute ``units_label`` names the unit it is a ratio to, e.g. ``"Delta"`` or
  ``"Delta/(hbar v)"``.
- physical (``eV`` or ``meV``; ``angstrom`` or ``nm``; the default of ``kind: wannier90``, whose
  ``seedname_hr.dat`` is in eV and Å): ``units`` is the udunits string, e.g. ``"eV"``,
  ``"angstrom-1"``, ``"eV angstrom3"``.

Modules label their variables in model units (:meth:`Quantity.attrs`); :func:`apply` relabels a
Dataset for the run's :class:`UnitSystem` and adds the physical-unit companions. Two responses
are unit-free and never change: γ in e²/(16π²ħ) (Eq. 10: ∫d³k/(8π³) G f′ is a pure number when
G = v g is in E₀L₀³) and Δn in α (Δn = i c μ₀ σ_xxz with c μ₀ e²/ħ = 4πα). Their companions:

- ``{γ}_si``: γ in siemens, γ_SI = γ · e²/(16π²ħ) (J_x = γ_xxz ∂_z E_x: A m⁻² per V m⁻²).
- ``delta_alpha``: the absorption difference Δα = α₊ − α₋ of the two counter-propagating waves,
  in cm⁻¹, when E₀ is physical. A wave E ∝ exp(iωn z/c − iωt) loses intensity as
  exp(−2ω Im n z/c), so α = 2ω Im n/c and, with Δn = n_z − n_−z (Eq. 4),
  Δα = 2ω Im Δn/c = 2 α_fs (ħω/ħc) (Im Δn/α_fs), ħω in E₀.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import errors

MODEL = "model"
ENERGY_UNITS = {"eV": 1.0, "meV": 1e-3}  # electron volts per unit
LENGTH_UNITS = ("angstrom", "nm")
WANNIER90 = {"energy": "eV", "length": "angstrom"}  # the units of seedname_hr.dat and its cell


def gamma_unit_siemens() -> float:
    """e²/(16π²ħ), the unit of γ (Fig. 4b), in siemens."""
    import scipy.constants as sc  # here, not at import: it adds ~0.2 s to every job's start-up

    return sc.e**2 / (16 * np.pi**2 * sc.hbar)


class UnitsError(ValueError):
    """A ``units:`` setting that does not fit the model."""


@dataclass(frozen=True)
class UnitSystem:
    """Energy unit E₀ and length unit L₀ of a model (ħ = 1): both ``model``, or both physical."""

    energy: str = MODEL
    length: str = MODEL

    def __post_init__(self):
        if (self.energy == MODEL) != (self.length == MODEL):
            raise UnitsError(f"units.energy = {self.energy} and units.length = {self.length}: "
                             "give both in model units or both physical (e.g. eV and angstrom)")
        if self.energy not in (MODEL, *ENERGY_UNITS):
            raise UnitsError(f"units.energy must be one of {MODEL}, {', '.join(ENERGY_UNITS)}; "
                             f"got {self.energy!r}")
        if self.length not in (MODEL, *LENGTH_UNITS):
            raise UnitsError(f"units.length must be one of {MODEL}, {', '.join(LENGTH_UNITS)}; "
                             f"got {self.length!r}")

    @property
    def physical(self) -> bool:
        return self.energy != MODEL

    def describe(self) -> str:
        """The global attribute ``units_system``: what the file's units mean."""
        if not self.physical:
            return ("model units (hbar = 1): energies in Delta (valley 1's half gap), lengths in "
                    "hbar v/Delta; a variable with units '1' and a units_label holds the quantity "
                    "divided by that unit")
        return (f"hbar = 1: energies in {self.energy}, lengths in {self.length}, momenta in "
                f"{self.length}-1, band velocities d eps/dk (hbar v) in {self.energy} {self.length}")


def system(config: dict | None) -> UnitSystem:
    """The :class:`UnitSystem` of a run's ``config`` (its ``units`` and ``model.kind``).

    ``auto`` (the default) is model units for the built-in and Python models, eV and Å for
    ``kind: wannier90``, whose hopping file is in those units (any other choice is refused).
    """
    config = config or {}
    section = dict(config.get("units") or {})
    kind = (config.get("model") or {}).get("kind", "valley")
    natural = WANNIER90 if kind == "wannier90" else {"energy": MODEL, "length": MODEL}
    chosen = {key: section.get(key, "auto") for key in ("energy", "length")}
    resolved = {key: natural[key] if value == "auto" else value for key, value in chosen.items()}
    if kind == "wannier90" and resolved != WANNIER90:
        raise UnitsError(f"units = {chosen}: a kind: wannier90 model is in eV and angstrom "
                         "(Wannier90's seedname_hr.dat); leave units at auto or give those")
    return UnitSystem(**resolved)


def resolved(config: dict | None) -> dict:
    """The ``units:`` section of ``config`` with ``auto`` resolved (see :func:`system`)."""
    units = system(config)
    return {"energy": units.energy, "length": units.length}


@dataclass(frozen=True)
class Quantity:
    """A kind of quantity: E₀^energy L₀^length, or a fixed unit-free ``label`` (α, e²/(16π²ħ))."""

    energy: int
    length: int
    label: str  # its unit in model units (units_label)

    def units(self, units: UnitSystem = UnitSystem()) -> str:
        """The udunits string of this quantity in ``units``."""
        if not (units.physical and (self.energy or self.length)):
            return "1"
        parts = [f"{name}{'' if power == 1 else power}"
                 for name, power in ((units.energy, self.energy), (units.length, self.length))
                 if power]
        return " ".join(parts)

    def attrs(self, units: UnitSystem = UnitSystem()) -> dict:
        """The ``units`` (and ``units_label`` where it is a ratio) attributes in ``units``."""
        unit = self.units(units)
        return {"units": unit, "units_label": self.label} if unit == "1" else {"units": unit}


# The vocabulary (ħ = 1: a momentum is 1/L₀, a band velocity ∂ε/∂k is E₀L₀).
ENERGY = Quantity(1, 0, "Delta")  # ε, μ, ω, η, k_B T
MOMENTUM = Quantity(0, -1, "Delta/(hbar v)")  # k
VELOCITY = Quantity(1, 1, "hbar v")  # ∂ε/∂k
AREA = Quantity(0, 2, "(hbar v/Delta)^2")  # quantum metric, Berry curvature
K_VOLUME = Quantity(0, -3, "(Delta/(hbar v))^3")  # d³k
QMD_FIELD = Quantity(1, 2, "Delta (hbar v/Delta)^2")  # ∫dk_x v g (Fig. 3)
ENERGY_SQUARED = Quantity(2, 0, "Delta^2")  # ⟨G⟩ (Eq. 13): G d³k ω² δ(ω − λ)
ALPHA = Quantity(0, 0, "alpha")  # Δn/α
GAMMA = Quantity(0, 0, "e^2/(16 pi^2 hbar)")  # γ (Fig. 4b)
VOCABULARY = {q.label: q for q in (ENERGY, MOMENTUM, VELOCITY, AREA, K_VOLUME, QMD_FIELD,
                                   ENERGY_SQUARED, ALPHA, GAMMA)}
#: units of a dimensionless number (an index, a count, a ratio)
NUMBER = {"units": "1"}
ANGLE = {"units": "rad"}
WAVENUMBER_UNITS = "cm-1"
SIEMENS = "S"


def relabel(ds: xr.Dataset, units: UnitSystem) -> xr.Dataset:
    """``ds`` with every variable labelled in model units (``units_label`` of the vocabulary)
    relabelled in ``units``; a variable already in physical units is left as it is."""
    ds = ds.copy()
    for name, var in {**ds.data_vars, **ds.coords}.items():
        quantity = VOCABULARY.get(var.attrs.get("units_label"))
        if quantity is not None and var.attrs.get("units") == "1":
            attrs = {k: v for k, v in var.attrs.items() if k != "units_label"}
            ds.variables[name].attrs = {**attrs, **quantity.attrs(units)}
    return ds


def delta_alpha_per_energy(energy: str) -> float:
    """Δα in cm⁻¹ per (ħω in ``energy``) × (Im Δn/α): 2 α_fs E/(ħc), see the module docstring."""
    import scipy.constants as sc

    joules = ENERGY_UNITS[energy] * sc.electron_volt
    return 2 * sc.fine_structure * joules / (sc.hbar * sc.c) / 100.0


_SUFFIXES = ("", "_error", "_valley", "_error_valley")


def _derive(ds: xr.Dataset, stem: str, new: str, scale, units: str, long_name: str) -> None:
    """Add ``new{suffix}`` = ``scale`` × ``stem{suffix}`` for the curve ``stem`` and its error and
    per-valley variables, in ``units``; an error's max_relative_to_peak (and _valley_peaks) is taken anew."""
    for suffix in _SUFFIXES:
        if stem + suffix not in ds:
            continue
        source = ds[stem + suffix]
        value = (scale * source).transpose(*source.dims)
        attrs = {k: v for k, v in source.attrs.items() if k != "units_label"}
        is_error = "_error" in suffix
        curve = ds.get(new + suffix.replace("_error", ""))
        if "max_relative_to_peak" in attrs and curve is not None:
            attrs["max_relative_to_peak"] = errors.relative_to_peak(value, curve)
        name = ("estimated absolute error of " if is_error else "") + long_name
        value.attrs = {**attrs, "units": units,
                       "long_name": name + (", per valley" if "_valley" in suffix else "")}
        ds[new + suffix] = value
    if new + "_error" in ds and new + "_valley" in ds:
        ds[new + "_error"].attrs["max_relative_to_valley_peaks"] = errors.relative_to_parts(
            ds[new + "_error"], ds[new + "_valley"])


def companions(ds: xr.Dataset, units: UnitSystem) -> xr.Dataset:
    """``ds`` with γ also in siemens (``{name}_si`` for every curve in e²/(16π²ħ)) and, when
    energies are physical, Δα (``delta_alpha``) from ``im_delta_n`` and ``omega``; each with its
    ``_error`` and per-valley variables. Recomputed if present: it may be applied again."""
    ds = ds.copy()
    stems = [name for name, var in ds.data_vars.items()
             if var.attrs.get("units_label") == GAMMA.label
             and not name.endswith(("_error", "_valley"))]
    for stem in stems:
        _derive(ds, stem, f"{stem}_si", gamma_unit_siemens(), SIEMENS,
                f"{ds[stem].attrs['long_name']}, in siemens")
    if units.physical and "im_delta_n" in ds and "omega" in ds.coords:
        _derive(ds, "im_delta_n", "delta_alpha",
                delta_alpha_per_energy(units.energy) * np.abs(ds["omega"]), WAVENUMBER_UNITS,
                "absorption difference Delta alpha = alpha(q) - alpha(-q) = 2 omega Im Delta n / c")
    return ds


def apply(ds: xr.Dataset, units: UnitSystem) -> xr.Dataset:
    """``ds`` relabelled in ``units``, with its physical-unit companions and ``units_system``."""
    out = companions(relabel(ds, units), units)
    out.attrs["units_system"] = units.describe()
    return out
