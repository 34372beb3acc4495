"""Error estimates of the NDD spectrum from the data itself (qmdipole.ndd, qmdipole.errors).

Every curve NAME of ``spectrum_from_table`` (⟨G⟩, Re/Im Δn of Eq. 12 and of the Kubo route) has
NAME_error, from the table's half-density subgrid. Checks, against the independent semi-analytic
route of :mod:`qmdipole.analytic` with no cut-off (``x_max=None``):

* on the paper's parameters and seeded random insulating Eq. 14 sets (Δ_i/Δ₁ in [1, 3], m_i in
  [0.5, 3], ±|v'_i| in [0.3, 1.5] with m_i v'_i²/2 <= 0.8 Δ_i, η in [0.02, 0.1], μ in the global
  gap, 1–3 valleys), valley sums on moderate η-refined grids: the true error is below the estimate
  at every ω, and the estimate is not absurdly loose (max estimate / max true error below LOOSE);
* Δn is the Richardson extrapolation of the grid and its subgrid: on the default configuration
  it meets the issue's 0.5 % of the peak, and beats the grid alone;
* on the default grid settings every set meets the targets: Δn 0.5 % of the peak, ⟨G⟩ 0.2 % of
  each valley's peak (the valley sum: of the valleys' peaks);
* metals (seeded random sets, μ in a band, T = 0 and T > 0): ⟨G⟩ against the Pauli-blocked
  semi-analytic route, and Δn of a grid against one twice as fine, within the estimates;
* the trapezoid term bounds the change of Δn from 8 to 32 spectral nodes per η (the part of the
  error every grid shares, which Richardson cannot see);
* the data contract: units, long names, methods, valley combination.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from qmdipole import accuracy, analytic, ndd, valleys
from qmdipole.models import valley_parameters
from qmdipole.settings import Settings

from checks import config_grid, config_needs, config_tables

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
CURVES = ("avg_qmd", "re_delta_n", "im_delta_n")
# looseness accepted (max estimate / max true error). Measured on these grids: <G> up to 21x
# (its safety factor covers the alignment noise of a δ-function integral), Δn up to 10.3x
# (random1: valleys whose curves partly cancel, while their estimates add; the others <= 7.3x)
LOOSE = {"avg_qmd": 40.0, "re_delta_n": 12.0, "im_delta_n": 12.0}

pytestmark = pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")


def insulating_sets(count=5, seed=20240612):
    """Seeded Eq. 14 sets with a global gap: m_i v'_i²/2 <= 0.8 Δ_i, μ inside the gap, η drawn."""
    rng = np.random.default_rng(seed)
    sets = []
    while len(sets) < count:
        valley_list = []
        for i in range(int(rng.integers(1, 4))):
            delta, mass = (1.0 if i == 0 else float(rng.uniform(1.0, 3.0))), float(rng.uniform(0.5, 3.0))
            top = min(1.5, np.sqrt(1.6 * delta / mass))  # m v'²/2 <= 0.8 Δ
            if top < 0.3:
                break
            valley_list.append({"delta": delta, "mass": mass, "tau": int(rng.choice([-1, 1])),
                                "vprime": float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, top))})
        else:
            gap = min(v["delta"] - v["mass"] * v["vprime"] ** 2 / 2 for v in valley_list)
            sets.append((valley_list, float(rng.uniform(0.02, 0.1)), float(rng.uniform(-0.5, 0.5) * gap)))
    return sets


SETS = {"paper": (CONFIG["model"]["valleys"], 0.05, 0.0),
        **{f"random{i}": s for i, s in enumerate(insulating_sets())}}


def make_config(valley_list, eta, mu, n=(60, 4, 120), points_per_eta=1.5, num=241):
    config = copy.deepcopy(CONFIG)
    config["model"]["valleys"] = copy.deepcopy(valley_list)
    config["kgrid"].update(n=list(n), points_per_eta=points_per_eta)
    config["quadrupolar_current"].update(mu={"start": mu, "stop": mu + 0.01, "num": 2}, temperatures=[])
    top = 2 * max(v["delta"] for v in valley_list) + 3.0
    config["ndd"].update(omega={"start": 0.2, "stop": top, "num": num}, eta=eta, mu=mu,
                         temperature=0.0, transition_cutoff="auto")
    return config


