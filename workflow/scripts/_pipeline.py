"""Shared by the rule scripts: logging to the rule's log file, provenance, model building.

Snakemake puts this directory on ``sys.path`` of every script it runs from here.
"""

import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import qmdipole.io
import qmdipole.models
import qmdipole.summary

# kind: python models are imported by name ("package.module:function"): let that name resolve
# against the directory the workflow runs in (e.g. examples/user_model.py from the checkout).
if os.getcwd() not in sys.path:
    sys.path.append(os.getcwd())


def _stopper(rule, log):
    """A SIGTERM handler: log the stop, remove the partial outputs, exit at once with status
    128 + signum. Exiting from the handler (not raising into whatever code runs) cannot deadlock
    on a lock the interrupted code holds (HDF5's, during a NetCDF write)."""

    def stop(signum, frame):
        logging.getLogger("qmdipole.pipeline").error("rule %s stopped (exit status %d)", rule,
                                                     128 + signum)
        qmdipole.io.remove_partial_writes()
        log.flush()
        os._exit(128 + signum)

    return stop


# Third-party loggers whose INFO/DEBUG lines are noise in a job's log (font subsetting, ...).
QUIET = ("fontTools", "matplotlib", "PIL", "distributed", "numba")


def _console(rule):
    """A handler that shows warnings and errors where users look: the terminal running Snakemake
    (the job's own stderr, which the block below sends to the log file)."""
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"[{rule}] %(levelname)s: %(message)s"))
    return handler


@contextlib.contextmanager
def logged(snakemake):
    """Send logging, stdout and stderr of the block to the rule's log file; log a failure too.

    Warnings (quality warnings of the package, and ``warnings.warn``) also go to the console,
    and into the rule's NetCDF outputs (attribute ``quality_warnings``, see qmdipole.summary).
    SIGTERM (how Snakemake stops a job) removes the partial outputs and exits with status 143.
    """
    path = Path(snakemake.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    pipeline = logging.getLogger("qmdipole.pipeline")
    with open(path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        logging.basicConfig(
            stream=log, level=logging.INFO, force=True,
            format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        )
        logging.getLogger().addHandler(_console(snakemake.rule))
        recorder = qmdipole.summary.WarningRecorder()
        logging.getLogger().addHandler(recorder)
        logging.captureWarnings(True)
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        pipeline.info(
            "rule %s, wildcards %s, threads %d", snakemake.rule, dict(snakemake.wildcards.items()),
            snakemake.threads,
        )
        previous = signal.signal(signal.SIGTERM, _stopper(snakemake.rule, log))
        try:
            yield
        except Exception:
            pipeline.exception("rule %s failed", snakemake.rule)
            raise
        except SystemExit as stop:
            pipeline.error("rule %s stopped (exit status %s)", snakemake.rule, stop.code)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        qmdipole.summary.record_warnings(
            [path for path in snakemake.output if path.endswith(".nc")], recorder.messages)
        pipeline.info("rule %s done", snakemake.rule)


def settings(snakemake) -> dict:
    """The rule's params: the part of the config that made its output (recorded as provenance),
    and the run's ``units`` (which label every output, see qmdipole.units)."""
    return {"units": snakemake.config["units"], **dict(snakemake.params.items())}


def ndd_options(snakemake) -> dict:
    """The NDD reduction's options from the rule's ``params.ndd`` (light geometry and the Kubo
    route left to the caller)."""
    section = snakemake.params.ndd
    return dict(omega=sampling(section["omega"]), eta=section["eta"], mu=section["mu"],
                temperature=section["temperature"],
                transition_cutoff=section["transition_cutoff"])


def model(snakemake, valley=0):
    """The model of valley ``valley`` (0-based) of the rule's ``params.model``."""
    return qmdipole.models.build_model(snakemake.params.model, valley)


def models(snakemake):
    """The models of every valley of the rule's ``params.model``, valley 1 first."""
    return [model(snakemake, i) for i in range(len(snakemake.params.model["valleys"]))]


def valley_reductions(snakemake):
    """The per-valley reductions of the rule's input ``valleys``, each checked to be made for its
    valley of the rule's ``params.model`` (a file of another valley or model is refused)."""
    found = []
    for i, path in enumerate(snakemake.input.valleys):
        ds = qmdipole.io.open_dataset(path, what="valley reduction")
        qmdipole.io.check_made_for(ds, path, "valley reduction",
                                   model=qmdipole.models.valley_section(snakemake.params.model, i))
        found.append(ds)
    return found


def grid_settings(snakemake) -> "qmdipole.settings.GridSettings":
    """The rule's ``params.kgrid`` section as typed grid settings."""
    from qmdipole.settings import GridSettings, section_settings

    return section_settings(GridSettings, snakemake.params.kgrid, "kgrid")


def grid_needs(snakemake) -> "qmdipole.kgrid.GridNeeds":
    """The rule's ``params.needs``: what the reductions need from its k-grid."""
    from qmdipole.kgrid import GridNeeds

    return GridNeeds.from_dict(snakemake.params.needs)


def sampling(section) -> "numpy.ndarray":
    """``numpy.linspace`` of a ``{start, stop, num}`` config entry."""
    import numpy

    return numpy.linspace(section["start"], section["stop"], int(section["num"]))


def prefix(snakemake) -> str:
    """The output path of a figure rule without its extension (its outputs are multiext)."""
    return os.path.splitext(snakemake.output[0])[0]
