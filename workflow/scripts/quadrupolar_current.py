"""Rule quadrupolar_current: gamma_xxz(mu, T) summed over valleys, per-valley curves kept."""

import qmdipole.io
import qmdipole.valleys
from _pipeline import logged, settings

with logged(snakemake):
    valleys = [qmdipole.io.open_dataset(path, what="valley reduction") for path in snakemake.input.valleys]
    ds = qmdipole.valleys.combine_valleys(valleys, dim="mu")
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quadrupolar current gamma_xxz")
