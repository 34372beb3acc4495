"""A run's summary: provenance, settings, every curve's error against its tolerance, warnings.

Everything is read from the run's NetCDF outputs, never recomputed:

* the code that made them: the global attributes ``qmdipole_version``, ``git_commit``,
  ``git_dirty`` of every file (files made by different code are named);
* for every curve ``NAME`` that carries ``NAME_error``: the error estimate relative to the
  curve's peak (the attribute ``max_relative_to_peak`` of ``NAME_error``: max error / max |curve|,
  over all temperatures of a finite-T curve), and, for the curves the pipeline checks (those named
  in the file's ``relative_error_estimates``), the tolerance of the file's ``accuracy_rtol`` and
  PASS (estimate <= tolerance) or MISS;
* cross-checks: the Kubo route (Eq. 11) against Eq. 12, ``kubo_max_relative_difference``
  (max |Δn_Kubo − Δn| / max |Δn|), held to the tolerance of Δn (``accuracy.rtol_delta_n``);
* the validation study: ``max_error`` (max |γ − reference| / max |reference|) per grid size;
* the quality warnings each job logged while making a file (the attribute
  :data:`WARNINGS_ATTRIBUTE`, written by :func:`record_warnings`).

:func:`summarise` builds a JSON-ready dict from open Datasets; :func:`to_html` renders it.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path

import xarray as xr
import yaml

#: global attribute of an output: JSON list of the warnings logged by the job that made it
WARNINGS_ATTRIBUTE = "quality_warnings"
#: the summary's name of each provenance attribute of a file (qmdipole.io.provenance)
PROVENANCE = {"version": "qmdipole_version", "git_commit": "git_commit", "git_dirty": "git_dirty"}
PASS, MISS = "PASS", "MISS"
#: settings of how jobs run, not of what they compute: left out of the summary (their change
#: re-runs nothing, the summary included)
EXECUTION = {"tabulate": ("threads", "scheduler", "worker_timeout")}
KUBO = "Kubo (Eq. 11) vs Eq. 12"


class WarningRecorder(logging.Handler):
    """A logging handler keeping the messages of level WARNING and above (one line each)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        lines = record.getMessage().strip().splitlines()  # a captured warning: its source line too
        self.messages.append(f"{record.levelname}: {lines[0] if lines else ''}")


def record_warnings(paths, messages: list[str]) -> None:
    """Add ``messages`` to the NetCDF files ``paths`` as the global attribute
    :data:`WARNINGS_ATTRIBUTE` (a JSON list); nothing is written when there are none."""
    import netCDF4

    if not messages:
        return
    for path in paths:
        with netCDF4.Dataset(path, "a") as nc:
            nc.setncattr(WARNINGS_ATTRIBUTE, json.dumps(list(messages)))


def settings(config: dict) -> dict:
    """``config`` without the execution settings (:data:`EXECUTION`)."""
    return {section: ({k: v for k, v in value.items() if k not in EXECUTION[section]}
                      if section in EXECUTION and isinstance(value, dict) else value)
            for section, value in config.items()}


def _tolerances(attrs: dict) -> dict[str, float]:
    """{curve: tolerance} of the curves a file was checked for, from its ``accuracy_rtol``
    (one number for all, or "name: tol; ...") and ``relative_error_estimates``
    ("name[dim=value]: estimate; ...")."""
    checked = {item.split(":")[0].split("[")[0].strip()
               for item in str(attrs.get("relative_error_estimates", "")).split(";") if item.strip()}
    limit = attrs.get("accuracy_rtol")
    if limit is None:
        return {}
    if isinstance(limit, str):
        given = dict(item.split(":") for item in limit.split(";") if item.strip())
        return {name.strip(): float(value) for name, value in given.items()
                if name.strip() in checked}
    return dict.fromkeys(sorted(checked), float(limit))


def _status(value: float, tolerance: float | None) -> str | None:
    if tolerance is None:
        return None
    return PASS if value <= tolerance else MISS


def _number(value) -> float | None:
    """A JSON-safe float (None for NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


def _checked(row: dict) -> float:
    """The estimate a curve's tolerance is checked on (:func:`curves`)."""
    parts = row.get("relative_to_valley_peaks")
    return row["relative_error"] if parts is None else parts


