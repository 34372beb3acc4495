"""Checks of a whole configuration that a JSON schema cannot express.

The pipeline validates its config against ``workflow/schemas/config.schema.yaml`` (types, ranges,
unknown keys) and then against :func:`problems`, before any job runs (``snakemake -n`` included):
every finite-valued key holds a finite number, a k-window has the axes its grid needs and no
negative radius, and sampling counts stay within ``limits``. Each problem names its key.
"""

from __future__ import annotations

import math

from . import units
from .accuracy import gamma_needs
from .kgrid import GridNeeds, default_kind, grid_needs
from .models import build_model
from .ndd import POLARIZATION, Q_DIRECTION, SpectrumError, light_geometry
from .quadrupolar import level_spacing
from .settings import Settings

# Keys where an infinite value has a meaning (qmd_field.kx_max = .inf: the whole k_x line).
INFINITE_ALLOWED = frozenset({"qmd_field.kx_max"})
# The 1-D samplings whose point counts are bounded by limits.max_samples.
SAMPLINGS = ("quadrupolar_current.mu.num", "ndd.omega.num", "band_structure.n", "qmd_field.n",
             "qmd_field.n_kx")


def _walk(value, key=""):
    """(key, value) of every leaf, keys as dotted paths with [i] for list entries."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{key}[{i}]")
    else:
        yield key, value


def _get(config, dotted):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def non_finite(config) -> list[str]:
    """Keys holding NaN, or ±infinity where no meaning is given to it."""
    found = []
    for key, value in _walk(config):
        if isinstance(value, float) and not math.isfinite(value):
            if math.isnan(value) or key not in INFINITE_ALLOWED:
                found.append(f"{key} must be a finite number, got {value!r}")
    return found


def window_problems(config) -> list[str]:
    """An explicit ``kgrid.window`` must give every open axis of its grid, ρ ≥ 0 on a cylinder."""
    window = config["kgrid"].get("window", "auto")
    if window == "auto":
        return []
    kind = default_kind(config["model"].get("kind", "valley"), config["kgrid"].get("kind", "auto"))
    needed = {"cylindrical": ("k1", "k3"), "cartesian": ("k1", "k2", "k3"),
              "brillouin_zone": ()}[kind]
    found = [f"kgrid.window.{axis} is missing: a {kind} grid needs {', '.join(needed)}"
             for axis in needed if axis not in window]
    for axis, interval in window.items():
        lo, hi = interval
        if not hi > lo:
            found.append(f"kgrid.window.{axis} must have max > min, got {interval}")
    if kind == "cylindrical" and "k1" in window and window["k1"][0] < 0:
        found.append(f"kgrid.window.k1 is the radius rho of a cylindrical grid and must start at "
                     f">= 0, got {window['k1']} (a negative rho counts every point twice)")
    return found


def thermal_levels(config) -> int:
    """Levels of the T = 0 γ curve that the finite-T curves are averaged from, at least (the
    reduction may space them closer still for its error estimate): see
    :func:`qmdipole.quadrupolar.energy_levels`."""
    mu = config["quadrupolar_current"]["mu"]
    temperatures = config["quadrupolar_current"].get("temperatures", [])
    span = mu["stop"] - mu["start"]
    spacing = level_spacing(span / max(mu["num"] - 1, 1), temperatures)
    return int((span + 40 * max(temperatures, default=0.0)) / spacing) + 1


def limit_problems(config) -> list[str]:
    """Sampling counts above ``limits.max_samples``: a guard against runaway memory and time."""
    limit = config["limits"]["max_samples"]
    found = [f"{key} = {_get(config, key)} is above limits.max_samples = {limit}: lower it, or "
             "raise limits.max_samples" for key in SAMPLINGS if _get(config, key) > limit]
    levels = thermal_levels(config)
    if levels > limit:
        found.append(
            f"quadrupolar_current needs {levels} energy levels (its mu range widened by 20 k_B T, "
            f"spaced by min(mu spacing, min(temperatures)/4)), above limits.max_samples = {limit}: "
            "raise the lowest of quadrupolar_current.temperatures, narrow the mu range, or raise "
            "limits.max_samples")
    return found


def light_problems(config) -> list[str]:
    """``ndd.q_direction`` and ``ndd.polarization``: nonzero, transverse; the closed-form tail of
    ``transition_cutoff: auto`` (the continuum kind) holds for the paper's geometry only."""
    ndd = config["ndd"]
    q, e = ndd.get("q_direction", Q_DIRECTION), ndd.get("polarization", POLARIZATION)
    try:
        q_hat, e_hat = light_geometry(q, e)
    except SpectrumError as err:
        return [str(err)]
    paper = tuple(q_hat) == Q_DIRECTION and tuple(e_hat) == POLARIZATION
    if not paper and config["model"].get("kind", "valley") == "valley" \
            and ndd.get("transition_cutoff", "auto") == "auto":
        return [f"ndd.transition_cutoff: auto adds the valley model's closed-form high-energy tail, "
                f"which holds for light along z polarised along x only, not ndd.q_direction {q}, "
                f"ndd.polarization {e}: set ndd.transition_cutoff to a number"]
    return []


def units_problems(config) -> list[str]:
    """A ``units:`` section that does not fit the model (:func:`qmdipole.units.system`)."""
    try:
        units.system(config)
    except units.UnitsError as err:
        return [str(err)]
    return []


def problems(config) -> list[str]:
    """Everything wrong with a schema-valid ``config``, each naming its key; [] if nothing."""
    found = non_finite(config)
    if found:  # the other checks compare numbers
        return found
    for section, key in (("quadrupolar_current", "mu"), ("ndd", "omega")):
        if not config[section][key]["stop"] > config[section][key]["start"]:
            found.append(f"{section}.{key}.stop must be > {section}.{key}.start")
    n_valleys = len(config["model"]["valleys"])
    if config["qmd_field"]["valley"] > n_valleys:
        found.append(f"qmd_field.valley is {config['qmd_field']['valley']} but model.valleys has "
                     f"{n_valleys} entries")
    return (found + window_problems(config) + limit_problems(config) + light_problems(config)
            + units_problems(config))


def grid_needs_of(config) -> tuple[GridNeeds, GridNeeds]:
    """What the k-grids of a (validated) configuration need: the grid the reductions share, and
    γ's own grid (:func:`qmdipole.accuracy.gamma_needs`). Eq. 14's closed-form tails
    (kind: valley) set the transitions the shared grid holds; models of other kinds are not
    built here (their files or code may not be there yet)."""
    settings = Settings.from_config(config)
    model = config["model"]
    tails = ([build_model(model, i) for i in range(len(model["valleys"]))]
             if model.get("kind", "valley") == "valley" else [])
    return grid_needs(settings.gamma, settings.ndd, tails), gamma_needs(settings.gamma)
