# Stage 4: the paper's figures (PDF + PNG), drawn from the reductions with the shared plot style.
# Drawing only: figures.* settings, the style file and figures.py re-render these and nothing else.


rule fig2_band_structure:
    input:
        data=in_run("results/reductions/band_structure.nc"),
    output:
        report(
            multiext(in_run("results/figures/fig2_band_structure"), ".pdf", ".png"),
            caption="../report/fig2_band_structure.rst",
            category="Figures",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_band_structure",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/figures/fig2_band_structure.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"


rule fig3_qmd_streamlines:
    input:
        data=in_run("results/reductions/qmd_field.nc"),
    output:
        report(
            multiext(in_run("results/figures/fig3_qmd_streamlines"), ".pdf", ".png"),
            caption="../report/fig3_qmd_streamlines.rst",
            category="Figures",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_qmd_field",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/figures/fig3_qmd_streamlines.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"


rule fig4a_ndd_spectrum:
    input:
        data=in_run("results/reductions/ndd_spectrum.nc"),
    output:
        report(
            multiext(in_run("results/figures/fig4a_ndd_spectrum"), ".pdf", ".png"),
            caption="../report/fig4a_ndd_spectrum.rst",
            category="Figures",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_ndd_spectrum",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/figures/fig4a_ndd_spectrum.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"


rule fig4b_quadrupolar_current:
    input:
        data=in_run("results/reductions/quadrupolar_current.nc"),
    output:
        report(
            multiext(in_run("results/figures/fig4b_quadrupolar_current"), ".pdf", ".png"),
            caption="../report/fig4b_quadrupolar_current.rst",
            category="Figures",
        ),
    params:
        code=code("figures", data=("paper.mplstyle",)),
        plot="plot_quadrupolar_current",
        dpi=config["figures"]["dpi"],
    log:
        in_run("logs/figures/fig4b_quadrupolar_current.log"),
    localrule: True
    conda:
        "../envs/qmdipole.yaml"
    script:
        "../scripts/figure.py"
