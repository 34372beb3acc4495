"""Rule kgrid: the k-grid of one valley -> results/kgrid/valley{valley}.nc."""

import qmdipole.io
import qmdipole.kgrid
from _pipeline import logged, model, settings

with logged(snakemake):
    params = snakemake.params
    grid = qmdipole.kgrid.grid_from_config(
        model(snakemake), params.model["kind"], params.kgrid, params.needs
    )
    qmdipole.io.write_netcdf(grid.to_dataset(), snakemake.output[0], config=settings(snakemake),
                             title="k-grid")
