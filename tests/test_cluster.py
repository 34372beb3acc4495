"""The cluster path: a Dask cluster of worker processes and the SLURM profile.

* Tabulating on a ``distributed.LocalCluster`` of two worker processes writes the very table the
  local threads write (1 and 2 threads), bit for bit, for the closed-form two-band ValleyModel and
  for a four-band Wannier90Model (sum over states), at two slab sizes; γ_xxz and Δn computed from
  those tables are then identical too. The table is pointwise, so the slab size changes nothing.
* ``profiles/slurm/config.yaml`` names only resources and executor settings that the installed
  ``snakemake-executor-plugin-slurm`` knows (read from its source and its ``ExecutorSettings``),
  and every job that runs the tabulation gets as many SLURM cpus as it runs threads.

The dry run of the profile is in test_workflow_config.py.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import qmdipole
from qmdipole import kgrid, ndd, quadrupolar
from qmdipole.models import LatticeValleyModel, build_model
from qmdipole.tabulate import write_table
from qmdipole.wannier90 import Wannier90Model, hoppings_from_hamiltonian

from checks import config_grid, config_needs

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
SLABS = (700, 4096)  # k-points per Dask task: 7 and 2 tasks on the ValleyModel's 4608 points
RUNS = ("threads=1", "threads=2", "cluster")


# ------------------------------------------------------------------------------------------
# 1. Tables, γ and Δn: a cluster of worker processes gives the threaded result bit for bit
# ------------------------------------------------------------------------------------------

def _valley_case():
    """Valley 1 of Fig. 4 (closed form) on the coarse grid of config/ci.yaml, and its Δn options."""
    config = copy.deepcopy(CONFIG)
    config["kgrid"].update(n=[24, 4, 48], points_per_eta=0)
    config["quadrupolar_current"].update(mu={"start": -3.0, "stop": 3.0, "num": 25},
                                         temperatures=[0.1])
    config["ndd"].update(omega={"start": 0.5, "stop": 5.0, "num": 19}, eta=0.2)
    model = build_model(config["model"], 0)
    grid = kgrid.grid_for(model, "valley", config_grid(config), config_needs(config))
    return model, grid, dict(mu=np.linspace(-3.0, 3.0, 25), temperatures=[0.1]), dict(
        omega=np.linspace(0.5, 5.0, 19), eta=0.2, transition_cutoff="auto", dq=1e-3)


def _wannier_case():
    """Both lattice valleys of Fig. 4 as one four-band Wannier90 model (H(R) block-diagonal, from
    an FFT of H(k)) on its whole Brillouin zone; geometry by the sum over states."""
    a = 0.8
    blocks = [hoppings_from_hamiltonian(
        LatticeValleyModel(**valley, mass=CONFIG["model"]["mass"], lattice_constant=a),
        a * np.eye(3), n=8) for valley in CONFIG["model"]["valleys"]]
    r_vectors = sorted({tuple(r) for _, rs in blocks for r in rs.tolist()})
    hoppings = np.zeros((len(r_vectors), 4, 4), complex)
    for b, (h_r, rs) in enumerate(blocks):
        for h, r in zip(h_r, rs.tolist()):
            hoppings[r_vectors.index(tuple(r)), 2 * b:2 * b + 2, 2 * b:2 * b + 2] = h
    model = Wannier90Model(hoppings, r_vectors, a * np.eye(3))
    grid = kgrid.build_kgrid(model, "brillouin_zone", (12, 12, 16), None)
    return model, grid, dict(mu=np.linspace(-1.0, 1.0, 11)), dict(
        omega=np.linspace(0.5, 5.0, 19), eta=0.2, transition_cutoff="auto", kubo=True)


CASES = {"valley (closed form)": _valley_case, "wannier90 (4 bands, sum over states)": _wannier_case}


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, importing the same qmdipole as this process."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as local, \
            distributed.Client(local.scheduler_address) as client:
        imported = client.run(lambda: __import__("qmdipole").__file__)
        assert len(imported) == 2 and set(imported.values()) == {qmdipole.__file__}, imported
        yield local


def _write(model, grid, path, slab_points, run, address):
    if run == "cluster":
        return write_table(model, grid, path, slab_points=slab_points, address=address,
                           progress=False, worker_timeout=30)
    return write_table(model, grid, path, slab_points=slab_points,
                       threads=int(run.split("=")[1]), progress=False)


def _assert_identical(a: xr.Dataset, b: xr.Dataset, what: str) -> None:
    """Every variable and coordinate of ``a`` and ``b`` equal bit for bit (NaN = NaN)."""
    assert sorted(a.variables) == sorted(b.variables), what
    for name in a.variables:
        assert a[name].dims == b[name].dims, f"{what}: {name}"
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{what}: {name}")


@pytest.mark.filterwarnings("ignore:the k-grid resolves")  # coarse on purpose: same numbers, not converged ones
@pytest.mark.parametrize("case", CASES)
def test_cluster_tables_gamma_and_delta_n_equal_the_threaded_ones(case, cluster, tmp_path):
    model, grid, gamma_options, ndd_options = CASES[case]()
    paths = {(slab, run): _write(model, grid, tmp_path / f"{slab}-{run}.nc", slab, run,
                                 cluster.scheduler_address)
             for slab in SLABS for run in RUNS}
    reference = paths[SLABS[0], "threads=1"]
    with xr.open_dataset(reference) as ref:
        ref.load()
        assert ref.sizes["band"] == model.n_bands and ref.attrs["n_points"] == grid.size
        assert ref.attrs["geometry_method"] == (
            "closed_form" if model.n_bands == 2 else "sum_over_states")
        gamma = quadrupolar.gamma_from_table(ref, **gamma_options)
        spectrum = ndd.spectrum_from_table(ref, model, **ndd_options)
        assert np.abs(gamma["gamma_xxz"]).max() > 0 and np.abs(spectrum["re_delta_n_kubo"]).max() > 0
        for key, path in paths.items():
            if path == reference:
                continue
            with xr.open_dataset(path) as table:
                table.load()
                _assert_identical(ref, table, f"table {key}")
                kept = ("created", "history")  # the write time (also in history) may differ
                assert {k: v for k, v in ref.attrs.items() if k not in kept} == \
                    {k: v for k, v in table.attrs.items() if k not in kept}, key
                _assert_identical(gamma, quadrupolar.gamma_from_table(table, **gamma_options),
                                  f"gamma of {key}")
                _assert_identical(spectrum, ndd.spectrum_from_table(table, model, **ndd_options),
                                  f"Delta n of {key}")


# ------------------------------------------------------------------------------------------
# 2. The SLURM profile against the installed executor plugin
# ------------------------------------------------------------------------------------------

# Snakemake's own resources (the plugin reads some of them too) and the rules' own.
STANDARD_RESOURCES = {"mem_mb", "mem", "disk_mb", "disk", "runtime", "tmpdir", "threads"}
# Snakemake's top-level options the profile sets (executor settings are checked separately).
SNAKEMAKE_OPTIONS = {"executor", "jobs", "latency-wait", "retries", "rerun-incomplete",
                     "printshellcmds", "default-resources", "set-threads", "set-resources"}


def _plugin():
    spec = importlib.util.find_spec("snakemake_executor_plugin_slurm")
    if spec is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    return importlib.import_module(spec.name), Path(spec.origin).parent


def _plugin_resources(folder: Path) -> set[str]:
    """Every resource name the plugin reads: ``resources.get("name")`` or ``resources.name``."""
    source = "\n".join(p.read_text() for p in folder.glob("*.py"))
    names = set(re.findall(r"resources\.get\(\s*[\"'](\w+)[\"']", source))
    names |= set(re.findall(r"resources\.(\w+)", source)) - {"get", "items", "keys", "values"}
    return names


def _profile_resources(profile: dict) -> dict[str, set[str]]:
    """{resource name: where the profile sets it}."""
    found: dict[str, set[str]] = {}
    for name in profile.get("default-resources") or {}:
        found.setdefault(name, set()).add("default-resources")
    for rule, resources in (profile.get("set-resources") or {}).items():
        for name in resources:
            found.setdefault(name, set()).add(f"set-resources.{rule}")
    return found


def test_plugin_resource_reader_finds_the_known_names():
    # the regular expressions above do find what the plugin is documented to read
    _, folder = _plugin()
    assert {"slurm_account", "slurm_partition", "slurm_extra", "cpus_per_task", "runtime",
            "mem_mb", "mem_mb_per_cpu", "constraint"} <= _plugin_resources(folder)


def test_slurm_profile_names_only_what_the_plugin_knows():
    plugin, folder = _plugin()
    text = PROFILE.read_text()
    profile = yaml.safe_load(text)
    known = _plugin_resources(folder)

    # every slurm_* name, set or only mentioned in a comment, is a resource the plugin reads
    mentioned = set(re.findall(r"\bslurm_\w+", text))
    assert mentioned and mentioned <= known, sorted(mentioned - known)
    # every resource the profile sets is the plugin's or Snakemake's own
    unknown = {name: where for name, where in _profile_resources(profile).items()
               if name not in known | STANDARD_RESOURCES}
    assert not unknown, f"resources the SLURM plugin does not read: {unknown}"

    # top-level keys: Snakemake's options, or the plugin's executor settings (--slurm-<field>)
    settings = {"slurm-" + f.name.replace("_", "-") for f in dataclasses.fields(plugin.ExecutorSettings)}
    assert profile["executor"] == "slurm"
    unknown = set(profile) - SNAKEMAKE_OPTIONS - settings
    assert not unknown, f"keys that are neither Snakemake options nor SLURM executor settings: {unknown}"


def test_every_tabulation_job_gets_as_many_cpus_as_threads():
    """A rule's set-threads and its SLURM cpus_per_task agree, for every rule running a whole
    tabulation (``tabulate``, the rules ``use``-ing it, and γ's reduction, which tabulates its
    own grid), else Dask oversubscribes the job."""
    profile = yaml.safe_load(PROFILE.read_text())
    rules_text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    tabulating = ({"tabulate", "quadrupolar_valley"}
                  | set(re.findall(r"use rule tabulate as (\w+)", rules_text)))
    assert re.search(r"rule quadrupolar_valley:", rules_text)
    threads = profile.get("set-threads") or {}
    resources = profile.get("set-resources") or {}
    for rule in sorted(tabulating):
        assert rule in threads, f"profile sets no threads for {rule}"
        assert resources.get(rule, {}).get("cpus_per_task") == threads[rule], rule
    for rule, count in threads.items():
        assert resources.get(rule, {}).get("cpus_per_task") == count, rule