def curves(name: str, ds: xr.Dataset) -> list[dict]:
    """Every curve of ``ds`` (file ``name``) with an error estimate relative to its peak; a valley
    sum also relative to the sum of its valleys' peaks, the number its tolerance is checked on
    (:func:`qmdipole.accuracy.relative_error`)."""
    limits = _tolerances(ds.attrs)
    rows = []
    for var in ds.data_vars:
        error = ds.get(f"{var}_error")
        if error is None or "max_relative_to_peak" not in error.attrs:
            continue
        value = float(error.attrs["max_relative_to_peak"])
        parts = error.attrs.get("max_relative_to_valley_peaks")
        row = {"file": name, "variable": str(var), "relative_error": value,
               "relative_to_valley_peaks": None if parts is None else float(parts),
               "tolerance": limits.get(str(var))}
        rows.append({**row, "status": _status(_checked(row), row["tolerance"])})
    return rows


def cross_checks(name: str, ds: xr.Dataset, config: dict) -> list[dict]:
    """The Kubo cross-check of an NDD file, against ``accuracy.rtol_delta_n`` of ``config``."""
    if "kubo_max_relative_difference" not in ds.attrs:
        return []
    value = float(ds.attrs["kubo_max_relative_difference"])
    tolerance = config.get("accuracy", {}).get("rtol_delta_n")
    return [{"file": name, "check": KUBO, "relative_difference": value,
             "tolerance": tolerance, "status": _status(value, tolerance)}]


def validation(name: str, ds: xr.Dataset) -> list[dict]:
    """The convergence study's rows: grid size, scale of ``kgrid.n`` and max error vs reference."""
    if "max_error" not in ds or "n_points" not in ds["max_error"].dims:
        return []
    scales = ds["scale"].values if "scale" in ds else [math.nan] * ds.sizes["n_points"]
    return [{"file": name, "n_points": int(n), "scale": _number(scale),
             "max_error": _number(error), "reference": ds.attrs.get("reference", "")}
            for n, scale, error in zip(ds["n_points"].values, scales, ds["max_error"].values)]


def revision(datasets: dict[str, xr.Dataset]) -> dict:
    """The code that made the files: {version, git_commit, git_dirty} if all agree (``consistent``),
    and every distinct revision with the files it made."""
    found: dict[tuple, list[str]] = {}
    for name, ds in datasets.items():
        key = tuple(str(ds.attrs.get(attr, "unknown")) for attr in PROVENANCE.values())
        found.setdefault(key, []).append(name)
    revisions = [{**dict(zip(PROVENANCE, key)), "files": files} for key, files in found.items()]
    first = dict(zip(PROVENANCE, next(iter(found), ("unknown",) * len(PROVENANCE))))
    return {**first, "consistent": len(found) <= 1, "revisions": revisions}


def quality_warnings(datasets: dict[str, xr.Dataset]) -> list[dict]:
    """The warnings recorded in the files (:data:`WARNINGS_ATTRIBUTE`), one row per message."""
    rows = []
    for name, ds in datasets.items():
        text = ds.attrs.get(WARNINGS_ATTRIBUTE)
        if text is None:
            continue
        try:
            messages = json.loads(text)
        except json.JSONDecodeError:
            messages = [str(text)]
        rows.extend({"file": name, "message": str(message)} for message in messages)
    return rows


def summarise(datasets: dict[str, xr.Dataset], config: dict) -> dict:
    """The summary of a run from its outputs ``datasets`` ({file name: Dataset}) and ``config``."""
    rows = [row for name, ds in datasets.items() for row in curves(name, ds)]
    checks = [row for name, ds in datasets.items() for row in cross_checks(name, ds, config)]
    statuses = [row["status"] for row in rows + checks]
    return {
        "qmdipole": revision(datasets),
        "config": config,
        "counts": {"pass": statuses.count(PASS), "miss": statuses.count(MISS),
                   "not_checked": statuses.count(None)},
        "curves": rows,
        "cross_checks": checks,
        "validation": [row for name, ds in datasets.items() for row in validation(name, ds)],
        "warnings": quality_warnings(datasets),
    }


