"""Physics validation of the NDD spectrum Δn(ω) and the averaged quantum metric dipole ⟨G⟩(ω)
(Eqs. 4, 11–13, issue 6).

* Default configuration (both valleys, tabulated once in a module-scoped fixture): ⟨G⟩ against
  the closed form and Δn against the 1-D reduction of :mod:`qmdipole.analytic` (acceptance of
  issue 6: 0.5 % and 1 % of the maxima over ω in [0.2, 8]); Eq. 12 vs Kubo; the peaks at 2Δ₁ and
  2Δ₂ with opposite signs and the derived peak height; the √(ω/2Δ_i − 1) edge law of ⟨G⟩.
* Small grids: Eq. 12 vs the Kubo formula for the insulator and for metals (T > 0 and T = 0, the
  latter with tetrahedron Fermi-surface weights), also for the lattice model; Kramers–Kronig;
  Im Δn → Eq. 13's derivative as η → 0; symmetric-pair and v' = 0 nulls; the metallic case;
  bad input.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.signal import hilbert

from qmdipole import analytic, integrand, ndd, tabulate, valleys
from qmdipole.models import valley_parameters

from checks import config_tables

CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
CONFIG = yaml.safe_load(CONFIG_PATH.read_text())
VALLEY1 = dict(delta=1.0, vprime=1.0, tau=1)
SYMMETRIC_PAIR = [dict(delta=1.0, vprime=1.0, tau=1), dict(delta=1.0, vprime=-1.0, tau=-1)]


# ----------------------------------------------------------------------------------- helpers

def small_config(model=None, n=(40, 4, 80), omega=(0.2, 7.0, 341), eta=0.1, mu=0.0,
                 temperature=0.0, cutoff=8.0, points_per_eta=1.5):
    """The default configuration on a small grid (refined for η unless points_per_eta = 0)."""
    config = copy.deepcopy(CONFIG)
    config["model"].update(copy.deepcopy(model or {}))
    config["kgrid"].update(n=list(n), points_per_eta=points_per_eta)
    config["quadrupolar_current"].update(mu={"start": -0.5, "stop": 0.5, "num": 3}, temperatures=[])
    start, stop, num = omega
    config["ndd"].update(omega={"start": start, "stop": stop, "num": num}, eta=eta, mu=mu,
                         temperature=temperature, transition_cutoff=cutoff)
    return config


def omega_grid(config):
    return np.linspace(**config["ndd"]["omega"])


def tables(config):
    """[(model, grid, table)] per valley, the way the pipeline builds them."""
    return config_tables(config)


def spectrum(config, model, table, kubo=True, **overrides):
    section = config["ndd"]
    options = dict(omega=omega_grid(config), eta=section["eta"], mu=section["mu"],
                   temperature=section["temperature"], kubo=kubo, dq=section["kubo_dq"],
                   transition_cutoff=section["transition_cutoff"])
    options.update(overrides)
    return ndd.spectrum_from_table(table, model, **options)


def spectra(config, kubo=True, **overrides):
    return [spectrum(config, model, table, kubo, **overrides) for model, _, table in tables(config)]


def complex_delta_n(ds, suffix=""):
    return ds[f"re_delta_n{suffix}"].values + 1j * ds[f"im_delta_n{suffix}"].values


def rel(a, b, scale=None):
    """max|a − b| / max|scale| (scale defaults to b)."""
    scale = np.abs(b if scale is None else scale).max()
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / scale)


# ------------------------------------------------------------------- default configuration

@pytest.fixture(scope="module")
def default_spectra():
    """Each valley of config/config.yaml tabulated once; Δn, ⟨G⟩ (and Kubo, as configured)."""
    section = CONFIG["ndd"]
    per_valley = [spectrum(CONFIG, model, table, kubo=section["kubo_check"])
                  for model, _, table in tables(CONFIG)]
    params = [valley_parameters(CONFIG["model"], v) for v in range(len(per_valley))]
    return {"omega": omega_grid(CONFIG), "per_valley": per_valley, "params": params,
            "total": valleys.combine_valleys(per_valley, dim="omega"), "eta": section["eta"],
            "x_max": None if section["transition_cutoff"] == "auto" else section["transition_cutoff"]}


@pytest.mark.slow
def test_default_avg_qmd_matches_closed_form(default_spectra):
    """Issue 6 acceptance: ⟨G⟩ (two valleys) within 0.5 % of its maximum over ω in [0.2, 8]."""
    omega, total = default_spectra["omega"], default_spectra["total"]
    assert omega[0] <= 0.2 and omega[-1] >= 8.0
    reference = analytic.valley_sum(analytic.avg_qmd_insulator, omega, default_spectra["params"])
    error = rel(total["avg_qmd"].values, reference)
    per_valley = [rel(ds["avg_qmd"].values, analytic.avg_qmd_insulator(omega, **p))
                  for ds, p in zip(default_spectra["per_valley"], default_spectra["params"])]
    assert error <= 5e-3, f"<G>: max error {error:.3e} of max|<G>| (limit 5e-3)"
    assert max(per_valley) <= 5e-3, f"<G> per valley: max errors {per_valley}"
    # no transitions below the optical gap 2Δ₁ = 2 (insulator, unbroadened Eq. 13)
    assert np.all(total["avg_qmd"].values[omega < 2.0] == 0.0)
    print(f"default <G>: max error / max|<G>| = {error:.3e} "
          f"(valleys: {', '.join(f'{e:.2e}' for e in per_valley)})")


@pytest.mark.slow
def test_default_delta_n_matches_reduction(default_spectra):
    """Issue 6 acceptance: Δn (two valleys) within 1 % of max|Δn| over ω in [0.2, 8], against the
    1-D reduction with the same η and transition cut-off (x_max; none for auto, the full
    integral); also per valley."""
    omega, eta, x_max = default_spectra["omega"], default_spectra["eta"], default_spectra["x_max"]
    total = complex_delta_n(default_spectra["total"])
    reference = analytic.valley_sum(analytic.delta_n_insulator, omega, default_spectra["params"],
                                    eta=eta, x_max=x_max)
    error = rel(total, reference)
    per_valley = [rel(complex_delta_n(ds),
                      analytic.delta_n_insulator(omega, eta=eta, x_max=x_max, **p))
                  for ds, p in zip(default_spectra["per_valley"], default_spectra["params"])]
    assert error <= 1e-2, f"Delta n: max error {error:.3e} of max|Delta n| (limit 1e-2)"
    assert max(per_valley) <= 1e-2, f"Delta n per valley: max errors {per_valley}"
    print(f"default Delta n: max |error| / max|Delta n| = {error:.3e} "
          f"(valleys: {', '.join(f'{e:.2e}' for e in per_valley)})")


@pytest.mark.slow
def test_default_kubo_cross_check(default_spectra):
    if not CONFIG["ndd"]["kubo_check"]:
        pytest.skip("ndd.kubo_check is off in config/config.yaml")
    for ds in default_spectra["per_valley"]:
        own = rel(complex_delta_n(ds, "_kubo"), complex_delta_n(ds))
        assert own <= 1e-6 and ds.attrs["kubo_max_relative_difference"] <= 1e-6, own


@pytest.mark.slow
def test_default_peaks_at_the_two_edges_have_opposite_signs(default_spectra):
    """Fig. 4a: Im Δn peaks at 2Δ₁ (negative, v'₁ > 0) and 2Δ₂ (positive, v'₂ < 0); they are the
    spectrum's extremes; each valley's peak has the height derived from the edge singularity,
    −(sgn v'/4)√(mv'²/2Δ)√(2Δ/η)(3√3/8)^½ at ω = 2Δ + η/√3."""
    omega, eta = default_spectra["omega"], default_spectra["eta"]
    im = default_spectra["total"]["im_delta_n"].values
    low, high = np.argmin(im), np.argmax(im)
    assert 2.0 <= omega[low] <= 2.0 + 3 * eta and im[low] < 0, (omega[low], im[low])
    assert 4.0 <= omega[high] <= 4.0 + 3 * eta and im[high] > 0, (omega[high], im[high])
    for ds, p in zip(default_spectra["per_valley"], default_spectra["params"]):
        edge = 2 * p["delta"]
        near = (omega > edge - 5 * eta) & (omega < edge + 5 * eta)
        peak = ds["im_delta_n"].values[near][np.argmax(np.abs(ds["im_delta_n"].values[near]))]
        predicted = (-np.sign(p["vprime"]) / 4 * math.sqrt(p["mass"] * p["vprime"] ** 2 / edge)
                     * math.sqrt(edge / eta) * math.sqrt(3 * math.sqrt(3) / 8))
        assert peak == pytest.approx(predicted, rel=0.05), (p, peak, predicted)


@pytest.mark.slow
def test_default_avg_qmd_edge_law(default_spectra):
    """Above each edge ⟨G⟩ = sgn(v')(Δ²/π²)√(mv'²/2Δ)√ε (1 + ε/3 + O(ε²)), ε = ω/2Δ_i − 1: the ratio
    of the pipeline's ⟨G⟩ to the leading term extrapolates to 1 at the edge."""
    omega = default_spectra["omega"]
    for ds, p in zip(default_spectra["per_valley"], default_spectra["params"]):
        eps = omega / (2 * p["delta"]) - 1
        near = (eps >= 0.01) & (eps <= 0.1)
        assert near.sum() >= 10
        ratio = ds["avg_qmd"].values[near] / analytic.avg_qmd_near_edge(omega[near], **p)
        slope, intercept = np.polyfit(eps[near], ratio, 1)
        assert abs(intercept - 1) < 1.5e-2, (p, intercept)
        assert 0.1 < slope < 0.6, (p, slope)
        assert np.abs(ratio - (1 + eps[near] / 3)).max() < 1.5e-2