def valley_spectra(config, kubo=False, **overrides):
    section = config["ndd"]
    options = dict(omega=np.linspace(**section["omega"]), eta=section["eta"], mu=section["mu"],
                   temperature=0.0, kubo=kubo, dq=section["kubo_dq"], transition_cutoff="auto")
    options.update(overrides)
    tables = config_tables(config)
    per_valley = [ndd.spectrum_from_table(table, model, **options) for model, _, table in tables]
    params = [valley_parameters(config["model"], v) for v in range(len(per_valley))]
    return options["omega"], per_valley, params


def references(omega, eta, params):
    delta_n = analytic.valley_sum(analytic.delta_n_insulator, omega, params, eta=eta, x_max=None)
    return {"avg_qmd": analytic.valley_sum(analytic.avg_qmd_insulator, omega, params),
            "re_delta_n": delta_n.real, "im_delta_n": delta_n.imag}


def check_estimates(name, omega, total, reference, params, curves=CURVES) -> dict:
    """|curve − reference| <= curve_error at every ω; not looser than LOOSE; {curve: true/peak}."""
    # ω within 1e-3 of a band edge 2Δ_i: ⟨G⟩'s √ onset lies below both grids' lowest transition,
    # a known blind spot of the estimate (documented in qmdipole.ndd)
    seen = np.all([np.abs(omega - 2 * p["delta"]) > 1e-3 for p in params], axis=0)
    report, found = {}, {}
    for curve in curves:
        target = reference[curve.removesuffix("_kubo")]
        true = np.abs(total[curve].values - target)[seen]
        estimate = total[f"{curve}_error"].values[seen]
        worst = np.max(true / np.maximum(estimate, 1e-300))
        assert np.all(true <= estimate), (
            f"{name} {curve}: true error exceeds the estimate by up to {worst:.2f}x "
            f"(max true {true.max():.2e}, peak {np.abs(target).max():.3f})")
        loose = estimate.max() / true.max()
        assert loose <= LOOSE[curve.removesuffix("_kubo")], f"{name} {curve}: {loose:.1f}x loose"
        found[curve] = np.abs(total[curve].values - target).max() / np.abs(target).max()
        report[curve] = (f"{found[curve]:.1e}", f"{worst:.2f}", f"{loose:.1f}")
    print(f"{name}: (max true/peak, worst true/estimate, max estimate/max true) {report}")
    return found


@pytest.mark.parametrize("name", list(SETS))
def test_estimate_bounds_the_true_error(name):
    """|curve − analytic| <= curve_error at every ω, valley sums; not looser than LOOSE."""
    valley_list, eta, mu = SETS[name]
    config = make_config(valley_list, eta, mu)
    omega, per_valley, params = valley_spectra(config, kubo=name == "paper")
    total = valleys.combine_valleys(per_valley, dim="omega")
    kubo = ("re_delta_n_kubo", "im_delta_n_kubo") if name == "paper" else ()
    check_estimates(name, omega, total, references(omega, eta, params), params, CURVES + kubo)


@pytest.mark.slow
def test_default_config_meets_the_targets_and_its_own_check():
    """config/config.yaml as it is (two valleys, η 0.02, 120 x 4 x 240 refined for η and at the
    onsets): the extrapolated Re/Im Δn within 0.5 % of the peak (measured 0.045 %, 0.032 %; with
    the densities sampled at 32 levels per η instead of integrated on their hats 0.13 %, 0.09 %; the
    point deposits it replaced: 0.81 %, 0.65 %), ⟨G⟩ within 0.2 % (measured 0.10 %; 0.31 % before
    the onset refinement); every estimate bounds its true error and is at most LOOSE loose; each
    valley passes its own tolerance check (accuracy.rtol_delta_n, accuracy.rtol_avg_qmd with
    on_miss: error)."""
    section = CONFIG["ndd"]
    omega, per_valley, params = valley_spectra(CONFIG)
    total = valleys.combine_valleys(per_valley, dim="omega")
    found = check_estimates("default", omega, total, references(omega, section["eta"], params),
                            params)
    assert found["re_delta_n"] <= 5e-3 and found["im_delta_n"] <= 5e-3, found
    assert found["avg_qmd"] <= 2e-3, found
    rtol = accuracy.ndd_tolerances(CONFIG["accuracy"])
    for valley, ds in enumerate(per_valley, start=1):
        accuracy.check_tolerance(ds, rtol, "error", f"valley {valley}", accuracy.NDD_TOLERANCES)


