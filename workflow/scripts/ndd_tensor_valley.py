"""Rule ndd_tensor_valley: the NDD tensor T_abc(omega) of one valley (Delta n for every light
direction and polarisation, 18 reductions of its table), checked against accuracy.rtol_delta_n."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.ndd
import qmdipole.tabulate
from _pipeline import logged, model, ndd_options, settings

with logged(snakemake):
    accuracy = snakemake.params.accuracy
    table = qmdipole.tabulate.read_table(snakemake.input.table, model=snakemake.params.model)
    ds = qmdipole.ndd.tensor_from_table(table, model(snakemake), **ndd_options(snakemake),
                                        threads=snakemake.threads)
    rtol = qmdipole.accuracy.ndd_tolerances(accuracy, qmdipole.accuracy.NDD_TENSOR_TOLERANCES)
    found = qmdipole.accuracy.check_tolerance(
        ds, rtol, accuracy["on_miss"], f"NDD tensor of valley {snakemake.wildcards.valley}",
        qmdipole.accuracy.NDD_TENSOR_TOLERANCES)
    ds.attrs.update(qmdipole.accuracy.attributes(found, rtol))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="NDD tensor, one valley")
