"""Grids chosen for a stated accuracy: refine until a reduction's own error estimate meets ``rtol``.

Every γ curve carries an estimate of its discretisation error (:mod:`qmdipole.errors`: the grid
against its half-density subgrid, Richardson with the method's order 2). γ's grid is chosen for
γ alone (no η refinement, a window holding only the Fermi surfaces of its μ range):

1. a pilot on the configured node counts ``kgrid.n``: tabulate, reduce, and take the estimate's
   maximum relative to each curve's peak, ε₀ (T = 0 and every finite T);
2. if ε₀ ≤ rtol that grid is the answer; else every refined axis (all but the azimuth of a
   cylindrical grid) gets ``ceil(n · s)`` nodes with s = (ε₀ · margin / rtol)^(1/q), q the order at
   which the estimate falls with the spacing h (measured, :data:`ESTIMATE_ORDER`);
3. a prediction above ``kgrid.max_points`` is refused, naming the estimate reached and the keys.

The reduction then checks its final estimate (:func:`check_tolerance`): the tolerance is a property
of the result, not of the prediction.

The NDD curves (Δn, ⟨G⟩; tolerances ``rtol_delta_n``, ``rtol_avg_qmd``) share the grid the η
refinement shapes, and refine on the result itself (:func:`refined_until_met`): the reduction
runs on that grid; while an estimate ε misses its tolerance, the node counts and
``points_per_eta`` are scaled by s = (max ε/rtol · margin)^(1/q) (q = :data:`NDD_ESTIMATE_ORDER`,
s ≤ :data:`MAX_STEP` per round),
the finer grid tabulated in memory and the reduction run again, at most :data:`MAX_REFINEMENTS`
times and never beyond ``kgrid.max_points``.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import xarray as xr

from .errors import relative_to_parts, relative_to_peak
from .kgrid import GridError, GridNeeds, KGrid, default_kind, grid_for
from .tabulate import in_memory, tabulate

log = logging.getLogger(__name__)

# The estimate falls more slowly than the error (O(h²)): it is spread over a window of one cell's
# energy step, ∝ h. Measured on Eq. 14 (default grids, n from 120 x 4 x 240 to 3x finer): ∝ h^1.45.
ESTIMATE_ORDER = 1.4
MARGIN = 1.3  # aim at rtol / MARGIN
# The NDD estimates fall as h^2 ... h^3.5 (Eq. 14, eta = 0.1, grids 1x to 3x finer; <G>'s the
# least regularly): the lower bound, so that a refinement is rather too fine than too coarse.
NDD_ESTIMATE_ORDER = 2.0
MAX_REFINEMENTS = 3
MAX_STEP = 2.0  # at most this much finer per axis and round: the estimates are extrapolated
GAMMA_CURVES = ("gamma_xxz", "gamma_xxz_temperature")
# the reported NDD curves and the accuracy key holding each one's tolerance
NDD_TOLERANCES = {"re_delta_n": "rtol_delta_n", "im_delta_n": "rtol_delta_n",
                  "avg_qmd": "rtol_avg_qmd"}
NDD_TENSOR_TOLERANCES = {"re_delta_n_tensor": "rtol_delta_n", "im_delta_n_tensor": "rtol_delta_n"}


class AccuracyError(ValueError):
    """A reduction cannot meet the requested tolerance within the limits."""


def gamma_needs(gamma) -> GridNeeds:
    """What γ (:class:`~qmdipole.settings.GammaSettings`) needs from a k-grid: the Fermi surfaces
    of its μ range widened by 20 k_B T; no spectral window (γ is a Fermi-surface property, it
    does not need η)."""
    reach = 20 * max([0.0, *gamma.temperatures])
    mu = gamma.mu_values
    return GridNeeds((mu[0] - reach, mu[-1] + reach), transition_cutoff=0.0)


def relative_error(ds, names=GAMMA_CURVES) -> dict[str, float]:
    """max NAME_error / max |NAME| of each curve NAME in ``ds`` (each finite-T curve on its own;
    a tensor's components together, relative to its largest).

    A valley sum (``ds`` holds ``NAME_valley``) is measured against the sum of its valleys' peaks
    (:func:`qmdipole.errors.relative_to_parts`): what the per-valley tolerances guarantee, and
    the scale of a sum whose valleys cancel (its own peak is then reported beside it, as the
    attribute ``max_relative_to_peak``)."""
    found = {}
    for name in names:
        if name not in ds:
            continue
        curve, error = ds[name], ds[f"{name}_error"]
        parts = ds.get(f"{name}_valley")
        slices = [({}, name)] if "temperature" not in curve.dims else [
            ({"temperature": i}, f"{name}[temperature={value:g}]")
            for i, value in enumerate(curve["temperature"].values)]
        for pick, label in slices:
            found[label] = (relative_to_peak(error.isel(pick).values, curve.isel(pick).values)
                            if parts is None else
                            relative_to_parts(error.isel(pick).values, parts.isel(pick).values))
    return found


def _refined_axes(kind: str) -> tuple[int, ...]:
    return (0, 2) if kind == "cylindrical" else (0, 1, 2)


def refined_gamma(reduce, model, model_kind: str, settings, needs: GridNeeds, *,
                  rtol: float, threads: int | None = None) -> tuple[KGrid, dict, xr.Dataset]:
    """γ of ``model`` on the k-grid predicted to meet ``rtol`` (module docstring, steps 1–3):
    ``(grid, record, result)``, the record naming the pilot's grid and estimate. The pilot's own
    result is returned when it meets ``rtol``; a finer grid is tabulated in memory (on
    ``threads`` Dask threads, None: all cores) and reduced.

    ``settings``: the :class:`~qmdipole.settings.GridSettings` of the pilot (its η refinement is
    turned off); ``reduce``: table → γ, e.g. ``functools.partial(quadrupolar.gamma_from_table,
    mu=…, temperatures=…)``. The caller checks the final estimate (:func:`check_tolerance`).
    """
    kind = default_kind(model_kind, settings.kind)
    settings = dataclasses.replace(settings, points_per_eta=0.0)
    pilot = grid_for(model, model_kind, settings, needs)
    ds = reduce(in_memory(tabulate(model, pilot), threads=threads))
    curve, estimate = max(relative_error(ds).items(), key=lambda item: item[1])
    record = {"pilot_shape": list(pilot.shape), "pilot_estimate": estimate, "pilot_curve": curve}
    log.info("gamma pilot on %s: estimated error %.3g of the peak (%s), target %.3g",
             pilot.shape, estimate, curve, rtol)
    if estimate <= rtol:
        return pilot, record, ds
    scale = (estimate * MARGIN / rtol) ** (1 / ESTIMATE_ORDER)
    finer = _scaled(settings, scale, kind)
    n, max_points = finer.n, settings.max_points
    if not math.prod(n) <= max_points:
        raise AccuracyError(
            f"quadrupolar_current: on a {' x '.join(map(str, pilot.shape))} k-grid the estimated "
            f"error of {curve} is {estimate:.3g} of its peak; accuracy.rtol = {rtol:g} would take "
            f"about {math.prod(n):.3g} k-points ({' x '.join(map(str, n))}), more than "
            f"kgrid.max_points = {max_points:.3g}: raise accuracy.rtol or kgrid.max_points")
    grid = grid_for(model, model_kind, finer, needs)
    log.info("gamma on %s", grid.shape)
    return grid, record, reduce(in_memory(tabulate(model, grid), threads=threads))


def _scaled(settings, scale: float, kind: str):
    """Grid settings with the refined axes' node counts and ``points_per_eta`` scaled."""
    n = tuple(math.ceil(c * scale) if a in _refined_axes(kind) else int(c)
              for a, c in enumerate(settings.n))
    return dataclasses.replace(settings, n=n, points_per_eta=settings.points_per_eta * scale)


def refined_until_met(reduce, table, model, model_kind: str, settings, needs: GridNeeds,
                      rtol: dict, what: str):
    """``reduce(table)``, refined while its estimates miss ``rtol`` ({curve: (key, tolerance)}).

    ``table``: the geometry table of ``model`` on the grid of ``settings`` (GridSettings) and
    ``needs``; each round scales that grid (module docstring), tabulates it in memory and
    reduces again. Returns ``(result, record)``, the record naming the grids and estimates of
    every round; the caller checks the final result (:func:`check_tolerance`).
    """
    kind = default_kind(model_kind, settings.kind)
    result, shape, scale = reduce(table), KGrid.from_dataset(table).shape, 1.0
    rounds = []
    for _ in range(MAX_REFINEMENTS + 1):
        found = relative_error(result, rtol)
        rounds.append(f"{' x '.join(map(str, shape))}: " + ", ".join(
            f"{name} {value:.3g}" for name, value in found.items()))
        worst = max(value / rtol[name.split("[")[0]][1] for name, value in found.items())
        if worst <= 1 or len(rounds) > MAX_REFINEMENTS:
            break
        scale *= min((worst * MARGIN) ** (1 / NDD_ESTIMATE_ORDER), MAX_STEP)
        finer = _scaled(settings, scale, kind)
        try:
            if math.prod(finer.n) > settings.max_points:
                raise GridError(f"its node counts {finer.n} alone are more")
            grid = grid_for(model, model_kind, finer, needs)
        except GridError as err:
            log.warning("%s: the estimated errors %s miss the tolerances, but a grid %.3g times "
                        "finer per axis exceeds kgrid.max_points = %.3g (%s)", what, rounds[-1],
                        scale, settings.max_points, err)
            break
        log.info("%s: estimated errors %s miss the tolerances; refining to %s", what,
                 rounds[-1], " x ".join(map(str, grid.shape)))
        result, shape = reduce(in_memory(tabulate(model, grid))), grid.shape
    return result, {"refinement": "; ".join(rounds)}


def check_tolerance(ds, rtol: float | dict, on_miss: str, what: str, names=GAMMA_CURVES) -> dict:
    """Compare a result's estimates of the curves ``names`` with ``rtol`` (one tolerance, or
    {curve: (accuracy key, tolerance)}); a miss raises (``on_miss: error``) or warns, naming
    ``what``, the curves and the keys.

    Returns {curve: estimate relative to its peak}; the result's attributes should record it.
    """
    limits = rtol if isinstance(rtol, dict) else dict.fromkeys(names, ("rtol", rtol))
    found = relative_error(ds, names)
    missed = {}  # (key, tolerance): {curve: estimate}
    for name, value in found.items():
        key, limit = limits[name.split("[")[0]]
        if not value <= limit:
            missed.setdefault((key, limit), {})[name] = value
    if missed:
        text = "; ".join(
            "(" + ", ".join(f"{name} {value:.3g}" for name, value in curves.items())
            + f") misses accuracy.{key} = {limit:g}" for (key, limit), curves in missed.items())
        keys = " or ".join(f"accuracy.{key}" for key, _ in missed)
        message = (f"{what}: the estimated error relative to the peak {text}: raise kgrid.n "
                   f"or {keys}")
        if on_miss == "error":
            raise AccuracyError(message)
        log.warning("%s", message)
    return found


def ndd_tolerances(accuracy: dict, curves: dict = NDD_TOLERANCES) -> dict:
    """{NDD curve: (accuracy key, tolerance)} from the ``accuracy`` section, for
    :func:`check_tolerance`: ``rtol_delta_n`` for Re/Im Δn (and the tensor's,
    :data:`NDD_TENSOR_TOLERANCES`), ``rtol_avg_qmd`` for ⟨G⟩."""
    return {curve: (key, accuracy[key]) for curve, key in curves.items()}


def attributes(found: dict, rtol: float | dict) -> dict:
    """Global attributes recording a result's estimated accuracy against ``rtol`` (as in
    :func:`check_tolerance`)."""
    limits = rtol if isinstance(rtol, dict) else dict.fromkeys(
        (name.split("[")[0] for name in found), ("rtol", rtol))
    meets = all(value <= limits[name.split("[")[0]][1] for name, value in found.items())
    recorded = rtol if not isinstance(rtol, dict) else "; ".join(
        f"{name}: {limit:g}" for name, (_, limit) in limits.items())
    return {"accuracy_rtol": recorded,
            "max_relative_error_estimate": float(max(found.values(), default=0.0)),
            "meets_accuracy_rtol": str(meets).lower(),
            "relative_error_estimates": "; ".join(f"{k}: {v:.3g}" for k, v in found.items())}