@pytest.mark.slow
def test_default_size_grid_meets_the_targets_on_every_set():
    """The paper's and the random sets (their η, μ) on the default grid settings (120 x 4 x 240,
    points_per_eta 1.5, refined at the onsets): Re/Im Δn of the valley sum within 0.5 % of its
    peak, ⟨G⟩ of each valley within 0.2 % of its peak and of the sum within 0.2 % of the
    valleys' peaks (where valleys cancel, the sum's own peak is smaller: measured up to 0.38 % of
    it); every estimate bounds its error."""
    for name, (valley_list, eta, mu) in SETS.items():
        config = make_config(valley_list, eta, mu, n=(120, 4, 240), points_per_eta=1.5, num=161)
        omega, per_valley, params = valley_spectra(config)
        total = valleys.combine_valleys(per_valley, dim="omega")
        found = check_estimates(name, omega, total, references(omega, eta, params), params)
        assert found["re_delta_n"] <= 5e-3 and found["im_delta_n"] <= 5e-3, (name, found)
        peaks = 0.0
        for ds, p in zip(per_valley, params):
            reference = analytic.avg_qmd_insulator(omega, **p)
            peaks += np.abs(reference).max()
            error = np.abs(ds["avg_qmd"].values - reference).max() / np.abs(reference).max()
            assert error <= 2e-3, (name, error)
        reference = analytic.valley_sum(analytic.avg_qmd_insulator, omega, params)
        assert np.abs(total["avg_qmd"].values - reference).max() <= 2e-3 * peaks, name


def metallic_sets(count=6, seed=7):
    """Seeded Eq. 14 sets (1-2 valleys, as :func:`insulating_sets`) with μ in a band of valley 1
    (0.05-0.6 past its conduction-band bottom or valence-band top) at T = 0 or T in
    [0.005, 0.05]; η drawn in [0.02, 0.1]."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(count):
        valley_list = []
        for i in range(int(rng.integers(1, 3))):
            delta, mass = (1.0 if i == 0 else float(rng.uniform(1.0, 3.0))), float(rng.uniform(0.5, 3.0))
            top = min(1.5, np.sqrt(1.6 * delta / mass))
            valley_list.append({"delta": delta, "mass": mass, "tau": int(rng.choice([-1, 1])),
                                "vprime": float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, top))})
        edge = valley_list[0]["delta"] - valley_list[0]["mass"] * valley_list[0]["vprime"] ** 2 / 2
        mu = float(rng.choice([-1, 1]) * (edge + rng.uniform(0.05, 0.6)))
        temperature = float(rng.choice([0.0, rng.uniform(0.005, 0.05)]))
        sets.append((valley_list, float(rng.uniform(0.02, 0.1)), mu, temperature))
    return sets


def metal_avg_qmd_errors(valley_list, eta, mu, temperature, refine=False):
    """⟨G⟩ of each valley on the default grid settings against the Pauli-blocked semi-analytic
    route (analytic.avg_qmd on the valley grid's k-window): the estimate must bound the error at
    every ω; returns each valley's largest error relative to its peak. ``refine``: as the
    pipeline reports it, the grid refined until the estimates meet the default tolerances
    (accuracy.refined_until_met)."""
    config = make_config(valley_list, eta, mu, n=(120, 4, 240), points_per_eta=1.5, num=161)
    config["ndd"]["temperature"] = temperature
    omega = np.linspace(**config["ndd"]["omega"])
    defaults = Settings().ndd
    rtol = accuracy.ndd_tolerances({"rtol_delta_n": defaults.rtol_delta_n,
                                    "rtol_avg_qmd": defaults.rtol_avg_qmd})
    errors = []
    for valley, (model, grid, table) in enumerate(config_tables(config)):
        reduce = functools.partial(ndd.spectrum_from_table, model=model, omega=omega, eta=eta,
                                   mu=mu, temperature=temperature, kubo=False,
                                   dq=config["ndd"]["kubo_dq"], transition_cutoff="auto")
        ds = reduce(table) if not refine else accuracy.refined_until_met(
            reduce, table, model, "valley", config_grid(config), config_needs(config), rtol,
            f"valley {valley}")[0]
        params = valley_parameters(config["model"], valley)
        window = (grid.axes[0][-1], grid.axes[2][0], grid.axes[2][-1])
        reference = analytic.avg_qmd(omega, **params, mu=mu, temperature=temperature, window=window)
        true = np.abs(ds["avg_qmd"].values - reference)
        seen = np.abs(omega - 2 * params["delta"]) > 1e-3  # as in check_estimates
        assert np.all(true[seen] <= ds["avg_qmd_error"].values[seen]), valley
        errors.append(true.max() / np.abs(reference).max())
    return errors


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 2, 4, 5])  # two valleys at T > 0, one and two at T = 0
def test_metals_on_the_default_size_grid(index):
    """μ in a band, T = 0 and T > 0, default grid settings: ⟨G⟩ of each valley within 0.2 % of
    the valley's peak at T = 0 (measured up to 0.16 %; 0.40 % with the occupation step
    interpolated from its 0/1 node values instead of clipped, qmdipole.kernels), within 0.5 % at
    T > 0 (measured up to 0.25 %, in set 4's insulating valley at its absorption onset, where
    the grid refined for η resolves ⟨G⟩'s √(ω − 2Δ) edge least; the metallic valleys 0.1 %)."""
    valley_list, eta, mu, temperature = metallic_sets()[index]
    errors = metal_avg_qmd_errors(valley_list, eta, mu, temperature)
    assert max(errors) <= (2e-3 if temperature == 0 else 5e-3), (index, errors)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(12))
