"""Δn(ω) with ``ndd.transition_cutoff: auto``: the continuum model's converged answer.

The k-grid carries w(x)·(its deposits) and the closed-form tail the rest (qmdipole.ndd). Checks:

* grid + tail against the full 1-D integral of :func:`qmdipole.analytic.delta_n_insulator`
  (``x_max=None``, no cut-off) on the paper's parameters and on three other valid sets (masses,
  signs of v', gaps, η, 2–3 valleys, μ and T in the gap): Re and Im within 0.5 % of max|Δn|;
* the split: moving it from X₁ to 1.5·X₁ moves Δn by ≤ 1e-3 of its peak (the grid and the tail
  are independent routes for the transitions in between);
* the Kubo route with the tail agrees with Eq. 12 with the tail as tightly as without it;
* an explicit number is still the hard cut-off of the 1-D integral with that ``x_max``;
* the tail's quadrature against scipy's adaptive quad; the split leaves no Fermi factor < 1;
* ``auto`` on a model without a tail is refused, and the Brillouin zone needs none.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate

from qmdipole import analytic, kgrid, ndd, tabulate
from qmdipole.models import LatticeValleyModel, Model, ValleyModel, build_model, valley_parameters

from checks import config_grid, config_needs, config_tables

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
PAPER = CONFIG["model"]["valleys"]

pytestmark = pytest.mark.filterwarnings("ignore:the k-grid resolves transition energies")


def make_config(valleys, mass=1.9, eta=0.1, omega=(0.2, 7.0, 341), mu=0.0, temperature=0.0,
                cutoff="auto", n=(40, 4, 80), points_per_eta=5.0):
    config = copy.deepcopy(CONFIG)
    config["model"].update(mass=mass, valleys=copy.deepcopy(valleys))
    config["kgrid"].update(n=list(n), points_per_eta=points_per_eta)
    config["quadrupolar_current"].update(mu={"start": mu, "stop": mu + 0.01, "num": 2},
                                         temperatures=[])
    start, stop, num = omega
    config["ndd"].update(omega={"start": start, "stop": stop, "num": num}, eta=eta, mu=mu,
                         temperature=temperature, transition_cutoff=cutoff)
    return config


def build_tables(config):
    """[(model, grid, table)] per valley, built as the pipeline builds them."""
    return config_tables(config)


def spectrum(config, model, table, kubo=False, **overrides):
    section = config["ndd"]
    options = dict(omega=np.linspace(**section["omega"]), eta=section["eta"], mu=section["mu"],
                   temperature=section["temperature"], kubo=kubo, dq=section["kubo_dq"],
                   transition_cutoff=section["transition_cutoff"])
    options.update(overrides)
    return ndd.spectrum_from_table(table, model, **options)


def spectra(config, kubo=False, tables=None, **overrides):
    """[(params, dataset)] per valley."""
    return [(valley_parameters(config["model"], i), spectrum(config, model, table, kubo, **overrides))
            for i, (model, _, table) in enumerate(tables or build_tables(config))]


def delta_n(ds, suffix=""):
    return ds[f"re_delta_n{suffix}"].values + 1j * ds[f"im_delta_n{suffix}"].values


def rel(a, b, scale):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(scale).max())


# ------------------------------------------------------------- grid + tail vs the full integral

PARAMETER_SETS = {
    # Fig. 4: Δ = (1, 2), v' = ±1, m v'²/2 = 0.95
    "paper": dict(valleys=PAPER, mass=1.9, eta=0.1),
    # same sign of v' in both valleys, light mass, m v'²/2 = 0.9 and 0.2
    "light": dict(valleys=[{"delta": 1.0, "vprime": 1.5, "tau": 1},
                           {"delta": 1.5, "vprime": 0.7, "tau": -1}], mass=0.8, eta=0.08,
                   omega=(0.2, 5.0, 241)),
    # three valleys, heavy mass, the middle one with a global gap of only 0.085
    "three valleys": dict(valleys=[{"delta": 1.0, "vprime": -0.7, "tau": 1},
                                   {"delta": 1.3, "vprime": 0.9, "tau": -1},
                                   {"delta": 2.2, "vprime": -1.1, "tau": 1}], mass=3.0, eta=0.1,
                          omega=(0.2, 4.6, 221)),  # X₁ of valleys 2, 3 set by their bands
    # a mass per valley, μ and T inside both gaps (|μ| + 40T enters the split)
    "masses, mu, T": dict(valleys=[{"delta": 0.8, "vprime": 0.5, "tau": 1, "mass": 4.0},
                                   {"delta": 1.2, "vprime": -1.3, "tau": -1, "mass": 1.0}],
                          mass=1.0, eta=0.06, mu=0.1, temperature=0.005, omega=(0.2, 4.0, 191)),
}


@pytest.mark.parametrize("case", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_auto_matches_the_full_integral(case):
    """Σ valleys of grid + tail against Σ valleys of −8π ∫_{2Δ}^∞ dx x⟨G⟩/(x² − z²)²: Re and Im
    within 0.5 % of max|Δn| (measured ≤ 0.19 %), and each valley within 0.5 % of its own peak;
    per valley, the hard cut-off at the same X₁ misses by far more (the tail is not negligible)."""
    config = make_config(**case)
    omega, eta = np.linspace(**config["ndd"]["omega"]), config["ndd"]["eta"]
    tables = build_tables(config)
    per_valley = spectra(config, tables=tables)
    total = sum(delta_n(ds) for _, ds in per_valley)
    reference = analytic.valley_sum(analytic.delta_n_insulator, omega,
                                    [p for p, _ in per_valley], eta=eta, x_max=None)
    errors = (rel(total.real, reference.real, reference), rel(total.imag, reference.imag, reference))
    assert max(errors) <= 5e-3, f"Re, Im error {errors} of max|Delta n| (limit 5e-3)"
    for (p, ds), (model, _, table) in zip(per_valley, tables):
        own = analytic.delta_n_insulator(omega, eta=eta, x_max=None, **p)
        error = rel(delta_n(ds), own, own)
        assert error <= 5e-3, (p, error)
        start = ds.attrs["high_energy_tail_start"]
        assert ds.attrs["transition_cutoff"] == "none"
        assert start >= omega[-1] + 20 * eta
        assert ds.attrs["high_energy_tail_end"] == pytest.approx(1.5 * start)
        assert 0.01 < ds.attrs["high_energy_tail_share"] < 1
        cut = delta_n(spectrum(config, model, table, transition_cutoff=start))
        assert rel(cut, own, own) > 4 * error, (p, rel(cut, own, own), error)
    print(f"auto vs full integral: Re {errors[0]:.2e}, Im {errors[1]:.2e} of max|Delta n|")


# ------------------------------------------------------------------------ independence of X₁

@dataclasses.dataclass
class LaterSplit(ValleyModel):
    """Eq. 14 with its tail taken over 1.5 times further up (start and end)."""

    def transition_tail(self, **conditions):
        tail = super().transition_tail(**conditions)
        return tail._replace(start=1.5 * tail.start, end=1.5 * tail.end)


def test_split_point_does_not_matter():
    """X₁ → 1.5·X₁ on one table: the transitions between the two splits move from the closed form
    to the grid; Δn moves by ≤ 1e-3 of its peak."""
    config = make_config(PAPER[:1], eta=0.1)
    params = valley_parameters(config["model"], 0)
    model, later = ValleyModel(**params), LaterSplit(**params)
    tail = later.transition_tail(mu=0.0, temperature=0.0, omega_max=config["ndd"]["omega"]["stop"],
                                 eta=config["ndd"]["eta"])
    needs = dataclasses.replace(config_needs(config), transition_cutoff=tail.end)
    grid = kgrid.grid_for(later, "valley", config_grid(config), needs)
    table = tabulate.tabulate(later, grid).compute()
    first, second = (spectrum(config, m, table) for m in (model, later))
    assert second.attrs["high_energy_tail_start"] == pytest.approx(
        1.5 * first.attrs["high_energy_tail_start"])
    change = rel(delta_n(second), delta_n(first), delta_n(first))
    assert change <= 1e-3, f"moving the split changes Delta n by {change:.2e} of its peak"
    print(f"split X1 -> 1.5 X1: max change {change:.1e} of max|Delta n|")


# ------------------------------------------------------------------------------- Kubo, cut-off

def test_kubo_route_with_the_tail_agrees_with_eq12():
    config = make_config(PAPER, eta=0.1, points_per_eta=1.5)
    for _, ds in spectra(config, kubo=True):
        own = rel(delta_n(ds, "_kubo"), delta_n(ds), delta_n(ds))
        assert own <= 1e-6 and ds.attrs["kubo_max_relative_difference"] <= 1e-6, own


def test_explicit_number_is_a_hard_cutoff():
    """transition_cutoff = 9: the 1-D integral with x_max = 9 (within 1 % as in test_ndd), and not
    the full one."""
    config = make_config(PAPER, eta=0.1, cutoff=9.0, points_per_eta=1.5)
    omega, eta = np.linspace(**config["ndd"]["omega"]), config["ndd"]["eta"]
    for p, ds in spectra(config):
        cut = analytic.delta_n_insulator(omega, eta=eta, x_max=9.0, **p)
        full = analytic.delta_n_insulator(omega, eta=eta, x_max=None, **p)
        assert rel(delta_n(ds), cut, cut) <= 1e-2
        assert rel(delta_n(ds), full, full) > 5e-2
        assert ds.attrs["transition_cutoff"] == 9.0
        assert ds.attrs["high_energy_tail"].startswith("none")
        assert "high_energy_tail_start" not in ds.attrs


# ---------------------------------------------------------------------------------- the tail

def test_tail_quadrature_matches_adaptive_quad():
    """ndd.tail_delta_n (Gauss–Legendre, mapped to ∞) against scipy quad of its defining integral,
    with a resonance just below the split."""
    model = ValleyModel(delta=1.0, vprime=-1.2, mass=0.6)
    omega, eta = np.array([0.3, 2.0, 5.0, 7.9, 8.0]), 0.02
    tail = model.transition_tail(mu=0.0, temperature=0.0, omega_max=8.0, eta=eta)
    assert tail.start == pytest.approx(8.0 + 20 * eta)  # the nearest resonance: 20η below the split
    fast = ndd.tail_delta_n(tail, omega, eta)

    def integrand(x, w, part):
        g = analytic.avg_qmd_insulator(x, delta=1.0, vprime=-1.2, mass=0.6)
        value = (1 - ndd.partition_of_unity(x, tail.start, tail.end)) * x * g / (x * x - complex(w, eta) ** 2) ** 2
        return value.real if part == 0 else value.imag

    options = dict(epsabs=1e-15, epsrel=1e-12, limit=200)
    slow = np.array([-8 * math.pi * complex(*(
        integrate.quad(integrand, tail.start, tail.end, args=(w, part), **options)[0]
        + integrate.quad(integrand, tail.end, np.inf, args=(w, part), **options)[0]
        for part in (0, 1))) for w in omega])
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=0)


def test_partition_of_unity():
    x = np.linspace(0.0, 10.0, 100001)
    w = ndd.partition_of_unity(x, 4.0, 6.0)
    assert np.all(w[x <= 4.0] == 1.0) and np.all(w[x >= 6.0] == 0.0)
    assert np.all(np.diff(w) <= 0)
    np.testing.assert_allclose(w + ndd.partition_of_unity(10.0 - x, 4.0, 6.0), 1.0, atol=1e-15)


@pytest.mark.parametrize("params, mu, temperature, omega_max", [
    (dict(delta=1.0, vprime=1.0, mass=1.9), 0.0, 0.0, 8.0),
    (dict(delta=0.5, vprime=-2.0, mass=0.2), 0.3, 0.01, 1.5),   # the band condition decides
    (dict(delta=1.2, vprime=0.0, mass=1.0), -0.4, 0.02, 1.0),
])
def test_tail_starts_where_every_transition_is_insulating(params, mu, temperature, omega_max):
    """Brute force over the states with 2E ≥ start (|k_z| ≤ √(2m(E − Δ))): ε_c − μ and μ − ε_v
    exceed 40 k_BT + Δ/2, so f_v − f_c = 1 there and no Fermi surface is cut by the split."""
    model = ValleyModel(**params)
    tail = model.transition_tail(mu=mu, temperature=temperature, omega_max=omega_max, eta=0.02)
    assert tail.start >= omega_max + 20 * 0.02 and tail.end == 1.5 * tail.start
    energy = np.linspace(tail.start / 2, 20 * tail.start, 20001)[:, None]
    kz = np.sqrt(2 * model.mass * (energy - model.delta)) * np.linspace(-1, 1, 401)[None, :]
    conduction, valence = model.vprime * kz + energy, model.vprime * kz - energy
    room = min((conduction - mu).min(), (mu - valence).min())
    assert room >= 40 * temperature + 0.5 * model.delta - 1e-9, room


# ------------------------------------------------------------------------------- other models

class BareModel:
    """A user's model (kind: python) with only the interface the pipeline asks for: Eq. 14 inside."""

    n_bands = 2
    name = "bare"

    def __init__(self, **params):
        self.inner = ValleyModel(**params)

    def hamiltonian(self, kx, ky, kz):
        return self.inner.hamiltonian(kx, ky, kz)

    def hamiltonian_gradient(self, kx, ky, kz):
        return self.inner.hamiltonian_gradient(kx, ky, kz)


