"""The workflow frame without running it: config validation, partial configs, lint, SLURM profile.

Every case is a dry run (``snakemake -n``), a few seconds each.
"""

from __future__ import annotations

import re

import pytest
import yaml

from checks import assert_refused_at_dry_run
from conftest import parse_job_stats

DEFAULT_VALLEYS = [{"delta": 1.0, "vprime": 1.0, "tau": 1}, {"delta": 2.0, "vprime": -1.0, "tau": -1}]

# (override merged over config/config.yaml, text the error message must contain)
BAD_CONFIGS = {
    "zero grid size": ({"kgrid": {"n": [0, 4, 240]}}, "kgrid.n[0]"),
    "negative grid size": ({"kgrid": {"n": [120, 4, -3]}}, "kgrid.n[2]"),
    "one grid node": ({"kgrid": {"n": [120, 1, 240]}}, "kgrid.n[1]"),
    "two grid axes": ({"kgrid": {"n": [120, 240]}}, "kgrid.n"),
    "zero mass": ({"model": {"mass": 0}}, "model.mass"),
    "negative mass": ({"model": {"mass": -1.9}}, "model.mass"),
    "negative valley mass": (
        {"model": {"valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1, "mass": -1.0}]}},
        "model.valleys[0].mass",
    ),
    "zero v": ({"model": {"v": 0.0}}, "model.v"),
    "zero lattice constant": ({"model": {"lattice_constant": 0.0}}, "model.lattice_constant"),
    "zero eta": ({"ndd": {"eta": 0}}, "ndd.eta"),
    "negative eta": ({"ndd": {"eta": -0.02}}, "ndd.eta"),
    "empty valley list": ({"model": {"valleys": []}}, "model.valleys"),
    "unknown model kind": ({"model": {"kind": "tight_binding"}}, "model.kind"),
    "unknown grid kind": ({"kgrid": {"kind": "spherical"}}, "kgrid.kind"),
    "wrong type (string for a number)": ({"ndd": {"eta": "small"}}, "ndd.eta"),
    "wrong type (float for an integer)": ({"figures": {"dpi": 300.5}}, "figures.dpi"),
    "wrong type (list for a section)": ({"tabulate": [1, 2]}, "tabulate"),
    "unknown key": ({"ndd": {"etta": 0.02}}, "etta"),
    "unknown section": ({"modle": {"mass": 1.0}}, "modle"),
    "unknown valley key": (
        {"model": {"valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 1, "delat": 2.0}]}},
        "delat",
    ),
    "valley without delta": ({"model": {"valleys": [{"vprime": 1.0}]}}, "delta"),
    "bad tau": ({"model": {"valleys": [{"delta": 1.0, "vprime": 1.0, "tau": 2}]}}, "model.valleys[0].tau"),
    "one omega point": ({"ndd": {"omega": {"start": 0.2, "stop": 8.0, "num": 1}}}, "ndd.omega.num"),
    "reversed mu range": (
        {"quadrupolar_current": {"mu": {"start": 4.0, "stop": -4.0, "num": 801}}},
        "quadrupolar_current.mu.stop",
    ),
    "negative temperature": ({"quadrupolar_current": {"temperatures": [-0.1]}},
                             "quadrupolar_current.temperatures[0]"),
    "qmd_field valley out of range": ({"qmd_field": {"valley": 3}}, "qmd_field.valley"),
    "python model without factory": ({"model": {"kind": "python"}}, "model.factory"),
    "bad window": ({"kgrid": {"window": {"k1": [0.0]}}}, "kgrid.window"),
    "unknown geometry method": ({"tabulate": {"method": "magic"}}, "tabulate.method"),
    "polarization along q": ({"ndd": {"q_direction": [0, 0, 1], "polarization": [1, 0, 1]}},
                             "ndd.polarization"),
    "zero q_direction": ({"ndd": {"q_direction": [0, 0, 0]}}, "ndd.q_direction"),
    "continuum tail off the paper's light geometry": (
        {"ndd": {"q_direction": [1, 0, 0], "polarization": [0, 1, 0]}}, "ndd.transition_cutoff"),
    "half physical units": ({"units": {"energy": "eV"}}, "units.length"),
    "compression level": ({"tabulate": {"compression": 12}}, "tabulate.compression"),
}


@pytest.mark.parametrize("override, key", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_invalid_config_fails_naming_the_key(workspace, override, key):
    assert_refused_at_dry_run(workspace, override, key)


def test_default_config_is_valid(workspace):
    jobs = workspace.planned()
    assert jobs["kgrid"] == 2 and jobs["tabulate"] == 2


def test_partial_configfile_overrides_only_its_keys(workspace):
    # only `model:` and in it only `mass`: the valleys and every other section stay the defaults
    path = workspace.write_config("partial.yaml", {"model": {"mass": 2.5}})
    proc = workspace.snakemake("--dry-run", "--configfile", path, "--printshellcmds")
    jobs = parse_job_stats(proc.output)
    assert jobs["kgrid"] == 2 and jobs["ndd_valley"] == 2


def test_partial_configfile_replaces_lists(workspace):
    # a list (here the valleys) is replaced as a whole, not merged entry by entry
    path = workspace.write_config("one_valley.yaml", {"model": {"valleys": [DEFAULT_VALLEYS[0]]}})
    jobs = workspace.planned("--configfile", path)
    assert jobs["kgrid"] == 1 and jobs["tabulate"] == 1


def test_schema_sets_defaults_for_missing_sections(workspace):
    # a config file without some sections (e.g. an older one) still runs: the schema fills them
    config = yaml.safe_load((workspace.root / "config" / "config.yaml").read_text())
    for section in ("band_structure", "qmd_field", "figures", "tabulate"):
        config.pop(section, None)
    (workspace.root / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = workspace.planned()
    assert jobs["band_structure"] == 1 and jobs["qmd_field"] == 1


def test_schema_declares_its_dialect():
    from conftest import REPO

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False


def test_lint_is_clean(workspace):
    proc = workspace.snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition!" in proc.output, proc.output


def planned_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """``[(rule, {resource: value})]`` of every job a dry run lists."""
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", output, re.M)
    return [(rule, dict(item.split("=", 1) for item in text.split(", "))) for rule, text in jobs]


def test_slurm_profile_dry_run(workspace):
    proc = workspace.snakemake("--dry-run", "--profile", "profiles/slurm", "--configfile",
                               "config/ci.yaml")
    jobs = parse_job_stats(proc.output)
    assert jobs["tabulate"] == 2
    # every job is planned with the profile's resources: its rule's set-resources over the defaults
    profile = yaml.safe_load((workspace.root / "profiles" / "slurm" / "config.yaml").read_text())
    planned = planned_resources(proc.output)
    assert sorted({rule for rule, _ in planned} - {"all"}) == sorted(jobs)
    for rule, resources in planned:
        expected = {**profile["default-resources"], **profile["set-resources"].get(rule, {})}
        got = {name: resources.get(name) for name in expected}
        assert got == {name: str(value) for name, value in expected.items()}, rule
    assert {resources["cpus_per_task"] for rule, resources in planned if "tabulate" in rule} == {
        str(profile["set-threads"]["tabulate"])}
