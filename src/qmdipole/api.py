"""The public API: a model in, xarray Datasets out, by the pipeline's own code path.

    import qmdipole as qd
    models = qd.models_from_config({"kind": "valley", "mass": 1.9, "valleys": [
        {"delta": 1.0, "vprime": 1.0, "tau": 1}, {"delta": 2.0, "vprime": -1.0, "tau": -1}]})
    gamma = qd.quadrupolar_current(models, mu=qd.Sampling(-4, 4, 401), rtol=2e-3)   # Fig. 4b
    spec = qd.ndd_spectrum(models, omega=qd.Sampling(0.2, 8, 391), eta=0.05)       # Fig. 4a
    qd.plot(gamma)

A *model* argument is one model (an object with ``n_bands``, ``hamiltonian`` and
``hamiltonian_gradient``: a built-in, :class:`~qmdipole.models.PythonModel`, an adapter's), a list
of them (valleys, whose results are summed as the pipeline sums them, each valley's curve kept as
``NAME_valley``), or a ``model:`` configuration section. Every function chooses the k-grid as the
pipeline does (the window from the model and the μ/ω ranges, η-refinement, and for γ node counts
refined until its estimated error meets ``rtol``), calls the same package functions as the
pipeline's rule scripts, and returns the Dataset the pipeline writes (the same variables, units and
numbers; only the provenance attributes of the files are left out). Keyword arguments override the
corresponding field of ``settings`` (:class:`~qmdipole.settings.Settings`, whose defaults are
those of the shipped ``config/config.yaml``).

The Fig. 2 and Fig. 3 data are :func:`bands` and :func:`dipole_field` (the names
``band_structure`` and ``qmd_field`` are the package's modules that compute them).

Units: ħ = 1, energies in Δ (or the model's energy unit), momenta in Δ/(ħv) (or the model's); γ in
e²/(16π²ħ), Δn in α (the fine-structure constant), ⟨G⟩ in Δ².
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
import xarray as xr

from . import accuracy, units
from .band_structure import band_structure as _band_structure
from .kgrid import grid_for, grid_needs
from .models import Model, build_model, components
from .integrand import available_threads
from .ndd import spectrum_from_table, tensor_from_table
from .qmd_field import qmd_field as _qmd_field
from .quadrupolar import gamma_from_table
from .settings import GridSettings, Sampling, Settings
from .tabulate import in_memory, tabulate
from .valleys import combine_valleys
from .wannier90 import Wannier90Model

ModelInput = Union[Model, Sequence[Model], Mapping[str, Any]]


def models_from_config(model_config: Mapping[str, Any]) -> list[Model]:
    """The components of a ``model:`` configuration section, as the pipeline builds them.

    One model per entry of ``valleys`` (its keys over the global ``v``, ``mass``, …), or the one
    model of ``kind: wannier90``; see :func:`qmdipole.models.build_model`.
    """
    section = dict(model_config)
    return [build_model(section, i) for i in range(len(components(section)))]


def load_wannier90(hr_file, *, centres_file=None, lattice_vectors=None, mp_grid=None) -> Model:
    """A Wannier90 tight-binding model from ``seedname_hr.dat``, read as ``kind: wannier90`` is.

    ``seedname_wsvec.dat`` beside it is used when present, and ``seedname_centres.xyz`` unless
    ``centres_file`` names another; ``lattice_vectors`` (rows a1, a2, a3 in Å) default to those of
    ``seedname_tb.dat``; ``mp_grid`` (3 ints), when given, is checked against the degeneracies.
    H(k) and ∂H/∂k are exact Bloch sums (:class:`qmdipole.wannier90.Wannier90Model`): energies in
    eV, k Cartesian in Å⁻¹.
    """
    return build_model({"kind": "wannier90", "hr_file": str(hr_file),
                        "centres_file": None if centres_file is None else str(centres_file),
                        "lattice_vectors": lattice_vectors, "mp_grid": mp_grid}, 0)


def _models(model: ModelInput) -> list[tuple[Model, str]]:
    """(model, model kind) of every component; the kind picks the default k-grid kind."""
    if isinstance(model, Mapping):
        kind = model.get("kind", "valley")
        return [(m, kind) for m in models_from_config(model)]
    found = list(model) if isinstance(model, (list, tuple)) else [model]
    if not found:
        raise ValueError("model: no component given (an empty list)")
    for m in found:
        if not all(callable(getattr(m, name, None)) for name in ("hamiltonian",
                                                                 "hamiltonian_gradient")):
            raise TypeError(f"model: {m!r} has no hamiltonian() and hamiltonian_gradient(); "
                            "wrap a bare H(k) in qmdipole.PythonModel")
    return [(m, getattr(m, "name", "python")) for m in found]


def _in_units(ds: xr.Dataset, models: list[tuple[Model, str]]) -> xr.Dataset:
    """``ds`` labelled as the pipeline's files are (:func:`qmdipole.units.apply`): eV and Å for
    Wannier90 models (their files' units), model units otherwise; γ also in siemens."""
    wannier = any(isinstance(m, Wannier90Model) for m, _ in models)
    return units.apply(ds, units.UnitSystem(**units.WANNIER90) if wannier else units.UnitSystem())


def _updated(section, **overrides):
    """``section`` with the overrides that are not None (arrays as tuples, Samplings kept)."""
    given = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, (list, np.ndarray)):
            value = tuple(float(v) for v in np.ravel(value))
        given[key] = value
    return dataclasses.replace(section, **given)


