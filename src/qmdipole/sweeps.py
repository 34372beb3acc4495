r"""Parameter sweeps: named sets of points, each point a run of the reductions with some config
keys set, and their aggregation into one dataset of curves and derived features.

A sweep (``sweeps.NAME`` of the config) maps config key paths to values::

    sweeps:
      edge_vs_eta:
        parameters:
          ndd.eta: {start: 0.05, stop: 0.4, num: 4, spacing: log}   # or a list: [0.05, 0.1]
          model.valleys.0.vprime: [0.5, 1.0]                         # list entries by index
        combine: product                                             # or zip

A key path is dotted, list entries by their index (``model.valleys.0.vprime``). ``lin`` values
are ``numpy.linspace(start, stop, num)``, ``log`` ones ``numpy.geomspace``; every value is
rounded to 12 significant digits, so that it and its point id agree exactly. ``product`` makes
every combination of the keys' values, ``zip`` their i-th values together (equal lengths).

A point's id is made of its values, not its position (``ndd.eta=0.1_model.valleys.0.vprime=1``),
so that a sweep extended by a value leaves its other points, and their cached results, as they
were. A point runs as the named run ``{run.name/}sweeps/NAME/points/ID`` of the point's config.

Derived features (per point; ``valley`` is the model's component, i its number)
----------------------------------------------------------------------------
- ``im_delta_n_peak`` (α), ``im_delta_n_peak_omega`` (Δ): the edge peak of valley i's
  Im Δn_i(ω): among the samples with ω_i − η ≤ ω ≤ ω_i + 5η (ω_i the valley's optical gap,
  ``optical_gap``; the edge term peaks at ω_i + η/√3), the one of largest |Im Δn_i|, refined to
  the vertex of the parabola through it and its two neighbours (the sample itself at an end of
  the ω grid); NaN without a sample there.
- ``avg_qmd_edge_slope`` (Δ²): A_i of ⟨G⟩_i(ω) ≈ A_i u + B_i u³, u = √(ω/ω_i − 1), ω_i the
  valley's optical gap: the least-squares fit over the samples with 0 < u ≤ 1/2 (NaN with fewer
  than two). The paper's near-edge law is ⟨G⟩ = Δ² S √(m v′²/2Δ) √(ω/2Δ − 1).
- ``gamma_extremum`` (e²/16π²ħ), ``gamma_extremum_mu`` (Δ): the T = 0 valley sum γ_xxz(μ) at
  its largest |γ_xxz|, refined by the parabola as for the peak.
- ``gamma_zero_crossings`` (Δ): the μ where γ_xxz(μ) changes sign between two consecutive
  samples whose |γ_xxz| exceeds the estimate ``gamma_xxz_error`` (samples within their error
  carry no sign), by linear interpolation between them; ``gamma_zero_crossing_count`` of them,
  NaN-padded along ``crossing``.

Closed forms of Eq. 14 (``kind: valley``, one valley, η → 0; see :mod:`qmdipole.analytic`):
``im_delta_n_peak_law`` = −(sgn v′/4) √(3√3/8) √(m v′²/η) = −0.2015 sgn(v′) √(m v′²/η) at
``im_delta_n_peak_omega_law`` = 2Δ + η/√3, and ``avg_qmd_edge_slope_law`` =
sgn(v′) (Δ²/π²) √(m v′²/2Δ); NaN for other model kinds.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import provenance

# Keys a sweep may not set: the sweeps themselves, where the points go, and the samplings that
# every point's curves share (they are stacked on one omega, mu and temperature axis).
FIXED = ("sweeps", "run", "ndd.omega", "quadrupolar_current.mu",
         "quadrupolar_current.temperatures")
# Units of swept keys, by their last component (others: the unit of that config key).
UNITS = {"delta": "Delta", "eta": "Delta", "mu": "Delta", "temperature": "Delta",
         "transition_cutoff": "Delta", "vprime": "model velocity unit",
         "v": "model velocity unit", "mass": "model mass unit"}
EDGE_WINDOW = 0.5  # u = sqrt(omega/omega_i - 1) <= EDGE_WINDOW: the <G> edge fit's samples


@functools.cache
def code_digest(*modules: str, data: tuple[str, ...] = ()) -> str:
    """:func:`qmdipole.provenance.code_digest`, computed once per process: the points of the
    sweeps are instances of the workflow in one Snakemake process, each asking for the same
    digests (the code does not change while Snakemake builds its job graph)."""
    return provenance.code_digest(*modules, data=data)


class SweepError(ValueError):
    """A sweep that cannot run: the message names the sweep, and the key or value at fault."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its id and its values, key path -> value."""

    id: str
    values: dict


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def key_values(name: str, key: str, spec) -> list:
    """The values of ``key`` in sweep ``name``: a list as given, or ``{start, stop, num,
    spacing}`` as ``numpy.linspace`` (lin, the default) or ``numpy.geomspace`` (log)."""
    if isinstance(spec, dict):
        start, stop, num = spec["start"], spec["stop"], int(spec["num"])
        if spec.get("spacing", "lin") == "log":
            if not (start > 0 and stop > 0):
                raise SweepError(f"sweep {name}: {key}: log spacing needs start and stop > 0, "
                                 f"got {start} and {stop}")
            found = np.geomspace(start, stop, num)
        else:
            found = np.linspace(start, stop, num)
        found = [float(v) for v in found]
    else:
        found = list(spec)
    if not found:
        raise SweepError(f"sweep {name}: {key} has no values")
    return [_rounded(v) for v in found]


