"""Shared fixtures: run the Snakemake workflow in a throw-away copy of the repository.

A workspace holds copies of ``Snakefile``, ``workflow/``, ``config/``, ``examples/`` and
``profiles/``, and of the package source ``src/qmdipole`` which the workflow imports there (through
``PYTHONPATH``): touching a module of that copy, as the caching tests do, leaves the checkout alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "workflow", "config", "examples", "profiles")
# Data contract (README, "What lands where"): every NetCDF the default target makes.
CONTRACT_NETCDF = (
    "results/reductions/quadrupolar_current.nc",
    "results/reductions/ndd_spectrum.nc",
    "results/reductions/band_structure.nc",
    "results/reductions/qmd_field.nc",
)
# Self-describing too, but may hold NaN where a value is undefined (the reference grid's own error).
VALIDATION_NETCDF = ("results/validation/gamma_convergence.nc",)
FIGURES = (  # the paper's figures (the validation figure is checked on its own)
    "fig2_band_structure",
    "fig3_qmd_streamlines",
    "fig4a_ndd_spectrum",
    "fig4b_quadrupolar_current",
)
SNAKEMAKE_TIMEOUT = 600


class Workspace:
    """A copy of the workflow in ``root`` and a way to run ``snakemake`` in it."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for part in WORKFLOW_PARTS:
            source = REPO / part
            if source.is_dir():
                shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                shutil.copy2(source, root / part)
        shutil.copytree(REPO / "src" / "qmdipole", root / "src" / "qmdipole",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.package = root / "src" / "qmdipole"

    def env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.root / "src"), env.get("PYTHONPATH")) if p
        )
        env.setdefault("MPLBACKEND", "Agg")
        return env

    def snakemake(self, *args, check: bool = True, timeout: float = SNAKEMAKE_TIMEOUT):
        """Run ``snakemake *args`` in the workspace; on failure (with ``check``) show its output."""
        cmd = [sys.executable, "-m", "snakemake", *map(str, args)]
        proc = subprocess.run(cmd, cwd=self.root, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        proc.output = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.output[-6000:]}")
        return proc

    def planned(self, *args) -> dict[str, int]:
        """Jobs (rule -> count, without the target rule ``all``) of a dry run with ``args``."""
        proc = self.snakemake("--dry-run", "--cores", "2", *args)
        return parse_job_stats(proc.output)

    def write_config(self, name: str, data: dict) -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(data))
        return path


def parse_job_stats(output: str) -> dict[str, int]:
    """The ``Job stats`` table of Snakemake's dry-run output as {rule: count}; {} if nothing to do."""
    if "Nothing to be done" in output:
        return {}
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", output, re.S)
    if match is None:
        raise AssertionError(f"no job table in the dry-run output:\n{output[-4000:]}")
    jobs = {}
    for line in match.group(1).splitlines():
        rule, count = line.split()
        jobs[rule] = int(count)
    jobs.pop("all", None)
    return jobs


def planned_outputs(output: str) -> list[str]:
    """Every ``output:`` path of the jobs listed in a dry run's output."""
    found = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("output:"):
            found.extend(p.strip() for p in line[len("output:"):].split(","))
    return found


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    """A fresh copy of the workflow."""
    return Workspace(tmp_path / "workspace")


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory) -> Workspace:
    """A copy of the workflow shared by the tests of one module (for one expensive run)."""
    return Workspace(tmp_path_factory.mktemp("workspace"))


PROVENANCE = ("qmdipole_version", "git_commit", "config", "created")
# Variables the data contract (README, "What lands where") promises in each file.
CONTRACT_VARIABLES = {
    "tables": ("energy", "velocity", "quantum_metric", "berry_curvature", "kx", "ky", "kz",
               "weight"),
    "results/reductions/quadrupolar_current.nc": ("gamma_xxz", "gamma_xxz_valley", "mu"),
    "results/reductions/ndd_spectrum.nc": ("re_delta_n", "im_delta_n", "avg_qmd", "omega",
                                           "re_delta_n_kubo", "im_delta_n_kubo"),
}


def assert_data_contract(root: Path, n_valleys: int, kubo: bool = True) -> None:
    """Every file of the data contract exists, holds finite numbers, is self-describing."""
    import numpy as np
    import xarray as xr

    tables = [f"results/tables/valley{i}.nc" for i in range(1, n_valleys + 1)]
    for relative in (*tables, *CONTRACT_NETCDF, *VALIDATION_NETCDF):
        path = root / relative
        assert path.is_file(), f"{relative} was not made"
        with xr.open_dataset(path) as ds:
            key = "tables" if relative in tables else relative
            wanted = CONTRACT_VARIABLES.get(key, ())
            if not kubo:
                wanted = tuple(v for v in wanted if not v.endswith("_kubo"))
            missing = [name for name in wanted if name not in ds.variables]
            assert not missing, f"{relative} lacks {missing}"
            assert ds.data_vars, f"{relative} holds no data"
            for name, var in {**ds.data_vars, **ds.coords}.items():
                labels = var.dtype.kind in "OSU"  # CF labels (strings) carry no units
                for attr in ("long_name",) if labels else ("units", "long_name"):
                    assert attr in var.attrs, f"{relative}: {name} has no {attr!r}"
                if np.issubdtype(var.dtype, np.number):
                    finite = np.isfinite(var.values)
                    if relative in VALIDATION_NETCDF:
                        assert finite.any(), f"{relative}: {name} holds no finite number"
                    else:
                        assert finite.all(), f"{relative}: {name} is not finite"
            for attr in PROVENANCE:
                assert ds.attrs.get(attr), f"{relative} lacks the global attribute {attr!r}"
    with xr.open_dataset(root / "results/reductions/quadrupolar_current.nc") as ds:
        assert ds["gamma_xxz_valley"].sizes["valley"] == n_valleys
    with xr.open_dataset(root / "results/reductions/ndd_spectrum.nc") as ds:
        for attr in ("eta", "mu", "temperature"):
            assert attr in ds.attrs, f"ndd_spectrum.nc lacks the global attribute {attr!r}"
    csv = root / "results/validation/gamma_convergence.csv"
    assert csv.is_file() and len(csv.read_text().splitlines()) >= 3
    for name in (*FIGURES, "validation_gamma_convergence"):
        for ext in (".pdf", ".png"):
            path = root / "results" / "figures" / f"{name}{ext}"
            assert path.is_file() and path.stat().st_size > 1000, f"{path.name} was not drawn"