@pytest.mark.slow
def test_default_insulator_has_no_intraband_term(default_spectra):
    for ds in default_spectra["per_valley"]:
        assert np.all(ds["re_delta_n_intraband"].values == 0.0)
        assert np.all(ds["im_delta_n_intraband"].values == 0.0)
        for key in ("eta", "mu", "temperature", "transition_cutoff"):
            assert key in ds.attrs
        assert ds.attrs["transition_step_over_eta"] <= 1.0


# ------------------------------------------------------------------------------ Kubo vs Eq. 12

@pytest.mark.parametrize("model, mu, temperature, n", [
    (None, 0.0, 0.0, (40, 4, 80)),
    (None, 0.5, 0.05, (40, 4, 80)),
    (None, 0.5, 0.0, (40, 4, 80)),
    ({"kind": "lattice", "lattice_constant": 1.0}, 0.0, 0.0, (16, 16, 24)),
    ({"kind": "lattice", "lattice_constant": 1.0}, 0.5, 0.05, (16, 16, 24)),
], ids=["insulator", "metal-T0.05", "metal-T0", "lattice-insulator", "lattice-metal-T0.05"])
@pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")
def test_kubo_formula_agrees_with_eq12(model, mu, temperature, n):
    """Eq. 12 (two-band geometric formula) and Eq. 11 (Kubo, differentiated in q) agree to 1e-6
    relative on the same grid and η, both valleys; T = 0 metals use tetrahedron f' weights."""
    lattice = model is not None
    config = small_config(model=model, n=n, mu=mu, temperature=temperature,
                          omega=(0.2, 5.0, 97) if lattice else (0.2, 7.0, 341),
                          eta=0.2 if lattice else 0.1, points_per_eta=0.0 if lattice else 1.5)
    for ds in spectra(config):
        geometric, kubo = complex_delta_n(ds), complex_delta_n(ds, "_kubo")
        assert np.all(np.isfinite(geometric)) and np.abs(geometric).max() > 0.1
        own = rel(kubo, geometric)
        assert own <= 1e-6, f"Kubo vs Eq. 12: {own:.2e}"
        assert ds.attrs["kubo_max_relative_difference"] <= 1e-6
        assert ds.attrs["kubo_max_relative_difference"] == pytest.approx(own, rel=1e-6, abs=1e-15)


