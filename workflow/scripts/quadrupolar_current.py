"""Rule quadrupolar_current: gamma_xxz(mu, T) summed over valleys, per-valley curves kept."""

import qmdipole.io
import qmdipole.valleys
from _pipeline import logged, settings, valley_reductions

with logged(snakemake):
    valleys = valley_reductions(snakemake)
    ds = qmdipole.valleys.combine_valleys(valleys, dim="mu")
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quadrupolar current gamma_xxz")
