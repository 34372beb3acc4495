# Parameter sweeps (config `sweeps:`, see qmdipole.sweeps). Each point is this workflow again, as
# a Snakemake module with the point's config (the named run sweeps/NAME/points/ID): a point is
# the same jobs as a separate run of that config, cached the same way, and points run in
# parallel like any jobs. A point's config has no sweeps, so a module holds no further modules.
#   snakemake --cores all sweeps     # every sweep
#   snakemake --cores all NAME       # sweep NAME: results/sweeps/NAME/sweep.nc and features.{pdf,png}

import hashlib

SWEEPS = sweep_plan(config)
# this workflow's Snakefile (also when the workflow is itself a module of another one)
THIS_SNAKEFILE = os.path.normpath(os.path.join(workflow.current_basedir, "..", "..", "Snakefile"))

for sweep_name, sweep_points in SWEEPS.items():
    for sweep_point, point_settings in sweep_points:
        point_module = f"sweep_{sweep_name}_{hashlib.sha1(sweep_point.id.encode()).hexdigest()[:10]}"
        point_rules = f"{point_module}_"

        module:
            name:
                point_module
            snakefile:
                THIS_SNAKEFILE
            config:
                point_settings

        use rule * from point_module exclude all as point_rules*


rule sweep:
    input:
        unpack(sweep_point_files),
    output:
        in_run("results/sweeps/{sweep}/sweep.nc"),
    params:
        code=code("sweeps"),
        settings=sweep_settings,
    log:
        in_run("logs/sweeps/{sweep}/sweep.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/sweep.py"


rule sweep_figure:
    input:
        data=in_run("results/sweeps/{sweep}/sweep.nc"),
    output:
        report(
            multiext(in_run("results/sweeps/{sweep}/features"), ".pdf", ".png"),
            caption="../report/sweep_features.rst",
            category="Sweeps",
            subcategory="{sweep}",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_sweep_features",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/sweeps/{sweep}/features.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"


rule sweeps:
    input:
        sweep_outputs(SWEEPS),


for sweep_name in SWEEPS:
    if sweep_name in {r.name for r in workflow.rules} | {"all"}:
        raise WorkflowError(
            f"invalid configuration: sweep {sweep_name}: the name is taken by a rule of the "
            "workflow (a sweep's name is its target): rename the sweep"
        )

    rule:
        name:
            sweep_name
        input:
            sweep_outputs([sweep_name]),


wildcard_constraints:
    sweep="|".join(SWEEPS) or "(?!)",