def quadrupolar_current(model: ModelInput, mu: Sampling | Sequence[float] | None = None,
                        temperatures: Sequence[float] | None = None, *, rtol: float | None = None,
                        on_miss: str | None = None, kgrid: GridSettings | None = None,
                        settings: Settings | None = None) -> xr.Dataset:
    """The static quadrupolar current γ_jik(μ) at T = 0 and γ_xxz(μ, T) (Eqs. 9–10; Fig. 4b).

    Parameters
    ----------
    model
        A model, a list of valley models (summed), or a ``model:`` configuration section.
    mu
        Chemical potentials μ (Δ): a :class:`~qmdipole.settings.Sampling` or increasing values.
    temperatures
        Finite temperatures k_B T (Δ) of ``gamma_temperature`` and its ``gamma_xxz_temperature``,
        besides T = 0.
    rtol
        Target of the estimated error relative to each curve's peak: each valley's grid is refined
        from ``kgrid.n`` until its pilot's estimate predicts it (:func:`qmdipole.accuracy.refined_gamma`).
    on_miss
        ``"error"`` (raise :class:`~qmdipole.accuracy.AccuracyError`) or ``"warn"`` when a valley's
        final estimate misses ``rtol``; the valley sum only warns.
    kgrid, settings
        Grid settings, and every other setting (defaults: ``config/config.yaml``'s).

    Returns
    -------
    xarray.Dataset
        ``gamma_xxz`` (μ), ``gamma`` (the tensor), ``gamma_xxz_temperature`` (T, μ),
        ``gamma_temperature`` (the tensor at T), each with its
        ``NAME_error`` and per-valley ``NAME_valley``, in e²/(16π²ħ); band edges per valley (Δ).
    """
    settings = settings or Settings()
    gamma = _updated(settings.gamma, mu=mu, temperatures=temperatures, rtol=rtol, on_miss=on_miss)
    needs = accuracy.gamma_needs(gamma)
    reduce = functools.partial(gamma_from_table, mu=gamma.mu_values,
                               temperatures=gamma.temperatures, threads=available_threads())
    valleys, models = [], _models(model)
    for i, (m, kind) in enumerate(models, start=1):
        _, _, ds = accuracy.refined_gamma(reduce, m, kind, kgrid or settings.kgrid, needs,
                                          rtol=gamma.rtol)
        found = accuracy.check_tolerance(ds, gamma.rtol, gamma.on_miss,
                                         f"quadrupolar current of valley {i}")
        valleys.append(ds.assign_attrs(accuracy.attributes(found, gamma.rtol)))
    ds = combine_valleys(valleys, dim="mu")
    found = accuracy.check_tolerance(ds, gamma.rtol, "warn", "quadrupolar current (sum over valleys)")
    return _in_units(ds.assign_attrs(accuracy.attributes(found, gamma.rtol)), models)


