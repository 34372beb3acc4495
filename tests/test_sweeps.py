"""Parameter sweeps (qmdipole.sweeps, workflow/rules/sweeps.smk) and named runs (run.name).

Unit tests of the point expansion and the features; dry runs for what a sweep plans and refuses;
one real run of a two-point sweep against two separate (named) runs of the same settings.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import xarray as xr
import yaml

from conftest import parse_job_stats, planned_outputs
from qmdipole import analytic, sweeps

# The reductions of config/ci.yaml on a smaller grid: a point in a few jobs of seconds each.
TINY = {
    "kgrid": {"n": [12, 4, 24]},
    "quadrupolar_current": {"mu": {"start": -3.0, "stop": 3.0, "num": 13}, "temperatures": []},
    "ndd": {"omega": {"start": 1.5, "stop": 4.5, "num": 13}, "kubo_check": False},
    "accuracy": {"rtol": 10.0},
    "tabulate": {"threads": 1},
}
VPRIME = "model.valleys.0.vprime"
POINT_RULES = {"kgrid", "tabulate", "ndd_valley", "quadrupolar_valley", "ndd_spectrum",
               "quadrupolar_current"}
REDUCTIONS = ("reductions/quadrupolar_current.nc", "reductions/ndd_spectrum.nc")


# ------------------------------------------------------------------------------------------
# expansion of sweep points


def test_values_lin_log_and_list():
    assert sweeps.key_values("s", "k", {"start": 0.0, "stop": 1.0, "num": 5}) == [
        0.0, 0.25, 0.5, 0.75, 1.0]
    logs = sweeps.key_values("s", "k", {"start": 0.1, "stop": 10.0, "num": 3, "spacing": "log"})
    assert logs == [0.1, 1.0, 10.0]
    assert sweeps.key_values("s", "k", [3, 1.5, "closed_form"]) == [3, 1.5, "closed_form"]
    # rounded to 12 digits: the value set and the value in the id agree
    assert sweeps.key_values("s", "k", {"start": 0.1, "stop": 0.3, "num": 3})[2] == 0.3
    with pytest.raises(sweeps.SweepError, match=r"sweep s: k: log spacing needs start and stop > 0"):
        sweeps.key_values("s", "k", {"start": 0.0, "stop": 1.0, "num": 3, "spacing": "log"})


def test_product_and_zip():
    grid = {"parameters": {"a.b": [1, 2], "c.0.d": [0.5, 0.25, 0.125]}}
    product = sweeps.points("s", grid, limit=100)
    assert [p.values for p in product] == [{"a.b": a, "c.0.d": d}
                                           for a in (1, 2) for d in (0.5, 0.25, 0.125)]
    assert product[0].id == "a.b=1_c.0.d=0.5"
    zipped = sweeps.points("s", {"parameters": {"a.b": [1, 2], "c.d": [5, 6]}, "combine": "zip"},
                           limit=100)
    assert [p.values for p in zipped] == [{"a.b": 1, "c.d": 5}, {"a.b": 2, "c.d": 6}]
    with pytest.raises(sweeps.SweepError, match=r"sweep s: combine: zip needs as many values"):
        sweeps.points("s", {"parameters": {"a": [1, 2], "b": [1]}, "combine": "zip"}, limit=100)


def test_point_ids_do_not_depend_on_the_other_values():
    # extending a sweep keeps the ids (and so the cached results) of its points
    short = sweeps.points("s", {"parameters": {VPRIME: [0.5, 1.0]}}, limit=10)
    longer = sweeps.points("s", {"parameters": {VPRIME: [0.25, 0.5, 1.0]}}, limit=10)
    assert {p.id for p in short} < {p.id for p in longer}


def test_points_refused():
    with pytest.raises(sweeps.SweepError, match=r"sweep big has 12 points, above limits.max_sweep_points = 10"):
        sweeps.points("big", {"parameters": {"a": list(range(3)), "b": list(range(4))}}, limit=10)
    for key in ("run.name", "sweeps.x", "ndd.omega.num", "quadrupolar_current.mu.start"):
        with pytest.raises(sweeps.SweepError, match=rf"sweep s: {key} cannot be swept"):
            sweeps.points("s", {"parameters": {key: [1, 2]}}, limit=10)
    with pytest.raises(sweeps.SweepError, match=r"sweep s: the point a=1 appears more than once"):
        sweeps.points("s", {"parameters": {"a": [1, 1.0]}}, limit=10)
    with pytest.raises(sweeps.SweepError, match=r"sweep s: a value 'x/y' has characters"):
        sweeps.points("s", {"parameters": {"a": ["x/y"]}}, limit=10)


def test_set_key_paths():
    config = {"model": {"valleys": [{"vprime": 1.0}, {"vprime": -1.0}], "mass": 1.9}}
    sweeps.set_key(config, "model.valleys.1.vprime", -2.0)
    sweeps.set_key(config, "model.valleys.0.mass", 3.0)  # a new key: the schema decides
    assert config["model"]["valleys"] == [{"vprime": 1.0, "mass": 3.0}, {"vprime": -2.0}]
    for key, message in (("model.valleys.2.vprime", "model.valleys is a list of 2 entries, '2'"),
                         ("model.valeys.0.vprime", "model has no key 'valeys'"),
                         ("model.mass.x", "model.mass is a value")):
        with pytest.raises(sweeps.SweepError, match=message):
            sweeps.set_key(config, key, 1.0)


# ------------------------------------------------------------------------------------------
# derived features, against closed forms


def test_extremum_vertex_is_exact_for_a_parabola():
    x = np.linspace(0.0, 1.0, 11)
    where, value = sweeps.extremum(x, -3.0 + 5 * (x - 0.437) ** 2)
    assert where == pytest.approx(0.437, abs=1e-12) and value == pytest.approx(-3.0, abs=1e-12)


def test_edge_slope_recovers_the_closed_form():
    # <G> of Eq. 14 (insulator) on a grid: A -> sgn(v') Delta^2/pi^2 sqrt(m v'^2/2 Delta); the
    # fit's u^5 remainder over u <= 1/2 biases A by ~0.4 %
    params = dict(delta=1.5, vprime=-0.8, mass=2.0)
    omega = np.linspace(2.5, 4.5, 201)
    slope = sweeps.edge_slope(omega, analytic.avg_qmd_insulator(omega, **params), 3.0)
    law = sweeps.edge_laws({"kind": "valley", "mass": 2.0, "valleys": [params]}, eta=0.1)
    assert slope == pytest.approx(law["avg_qmd_edge_slope_law"][0], rel=1e-2)
    assert slope == pytest.approx(-1.5**2 / math.pi**2 * math.sqrt(2.0 * 0.64 / 3.0), rel=1e-2)


@pytest.mark.parametrize("eta", [0.2, 0.05])
def test_edge_peak_law_against_the_semi_analytic_spectrum(eta):
    # the overlaid law -0.2015 sgn(v') sqrt(m v'^2/eta) at 2 Delta + eta/sqrt(3) is the eta -> 0
    # limit of the edge term: checked on Eq. 12's semi-analytic Delta n (1 % at eta = 0.2 Delta)
    params = dict(delta=1.0, vprime=1.0, mass=1.9)
    omega = np.linspace(2.0 - eta, 2.0 + 3 * eta, 41)
    where, peak = sweeps.extremum(omega, analytic.delta_n_insulator(omega, eta=eta, **params).imag)
    law = sweeps.edge_laws({"kind": "valley", "mass": 1.9, "valleys": [params]}, eta)
    assert peak == pytest.approx(law["im_delta_n_peak_law"][0], rel=0.015)
    assert where == pytest.approx(law["im_delta_n_peak_omega_law"][0], abs=0.1 * eta)


def test_zero_crossings_ignore_signs_within_the_error():
    mu = np.linspace(-2.0, 2.0, 9)
    gamma = np.array([0.0, 1e-9, -1e-9, 0.5, 1.0, 0.5, -0.5, -1.0, 0.0])
    error = np.full_like(mu, 1e-6)
    assert sweeps.zero_crossings(mu, gamma, error) == pytest.approx([0.75])


def test_laws_are_nan_without_a_closed_form():
    laws = sweeps.edge_laws({"kind": "lattice", "mass": 1.0, "valleys": [{"delta": 1.0,
                                                                         "vprime": 1.0}]}, 0.1)
    assert all(np.isnan(v).all() for v in laws.values())


# ------------------------------------------------------------------------------------------
# the workflow: targets, refusals, caching, named runs


def sweep_config(ws, name, values, run_name=None, extra=None):
    data = {**TINY, "sweeps": {"pair": {"parameters": {VPRIME: values}}}, **(extra or {})}
    if run_name:
        data["run"] = {"name": run_name}
    return ws.write_config(name, data)


def dry_run(ws, *configs, targets=(), check=True):
    """A dry run of ``targets`` (default: the default target) on config/ci.yaml and ``configs``."""
    return ws.snakemake("--dry-run", "--cores", "2", *targets, "--configfile", "config/ci.yaml",
                        *configs, check=check)


@pytest.mark.parametrize("sweep, message", [
    ({"parameters": {"model.valeys.0.vprime": [1.0]}},
     r"sweep bad, point model.valeys.0.vprime=1: model.valeys.0.vprime: model has no key 'valeys'"),
    ({"parameters": {"model.valleys.0.delta": [1.0, -1.0]}},
     r"sweep bad, point model.valleys.0.delta=-1: model.valleys\[0\].delta: -1.0 is less than or "
     r"equal to the minimum of 0"),
    ({"parameters": {"ndd.eta": ["wide"]}}, r"sweep bad, point ndd.eta=wide: ndd.eta: 'wide'"),
    ({"parameters": {"ndd.eta": []}}, r"sweeps.bad.parameters.ndd.eta"),
    ({"parameters": {"ndd.eta": {"start": 0.1, "stop": 1.0, "num": 101}}},
     r"sweep bad has 101 points, above limits.max_sweep_points = 100"),
])
def test_bad_sweeps_are_refused_at_parse_time(workspace, sweep, message):
    workspace.write_config("bad.yaml", {"sweeps": {"bad": sweep}})
    proc = dry_run(workspace, "bad.yaml", check=False)
    assert proc.returncode != 0
    assert "invalid configuration" in proc.output
    assert re.search(message, proc.output), proc.output[-3000:]


def test_a_sweep_name_that_is_a_rule_is_refused(workspace):
    workspace.write_config("bad.yaml", {"sweeps": {"kgrid": {"parameters": {"ndd.eta": [0.1]}}}})
    proc = dry_run(workspace, "bad.yaml", check=False)
    assert proc.returncode != 0 and "sweep kgrid: the name is taken by a rule" in proc.output


def test_default_target_and_paths_unchanged(workspace):
    # no sweeps section: the default target plans today's jobs at today's paths
    sweep_config(workspace, "sweep.yaml", [0.5, 1.0])
    plain = dry_run(workspace)
    with_sweep = dry_run(workspace, "sweep.yaml")
    assert parse_job_stats(plain.output) == parse_job_stats(with_sweep.output)
    outputs = planned_outputs(plain.output)
    assert "results/reductions/ndd_spectrum.nc" in outputs
    assert all(p.startswith(("results/reductions/", "results/tables/", "results/kgrid/",
                             "results/figures/", "results/validation/", "results/summary."))
               for p in outputs)
    workspace.write_config("named.yaml", {"run": {"name": "mine"}})
    named = planned_outputs(dry_run(workspace, "named.yaml").output)
    assert sorted(named) == sorted(p.replace("results/", "results/mine/", 1) for p in outputs)


@pytest.fixture(scope="module")
def swept(module_workspace):
    """A two-point sweep, run, and two separate named runs of the same two points' settings (the
    second makes only the NDD spectrum: the comparison of γ on one point suffices)."""
    ws = module_workspace
    sweep_config(ws, "sweep.yaml", [0.5, 1.0])
    ws.snakemake("--cores", "2", "sweeps", "--configfile", "config/ci.yaml", "sweep.yaml")
    for value in (0.5, 1.0):
        valleys = yaml.safe_load((ws.root / "config/ci.yaml").read_text())["model"]["valleys"]
        valleys[0]["vprime"] = value
        ws.write_config(f"run{value}.yaml", {**TINY, "model": {"valleys": valleys},
                                             "run": {"name": f"separate/{value}"}})
        reductions = REDUCTIONS if value == 0.5 else REDUCTIONS[1:]
        ws.snakemake("--cores", "2", *(f"results/separate/{value}/{r}" for r in reductions),
                     "--configfile", "config/ci.yaml", f"run{value}.yaml")
    return ws


@pytest.mark.slow
def test_sweep_points_equal_separate_runs(swept):
    points = sweeps.points("pair", {"parameters": {VPRIME: [0.5, 1.0]}}, limit=10)
    with xr.open_dataset(swept.root / "results/sweeps/pair/sweep.nc") as ds:
        for point, value in zip(points, (0.5, 1.0)):
            for reduction in REDUCTIONS if value == 0.5 else REDUCTIONS[1:]:
                mine = swept.root / f"results/sweeps/pair/points/{point.id}/{reduction}"
                theirs = swept.root / f"results/separate/{value}/{reduction}"
                with xr.open_dataset(mine) as a, xr.open_dataset(theirs) as b:
                    # the same numbers, made by the same settings
                    xr.testing.assert_equal(a, b)
                    assert a.attrs["config"] == b.attrs["config"]
            with xr.open_dataset(theirs.parent / "ndd_spectrum.nc") as b:
                np.testing.assert_array_equal(ds["im_delta_n"].sel({VPRIME.replace(".", "_"): value}),
                                              b["im_delta_n"])
        assert list(ds[VPRIME.replace(".", "_")].values) == [0.5, 1.0]
        for name, var in {**ds.data_vars, **ds.coords}.items():
            assert {"units", "long_name"} <= set(var.attrs), name
        assert ds.attrs["qmdipole_version"] and ds.attrs["config"]
        # the law and the point's own feature: same sign, same size within the coarse grid's reach
        ratio = ds["avg_qmd_edge_slope"] / ds["avg_qmd_edge_slope_law"]
        assert float(ratio.min()) > 0.5 and float(ratio.max()) < 2.0
    for ext in ("pdf", "png"):
        assert (swept.root / f"results/sweeps/pair/features.{ext}").stat().st_size > 1000
    # the named runs did not overwrite each other, nor the sweep's points
    assert (swept.root / "results/separate/0.5/reductions/ndd_spectrum.nc").is_file()
    assert not (swept.root / "results/reductions").exists()


@pytest.mark.slow
def test_extending_a_sweep_computes_only_the_new_point(swept):
    assert parse_job_stats(dry_run(swept, "sweep.yaml", targets=["sweeps"]).output) == {}
    sweep_config(swept, "longer.yaml", [0.5, 0.75, 1.0])
    proc = dry_run(swept, "longer.yaml", targets=["pair"])
    jobs = parse_job_stats(proc.output)
    new = sweeps.points("pair", {"parameters": {VPRIME: [0.75]}}, limit=1)[0]
    assert {rule: jobs.pop(rule, 0) for rule in ("sweep", "sweep_figure", "pair")} == {
        "sweep": 1, "sweep_figure": 1, "pair": 1}
    # the rest: one point's jobs (rules sweep_pair_<its hash>_<rule>), once per valley or once
    modules = {re.fullmatch(r"(sweep_pair_[0-9a-f]{10})_(\w+)", rule).group(1) for rule in jobs}
    assert len(modules) == 1
    module = modules.pop()
    assert {rule.removeprefix(module + "_"): n for rule, n in jobs.items()} == {
        rule: 1 if rule in ("ndd_spectrum", "quadrupolar_current") else 2 for rule in POINT_RULES}
    for path in planned_outputs(proc.output):
        assert path.startswith((f"results/sweeps/pair/points/{new.id}/", "results/sweeps/pair/")), path
        assert "/points/" not in path or new.id in path