def test_auto_without_a_tail_is_refused():
    """A finite k-window and a model that offers no closed form: auto is refused, naming the key;
    an explicit number is accepted."""
    assert Model().transition_tail(mu=0.0, temperature=0.0, omega_max=1.0, eta=0.1) is None
    config = make_config(PAPER[:1], omega=(0.2, 4.0, 39), n=(8, 8, 8), points_per_eta=0.0)
    config["kgrid"].update(kind="cartesian", window={"k1": [-3, 3], "k2": [-3, 3], "k3": [-3, 3]})
    model = BareModel(**valley_parameters(config["model"], 0))
    grid = kgrid.grid_for(model, "python", config_grid(config), config_needs(config))
    table = tabulate.tabulate(model, grid).compute()
    with pytest.raises(ndd.SpectrumError, match="set ndd.transition_cutoff to a number"):
        spectra(config, tables=[(model, grid, table)])
    (_, ds), = spectra(config, tables=[(model, grid, table)], transition_cutoff=6.0)
    assert ds.attrs["transition_cutoff"] == 6.0


@pytest.mark.parametrize("value", ["none", 0.0, -1.0, True])
def test_bad_cutoff_is_refused(value):
    config = make_config(PAPER[:1], n=(8, 4, 16), points_per_eta=0.0)
    (model, grid, table), = config_tables(config)
    with pytest.raises(ndd.SpectrumError, match="ndd.transition_cutoff must be 'auto' or a positive"):
        spectra(config, tables=[(model, grid, table)], transition_cutoff=value)