def test_metals_as_the_pipeline_reports_them(index):
    """μ in a band, T = 0 and T > 0 (12 seeded sets): with the grid refined until the estimates
    meet the default tolerances, as the pipeline does, ⟨G⟩ of each valley is within 0.2 % of the
    valley's peak (measured up to 0.16 %; set 4's insulating valley, 0.25 % on the default grid,
    0.11 % after two rounds; 0.203 % when the refinement left the cells at the onsets at
    1/√points_per_eta, qmdipole.kgrid.CURVATURE_RESOLUTION)."""
    valley_list, eta, mu, temperature = metallic_sets(count=12)[index]
    errors = metal_avg_qmd_errors(valley_list, eta, mu, temperature, refine=True)
    assert max(errors) <= 2e-3, (index, errors)


@pytest.mark.slow
def test_cold_metal_on_the_default_size_grid():
    """T = 0.002, a Fermi step of width ~T/|v'| far below the cells (set 0 of
    :func:`metallic_sets`, two metallic valleys): ⟨G⟩ of each valley within 0.1 % of its peak
    (measured 0.012 %, 0.084 %) with the occupation factor integrated on each section
    (qmdipole.kernels); interpolated from its node values it erred by 0.12 %, 0.21 %."""
    valley_list, eta, mu, _ = metallic_sets()[0]
    errors = metal_avg_qmd_errors(valley_list, eta, mu, temperature=0.002)
    assert max(errors) <= 1e-3, errors


@pytest.mark.slow
def test_metal_delta_n_at_zero_temperature_converges_within_its_estimate():
    """No closed form for Δn of a metal: a grid twice as fine (node counts and points per η)
    must agree with the coarse one within the coarse one's estimate at every ω (its error is
    ~4x smaller). With the T = 0 occupation step interpolated from its 0/1 node values, Δn
    converged as O(h^0.7) and missed its estimate (change 2.6 % of the peak, estimate 2.0 %);
    clipped exactly: change 0.5 %, estimate 0.9 % (set 5 of :func:`metallic_sets`, valley 1)."""
    valley_list, eta, mu, temperature = metallic_sets()[5]
    assert temperature == 0.0
    found = []
    for n, points_per_eta in (((60, 4, 120), 1.5), ((120, 4, 240), 3.0)):
        config = make_config(valley_list[:1], eta, mu, n=n, points_per_eta=points_per_eta, num=161)
        omega, (ds,), _ = valley_spectra(config)
        found.append(ds)
    coarse, fine = found
    for part in ("re", "im"):
        change = np.abs(fine[f"{part}_delta_n"].values - coarse[f"{part}_delta_n"].values)
        assert np.all(change <= coarse[f"{part}_delta_n_error"].values), part


