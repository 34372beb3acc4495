"""Rule ndd_valley: Delta n(omega) and <G>(omega) of one valley (Eqs. 4, 11-13), refined until its
estimates meet accuracy.rtol_delta_n and accuracy.rtol_avg_qmd, and checked against them."""

import functools

import qmdipole.accuracy
import qmdipole.io
import qmdipole.ndd
import qmdipole.tabulate
from _pipeline import grid_needs, grid_settings, logged, model, ndd_options, settings

with logged(snakemake):
    section, accuracy = snakemake.params.ndd, snakemake.params.accuracy
    valley_model = model(snakemake)
    reduce = functools.partial(
        qmdipole.ndd.spectrum_from_table, model=valley_model, **ndd_options(snakemake),
        kubo=section["kubo_check"], dq=section["kubo_dq"], q_direction=section["q_direction"],
        polarization=section["polarization"], threads=snakemake.threads,
    )
    table = qmdipole.tabulate.read_table(snakemake.input.table, model=snakemake.params.model)
    rtol = qmdipole.accuracy.ndd_tolerances(accuracy)
    what = f"NDD spectrum of valley {snakemake.wildcards.valley}"
    ds, record = qmdipole.accuracy.refined_until_met(
        reduce, table, valley_model, snakemake.params.model["kind"], grid_settings(snakemake),
        grid_needs(snakemake), rtol, what)
    found = qmdipole.accuracy.check_tolerance(ds, rtol, accuracy["on_miss"], what,
                                              qmdipole.accuracy.NDD_TOLERANCES)
    ds.attrs.update({**qmdipole.accuracy.attributes(found, rtol), **record})
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="NDD spectrum, one valley")
