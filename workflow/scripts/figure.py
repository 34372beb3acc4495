"""Figure rules: draw one figure (PDF + PNG) from its NetCDF with qmdipole.figures.<params.plot>."""

import qmdipole.figures
import qmdipole.io
from _pipeline import logged, prefix

with logged(snakemake):
    plot = getattr(qmdipole.figures, snakemake.params.plot)
    with qmdipole.io.open_dataset(snakemake.input.data, what="figure data") as ds:
        plot(ds, prefix(snakemake), dpi=snakemake.params.dpi)
