"""Error estimates of the NDD spectrum from the data itself (qmdipole.ndd, qmdipole.errors).

Every curve NAME of ``spectrum_from_table`` (⟨G⟩, Re/Im Δn of Eq. 12 and of the Kubo route) has
NAME_error, from the table's half-density subgrid. Checks, against the independent semi-analytic
route of :mod:`qmdipole.analytic` with no cut-off (``x_max=None``):

* on the paper's parameters and seeded random insulating Eq. 14 sets (Δ_i/Δ₁ in [1, 3], m_i in
  [0.5, 3], ±|v'_i| in [0.3, 1.5] with m_i v'_i²/2 <= 0.8 Δ_i, η in [0.02, 0.1], μ in the global
  gap, 1–3 valleys), valley sums on moderate η-refined grids: the true error is below the estimate
  at every ω, and the estimate is not absurdly loose (max estimate / max true error below LOOSE);
* the spectral-bin term bounds the change of Δn from 8 to 32 bins per η (the part of the error
  both grids share, which Richardson cannot see);
* the data contract: units, long names, methods, valley combination.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from qmdipole import analytic, kgrid, ndd, tabulate, valleys
from qmdipole.models import valley_parameters

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
CURVES = ("avg_qmd", "re_delta_n", "im_delta_n")
# looseness accepted (max estimate / max true error). Measured on these grids (points_per_eta
# 1.5, where the η-broadened quadrature converges pre-asymptotically, ~h⁴-h⁵ between the grid and
# its subgrid, while the estimate assumes the asymptotic h², which it reaches at points_per_eta
# ~3): <G> up to 21x, Δn up to 80x; at points_per_eta 3, Δn ~3-7x
LOOSE = {"avg_qmd": 40.0, "re_delta_n": 120.0, "im_delta_n": 120.0}

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
    tables = tabulate.valley_tables(config["model"], config["kgrid"], kgrid.requirements(config))
    per_valley = [ndd.spectrum_from_table(table, model, **options) for model, _, table in tables]
    params = [valley_parameters(config["model"], v) for v in range(len(per_valley))]
    return options["omega"], per_valley, params


def references(omega, eta, params):
    delta_n = analytic.valley_sum(analytic.delta_n_insulator, omega, params, eta=eta, x_max=None)
    return {"avg_qmd": analytic.valley_sum(analytic.avg_qmd_insulator, omega, params),
            "re_delta_n": delta_n.real, "im_delta_n": delta_n.imag}


@pytest.mark.parametrize("name", list(SETS))
def test_estimate_bounds_the_true_error(name):
    """|curve − analytic| <= curve_error at every ω, valley sums; not looser than LOOSE."""
    valley_list, eta, mu = SETS[name]
    config = make_config(valley_list, eta, mu)
    omega, per_valley, params = valley_spectra(config, kubo=name == "paper")
    total = valleys.combine_valleys(per_valley, dim="omega")
    reference = references(omega, eta, params)
    # ω within 1e-3 of a band edge 2Δ_i: ⟨G⟩'s √ onset lies below both grids' lowest transition,
    # a known blind spot of the estimate (documented in qmdipole.ndd)
    seen = np.all([np.abs(omega - 2 * p["delta"]) > 1e-3 for p in params], axis=0)
    report = {}
    for curve in CURVES + (("re_delta_n_kubo", "im_delta_n_kubo") if name == "paper" else ()):
        target = reference[curve.removesuffix("_kubo")]
        true = np.abs(total[curve].values - target)[seen]
        estimate = total[f"{curve}_error"].values[seen]
        worst = np.max(true / np.maximum(estimate, 1e-300))
        assert np.all(true <= estimate), (
            f"{name} {curve}: true error exceeds the estimate by up to {worst:.2f}x "
            f"(max true {true.max():.2e}, peak {np.abs(target).max():.3f})")
        loose = estimate.max() / true.max()
        assert loose <= LOOSE[curve.removesuffix("_kubo")], f"{name} {curve}: {loose:.1f}x loose"
        report[curve] = (f"{true.max() / np.abs(target).max():.1e}", f"{worst:.2f}", f"{loose:.1f}")
    print(f"{name}: (max true/peak, worst true/estimate, max estimate/max true) {report}")


def test_spectral_bin_term_bounds_the_bin_error():
    """The bins are common to the grid and its subgrid: the estimate carries BIN_ERROR (s/η)⁴
    max|Δn| for them. Δn with 8 and with 32 bins per η on one table differ by less."""
    config = make_config([CONFIG["model"]["valleys"][0]], 0.05, 0.0, n=(40, 4, 80))
    omega, (coarse,), _ = valley_spectra(config)
    _, (fine,), _ = valley_spectra(config, bins_per_eta=32)
    s_over_eta = coarse.attrs["spectral_bin_width"] / 0.05
    for part in ("re", "im"):
        change = np.abs(coarse[f"{part}_delta_n"].values - fine[f"{part}_delta_n"].values).max()
        bound = ndd.BIN_ERROR * s_over_eta**4 * np.abs(coarse[f"{part}_delta_n"].values).max()
        assert 0 < change <= bound, (part, change, bound)


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
