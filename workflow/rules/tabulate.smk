# Stage 2: the band geometry (energy, velocity, quantum metric, Berry curvature) of each valley on
# its k-grid, computed by Dask on the rule's threads (or on the scheduler at tabulate.scheduler).


rule tabulate:
    priority: PRIORITY_NDD
    input:
        kgrid=in_run("results/kgrid/valley{valley}.nc"),
    output:
        in_run("results/tables/valley{valley}.nc"),
    params:
        code=code("tabulate", "models"),
        units=UNITS,
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        method=config["tabulate"]["method"],
        slab_points=config["tabulate"]["slab_points"],
        compression=config["tabulate"]["compression"],
    # the valleys tabulate side by side, each on its share of the cores
    threads: min(config["tabulate"]["threads"], VALLEY_THREADS)
    resources:
        # how the job runs, not what it computes: a new scheduler address re-runs nothing
        dask_scheduler=config["tabulate"]["scheduler"] or "",
    log:
        in_run("logs/tabulate/valley{valley}.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/tabulate.py"

