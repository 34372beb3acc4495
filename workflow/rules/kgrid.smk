# Stage 1: the k-grid of each valley (nodes and quadrature weights), shaped by the model and by
# the energy/spectral windows the reductions need (GRID_NEEDS).


rule kgrid:
    output:
        "results/kgrid/valley{valley}.nc",
    params:
        code=code("kgrid", "models"),
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        kgrid=config["kgrid"],
        needs=GRID_NEEDS,
    log:
        "logs/kgrid/valley{valley}.log",
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/kgrid.py"