# ------------------------------------------------------------------------------ Kramers–Kronig

@pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")
def test_kramers_kronig():
    """Re Δn and Im Δn are a Hilbert pair: Δn(ω) = F(ω + iη) with F analytic in the upper half plane,
    F(−z*) = F(z)*, F ~ z⁻² at large z. The lattice model has a finite bandwidth (transitions
    <= 5Δ), so with a transition cut-off above it the spectrum can be computed on a wide ω grid,
    [0, 50] (Re even, Im odd continue it to [−50, 50]); the FFT Hilbert transform then reproduces
    each part from the other to ~1e-9 (tolerance 1e-6 of the maxima)."""
    eta, step, top = 0.1, 0.01, 50.0
    omega = np.arange(0.0, top + step / 2, step)
    config = small_config(model={"kind": "lattice", "lattice_constant": 1.0,
                                 "valleys": [VALLEY1]}, n=(24, 24, 48),
                          omega=(0.0, 5.0, 11), eta=eta, cutoff=top + 2.0, points_per_eta=0.0)
    (model, _, table), = tables(config)
    ds = spectrum(config, model, table, kubo=False, omega=omega)
    re, im = ds["re_delta_n"].values, ds["im_delta_n"].values
    assert np.abs(im[omega > 12]).max() < 1e-3 * np.abs(im).max()  # the spectrum has died out
    full_re = np.concatenate([re[:0:-1], re])
    full_im = np.concatenate([-im[:0:-1], im])
    size = len(full_re)
    hilbert_of_re = hilbert(np.pad(full_re, (0, 3 * size)))[:size].imag  # H[Re] = Im
    hilbert_of_im = hilbert(np.pad(full_im, (0, 3 * size)))[:size].imag  # H[Im] = −Re
    inside = np.abs(np.concatenate([-omega[:0:-1], omega])) <= 8.0
    error_im = rel(hilbert_of_re[inside], full_im[inside])
    error_re = rel(-hilbert_of_im[inside], full_re[inside])
    assert error_im < 1e-6 and error_re < 1e-6, (
        f"Kramers-Kronig: |H[Re] - Im| = {error_im:.2e}, |H[Im] + Re| = {error_re:.2e} of the maxima")
    print(f"Kramers-Kronig (omega in [-8, 8]): |H[Re] - Im| = {error_im:.1e}, "
          f"|H[Im] + Re| = {error_re:.1e} of the maxima")


