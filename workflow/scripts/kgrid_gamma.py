"""Rule kgrid_gamma: gamma's k-grid of one valley, refined for accuracy.rtol by a pilot run."""

import functools

import qmdipole.accuracy
import qmdipole.io
import qmdipole.quadrupolar
from _pipeline import grid_needs, grid_settings, logged, model, sampling, settings

with logged(snakemake):
    params = snakemake.params
    section = params.quadrupolar_current
    reduce = functools.partial(qmdipole.quadrupolar.gamma_from_table,
                               mu=sampling(section["mu"]), temperatures=section["temperatures"],
                               threads=snakemake.threads)
    grid, record, _ = qmdipole.accuracy.gamma_grid(
        reduce, model(snakemake), params.model["kind"], grid_settings(snakemake),
        grid_needs(snakemake), rtol=params.rtol,
    )
    ds = grid.to_dataset()
    ds.attrs.update({f"accuracy_{key}": str(value) for key, value in record.items()})
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="k-grid of gamma")
