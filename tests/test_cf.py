"""Every NetCDF output of the CI config passes a real CF checker (the IOOS compliance-checker,
CF-1.10) with no error, in model units and in physical units (eV, angstrom).

Warnings accepted (none of them a CF requirement): none at present; the checker's own exceptions
(e.g. on a string coordinate variable) count as errors.
"""

from __future__ import annotations

import pytest
import xarray as xr

from conftest import CONTRACT_NETCDF, VALIDATION_NETCDF

pytestmark = pytest.mark.slow

checker = pytest.importorskip("compliance_checker.runner")

CI = ("--configfile", "config/ci.yaml")
PHYSICAL = {"units": {"energy": "eV", "length": "angstrom"}}
ERROR = 3  # compliance_checker.base.BaseCheck.HIGH: the report's "Errors"


def cf_problems(path) -> list[str]:
    """The checker's errors and exceptions for ``path`` (empty: CF-1.10 compliant)."""
    suite = checker.CheckSuite()
    suite.load_all_available_checkers()
    results, exceptions = suite.run_all(suite.load_dataset(str(path)), ["cf:1.10"],
                                        skip_checks=[])["cf:1.10"]
    found = [f"exception in {name}: {err[0]!r}" for name, err in exceptions.items()]
    for result in results:
        value = result.value
        failed = value[0] < value[1] if isinstance(value, tuple) else not value
        if failed and result.weight >= ERROR:
            found.extend(f"{result.name}: {msg}" for msg in result.msgs)
    return found


@pytest.fixture(scope="module")
def ci_run(module_workspace):
    """Every NetCDF output of the CI config (the figures, which hold none, left out)."""
    module_workspace.snakemake("--cores", "2", *CONTRACT_NETCDF, *VALIDATION_NETCDF, *CI)
    return module_workspace


def _outputs(root) -> list:
    found = sorted((root / "results").rglob("*.nc"))
    assert len(found) >= 10, found
    return found


def test_every_output_is_cf_compliant(ci_run):
    problems = {p.relative_to(ci_run.root).as_posix(): cf_problems(p) for p in _outputs(ci_run.root)}
    assert not {k: v for k, v in problems.items() if v}, problems
    with xr.open_dataset(ci_run.root / "results/reductions/ndd_spectrum.nc") as ds:
        assert ds["omega"].attrs["units"] == "1" and ds["omega"].attrs["units_label"] == "Delta"
        assert "delta_alpha" not in ds  # Δα needs a physical energy unit
    with xr.open_dataset(ci_run.root / "results/reductions/quadrupolar_current.nc") as ds:
        assert ds["gamma_xxz_si"].attrs["units"] == "S"
        assert "gamma_xxz_si_error" in ds and "gamma_xxz_si_valley" in ds


def test_physical_units_relabel_the_reductions(ci_run):
    override = ci_run.write_config("physical.yaml", PHYSICAL)
    ci_run.snakemake("--cores", "2", *CONTRACT_NETCDF, *CI, override)
    reductions = sorted((ci_run.root / "results" / "reductions").rglob("*.nc"))
    problems = {p.name: cf_problems(p) for p in reductions}
    assert not {k: v for k, v in problems.items() if v}, problems
    root = ci_run.root / "results" / "reductions"
    with xr.open_dataset(root / "ndd_spectrum.nc") as ds:
        assert ds["omega"].attrs["units"] == "eV"
        assert ds["avg_qmd"].attrs["units"] == "eV2"
        assert ds["im_delta_n"].attrs["units_label"] == "alpha"  # unit-free: unchanged
        assert ds["delta_alpha"].attrs["units"] == "cm-1"
        assert {"delta_alpha_error", "delta_alpha_valley"} <= set(ds.variables)
    with xr.open_dataset(root / "qmd_field.nc") as ds:
        assert ds["ky"].attrs["units"] == "angstrom-1"
        assert ds["magnitude"].attrs["units"] == "eV angstrom2"
    with xr.open_dataset(root / "band_structure.nc") as ds:
        assert ds["energy"].attrs["units"] == "eV"
