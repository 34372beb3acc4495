# Stage 1: the k-grid of each valley (nodes and quadrature weights), shaped by the model and by
# the energy/spectral windows the reductions need (GRID_NEEDS).


rule kgrid:
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


rule kgrid_gamma:
    # gamma's own grid: no eta refinement, a window holding the Fermi surfaces of its mu range,
    # node counts from a pilot run so that gamma's estimated error meets accuracy.rtol
    output:
        in_run("results/kgrid/gamma/valley{valley}.nc"),
    params:
        code=code("accuracy", "quadrupolar", "models"),
        units=UNITS,
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        kgrid=config["kgrid"],
        needs=GAMMA_NEEDS,
        quadrupolar_current=config["quadrupolar_current"],
        rtol=config["accuracy"]["rtol"],
    threads: VALLEY_THREADS
    log:
        in_run("logs/kgrid/gamma/valley{valley}.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/kgrid_gamma.py"