def point_id(values: dict) -> str:
    """The point's id, ``key=value`` joined by ``_`` in the sweep's key order."""
    return "_".join(f"{key}={_text(value)}" for key, value in values.items())


def points(name: str, sweep: dict, limit: int) -> list[Point]:
    """The points of sweep ``name`` (its config entry ``sweep``), at most ``limit`` of them."""
    keys = list(sweep["parameters"])
    for key in keys:
        fixed = [f for f in FIXED if key == f or key.startswith(f + ".")]
        if fixed:
            raise SweepError(f"sweep {name}: {key} cannot be swept ({fixed[0]} is shared by "
                             "every point of a sweep)")
    values = [key_values(name, key, sweep["parameters"][key]) for key in keys]
    for key, found in zip(keys, values):
        bad = [v for v in found if not all(c.isalnum() or c in "_.+-" for c in _text(v))]
        if bad:
            raise SweepError(f"sweep {name}: {key} value {bad[0]!r} has characters other than "
                             "letters, digits and _.+- (it names the point's folder)")
    combine = sweep.get("combine", "product")
    if combine == "zip":
        lengths = {key: len(found) for key, found in zip(keys, values)}
        if len(set(lengths.values())) > 1:
            raise SweepError(f"sweep {name}: combine: zip needs as many values for every key, "
                             f"got {lengths}")
        count, rows = len(values[0]), zip(*values)
    else:
        count, rows = math.prod(map(len, values)), itertools.product(*values)
    if count > limit:
        raise SweepError(f"sweep {name} has {count} points, above limits.max_sweep_points = "
                         f"{limit}: use fewer values, or raise limits.max_sweep_points")
    found = [Point(point_id(dict(zip(keys, row))), dict(zip(keys, row))) for row in rows]
    repeated = sorted({p.id for p in found if sum(q.id == p.id for q in found) > 1})
    if repeated:
        raise SweepError(f"sweep {name}: the point {repeated[0]} appears more than once")
    return found


