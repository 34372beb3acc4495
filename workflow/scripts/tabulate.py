"""Rule tabulate: band geometry of one valley on its k-grid -> results/tables/valley{valley}.nc."""

import qmdipole.kgrid
import qmdipole.tabulate
from _pipeline import logged, model, settings

with logged(snakemake):
    grid = qmdipole.kgrid.read_kgrid(snakemake.input.kgrid, model=snakemake.params.model)
    qmdipole.tabulate.write_table(
        model(snakemake), grid, snakemake.output[0], config=settings(snakemake),
        method=snakemake.params.method, slab_points=snakemake.params.slab_points,
        compression=snakemake.params.compression,
        threads=snakemake.threads, address=snakemake.resources.dask_scheduler or None,
        worker_timeout=snakemake.config["tabulate"]["worker_timeout"],  # how, not what: no param
    )
