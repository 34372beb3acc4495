"""End-to-end: the whole pipeline on config/ci.yaml, then caching (dry runs) and the HTML report.

One real run makes every output; each caching test then changes one thing (a setting, a valley, a
package module, the plot style) and asks Snakemake, with a dry run, which jobs it would re-run.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from conftest import FIGURES, assert_data_contract, parse_job_stats, planned_outputs

pytestmark = pytest.mark.slow

CI = ("--configfile", "config/ci.yaml")
FIGURE_RULES = {name: 1 for name in FIGURES} | {"fig_gamma_convergence": 1}
# the run's summary (results/summary.*) shows the config: a drawing setting re-makes it too
SUMMARY = {"summary": 1}
# the convergence study of gamma_xxz uses the model, the grid settings and the mu sampling
VALIDATION = {"gamma_convergence": 1, "fig_gamma_convergence": 1}


@pytest.fixture(scope="module")
def ci_run(module_workspace):
    """The workspace after one full run of the default target on config/ci.yaml (its console
    output in ``first_run``)."""
    module_workspace.first_run = module_workspace.snakemake("--cores", "2", *CI)
    return module_workspace


def ci_config(ws) -> dict:
    return yaml.safe_load((ws.root / "config" / "ci.yaml").read_text())


def test_end_to_end_data_contract(ci_run):
    assert_data_contract(ci_run.root, n_valleys=2)
    logs = sorted(p.relative_to(ci_run.root).as_posix() for p in (ci_run.root / "logs").rglob("*.log"))
    assert "logs/tabulate/valley1.log" in logs and "logs/figures/fig2_band_structure.log" in logs
    # the tabulation's Dask pool gets the rule's threads: tabulate.threads = 2 in ci.yaml, capped
    # by the valley's share of --cores 2, so that both valleys tabulate side by side
    assert "threads 1" in (ci_run.root / "logs/tabulate/valley1.log").read_text()


def test_summary_lists_every_curve(ci_run):
    import xarray as xr

    root = ci_run.root
    summary = json.loads((root / "results/summary.json").read_text())
    assert (root / "results/summary.html").is_file()
    rows = {(row["file"], row["variable"]): row for row in summary["curves"]}
    # every curve with an error estimate, with the number its file holds; the tolerances of
    # config/ci.yaml (0.5 for gamma and for the NDD curves)
    tolerance = {"gamma_xxz": 0.5, "gamma_xxz_temperature": 0.5, "re_delta_n": 0.5,
                 "im_delta_n": 0.5, "avg_qmd": 0.5}
    files = [f"results/reductions/{part}{name}.nc" for part in ("", "valley1/", "valley2/")
             for name in ("quadrupolar_current", "ndd_spectrum")]
    listed = 0
    for relative in files:
        with xr.open_dataset(root / relative) as ds:
            for name in ds.data_vars:
                if f"{name}_error" not in ds or name.endswith("_valley"):
                    continue
                row = rows[relative, name]
                assert row["relative_error"] == ds[f"{name}_error"].attrs["max_relative_to_peak"]
                limit = tolerance.get(name)
                assert row["tolerance"] == limit, (relative, name)
                status = None if limit is None else "PASS" if row["relative_error"] <= limit else "MISS"
                assert row["status"] == status, (relative, name)
                listed += 1
            if "kubo_max_relative_difference" in ds.attrs:
                assert any(c["file"] == relative and c["relative_difference"]
                           == ds.attrs["kubo_max_relative_difference"]
                           for c in summary["cross_checks"])
    assert listed == len(rows)
    # the counts are those of the rows (MISS and the recorded warnings: tests/test_summary.py)
    statuses = [row["status"] for row in summary["curves"] + summary["cross_checks"]]
    assert summary["counts"]["pass"] == statuses.count("PASS") > 0
    assert summary["counts"]["miss"] == statuses.count("MISS")
    assert all(w["file"].startswith("results/") and w["message"] for w in summary["warnings"])
    with xr.open_dataset(root / "results/reductions/valley1/ndd_spectrum.nc") as ds:
        assert ds.attrs["git_commit"] == summary["qmdipole"]["git_commit"]
    assert [row["n_points"] for row in summary["validation"]] == sorted(
        row["n_points"] for row in summary["validation"])
    assert summary["config"]["accuracy"]["rtol"] == 0.5
    # the end of the run names the summary and its counts on the console
    counts = summary["counts"]
    assert (f"qmdipole run summary: results/summary.html (summary.json): {counts['pass']} curves "
            f"pass and {counts['miss']} miss" in ci_run.first_run.output)


def test_second_run_does_nothing(ci_run):
    outputs = sorted((ci_run.root / "results").rglob("*.*"))
    before = {p: p.stat().st_mtime_ns for p in outputs}
    proc = ci_run.snakemake("--cores", "2", *CI)
    assert "Nothing to be done" in proc.output, proc.output[-3000:]
    assert {p: p.stat().st_mtime_ns for p in outputs} == before


def test_figure_setting_reruns_only_figures(ci_run):
    override = ci_run.write_config("dpi.yaml", {"figures": {"dpi": 61}})
    assert ci_run.planned(*CI, override) == FIGURE_RULES | SUMMARY


def test_command_line_config_merges_key_by_key(ci_run):
    # --config hands nested values over as strings: they are typed, and merged key by key (an
    # unchanged eta leaves ci.yaml's other ndd keys, hence everything, as it was)
    assert ci_run.planned(*CI, "--config", "ndd={eta: 2e-1}") == {}
    assert ci_run.planned(*CI, "--config", "figures={dpi: 61}") == FIGURE_RULES | SUMMARY


def test_execution_settings_rerun_nothing(ci_run):
    # threads and the Dask scheduler decide how a table is computed, not what it holds
    override = ci_run.write_config(
        "execution.yaml", {"tabulate": {"threads": 1, "scheduler": "tcp://127.0.0.1:8786"}}
    )
    assert ci_run.planned(*CI, override) == {}


def test_one_valley_reruns_only_its_chain(ci_run):
    model = ci_config(ci_run)["model"]
    model["valleys"][1]["delta"] = 2.5
    override = ci_run.write_config("valley2.yaml", {"model": {"valleys": model["valleys"]}})
    proc = ci_run.snakemake("--dry-run", "--cores", "2", *CI, override)
    assert parse_job_stats(proc.output) == {
        # valley 2's chains (gamma on its own grid, and NDD's grid, table and reduction) ...
        "kgrid": 1, "tabulate": 1, "quadrupolar_valley": 1, "ndd_valley": 1,
        # ... and what depends on it: the valley sums, the bands of all valleys, their figures
        "quadrupolar_current": 1, "ndd_spectrum": 1, "band_structure": 1,
        "fig2_band_structure": 1, "fig4a_ndd_spectrum": 1, "fig4b_quadrupolar_current": 1,
        **VALIDATION, **SUMMARY,
    }
    outputs = planned_outputs(proc.output)
    assert "results/tables/valley2.nc" in outputs
    assert not [p for p in outputs if "valley1" in p], outputs


def test_global_model_key_reruns_every_valley(ci_run):
    override = ci_run.write_config("mass.yaml", {"model": {"mass": 2.0}})
    jobs = ci_run.planned(*CI, override)
    assert jobs["kgrid"] == 2 and jobs["tabulate"] == 2 and jobs["qmd_field"] == 1


def test_reduction_setting_reruns_only_that_reduction(ci_run):
    # the mu points change gamma's grid (refined for accuracy.rtol on them), not NDD's
    override = ci_run.write_config("mu.yaml", {"quadrupolar_current": {"mu": {"start": -3.0, "stop": 3.0, "num": 31}}})
    assert ci_run.planned(*CI, override) == {
        "quadrupolar_valley": 2, "quadrupolar_current": 1, "fig4b_quadrupolar_current": 1,
        **VALIDATION, **SUMMARY,
    }


def test_ndd_setting_leaves_gamma_alone(ci_run):
    # a grid per need: the NDD broadening reshapes NDD's grid only
    override = ci_run.write_config("eta.yaml", {"ndd": {"eta": 0.25}})
    jobs = ci_run.planned(*CI, override)
    assert jobs["kgrid"] == 2 and jobs["ndd_valley"] == 2
    assert "quadrupolar_valley" not in jobs, jobs


def _edited_plan(ws, relative):
    """Dry-run plan after editing ``relative`` (under the workspace); the file is restored after.

    An edit, not a touch: Snakemake 9 does not count an input whose checksum is unchanged.
    """
    path = ws.root / relative
    text, stat = path.read_bytes(), path.stat()
    try:
        path.write_bytes(text + b"\n# an edit\n")
        return ws.planned(*CI)
    finally:
        path.write_bytes(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_reduction_code_change_reruns_its_stages(ci_run):
    assert _edited_plan(ci_run, "src/qmdipole/quadrupolar.py") == {
        "quadrupolar_valley": 2, "quadrupolar_current": 1, "fig4b_quadrupolar_current": 1,
        **VALIDATION, **SUMMARY,
    }


def test_geometry_code_change_reruns_the_tables(ci_run):
    jobs = _edited_plan(ci_run, "src/qmdipole/geometry.py")
    assert jobs["kgrid"] == 2 and jobs["tabulate"] == 2
    assert jobs["band_structure"] == 1 and jobs["qmd_field"] == 1


@pytest.mark.parametrize("relative", ["src/qmdipole/paper.mplstyle", "src/qmdipole/figures.py"])
def test_style_or_plot_code_change_rerenders_only_figures(ci_run, relative):
    assert _edited_plan(ci_run, relative) == FIGURE_RULES


def test_io_change_reruns_nothing(ci_run):
    # I/O and provenance code does not change numbers (NOT_PHYSICS in workflow/rules/common.smk)
    assert _edited_plan(ci_run, "src/qmdipole/io.py") == {}


def test_report_is_one_html_with_every_figure(ci_run):
    ci_run.snakemake("--report", "results/report.html", *CI)
    report = ci_run.root / "results" / "report.html"
    assert report.is_file()
    text = report.read_text(errors="replace")
    assert text.lstrip().lower().startswith("<!doctype html") or "<html" in text[:2000].lower()
    for name in (*FIGURES, "validation_gamma_convergence"):
        assert f"{name}.png" in text and f"{name}.pdf" in text, f"{name} is not in the report"
    assert "gamma_convergence.csv" in text
    assert "summary.html" in text