@pytest.mark.slow
def test_cold_metal_delta_n_converges_within_its_estimate():
    """T = 0.0118 (set 11 of ``metallic_sets(12)``, two metallic valleys: the cells span ~10-50 T
    at the Fermi surface): Δn of each valley on the default grid settings agrees with a grid
    twice as fine within the coarse one's estimate at every ω. With f' sampled at the nodes
    (qmdipole.fermi) the change was 1.4 % (Re) and 2.2 % (Im) of valley 1's peak, 1.6 and 1.4
    times its estimate; with the thermal average of the T = 0 tetrahedron weights 0.19 %, 0.24 %
    (0.4 times)."""
    valley_list, eta, mu, temperature = metallic_sets(count=12)[11]
    assert 0 < temperature < 0.02
    found = []
    for n, points_per_eta in (((120, 4, 240), 1.5), ((240, 4, 480), 3.0)):
        config = make_config(valley_list, eta, mu, n=n, points_per_eta=points_per_eta, num=161)
        config["ndd"]["temperature"] = temperature
        _, per_valley, _ = valley_spectra(config, temperature=temperature)
        found.append(per_valley)
    for valley, (coarse, fine) in enumerate(zip(*found)):
        for part in ("re", "im"):
            change = np.abs(fine[f"{part}_delta_n"].values - coarse[f"{part}_delta_n"].values)
            assert np.all(change <= coarse[f"{part}_delta_n_error"].values), (valley, part)
            assert change.max() <= 5e-3 * np.abs(coarse[f"{part}_delta_n"].values).max()


def spectra_with_spectral_terms(monkeypatch, config, bins_per_eta, temperature=0.0):
    """Per valley: Δn at ``bins_per_eta`` spectral levels per η, and the spectral term of its
    estimate (:func:`qmdipole.ndd.spectral_extrapolation`, grid h)."""
    terms, original = [], ndd.spectral_extrapolation

    def spy(*args, **kwargs):
        found = original(*args, **kwargs)
        if kwargs.get("error"):
            terms.append(found[1].sum(axis=0))
        return found

    monkeypatch.setattr(ndd, "spectral_extrapolation", spy)
    omega, per_valley, _ = valley_spectra(config, bins_per_eta=bins_per_eta,
                                          temperature=temperature)
    monkeypatch.undo()
    return omega, [(ds["re_delta_n"].values + 1j * ds["im_delta_n"].values, term)
                   for ds, term in zip(per_valley, terms)]


@pytest.mark.parametrize("name", ["paper", "random1"])
def test_spectral_term_bounds_the_spectral_error(monkeypatch, name):
    """The spectral levels are common to every grid (Richardson in k cannot see their error): the
    kernels' interpolation is extrapolated in the spacing and the estimate carries the rest, from
    the same weights on every other and every fourth level. Against 16x finer levels on the same
    table, Δn at the default BINS_PER_ETA moves by less than it at every ω (a slack of DN_FLOOR,
    which every estimate carries), by little (measured 1.3-3.6e-5 of the peak; linear
    interpolation at twice the levels: 1.5-2e-4), and the term is not loose (measured 1.9-5.8x
    the largest change)."""
    valley_list, eta, mu = SETS[name]
    config = make_config(valley_list, eta, mu, n=(40, 4, 80))
    _, found = spectra_with_spectral_terms(monkeypatch, config, ndd.BINS_PER_ETA)
    _, finer = spectra_with_spectral_terms(monkeypatch, config, 16 * ndd.BINS_PER_ETA)
    for (value, term), (reference, _) in zip(found, finer):
        for take in (np.real, np.imag):
            change, bound = np.abs(take(value - reference)), take(term)
            peak = np.abs(take(reference)).max()
            assert np.all(change <= bound + ndd.DN_FLOOR * peak), (name, np.max(change / bound))
            assert change.max() <= 5e-5 * peak, (name, change.max() / peak)
            assert bound.max() <= 8 * change.max(), (name, bound.max() / change.max())


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 0.0296])
def test_flat_valley_converges_with_the_spacing(monkeypatch, temperature):
    """A flat valley (Δ = 1, m = 2.71, v' = 0.57, η = 0.046; valley 1 of set 9 of
    ``metallic_sets(12)``, μ in its band) on the default grid settings: the cells around the
    minimum of the transition energy span far less than a spectral spacing. Integrated against
    the levels' hats, a tetrahedron deposits its whole integral however narrow it is: Δn
    converges with the spacing, within its estimate plus DN_FLOOR at 8, 16 and 32 levels per η,
    to 3e-5 of the peak at 8 (measured 1.1-1.7e-5 against 128 per η) and by >= 1.5x per halving
    (measured 1.9-2.9x from 8 to 16, 9-14x from 16 to 32: where deposits narrower than the
    spacing dominate, the extrapolated error is no smooth function of it). Sampled at the
    levels (the tetrahedra's δ-function integrals with trapezoid weights) it aliased: 16 and 32
    levels per η erred by 0.13 % and 0.14 % of the peak at T = 0.0296 (against 256)."""
    valley_list, eta, mu, _ = metallic_sets(count=12)[9]
    config = make_config(valley_list[:1], eta, mu, n=(120, 4, 240), points_per_eta=1.5, num=161)
    config["ndd"]["temperature"] = temperature
    errors_at = {}
    reference = spectra_with_spectral_terms(monkeypatch, config, 128, temperature)[1][0][0]
    peak = np.abs(reference).max()
    for bins in (8, 16, 32):
        value, term = spectra_with_spectral_terms(monkeypatch, config, bins, temperature)[1][0]
        for take in (np.real, np.imag):
            change = np.abs(take(value - reference))
            assert np.all(change <= take(term) + ndd.DN_FLOOR * np.abs(take(reference)).max()), bins
        errors_at[bins] = np.abs(value - reference).max()
    assert errors_at[8] <= 3e-5 * peak, errors_at[8] / peak
    for coarse, fine in ((8, 16), (16, 32)):
        assert errors_at[coarse] >= 1.5 * errors_at[fine], (coarse, fine, errors_at)