def ndd_spectrum(model: ModelInput, omega: Sampling | Sequence[float] | None = None, *,
                 eta: float | None = None, mu: float | None = None,
                 temperature: float | None = None, transition_cutoff: str | float | None = None,
                 kubo: bool | None = None, kubo_dq: float | None = None,
                 q_direction: Sequence[float] | None = None,
                 polarization: Sequence[float] | None = None,
                 kgrid: GridSettings | None = None, settings: Settings | None = None) -> xr.Dataset:
    """Nonreciprocal directional dichroism Δn(ω) (Eqs. 4, 12; Kubo, Eq. 11) and ⟨G⟩(ω) (Eq. 13).

    Parameters
    ----------
    model
        A model, a list of valley models (summed), or a ``model:`` configuration section.
    omega
        Photon energies ħω (Δ): a :class:`~qmdipole.settings.Sampling` or increasing values ≥ 0.
    eta
        Broadening ω → ω + iη (Δ); the grid resolves transition energies finer than η when
        ``kgrid.points_per_eta`` > 0.
    mu, temperature
        Chemical potential and k_B T (Δ).
    transition_cutoff
        ``"auto"``: every transition (Eq. 14's highest in closed form); a number X (Δ): a hard UV
        cut-off, transitions above X left out.
    kubo, kubo_dq
        Also Δn from the Kubo formula (Eq. 11), an independent route to Eq. 12's, with the
        finite-difference step in q (Δ/(ħv)).
    q_direction, polarization
        Light propagation q̂ and polarisation ê ⊥ q̂ (Cartesian; normalised): Δn of that geometry
        (default: the paper's q ∥ z, ê ∥ x).
    kgrid, settings
        Grid settings, and every other setting (defaults: ``config/config.yaml``'s). The k-window
        also holds γ's μ range of ``settings.gamma``, as the pipeline's grid (shared by both
        reductions) does.

    Returns
    -------
    xarray.Dataset
        ``re_delta_n``, ``im_delta_n`` (α) and ``avg_qmd`` (Δ²), each with its ``NAME_error``,
        per-valley ``NAME_valley`` and per band pair ``NAME_pair``; ``*_kubo`` with ``kubo``; the
        intraband term.
    """
    settings = settings or Settings()
    ndd = _updated(settings.ndd, omega=omega, eta=eta, mu=mu, temperature=temperature,
                   transition_cutoff=transition_cutoff, kubo=kubo, kubo_dq=kubo_dq,
                   q_direction=q_direction, polarization=polarization)
    models = _models(model)
    # the window holds the μ of both reductions, as the pipeline's shared grid does
    needs = grid_needs(settings.gamma, ndd, [m for m, _ in models])
    rtol = accuracy.ndd_tolerances({"rtol_delta_n": ndd.rtol_delta_n,
                                    "rtol_avg_qmd": ndd.rtol_avg_qmd})
    grid_settings = kgrid or settings.kgrid
    valleys = []
    for i, (m, kind) in enumerate(models, start=1):
        reduce = functools.partial(
            spectrum_from_table, model=m, omega=ndd.omega_values, eta=ndd.eta, mu=ndd.mu,
            temperature=ndd.temperature, transition_cutoff=ndd.transition_cutoff, kubo=ndd.kubo,
            dq=ndd.kubo_dq, q_direction=ndd.q_direction, polarization=ndd.polarization,
            threads=available_threads())
        table = in_memory(tabulate(m, grid_for(m, kind, grid_settings, needs)))
        what = f"NDD spectrum of valley {i}"
        ds, record = accuracy.refined_until_met(reduce, table, m, kind, grid_settings, needs,
                                                rtol, what)
        found = accuracy.check_tolerance(ds, rtol, ndd.on_miss, what, accuracy.NDD_TOLERANCES)
        valleys.append(ds.assign_attrs({**accuracy.attributes(found, rtol), **record}))
    ds = combine_valleys(valleys, dim="omega")
    found = accuracy.check_tolerance(ds, rtol, "warn", "NDD spectrum (sum over valleys)",
                                     accuracy.NDD_TOLERANCES)
    return _in_units(ds.assign_attrs(accuracy.attributes(found, rtol)), models)


def ndd_tensor(model: ModelInput, omega: Sampling | Sequence[float] | None = None, *,
               eta: float | None = None, mu: float | None = None,
               temperature: float | None = None, transition_cutoff: str | float | None = None,
               kgrid: GridSettings | None = None, settings: Settings | None = None) -> xr.Dataset:
    """The NDD tensor T_abc(ω), Δn(ê, q̂) = Σ ê_a ê_b q̂_c T_abc: the NDD part of σ_abc in units
    of Δn (α), summed over valleys; see :func:`qmdipole.ndd.tensor_from_table` (18 reductions of
    each valley's table on the grid the settings give, no refinement).

    Parameters as :func:`ndd_spectrum`; a continuum model's closed-form tail holds the paper's
    geometry only, so Eq. 14 (``kind: valley``) needs a numeric ``transition_cutoff``.

    Returns
    -------
    xarray.Dataset
        ``re_delta_n_tensor``, ``im_delta_n_tensor`` (dir_a, dir_b, dir_c, omega), each with its
        ``NAME_error`` and per-valley ``NAME_valley``.
    """
    settings = settings or Settings()
    ndd = _updated(settings.ndd, omega=omega, eta=eta, mu=mu, temperature=temperature,
                   transition_cutoff=transition_cutoff)
    models = _models(model)
    needs = grid_needs(settings.gamma, ndd, [m for m, _ in models])
    valleys = [tensor_from_table(
        in_memory(tabulate(m, grid_for(m, kind, kgrid or settings.kgrid, needs))), m,
        omega=ndd.omega_values, eta=ndd.eta, mu=ndd.mu, temperature=ndd.temperature,
        transition_cutoff=ndd.transition_cutoff, threads=available_threads())
        for m, kind in models]
    return _in_units(combine_valleys(valleys, dim="omega"), models)


