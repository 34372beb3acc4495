"""Rule quadrupolar_valley: gamma_xxz(mu, T) of one valley (Eqs. 9-10) on its own k-grid, refined
for accuracy.rtol by a pilot run, and checked against it."""

import functools

import qmdipole.accuracy
import qmdipole.io
import qmdipole.quadrupolar
from _pipeline import grid_needs, grid_settings, logged, model, sampling, settings

with logged(snakemake):
    section, accuracy = snakemake.params.quadrupolar_current, snakemake.params.accuracy
    reduce = functools.partial(qmdipole.quadrupolar.gamma_from_table,
                               mu=sampling(section["mu"]), temperatures=section["temperatures"],
                               threads=snakemake.threads)
    grid, record, ds = qmdipole.accuracy.refined_gamma(
        reduce, model(snakemake), snakemake.params.model["kind"], grid_settings(snakemake),
        grid_needs(snakemake), rtol=accuracy["rtol"], threads=snakemake.threads)
    found = qmdipole.accuracy.check_tolerance(
        ds, accuracy["rtol"], accuracy["on_miss"], f"quadrupolar current of valley "
        f"{snakemake.wildcards.valley}")
    ds.attrs.update(qmdipole.accuracy.attributes(found, accuracy["rtol"]))
    pilot = {f"accuracy_{key}": str(value) for key, value in record.items()}
    qmdipole.io.write_netcdf(grid.to_dataset().assign_attrs(pilot), snakemake.output.kgrid,
                             config=settings(snakemake), title="k-grid of gamma")
    qmdipole.io.write_netcdf(ds, snakemake.output.reduction, config=settings(snakemake),
                             title="quadrupolar current, one valley")