def test_brillouin_zone_needs_no_cutoff():
    """Lattice model, auto: every transition of the zone, the same as any cut-off above them."""
    config = make_config(PAPER[:1], eta=0.2, omega=(0.2, 5.0, 49), n=(12, 12, 16), points_per_eta=0.0)
    config["model"].update(kind="lattice", lattice_constant=1.0)
    assert config_needs(config).transition_cutoff is None
    (_, auto), = spectra(config)
    (_, cut), = spectra(config, transition_cutoff=50.0)
    assert auto.attrs["transition_cutoff"] == "none" and "high_energy_tail_start" not in auto.attrs
    np.testing.assert_allclose(delta_n(auto), delta_n(cut), rtol=0, atol=1e-12 * np.abs(delta_n(cut)).max())


def test_grid_needs_hold_the_largest_tail_end():
    config = make_config(**PARAMETER_SETS["three valleys"])
    ends = [build_model(config["model"], i).transition_tail(
        mu=0.0, temperature=0.0, omega_max=4.6, eta=0.1).end for i in range(3)]
    assert len(set(ends)) > 1
    assert config_needs(config).transition_cutoff == max(ends)
    assert config_needs(make_config(PAPER, cutoff=12.5)).transition_cutoff == 12.5
    assert LatticeValleyModel(delta=1.0, vprime=1.0).transition_tail(
        mu=0, temperature=0, omega_max=1, eta=0.1) is None
