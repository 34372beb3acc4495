"""Rule kgrid: the k-grid of one valley -> results/kgrid/valley{valley}.nc."""

import qmdipole.io
import qmdipole.kgrid
from _pipeline import grid_needs, grid_settings, logged, model, settings

with logged(snakemake):
    grid = qmdipole.kgrid.grid_for(model(snakemake), snakemake.params.model["kind"],
                                   grid_settings(snakemake), grid_needs(snakemake))
    qmdipole.io.write_netcdf(grid.to_dataset(), snakemake.output[0], config=settings(snakemake),
                             title="k-grid")
