"""The run summary (qmdipole.summary) on small synthetic outputs: PASS and MISS against the
tolerances the pipeline records, disagreeing code revisions, recorded warnings, HTML/JSON/console."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings

import numpy as np
import pytest
import xarray as xr

from qmdipole import accuracy, summary, valleys
from qmdipole.io import write_netcdf

MU = np.linspace(-1.0, 1.0, 41)


def _gamma_file(error_fraction: float, rtol: float, version: str = "1.0") -> xr.Dataset:
    """A quadrupolar-current output: gamma_xxz with an error of ``error_fraction`` of its peak
    at one point, its SI companion, checked against ``rtol`` as the pipeline does."""
    curve = np.sin(3 * MU)
    error = np.full_like(MU, 0.1 * error_fraction)
    error[7] = error_fraction * np.abs(curve).max()
    ds = xr.Dataset({"gamma_xxz": ("mu", curve), "gamma_xxz_error": ("mu", error),
                     "gamma_xxz_si": ("mu", 2 * curve), "gamma_xxz_si_error": ("mu", 2 * error)},
                    coords={"mu": MU})
    for name in ("gamma_xxz", "gamma_xxz_si"):
        ds[f"{name}_error"].attrs["max_relative_to_peak"] = error_fraction
    found = accuracy.check_tolerance(ds, rtol, "warn", "test")
    ds.attrs.update(accuracy.attributes(found, rtol))
    ds.attrs.update(qmdipole_version=version, git_commit="abc", git_dirty="false")
    return ds


def _ndd_file(fractions: dict, config: dict, kubo: float) -> xr.Dataset:
    """An NDD output with curves whose error is ``fractions[name]`` of the peak."""
    omega = np.linspace(0.5, 3.0, 26)
    ds = xr.Dataset(coords={"omega": omega})
    for name, fraction in fractions.items():
        curve = np.exp(-((omega - 1.5) ** 2))
        ds[name] = ("omega", curve)
        ds[f"{name}_error"] = ("omega", fraction * curve, {"max_relative_to_peak": fraction})
    rtol = accuracy.ndd_tolerances(config["accuracy"])
    found = accuracy.check_tolerance(ds, rtol, "warn", "test", accuracy.NDD_TOLERANCES)
    ds.attrs.update(accuracy.attributes(found, rtol))
    ds.attrs.update(qmdipole_version="1.0", git_commit="abc", git_dirty="false",
                    kubo_max_relative_difference=kubo)
    return ds


CONFIG = {"accuracy": {"rtol": 0.01, "rtol_delta_n": 0.02, "rtol_avg_qmd": 0.05,
                       "on_miss": "warn"},
          "tabulate": {"threads": 4, "scheduler": None, "worker_timeout": 60, "method": "auto"}}


def _rows(result):
    return {(row["file"], row["variable"]): row for row in result["curves"]}


def test_pass_and_miss_against_the_recorded_tolerances():
    datasets = {
        "good.nc": _gamma_file(0.004, rtol=0.01),
        "bad.nc": _gamma_file(0.03, rtol=0.01),
        "ndd.nc": _ndd_file({"re_delta_n": 0.01, "im_delta_n": 0.03, "avg_qmd": 0.04,
                             "re_delta_n_kubo": 0.01}, CONFIG, kubo=1e-6),
    }
    result = summary.summarise(datasets, summary.settings(CONFIG))
    rows = _rows(result)
    assert rows["good.nc", "gamma_xxz"]["status"] == "PASS"
    assert rows["bad.nc", "gamma_xxz"]["status"] == "MISS"
    assert rows["bad.nc", "gamma_xxz"]["tolerance"] == 0.01
    # the numbers are the files' own, max error / max |curve|
    for (name, var), row in rows.items():
        ds = datasets[name]
        expected = np.abs(ds[f"{var}_error"]).max() / np.abs(ds[var]).max()
        assert row["relative_error"] == pytest.approx(float(expected), rel=1e-12)
    # NDD: each curve against its own key, rtol_delta_n (0.02) or rtol_avg_qmd (0.05)
    assert rows["ndd.nc", "re_delta_n"]["status"] == "PASS"
    assert rows["ndd.nc", "im_delta_n"]["status"] == "MISS"
    assert rows["ndd.nc", "avg_qmd"]["status"] == "PASS"
    assert rows["ndd.nc", "avg_qmd"]["tolerance"] == 0.05
    # curves the pipeline does not check are listed without a tolerance
    for key in (("good.nc", "gamma_xxz_si"), ("ndd.nc", "re_delta_n_kubo")):
        assert rows[key]["tolerance"] is None and rows[key]["status"] is None
    assert [c["status"] for c in result["cross_checks"]] == ["PASS"]
    assert result["counts"] == {"pass": 4, "miss": 2, "not_checked": 3}
    # execution settings are left out of the config shown
    assert result["config"]["tabulate"] == {"method": "auto"}


def test_a_valley_sum_is_checked_against_its_valleys_peaks():
    """Two valleys of peaks 1.0 and 0.8 that cancel to a sum of peak 0.2, each with an error of
    0.5 % of its own peak where it peaks (the valleys meet rtol = 1 %): the sum's error, 0.009 at
    most (the estimates add), is 0.5 % of the valleys' peaks 1.8 but 4.5 % of its own 0.2."""
    omega = np.linspace(0.5, 3.0, 26)
    shape = np.exp(-((omega - 1.5) ** 2))
    per_valley = []
    for scale in (1.0, -0.8):
        curve = scale * shape
        per_valley.append(xr.Dataset(
            {"avg_qmd": ("omega", curve, {"long_name": "G"}),
             "avg_qmd_error": ("omega", 0.005 * np.abs(curve), {"long_name": "G error"})},
            coords={"omega": omega}))
    total = valleys.combine_valleys(per_valley, dim="omega")
    attrs = total["avg_qmd_error"].attrs
    assert attrs["max_relative_to_peak"] == pytest.approx(0.009 / 0.2, rel=1e-12)
    assert attrs["max_relative_to_valley_peaks"] == pytest.approx(0.009 / 1.8, rel=1e-12)
    tolerances = {"avg_qmd": ("rtol_avg_qmd", 0.01)}
    found = accuracy.check_tolerance(total, tolerances, "error", "test", ("avg_qmd",))
    assert found["avg_qmd"] == pytest.approx(0.005, rel=1e-12)
    total.attrs.update(accuracy.attributes(found, tolerances))
    (row,) = summary.summarise({"ndd.nc": total}, CONFIG)["curves"][:1]
    assert row["status"] == "PASS" and row["relative_to_valley_peaks"] == pytest.approx(0.005)
    assert row["relative_error"] == pytest.approx(0.045)
    # a valley that misses its tolerance makes the sum miss: (0.005 + 0.8 x 0.03) / 1.8
    per_valley[1]["avg_qmd_error"] *= 6
    with pytest.raises(accuracy.AccuracyError, match="avg_qmd 0.0161"):
        accuracy.check_tolerance(valleys.combine_valleys(per_valley, dim="omega"), tolerances,
                                 "error", "test", ("avg_qmd",))