# --------------------------------------------------------------- Eq. 13's derivative as η → 0

def test_im_delta_n_tends_to_eq13_derivative():
    """Im Δn/α → −(2π²/ω) d⟨G⟩/dω as η → 0 (valley 1, ω in [2.5, 5.5], away from the edge), on a
    grid refined for the smallest η: the deviation falls with η (measured 6.4 %, 2.1 %, 1.2 %)."""
    config = small_config(model={"valleys": [VALLEY1]}, omega=(0.2, 5.8, 561), eta=0.05)
    (model, _, table), = tables(config)
    omega = omega_grid(config)
    params = dict(VALLEY1, mass=CONFIG["model"]["mass"])
    h = 1e-5
    derivative = (analytic.avg_qmd_insulator(omega + h, **params)
                  - analytic.avg_qmd_insulator(omega - h, **params)) / (2 * h)
    target = -(2 * np.pi**2 / omega) * derivative
    window = (omega >= 2.5) & (omega <= 5.5)
    deviations = []
    for eta in (0.2, 0.1, 0.05):
        ds = spectrum(config, model, table, kubo=False, eta=eta)
        assert ds.attrs["transition_step_over_eta"] <= 1.0
        deviations.append(rel(ds["im_delta_n"].values[window], target[window]))
    assert np.all(np.diff(deviations) < 0), f"deviations {deviations} do not fall with eta"
    assert deviations[-1] < 0.02, deviations


# ------------------------------------------------------------------------------ physics nulls

@pytest.mark.parametrize("model, n, eta", [
    ({"valleys": SYMMETRIC_PAIR}, (40, 4, 80), 0.1),
    ({"kind": "lattice", "valleys": SYMMETRIC_PAIR}, (16, 16, 24), 0.2),
], ids=["valley", "lattice"])
@pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")
def test_symmetric_pair_gives_zero(model, n, eta):
    """Δ₂ = Δ₁, v'₂ = −v'₁: Δn, its Kubo twin and ⟨G⟩ cancel between the valleys (pointwise: the
    partner's G_zxx,c + G_zxx,v = 2v'g_xx is exactly opposite at the same transition energy)."""
    lattice = "kind" in model
    config = small_config(model=model, n=n, eta=eta,
                          omega=(0.2, 5.0, 97) if lattice else (0.2, 7.0, 341),
                          points_per_eta=0.0 if lattice else 1.5)
    first, second = spectra(config)
    total = valleys.combine_valleys([first, second], dim="omega")
    for suffix in ("", "_kubo"):
        one = np.abs(complex_delta_n(first, suffix)).max()
        assert one > 0.1
        assert np.abs(complex_delta_n(total, suffix)).max() <= 1e-12 * one
    assert np.abs(total["avg_qmd"].values).max() <= 1e-12 * np.abs(first["avg_qmd"].values).max()