def set_key(config: dict, key: str, value) -> None:
    """Set ``config``'s entry at dotted path ``key`` (list entries by index) to ``value``.

    Every section on the way must exist (the last part may be a new key of a dict: the schema
    decides whether it is allowed); an error names the key and where it goes wrong.
    """
    parts = key.split(".")
    node = config
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth]) or "the config"
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SweepError(f"{key}: {here} is a list of {len(node)} entries, "
                                 f"{part!r} is not the index of one")
            part = int(part)
        elif isinstance(node, dict):
            if part not in node and not last:
                raise SweepError(f"{key}: {here} has no key {part!r}")
        else:
            raise SweepError(f"{key}: {here} is a value ({node!r}), not a section")
        if last:
            node[part] = value
        else:
            node = node[part]


def point_config(config: dict, name: str, point: Point) -> dict:
    """The config of ``point`` of sweep ``name``: ``config`` with the point's values set, no
    sweeps (a point never sweeps again), and the run name ``{run.name/}sweeps/NAME/points/ID``."""
    found = copy.deepcopy(config)
    for key, value in point.values.items():
        set_key(found, key, value)
    found["sweeps"] = {}
    found["run"] = {**found.get("run", {}), "name": point_run_name(config, name, point)}
    return found


def point_run_name(config: dict, name: str, point: Point) -> str:
    """The run name of ``point`` of sweep ``name``: ``sweeps/NAME/points/ID`` under the run
    name of ``config``, if it has one."""
    parent = (config.get("run") or {}).get("name")
    return f"{parent + '/' if parent else ''}sweeps/{name}/points/{point.id}"


def plan(config: dict) -> dict[str, list[Point]]:
    """Every sweep of ``config`` (its name -> its points), checked against the limit."""
    limit = config["limits"]["max_sweep_points"]
    return {name: points(name, sweep, limit) for name, sweep in config["sweeps"].items()}


# ------------------------------------------------------------------------------------------
# features of one point
# ------------------------------------------------------------------------------------------

def _vertex(x: np.ndarray, y: np.ndarray, i: int) -> tuple[float, float]:
    """(x, y) of the vertex of the parabola through samples i − 1, i, i + 1 (sample i at an end)."""
    if i == 0 or i == len(x) - 1:
        return float(x[i]), float(y[i])
    coeffs = np.polyfit(x[i - 1:i + 2] - x[i], y[i - 1:i + 2], 2)
    if coeffs[0] == 0:
        return float(x[i]), float(y[i])
    shift = -coeffs[1] / (2 * coeffs[0])
    return float(x[i] + shift), float(np.polyval(coeffs, shift))