def test_error_variables_carry_units_method_and_valley_sum():
    config = make_config(CONFIG["model"]["valleys"], 0.1, 0.0, n=(30, 4, 60), num=61)
    omega, per_valley, _ = valley_spectra(config, kubo=True)
    total = valleys.combine_valleys(per_valley, dim="omega")
    for curve in CURVES + ("re_delta_n_kubo", "im_delta_n_kubo"):
        error = total[f"{curve}_error"]
        assert error.dims == ("omega",) and error.attrs["units"] == total[curve].attrs["units"]
        assert "error" in error.attrs["long_name"] and "Richardson" in error.attrs["error_method"]
        assert np.all(error.values >= 0) and error.values.max() > 0
        np.testing.assert_allclose(total[f"{curve}_error_valley"].sum("valley").values, error.values,
                                   rtol=1e-14, atol=0)
        np.testing.assert_allclose(error.attrs["max_relative_to_peak"],
                                   error.values.max() / np.abs(total[curve].values).max(), rtol=1e-12)
        for ds in per_valley:
            np.testing.assert_allclose(ds[f"{curve}_error"].attrs["max_relative_to_peak"],
                                       ds[f"{curve}_error"].values.max() / np.abs(ds[curve].values).max(),
                                       rtol=1e-12)
    for ds in per_valley:
        assert ds.attrs["error_window"] > 0
    assert "intraband_error" not in " ".join(total.data_vars)


def test_symmetric_pair_has_cancelling_curves_but_not_cancelling_errors():
    """Δ₂ = Δ₁, v'₂ = −v'₁: the curves cancel exactly, the error estimates add (a bound)."""
    pair = [dict(delta=1.0, vprime=1.0, tau=1), dict(delta=1.0, vprime=-1.0, tau=-1)]
    config = make_config(pair, 0.1, 0.0, n=(30, 4, 60), num=61)
    _, (first, second), _ = valley_spectra(config)
    for curve in CURVES:
        np.testing.assert_allclose(first[f"{curve}_error"].values, second[f"{curve}_error"].values,
                                   rtol=1e-10, atol=0)