def test_kubo_difference_over_rtol_delta_n_misses():
    ds = _ndd_file({"re_delta_n": 0.001}, CONFIG, kubo=0.05)
    (check,) = summary.summarise({"ndd.nc": ds}, CONFIG)["cross_checks"]
    assert check["relative_difference"] == 0.05 and check["tolerance"] == 0.02
    assert check["status"] == "MISS"


def test_disagreeing_versions_are_named(tmp_path):
    datasets = {"a.nc": _gamma_file(0.001, 0.01, version="1.0"),
                "b.nc": _gamma_file(0.001, 0.01, version="1.1"),
                "c.nc": _gamma_file(0.001, 0.01, version="1.0")}
    result = summary.summarise(datasets, CONFIG)
    code = result["qmdipole"]
    assert not code["consistent"]
    assert sorted((r["version"], tuple(r["files"])) for r in code["revisions"]) == [
        ("1.0", ("a.nc", "c.nc")), ("1.1", ("b.nc",))]
    assert "made by different code" in summary.to_html(result)
    summary.write(result, tmp_path / "s.html", tmp_path / "s.json")
    assert "different qmdipole code" in summary.console(tmp_path / "s.json")
    agreeing = summary.summarise({k: datasets[k] for k in ("a.nc", "c.nc")}, CONFIG)["qmdipole"]
    assert agreeing["consistent"] and agreeing["version"] == "1.0"


def test_warnings_are_recorded_in_the_outputs_and_collected(tmp_path):
    recorder = summary.WarningRecorder()
    logger = logging.getLogger("qmdipole.test_summary")
    logger.addHandler(recorder)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(recorder)
    try:
        logger.info("not a warning")
        logger.warning("the k-grid resolves transition energies only to %d eta", 11)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("coarse grid", UserWarning)
    finally:
        logger.removeHandler(recorder)
        logging.getLogger("py.warnings").removeHandler(recorder)
        logging.captureWarnings(False)
    assert recorder.messages[0] == "WARNING: the k-grid resolves transition energies only to 11 eta"
    assert len(recorder.messages) == 2 and "coarse grid" in recorder.messages[1]
    quiet, noisy = tmp_path / "quiet.nc", tmp_path / "noisy.nc"
    for path in (quiet, noisy):
        write_netcdf(xr.Dataset({"x": ("i", np.arange(3.0), {"units": "1", "long_name": "x"})},
                                coords={"i": ("i", np.arange(3), {"units": "1", "long_name": "i"})}),
                     path)
    summary.record_warnings([noisy], recorder.messages)
    summary.record_warnings([quiet], [])
    result = summary.read([quiet, noisy], CONFIG, root=tmp_path)
    assert result["warnings"] == [{"file": "noisy.nc", "message": m} for m in recorder.messages]
    with xr.open_dataset(quiet) as ds:
        assert summary.WARNINGS_ATTRIBUTE not in ds.attrs


def test_html_json_and_console(tmp_path):
    datasets = {"bad.nc": _gamma_file(0.03, rtol=0.01)}
    datasets["bad.nc"].attrs[summary.WARNINGS_ATTRIBUTE] = json.dumps(["WARNING: <b>&"])
    result = summary.summarise(datasets, {**CONFIG, "model": {"kind": "valley"}})
    html_path, json_path = tmp_path / "summary.html", tmp_path / "summary.json"
    since = time.time() - 1
    summary.write(result, html_path, json_path)
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(result))
    page = html_path.read_text()
    assert "WARNING: &lt;b&gt;&amp;" in page and "<b>&" not in page  # escaped
    assert "<pre>" in page and "kind: valley" in page and "rtol_delta_n: 0.02" in page
    assert 'class="MISS"' in page
    text = summary.console(json_path, since=since)
    assert str(html_path) in text and "0 curves pass and 1 miss" in text
    assert "MISS bad.nc: gamma_xxz 0.03 > 0.01" in text
    # a summary older than the run (not made by it) is not announced
    os.utime(json_path, (since - 10, since - 10))
    assert summary.console(json_path, since=since) is None
    assert summary.console(tmp_path / "missing.json") is None