def extremum(x, y) -> tuple[float, float]:
    """(position, signed value) of the largest |y| of samples ``y(x)``, parabola-refined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return _vertex(x, y, int(np.argmax(np.abs(y))))


def edge_peak(omega, im_delta_n, gap: float, eta: float) -> tuple[float, float]:
    """(position, signed value) of the edge peak of ``im_delta_n(omega)`` at the optical gap
    ``gap`` (module docstring); NaNs without a sample in [gap − η, gap + 5η]."""
    omega, y = np.asarray(omega, float), np.asarray(im_delta_n, float)
    window = np.nonzero((omega >= gap - eta) & (omega <= gap + 5 * eta))[0]
    if not window.size:
        return math.nan, math.nan
    return _vertex(omega, y, int(window[np.argmax(np.abs(y[window]))]))


def edge_slope(omega, avg_qmd, gap: float) -> float:
    """A of ⟨G⟩(ω) ≈ A u + B u³, u = √(ω/gap − 1), fitted over 0 < u ≤ EDGE_WINDOW (NaN with
    fewer than two samples there)."""
    omega, avg_qmd = np.asarray(omega, float), np.asarray(avg_qmd, float)
    u = np.sqrt(np.clip(omega / gap - 1, 0, None))
    keep = (omega > gap) & (u <= EDGE_WINDOW)
    if keep.sum() < 2:
        return math.nan
    basis = np.stack([u[keep], u[keep] ** 3], axis=1)
    return float(np.linalg.lstsq(basis, avg_qmd[keep], rcond=None)[0][0])


def zero_crossings(mu, gamma, error) -> np.ndarray:
    """μ of the sign changes of ``gamma`` between consecutive samples with |γ| > ``error``,
    linearly interpolated between those two samples."""
    mu, gamma, error = (np.asarray(a, float) for a in (mu, gamma, error))
    keep = np.abs(gamma) > error
    m, g = mu[keep], gamma[keep]
    change = np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]
    return m[change] - g[change] * (m[change + 1] - m[change]) / (g[change + 1] - g[change])


def edge_laws(model: dict, eta: float) -> dict[str, np.ndarray]:
    """The closed forms of Eq. 14 per valley (module docstring); NaN unless ``kind: valley``."""
    valleys = model["valleys"]
    nan = np.full(len(valleys), math.nan)
    if model.get("kind", "valley") != "valley":
        return {"im_delta_n_peak_law": nan, "im_delta_n_peak_omega_law": nan,
                "avg_qmd_edge_slope_law": nan}
    delta = np.array([v["delta"] for v in valleys], float)
    vprime = np.array([v["vprime"] for v in valleys], float)
    mass = np.array([v.get("mass", model["mass"]) for v in valleys], float)
    strength = mass * vprime**2
    return {
        "im_delta_n_peak_law": -np.sign(vprime) / 4 * math.sqrt(3 * math.sqrt(3) / 8)
        * np.sqrt(strength / eta),
        "im_delta_n_peak_omega_law": 2 * delta + eta / math.sqrt(3),
        "avg_qmd_edge_slope_law": np.sign(vprime) * delta**2 / math.pi**2
        * np.sqrt(strength / (2 * delta)),
    }


def point_features(gamma: xr.Dataset, ndd: xr.Dataset, model: dict, eta: float) -> xr.Dataset:
    """The derived features (module docstring) of one point from its two reductions."""
    omega, valleys = ndd["omega"].values, ndd["valley"].values
    peaks = [edge_peak(omega, ndd["im_delta_n_valley"].sel(valley=v).values,
                       float(ndd["optical_gap"].sel(valley=v)), eta) for v in valleys]
    slopes = [edge_slope(omega, ndd["avg_qmd_valley"].sel(valley=v).values,
                         float(ndd["optical_gap"].sel(valley=v))) for v in valleys]
    mu = gamma["mu"].values
    where, value = extremum(mu, gamma["gamma_xxz"].values)
    crossings = zero_crossings(mu, gamma["gamma_xxz"].values, gamma["gamma_xxz_error"].values)
    laws = edge_laws(model, eta)
    per_valley = {
        "im_delta_n_peak": [p[1] for p in peaks],
        "im_delta_n_peak_omega": [p[0] for p in peaks],
        "avg_qmd_edge_slope": slopes,
        **laws,
    }
    return xr.Dataset(
        {
            **{name: ("valley", np.asarray(v, float)) for name, v in per_valley.items()},
            "gamma_extremum": ((), value),
            "gamma_extremum_mu": ((), where),
            "gamma_zero_crossings": ("crossing", crossings),
            "gamma_zero_crossing_count": ((), len(crossings)),
        },
        coords={"valley": valleys, "crossing": np.arange(len(crossings))},
    )


FEATURE_ATTRS = {
    "im_delta_n_peak": ("alpha", "edge peak of the valley's Im Delta n (parabola vertex)"),
    "im_delta_n_peak_omega": ("Delta", "photon energy of the edge peak of the valley's Im Delta n"),
    "avg_qmd_edge_slope": ("Delta^2", "A of <G>_i = A u + B u^3, u = sqrt(omega/optical_gap - 1)"),
    "im_delta_n_peak_law": ("alpha", "closed form -0.2015 sgn(v') sqrt(m v'^2/eta) (Eq. 14)"),
    "im_delta_n_peak_omega_law": ("Delta", "closed form 2 Delta + eta/sqrt(3) (Eq. 14)"),
    "avg_qmd_edge_slope_law": ("Delta^2",
                               "closed form sgn(v') Delta^2/pi^2 sqrt(m v'^2/(2 Delta)) (Eq. 14)"),
    "gamma_extremum": ("e^2/(16 pi^2 hbar)", "gamma_xxz (T = 0) at its largest |gamma_xxz|"),
    "gamma_extremum_mu": ("Delta", "chemical potential of the gamma_xxz extremum"),
    "gamma_zero_crossings": ("Delta", "chemical potentials where gamma_xxz (T = 0) changes sign"),
    "gamma_zero_crossing_count": ("1", "number of sign changes of gamma_xxz (T = 0)"),
}
# Features that are NaN where undefined (too few edge samples, no closed form, no crossing).
ALLOW_NAN = ("im_delta_n_peak", "im_delta_n_peak_omega", "avg_qmd_edge_slope", "im_delta_n_peak_law", "im_delta_n_peak_omega_law",
             "avg_qmd_edge_slope_law", "gamma_zero_crossings")
# The reductions' curves kept in the sweep's dataset (with their error estimates).
CURVES = {"quadrupolar_current": ("gamma_xxz", "gamma_xxz_valley", "gamma_xxz_error"),
          "ndd_spectrum": ("re_delta_n", "im_delta_n", "avg_qmd", "im_delta_n_valley",
                           "avg_qmd_valley", "re_delta_n_error", "im_delta_n_error",
                           "avg_qmd_error", "optical_gap")}


def aggregate(name: str, sweep: dict, plan_points: list[Point], gammas, ndds,
              settings: list[dict]) -> xr.Dataset:
    """The dataset of sweep ``name``: its reductions' curves and the derived features of every
    point (``gammas``, ``ndds``: their quadrupolar_current and ndd_spectrum datasets;
    ``settings``: their ``model`` section and ``eta``), on one dimension per key (``product``)
    or one ``point`` dimension (``zip``), the swept values as coordinates named by their key
    path with ``_`` for ``.``."""
    rows = []
    for point, gamma, ndd, setting in zip(plan_points, gammas, ndds, settings):
        row = point_features(gamma, ndd, setting["model"], setting["eta"])
        for section, names in CURVES.items():
            source = gamma if section == "quadrupolar_current" else ndd
            row = row.assign({n: source[n] for n in names})
        rows.append(row)
    for first, row in enumerate(rows):
        for axis in ("omega", "mu", "valley"):
            if not np.array_equal(row[axis].values, rows[0][axis].values):
                raise SweepError(f"sweep {name}: the point {plan_points[first].id} has another "
                                 f"{axis} axis than {plan_points[0].id}")
    ds = xr.concat(rows, dim="point", join="outer", fill_value={"gamma_zero_crossings": np.nan})
    keys = list(sweep["parameters"])
    dims = [key.replace(".", "_") for key in keys]
    ds = ds.assign_coords(
        {dim: ("point", [p.values[key] for p in plan_points]) for dim, key in zip(dims, keys)})
    ds = ds.assign_coords(point_id=("point", [p.id for p in plan_points]))
    if sweep.get("combine", "product") == "product":
        if len(dims) == 1:
            ds = ds.swap_dims(point=dims[0])
        else:
            ds = ds.set_index(point=dims).unstack("point").transpose(*dims, ...)
    for dim, key in zip(dims, keys):
        ds[dim].attrs = {"units": UNITS.get(key.split(".")[-1], "as config key " + key),
                         "long_name": f"swept config key {key}"}
    ds["point_id"].attrs = {"units": "1", "long_name": "point id (results/.../points/{id}/)"}
    for var, (units, long_name) in FEATURE_ATTRS.items():
        ds[var].attrs = {"units": units, "long_name": long_name}
    ds["crossing"].attrs = {"units": "1", "long_name": "index of a zero crossing"}
    ds.attrs = {"sweep": name, "combine": sweep.get("combine", "product"),
                "swept_keys": ", ".join(keys)}
    return ds