def test_vprime_zero_gives_zero():
    reference = spectra(small_config(model={"valleys": [VALLEY1]}), kubo=False)[0]
    flat, = spectra(small_config(model={"valleys": [dict(VALLEY1, vprime=0.0)]}))
    scale = np.abs(complex_delta_n(reference)).max()
    for suffix in ("", "_kubo"):
        assert np.abs(complex_delta_n(flat, suffix)).max() <= 1e-12 * scale
    assert np.abs(flat["avg_qmd"].values).max() <= 1e-12 * np.abs(reference["avg_qmd"].values).max()


# ------------------------------------------------------------------------------- metallic case

@pytest.mark.parametrize("temperature", [0.05, 0.0])
def test_metal(monkeypatch, temperature):
    """μ = 0.5 in valley 1's conduction band: finite output, a nonzero Fermi-surface (A) term and
    intraband term, and a Pauli-blocked ⟨G⟩ that matches the analytic one on the grid's window."""
    mu = 0.5
    config = small_config(model={"valleys": [VALLEY1]}, mu=mu, temperature=temperature)
    (model, grid, table), = tables(config)
    omega = omega_grid(config)
    ds = spectrum(config, model, table, kubo=False)
    delta_n = complex_delta_n(ds)
    for name in ds.data_vars:
        assert np.all(np.isfinite(ds[name].values)), name
    assert ds.attrs["mu"] == mu and ds.attrs["temperature"] == temperature
    intraband = ds["re_delta_n_intraband"].values + 1j * ds["im_delta_n_intraband"].values
    assert np.abs(intraband).max() > 1e-3

    # the A term of Eq. 12 is the one proportional to f': switch f' off and see it go
    monkeypatch.setattr(integrand, "fermi_surface_weights", lambda grid, e, *a: np.zeros_like(e))
    without_a = complex_delta_n(spectrum(config, model, table, kubo=False))
    a_term = np.abs(delta_n - without_a).max() / np.abs(delta_n).max()
    assert a_term > 0.02, f"A term only {a_term:.2e} of max|Delta n|"

    # Pauli blocking: ⟨G⟩ against the analytic Eq. 13 average with f_v − f_c at this μ, T
    window = (grid.axes[0][-1], grid.axes[2][0], grid.axes[2][-1])
    params = dict(VALLEY1, mass=CONFIG["model"]["mass"])
    reference = analytic.avg_qmd(omega, **params, mu=mu, temperature=temperature, window=window)
    insulator = analytic.avg_qmd_insulator(omega, **params)
    assert rel(reference, insulator) > 0.03  # blocking matters at these ω (measured 6 %)
    error = rel(ds["avg_qmd"].values, reference)
    assert error < 1e-2, f"Pauli-blocked <G>: max error {error:.2e} of its maximum"


def test_insulator_intraband_term_vanishes():
    ds, = spectra(small_config(model={"valleys": [VALLEY1]}, mu=0.0, temperature=0.0), kubo=False)
    assert np.all(ds["re_delta_n_intraband"].values == 0.0)
    assert np.all(ds["im_delta_n_intraband"].values == 0.0)
    # at T > 0 it is thermally activated across the gap: exponentially small, not zero
    ds, = spectra(small_config(model={"valleys": [VALLEY1]}, mu=0.0, temperature=0.005), kubo=False)
    scale = np.abs(ds["re_delta_n"].values).max()
    assert np.abs(ds["re_delta_n_intraband"].values).max() < 1e-6 * scale


