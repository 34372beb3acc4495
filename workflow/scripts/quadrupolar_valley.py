"""Rule quadrupolar_valley: gamma_xxz(mu, T) of one valley (Eqs. 9-10), checked against accuracy.rtol."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.quadrupolar
import qmdipole.tabulate
from _pipeline import logged, sampling, settings

with logged(snakemake):
    section, accuracy = snakemake.params.quadrupolar_current, snakemake.params.accuracy
    table = qmdipole.tabulate.read_table(snakemake.input.table, model=snakemake.params.model)
    ds = qmdipole.quadrupolar.gamma_from_table(
        table, mu=sampling(section["mu"]), temperatures=section["temperatures"],
        threads=snakemake.threads)
    found = qmdipole.accuracy.check_tolerance(
        ds, accuracy["rtol"], accuracy["on_miss"], f"quadrupolar current of valley "
        f"{snakemake.wildcards.valley}")
    ds.attrs.update(qmdipole.accuracy.attributes(found, accuracy["rtol"]))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quadrupolar current, one valley")