def test_tolerance_check_of_the_ndd_curves(caplog):
    """accuracy.check_tolerance on an NDD spectrum, a tolerance per curve: each of Re/Im Δn
    (accuracy.rtol_delta_n) and ⟨G⟩ (accuracy.rtol_avg_qmd) is compared with its own (its estimate
    relative to its peak); a miss raises or warns, naming the curves and keys."""
    config = make_config([CONFIG["model"]["valleys"][0]], 0.1, 0.0, n=(30, 4, 60), num=61)
    _, (ds,), _ = valley_spectra(config)
    loose = accuracy.ndd_tolerances({"rtol_delta_n": 1.0, "rtol_avg_qmd": 1.0})
    found = accuracy.check_tolerance(ds, loose, "error", "NDD of valley 1", accuracy.NDD_TOLERANCES)
    assert set(found) == set(accuracy.NDD_TOLERANCES)
    for name, value in found.items():
        assert value == ds[f"{name}_error"].values.max() / np.abs(ds[name].values).max() > 0
    tight_dn = 0.5 * min(found["re_delta_n"], found["im_delta_n"])
    tight = accuracy.ndd_tolerances({"rtol_delta_n": tight_dn, "rtol_avg_qmd": 1.0})
    with pytest.raises(accuracy.AccuracyError,
                       match=r"NDD of valley 1.*re_delta_n.*im_delta_n.*misses "
                             r"accuracy.rtol_delta_n = .*: raise kgrid.n or accuracy.rtol_delta_n$"):
        accuracy.check_tolerance(ds, tight, "error", "NDD of valley 1", accuracy.NDD_TOLERANCES)
    tight = accuracy.ndd_tolerances({"rtol_delta_n": 1.0, "rtol_avg_qmd": 0.5 * found["avg_qmd"]})
    with caplog.at_level("WARNING"):
        accuracy.check_tolerance(ds, tight, "warn", "NDD of valley 1", accuracy.NDD_TOLERANCES)
    assert "(avg_qmd" in caplog.text and "misses accuracy.rtol_avg_qmd" in caplog.text
    assert "delta_n" not in caplog.text
    attrs = accuracy.attributes(found, tight)
    assert attrs["meets_accuracy_rtol"] == "false" and "im_delta_n" in attrs["relative_error_estimates"]
    assert accuracy.attributes(found, loose)["meets_accuracy_rtol"] == "true"


def refine(config, rtol_delta_n, rtol_avg_qmd, max_points=40_000_000):
    """The pipeline's NDD valley reduction of ``config``'s one valley, refined for the tolerances."""
    (model, _, table), = config_tables(config)
    section = config["ndd"]
    reduce = functools.partial(ndd.spectrum_from_table, model=model,
                               omega=np.linspace(**section["omega"]), eta=section["eta"],
                               mu=section["mu"], kubo=False)
    grid = dataclasses.replace(config_grid(config), max_points=max_points)
    rtol = accuracy.ndd_tolerances({"rtol_delta_n": rtol_delta_n, "rtol_avg_qmd": rtol_avg_qmd})
    ds, record = accuracy.refined_until_met(reduce, table, model, "valley", grid,
                                            config_needs(config), rtol, "NDD of valley 1")
    return reduce(table), ds, record, rtol


def test_ndd_refines_its_grid_until_the_estimates_meet_the_tolerances():
    """A coarse grid whose estimates miss rtol_delta_n = 0.2 %: refined in memory until they meet
    it; the refined curves are closer to the semi-analytic route than the coarse ones, within
    their estimates; a tolerance already met keeps the table's result unchanged."""
    config = make_config([CONFIG["model"]["valleys"][0]], 0.1, 0.0, n=(24, 4, 48),
                         points_per_eta=1.0, num=61)
    coarse, fine, record, rtol = refine(config, 0.002, 0.05)
    assert accuracy.relative_error(coarse, rtol)["re_delta_n"] > 0.002  # the table misses it
    found = accuracy.check_tolerance(fine, rtol, "error", "NDD of valley 1", accuracy.NDD_TOLERANCES)
    assert found["re_delta_n"] <= 0.002 and found["im_delta_n"] <= 0.002
    assert record["refinement"].count(":") >= 2, record  # at least one finer grid
    omega = fine["omega"].values
    params = [valley_parameters(config["model"], 0)]
    reference = references(omega, 0.1, params)
    for curve in ("re_delta_n", "im_delta_n"):
        true = np.abs(fine[curve].values - reference[curve])
        assert np.all(true <= fine[f"{curve}_error"].values), curve
        assert true.max() < np.abs(coarse[curve].values - reference[curve]).max(), curve
    unchanged, same, record, _ = refine(config, 1.0, 1.0)
    xr.testing.assert_identical(unchanged, same)
    assert record["refinement"].count(":") == 1


def test_ndd_refinement_stops_at_max_points_and_says_so(caplog):
    config = make_config([CONFIG["model"]["valleys"][0]], 0.1, 0.0, n=(24, 4, 48),
                         points_per_eta=1.0, num=61)
    with caplog.at_level("WARNING"):
        coarse, ds, record, rtol = refine(config, 1e-5, 1.0, max_points=60_000)
    assert "exceeds kgrid.max_points = 6e+04" in caplog.text
    xr.testing.assert_identical(coarse, ds)
    with pytest.raises(accuracy.AccuracyError, match="misses accuracy.rtol_delta_n = 1e-05"):
        accuracy.check_tolerance(ds, rtol, "error", "NDD of valley 1", accuracy.NDD_TOLERANCES)