def test_spectrum_of_a_netcdf_table_equals_the_in_memory_one(tmp_path):
    config = small_config(model={"valleys": [VALLEY1]}, n=(16, 4, 32), omega=(0.2, 5.0, 49),
                          eta=0.2, points_per_eta=1.5)
    (model, grid, table), = tables(config)
    path = tabulate.write_table(model, grid, tmp_path / "valley1.nc", config=config,
                                slab_points=1024, progress=False)
    from_file = spectrum(config, model, str(path), slab_points=2048)
    in_memory = spectrum(config, model, table, slab_points=2048)
    for name in in_memory.data_vars:
        np.testing.assert_array_equal(from_file[name].values, in_memory[name].values, err_msg=name)


def test_result_does_not_depend_on_the_slab_size():
    """Slabs only partition the cells (tetrahedra) and nodes (Fermi-surface and Kubo terms): one
    slab and slabs of a few k1 rows give every curve and estimate to round-off, on the grid and
    on both subgrids of the extrapolation (metal at T > 0, Kubo route included)."""
    config = small_config(model={"valleys": [VALLEY1]}, n=(16, 4, 32), omega=(0.2, 5.0, 49),
                          eta=0.2, mu=1.05, temperature=0.02, points_per_eta=1.5)
    (model, _, table), = tables(config)
    whole = spectrum(config, model, table, slab_points=2**22)
    pieces = spectrum(config, model, table, slab_points=3 * 4 * table.sizes["k3"])
    for name in whole.data_vars:
        # an estimate is a difference of curves: its round-off is the curve's
        curve = whole[name.removesuffix("_error")] if name.endswith("_error") else whole[name]
        scale = np.abs(curve.values).max()
        np.testing.assert_allclose(pieces[name].values, whole[name].values, rtol=0,
                                   atol=1e-12 * scale, err_msg=name)


def test_coarse_levels_above_the_omega_range_keep_the_spectrum(monkeypatch):
    """Above ω_max + TAIL_REACH η the densities are taken on every COARSE_LEVELS-th spectral
    node, and without a high-energy taper on ever coarser ones (gaps growing in proportion to
    x − ω_max, 1/FAR_RESOLUTION of it): against every node (COARSE_LEVELS = 1, no growth), each Δn
    curve (both routes, per pair) agrees to 5e-5 of its peak and to half its error estimate
    (measured: up to 2.3e-5 of the peak, 0.08 of the estimate: the kernels interpolated at
    >= 20 η from every ω and extrapolated in the spacing; linearly interpolated at 16 levels per
    η, 4.6e-5 with even gaps and 1.0e-4 with growing ones) and ⟨G⟩ exactly (an
    insulator and a metal at T > 0 whose Fermi-surface terms are point deposits, both with a hard
    cut-off, and the lattice kind's Brillouin zone). The hats of every other and every fourth
    level (spectral_extrapolation) are sums of the levels' hats: the same weights reproduce 1
    and x, at the nodes of those levels (and the last)."""
    for taper, growth in ((None, True), ((2.0, 6.0), False)):
        acc = ndd.SpectralAccumulator(top=6.0, spacing=0.01, taper=taper, dense_up_to=1.234)
        steps = np.diff(acc.levels)
        assert steps.min() == pytest.approx(0.01)
        assert acc.levels[-1] == pytest.approx(6.0)
        far = acc.levels[:-1] > 1.234
        assert steps[far][0] == pytest.approx(0.01 * ndd.COARSE_LEVELS)
        reach = 0.01 * ndd.COARSE_LEVELS * ndd.FAR_RESOLUTION  # the distance of that first gap
        distance = acc.levels[:-1][far] - acc.levels[:-1][far][0] + reach
        if growth:
            assert steps[far].max() > 1.3 * 0.01 * ndd.COARSE_LEVELS
            assert np.all(steps[far] <= distance / ndd.FAR_RESOLUTION + 1e-12)
        else:
            assert steps[far][:-1].max() == pytest.approx(0.01 * ndd.COARSE_LEVELS)
        acc.densities["single"][0] = np.random.default_rng(3).normal(size=acc.levels.size)
        fine = acc.node_weights("single")[0]
        n = acc.levels.size
        for step in (2, 4):
            coarse = acc.node_weights("single", step)[0]
            on = np.flatnonzero(coarse)  # every step-th level and the last
            assert on.size == len(range(0, n, step)) + ((n - 1) % step != 0)
            for power in (0, 1):
                assert np.sum(coarse * acc.nodes**power) == pytest.approx(
                    np.sum(fine * acc.nodes**power), rel=1e-12)
    lattice = small_config(model={"kind": "lattice", "mass": 1.9, "lattice_constant": 1.0,
                                  "valleys": [VALLEY1]}, n=(32, 32, 32), omega=(2.0, 2.4, 41),
                           eta=0.02, cutoff="auto", points_per_eta=0.0)
    lattice["kgrid"].update(kind="auto", window="auto")
    cases = [(small_config(model={"valleys": [VALLEY1]}, n=(30, 4, 60), omega=(0.2, 3.0, 57),
                           eta=0.05, mu=mu, temperature=temperature, points_per_eta=1.5), {})
             for mu, temperature in ((0.0, 0.0), (1.05, 0.02))]
    for config, options in cases + [(lattice, {"kubo": False})]:
        (model, _, table), = tables(config)
        graded = spectrum(config, model, table, **options)
        monkeypatch.setattr(ndd, "COARSE_LEVELS", 1)
        monkeypatch.setattr(ndd, "FAR_RESOLUTION", np.inf)
        fine = spectrum(config, model, table, **options)
        monkeypatch.undo()
        for name in fine.data_vars:
            if "delta_n" not in name or name.endswith("_error"):
                continue
            scale = np.abs(fine[name].values).max()
            np.testing.assert_allclose(graded[name].values, fine[name].values, rtol=0,
                                       atol=5e-5 * scale, err_msg=name)
            if f"{name}_error" in graded:  # (the intraband term has none: no levels)
                assert np.all(np.abs(graded[name].values - fine[name].values)
                              <= 0.5 * graded[f"{name}_error"].values), name
        np.testing.assert_array_equal(graded["avg_qmd"].values, fine["avg_qmd"].values)


