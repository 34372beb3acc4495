# The run's summary (report category "Run"): the qmdipole version and commit that made the outputs,
# the effective config, every curve's error estimate against its tolerance (PASS / MISS), the
# cross-checks, the validation study and the quality warnings, all read from the NetCDF outputs.

import time

import qmdipole.summary

# when this run started: the end-of-run message shows a summary made by this run only
STARTED = time.time()


# every NetCDF output of the run: the summary reads their attributes and error variables
SUMMARY_INPUTS = [
    in_run(path)
    for path in [
        *(
            f"results/{stage}valley{valley}.nc"
            for stage in ("kgrid/", "kgrid/gamma/", "tables/")
            for valley in VALLEYS
        ),
        *(
            f"results/reductions/{part}{name}.nc"
            for part in ["", *(f"valley{valley}/" for valley in VALLEYS)]
            for name in ("quadrupolar_current", "ndd_spectrum",
                         *(["ndd_tensor"] if config["ndd"]["tensor"] else []))
        ),
        "results/reductions/band_structure.nc",
        "results/reductions/qmd_field.nc",
        "results/validation/gamma_convergence.nc",
    ]
]


rule summary:
    input:
        SUMMARY_INPUTS,
    output:
        html=report(
            in_run("results/summary.html"), caption="../report/run_summary.rst", category="Run"
        ),
        json=in_run("results/summary.json"),
    params:
        code=code("summary"),
        config=qmdipole.summary.settings(config),
    log:
        in_run("logs/summary.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/summary.py"


onsuccess:
    stop_compilation()  # (common.smk) done by now unless no job ran
    message = qmdipole.summary.console(in_run("results/summary.json"), since=STARTED)
    if message:
        print(message)
