# Stage 1: the k-grid of each valley (nodes and quadrature weights), shaped by the model and by
# the energy/spectral windows the NDD reductions need (GRID_NEEDS). gamma chooses its own grid
# (rule quadrupolar_valley).


rule kgrid:
    priority: PRIORITY_NDD
    output:
        in_run("results/kgrid/valley{valley}.nc"),
    params:
        code=code("kgrid", "models"),
        units=UNITS,
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        kgrid=config["kgrid"],
        needs=GRID_NEEDS,
    log:
        in_run("logs/kgrid/valley{valley}.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/kgrid.py"