def bands(model: ModelInput, *, kz_max: float | None = None, n: int | None = None,
                   settings: Settings | None = None) -> xr.Dataset:
    """Bands ε_m(0, 0, k_z) of every valley on n points of [−kz_max, kz_max] (Δ/(ħv)) and the gap
    markers of Fig. 2 (Δ); see :func:`qmdipole.band_structure.band_structure`."""
    cut = _updated((settings or Settings()).band_structure, kz_max=kz_max, n=n)
    models = _models(model)
    return _in_units(_band_structure([m for m, _ in models], kz=cut.kz), models)


def dipole_field(model: ModelInput, *, valley: int | None = None, band: str | int | None = None,
              k_max: float | None = None, n: int | None = None, kx_max: float | None = None,
              n_kx: int | None = None, settings: Settings | None = None) -> xr.Dataset:
    """The k_x-integrated quantum-metric-dipole field ∫dk_x (v_x, v_y, v_z) g_xx of one band of
    valley ``valley`` (1-based) on an n × n (k_y, k_z) grid over [−k_max, k_max]² (Fig. 3), in
    Δ(ħv/Δ)²; see :func:`qmdipole.qmd_field.qmd_field`."""
    field = _updated((settings or Settings()).qmd_field, valley=valley, band=band, k_max=k_max,
                     n=n, kx_max=kx_max, n_kx=n_kx)
    models = _models(model)
    if not 1 <= field.valley <= len(models):
        raise ValueError(f"qmd_field.valley is {field.valley} but the model has {len(models)} "
                         "component(s)")
    return _in_units(_qmd_field(models[field.valley - 1][0], band=field.band, k_max=field.k_max,
                                n=field.n, kx_max=field.kx_max, n_kx=field.n_kx,
                                valley=field.valley), models)


def compute(config: Mapping[str, Any],
            what: Sequence[str] = ("quadrupolar_current", "ndd_spectrum", "band_structure",
                                   "qmd_field")) -> dict[str, xr.Dataset]:
    """The pipeline's reductions of a configuration, in memory: ``{name: Dataset}`` for each name
    in ``what``, as ``results/reductions/<name>.nc`` holds them (same numbers, no provenance).

    ``config`` is a configuration as the pipeline reads it (``model`` required; the sections of
    :class:`~qmdipole.settings.Settings` optional, missing keys taking their defaults).
    """
    functions = {"quadrupolar_current": quadrupolar_current, "ndd_spectrum": ndd_spectrum,
                 "band_structure": bands, "qmd_field": dipole_field}
    unknown = sorted(set(what) - set(functions))
    if unknown:
        raise ValueError(f"compute: unknown reduction(s) {unknown}; choose from {sorted(functions)}")
    if "model" not in config:
        raise ValueError("compute: the configuration has no model section")
    settings = Settings.from_config(config)
    return {name: functions[name](config["model"], settings=settings) for name in what}


# the drawing function of a result, by a variable only that result holds
_DRAW = (("gamma_xxz", "draw_quadrupolar_current"), ("re_delta_n", "draw_ndd_spectrum"),
         ("G_yxx_kx", "draw_qmd_field"), ("global_gap", "draw_band_structure"),
         ("max_error", "draw_convergence"))


def plot(ds: xr.Dataset, path: str | Path | None = None, *, dpi: int = 300):
    """The paper's figure of a result: Fig. 4b (γ), 4a (Δn, ⟨G⟩), 3 (field), 2 (bands), or the
    convergence study, in the package's plot style.

    With ``path`` (a prefix) the figure is written to ``<path>.pdf`` and ``<path>.png`` (as the
    pipeline does) and closed, and the two paths are returned; without it the figure is returned.
    """
    import matplotlib.pyplot as plt

    from . import figures

    draw = next((draw for name, draw in _DRAW if name in ds), None)
    if draw is None:
        raise ValueError("plot: not a result of qmdipole (none of "
                         f"{[name for name, _ in _DRAW]} in the Dataset)")
    with plt.style.context(str(figures.STYLE)):
        fig = getattr(figures, draw)(ds)
        if path is None:
            return fig
        return figures.save_figure(fig, path, dpi)
