# qmdipole pipeline: config -> k-grid -> geometry table -> reductions -> figures + report.
#
#   snakemake --cores all                                   # the paper's Fig. 2, 3, 4a, 4b
#   snakemake --cores all --configfile my.yaml              # override some keys (merged over config/config.yaml)
#   snakemake --report results/report.html                  # one HTML with every figure
#
# A run ends with a line naming results/summary.html (and .json): the version, config, every
# curve's error estimate against its tolerance, and the quality warnings of the run.
#
# Rules live in workflow/rules/*.smk, one file per stage; their scripts (workflow/scripts/*.py) only
# read snakemake.input/params, call the qmdipole package and write snakemake.output.

import os

from snakemake.utils import min_version

min_version("9.0")


# The defaults, found beside this Snakefile also when running elsewhere (--directory DIR):
# --configfile FILE and --config KEY=VALUE are merged over them, key by key.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


check_config(config, SCHEMA)

# Valley numbers (1-based, the {valley} wildcard; a kind: wannier90 model is one, see check_config)
# and what the reductions need from a k-grid (energy and spectral windows, eta): only these, not the
# whole reduction settings, shape the grid.
VALLEYS = list(range(1, len(config["model"]["valleys"]) + 1))
GRID_NEEDS, GAMMA_NEEDS = needs(config)
UNITS = qmdipole.units.resolved(config)  # how every file labels its units (checked by check_config)
# threads of one valley's reduction: the valleys share the cores (one component: all of them); the
# numbers do not depend on it (slabs are summed in order). No --cores (--report): no job runs.
try:
    VALLEY_THREADS = max(1, workflow.cores // len(VALLEYS))
except WorkflowError:
    VALLEY_THREADS = 1


# Job priorities: the longest chain (the NDD's grid -> table -> reduction -> valley sum) first,
# gamma's next; the other jobs fill the cores around them.
PRIORITY_NDD, PRIORITY_GAMMA = 10, 5


# Compile the numba kernels once, in a process of their own beside the first jobs (the k-grids and
# tables run no kernel); a job that imports them waits for it, rather than compiling them too
# (~8 s each on a fresh cache). With a warm cache this only loads them. A workflow that fails
# stops it (stop_compilation in workflow/rules/common.smk; the one onsuccess handler, in
# workflow/rules/summary.smk, calls it too).
onstart:
    start_compilation()


onerror:
    stop_compilation()


include: "workflow/rules/kgrid.smk"
include: "workflow/rules/tabulate.smk"
include: "workflow/rules/reduce.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        tables=expand(in_run("results/tables/valley{valley}.nc"), valley=VALLEYS),
        reductions=[
            in_run("results/reductions/quadrupolar_current.nc"),
            in_run("results/reductions/ndd_spectrum.nc"),
            in_run("results/reductions/band_structure.nc"),
            in_run("results/reductions/qmd_field.nc"),
            *([in_run("results/reductions/ndd_tensor.nc")] if config["ndd"]["tensor"] else []),
        ],
        figures=[
            multiext(in_run(f"results/figures/{name}"), ".pdf", ".png")
            for name in (
                "fig2_band_structure",
                "fig3_qmd_streamlines",
                "fig4a_ndd_spectrum",
                "fig4b_quadrupolar_current",
            )
        ],
        validation=[
            in_run("results/validation/gamma_convergence.nc"),
            in_run("results/validation/gamma_convergence.csv"),
            multiext(in_run("results/figures/validation_gamma_convergence"), ".pdf", ".png"),
        ],
        summary=[in_run("results/summary.html"), in_run("results/summary.json")],
    default_target: True