# ------------------------------------------------------------------------------------ bad input

@pytest.fixture(scope="module")
def small_table():
    config = small_config(model={"valleys": [VALLEY1]}, n=(16, 4, 32), points_per_eta=0.0)
    (model, grid, table), = tables(config)
    return config, model, table


@pytest.mark.parametrize("eta", [0.0, -0.1])
def test_non_positive_eta_is_refused(small_table, eta):
    config, model, table = small_table
    with pytest.raises(ndd.SpectrumError, match="eta"):
        spectrum(config, model, table, eta=eta)


def test_negative_temperature_is_refused(small_table):
    config, model, table = small_table
    with pytest.raises(ndd.SpectrumError, match="ndd.temperature"):
        spectrum(config, model, table, temperature=-0.01)


@pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")
def test_omega_beyond_the_transition_cutoff_is_refused(small_table):
    config, model, table = small_table
    eta, cutoff = config["ndd"]["eta"], config["ndd"]["transition_cutoff"]
    spectrum(config, model, table, omega=np.linspace(0.2, cutoff - 10 * eta, 11))  # accepted
    with pytest.raises(ndd.SpectrumError, match="ndd.transition_cutoff"):
        spectrum(config, model, table, omega=np.linspace(0.2, cutoff - 9 * eta, 11))


def test_k_window_smaller_than_the_cutoff_needs_is_refused():
    """An explicit k-window that holds transitions only up to ~6Δ, with transition_cutoff = 16."""
    config = small_config(model={"valleys": [VALLEY1]}, n=(16, 4, 32), points_per_eta=0.0,
                          cutoff=16.0)
    config["kgrid"]["window"] = {"k1": [0.0, 3.0], "k2": [0.0, 6.3], "k3": [-3.0, 3.0]}
    (model, _, table), = tables(config)
    with pytest.raises(ndd.SpectrumError, match="transition_cutoff"):
        spectrum(config, model, table)


def test_fermi_surface_at_the_window_edge_is_refused():
    """A window that cuts through the Fermi surface of a metal."""
    config = small_config(model={"valleys": [VALLEY1]}, n=(16, 4, 32), points_per_eta=0.0,
                          cutoff=4.0, omega=(0.2, 2.0, 10), mu=3.0)
    config["kgrid"]["window"] = {"k1": [0.0, 3.0], "k2": [0.0, 6.3], "k3": [-3.0, 3.0]}
    (model, _, table), = tables(config)
    with pytest.raises(ndd.SpectrumError, match="ndd.mu"):
        spectrum(config, model, table)
