# Stage 3: reductions of the geometry tables, per valley and summed over valleys, and the
# model-only curves of Fig. 2 (band structure) and Fig. 3 (quantum-metric-dipole field).
# Each labels its output in the run's units (UNITS, a param: changing them relabels the files).

# The ndd keys each NDD reduction reads (its params: a key only the other one reads re-runs nothing)
NDD_SPECTRUM = {key: value for key, value in config["ndd"].items() if key != "tensor"}
NDD_TENSOR = {key: config["ndd"][key] for key in ("omega", "eta", "mu", "temperature",
                                                   "transition_cutoff")}


rule quadrupolar_valley:
    # gamma's own grid (a grid per need: no eta refinement, a window holding the Fermi surfaces of
    # its mu range), node counts from a pilot run so that gamma's estimate meets accuracy.rtol;
    # that grid's table is made and reduced in memory (the pilot's result kept when it meets rtol)
    priority: PRIORITY_GAMMA
    output:
        reduction=in_run("results/reductions/valley{valley}/quadrupolar_current.nc"),
        kgrid=in_run("results/kgrid/gamma/valley{valley}.nc"),
    params:
        code=code("quadrupolar", "accuracy", "models"),
        units=UNITS,
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        kgrid=config["kgrid"],
        needs=GAMMA_NEEDS,
        quadrupolar_current=config["quadrupolar_current"],
        accuracy=config["accuracy"],
    threads: VALLEY_THREADS
    log:
        in_run("logs/reductions/valley{valley}/quadrupolar_current.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/quadrupolar_valley.py"


rule quadrupolar_current:
    priority: PRIORITY_GAMMA
    input:
        valleys=expand(
            in_run("results/reductions/valley{valley}/quadrupolar_current.nc"), valley=VALLEYS
        ),
    output:
        in_run("results/reductions/quadrupolar_current.nc"),
    params:
        code=code("valleys", "accuracy"),
        model=config["model"],
        units=UNITS,
        quadrupolar_current=config["quadrupolar_current"],
        accuracy=config["accuracy"],
    log:
        in_run("logs/reductions/quadrupolar_current.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/quadrupolar_current.py"


rule ndd_valley:
    priority: PRIORITY_NDD
    input:
        table=in_run("results/tables/valley{valley}.nc"),
    output:
        in_run("results/reductions/valley{valley}/ndd_spectrum.nc"),
    params:
        code=code("ndd", "accuracy", "models"),
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        units=UNITS,
        ndd=NDD_SPECTRUM,
        accuracy=config["accuracy"],
        kgrid=config["kgrid"],  # the table's grid, refined in memory while the estimates miss
        needs=GRID_NEEDS,
    threads: VALLEY_THREADS
    log:
        in_run("logs/reductions/valley{valley}/ndd_spectrum.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/ndd_valley.py"


rule ndd_spectrum:
    priority: PRIORITY_NDD
    input:
        valleys=expand(in_run("results/reductions/valley{valley}/ndd_spectrum.nc"), valley=VALLEYS),
    output:
        in_run("results/reductions/ndd_spectrum.nc"),
    params:
        code=code("valleys"),
        model=config["model"],
        units=UNITS,
        ndd=NDD_SPECTRUM,
        accuracy=config["accuracy"],
        tensor=False,
    log:
        in_run("logs/reductions/ndd_spectrum.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/ndd_spectrum.py"


# The NDD tensor T_abc (Delta n for every light direction and polarisation): on request, as the
# target results/reductions/ndd_tensor.nc or with ndd.tensor: true (18 reductions per valley).
rule ndd_tensor_valley:
    input:
        table=in_run("results/tables/valley{valley}.nc"),
    output:
        in_run("results/reductions/valley{valley}/ndd_tensor.nc"),
    params:
        code=code("ndd", "accuracy", "models"),
        model_code=model_code(),
        model=lambda wildcards: valley_model(wildcards.valley),
        units=UNITS,
        ndd=NDD_TENSOR,
        accuracy=config["accuracy"],
    threads: VALLEY_THREADS
    log:
        in_run("logs/reductions/valley{valley}/ndd_tensor.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/ndd_tensor_valley.py"


use rule ndd_spectrum as ndd_tensor with:
    input:
        valleys=expand(in_run("results/reductions/valley{valley}/ndd_tensor.nc"), valley=VALLEYS),
    output:
        in_run("results/reductions/ndd_tensor.nc"),
    params:
        code=code("valleys"),
        model=config["model"],
        units=UNITS,
        ndd=NDD_TENSOR,
        accuracy=config["accuracy"],
        tensor=True,
    log:
        in_run("logs/reductions/ndd_tensor.log"),


rule band_structure:
    output:
        in_run("results/reductions/band_structure.nc"),
    params:
        code=code("band_structure", "models"),
        model_code=model_code(),
        model=config["model"],
        units=UNITS,
        band_structure=config["band_structure"],
    log:
        in_run("logs/reductions/band_structure.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/band_structure.py"


rule qmd_field:
    output:
        in_run("results/reductions/qmd_field.nc"),
    params:
        code=code("qmd_field", "models"),
        model_code=model_code(),
        model=valley_model(config["qmd_field"]["valley"]),
        units=UNITS,
        qmd_field=config["qmd_field"],
    log:
        in_run("logs/reductions/qmd_field.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/qmd_field.py"
