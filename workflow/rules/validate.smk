# Validation: gamma_xxz(mu) on a sequence of grids against an independent reference (the
# semi-analytic reduction of Eq. 14 for kind: valley), as NetCDF, CSV and a figure in the report.


rule gamma_convergence:
    output:
        data=in_run("results/validation/gamma_convergence.nc"),
        table=report(
            in_run("results/validation/gamma_convergence.csv"),
            caption="../report/gamma_convergence_table.rst",
            category="Validation",
        ),
    params:
        code=code("validation"),
        units=UNITS,
        model=config["model"],
        kgrid=config["kgrid"],
        needs=GAMMA_NEEDS,
        mu=config["quadrupolar_current"]["mu"],
        scales=config["validation"]["scales"],
    log:
        in_run("logs/validation/gamma_convergence.log"),
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/gamma_convergence.py"


rule fig_gamma_convergence:
    input:
        data=in_run("results/validation/gamma_convergence.nc"),
    output:
        report(
            multiext(in_run("results/figures/validation_gamma_convergence"), ".pdf", ".png"),
            caption="../report/validation_gamma_convergence.rst",
            category="Validation",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_convergence",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/figures/validation_gamma_convergence.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"