def read(paths, config: dict, root=None) -> dict:
    """:func:`summarise` of the NetCDF files ``paths`` (named relative to ``root``, default the
    working directory); only their metadata and small variables are read."""
    root = Path(root or os.getcwd())
    datasets = {}
    try:
        for path in map(Path, paths):
            name = os.path.relpath(path, root) if path.is_absolute() else path.as_posix()
            datasets[name] = xr.open_dataset(path, decode_times=False)
        return summarise(datasets, config)
    finally:
        for ds in datasets.values():
            ds.close()


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list], classes: list[str | None] | None = None) -> str:
    """An HTML table; row i gets the CSS class ``classes[i]`` (e.g. its status)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row, css in zip(rows, classes or [None] * len(rows)):
        cells = "".join(f"<td>{html.escape(_fmt(cell))}</td>" for cell in row)
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_STYLE = """body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:left}tr.MISS{background:#fdd}tr.PASS{background:#efe}pre{background:#f6f6f6;
padding:0.5em;overflow:auto}.warn{color:#a00}"""


def headline(summary: dict) -> str:
    """One line: how many checked curves pass and miss their tolerance, and the warnings."""
    counts = summary["counts"]
    return (f"{counts['pass']} curves pass and {counts['miss']} miss their tolerance "
            f"({counts['not_checked']} reported without one); "
            f"{len(summary['warnings'])} quality warning(s)")


def to_html(summary: dict) -> str:
    """A self-contained HTML page of ``summary``."""
    code = summary["qmdipole"]
    parts = [f"<h1>qmdipole run summary</h1><p>{html.escape(headline(summary))}.</p>",
             "<h2>Code</h2>",
             _table(["version", "git commit", "dirty"],
                    [[code["version"], code["git_commit"], code["git_dirty"]]])]
    if not code["consistent"]:
        parts.append("<p class='warn'>The outputs were made by different code:</p>" + _table(
            ["version", "git commit", "dirty", "files"],
            [[r["version"], r["git_commit"], r["git_dirty"], ", ".join(r["files"])]
             for r in code["revisions"]]))
    parts += ["<h2>Accuracy of every curve</h2><p>Estimated error relative to the curve's peak "
              "(max <code>NAME_error</code> / max |<code>NAME</code>|), against the tolerance "
              "the pipeline checks it for (<code>accuracy:</code>); — where none applies. A sum over "
              "valleys is checked relative to the sum of its valleys' peaks (what per-valley "
              "tolerances guarantee; larger than its own peak where valleys cancel).</p>",
              _table(["file", "variable", "estimate / peak", "estimate / Σ valley peaks",
                      "tolerance", "status"],
                     [[r["file"], r["variable"], r["relative_error"],
                       r["relative_to_valley_peaks"], r["tolerance"], r["status"]]
                      for r in summary["curves"]], [r["status"] for r in summary["curves"]])]
    if summary["cross_checks"]:
        parts += ["<h2>Cross-checks</h2>", _table(
            ["file", "check", "max difference / peak", "tolerance", "status"],
            [[r["file"], r["check"], r["relative_difference"], r["tolerance"], r["status"]]
             for r in summary["cross_checks"]], [r["status"] for r in summary["cross_checks"]])]
    if summary["validation"]:
        parts += ["<h2>Validation: convergence of γ<sub>xxz</sub></h2><p>Reference: "
                  f"{html.escape(summary['validation'][0]['reference'])}.</p>", _table(
                      ["file", "k-points", "scale of kgrid.n", "max |γ − ref| / max |ref|"],
                      [[r["file"], r["n_points"], r["scale"], r["max_error"]]
                       for r in summary["validation"]])]
    parts.append("<h2>Quality warnings</h2>")
    parts.append(_table(["file", "warning"], [[w["file"], w["message"]]
                                              for w in summary["warnings"]])
                 if summary["warnings"] else "<p>None.</p>")
    config = yaml.safe_dump(summary["config"], sort_keys=True, default_flow_style=None)
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config)}</pre>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>qmdipole run summary"
            f"</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def write(summary: dict, html_path, json_path) -> None:
    """Write ``summary`` as HTML and as JSON."""
    Path(html_path).parent.mkdir(parents=True, exist_ok=True)
    Path(html_path).write_text(to_html(summary))
    Path(json_path).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")


def console(json_path, since: float | None = None) -> str | None:
    """The lines to show at the end of a run: where the summary is and what it says; None if
    ``json_path`` is missing or older than ``since`` (a run that did not make it)."""
    path = Path(json_path)
    if not path.is_file() or (since is not None and path.stat().st_mtime < since):
        return None
    summary = json.loads(path.read_text())
    lines = [f"qmdipole run summary: {path.with_suffix('.html')} ({path.name}): "
             f"{headline(summary)}"]
    lines += [f"  MISS {r['file']}: {r['variable']} {_checked(r):.3g} > {r['tolerance']:g}"
              for r in summary["curves"] if r["status"] == MISS]
    if not summary["qmdipole"]["consistent"]:
        lines.append("  the outputs were made by different qmdipole code (see the summary)")
    return "\n".join(lines)
