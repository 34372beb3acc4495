"""Rule quadrupolar_valley: gamma_xxz(mu, T) of one valley (Eqs. 9-10)."""

import qmdipole.io
import qmdipole.quadrupolar
import qmdipole.tabulate
from _pipeline import logged, sampling, settings

with logged(snakemake):
    section = snakemake.params.quadrupolar_current
    table = qmdipole.tabulate.read_table(snakemake.input.table, model=snakemake.params.model)
    ds = qmdipole.quadrupolar.gamma_from_table(
        table, mu=sampling(section["mu"]), temperatures=section["temperatures"]
    )
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quadrupolar current, one valley")
