"""Rule quadrupolar_current: gamma_xxz(mu, T) summed over valleys, per-valley curves kept."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.valleys
from _pipeline import logged, settings, valley_reductions

with logged(snakemake):
    ds = qmdipole.valleys.combine_valleys(valley_reductions(snakemake), dim="mu")
    # checked against the sum of the valleys' peaks (what the per-valley tolerances guarantee)
    found = qmdipole.accuracy.check_tolerance(ds, snakemake.params.accuracy["rtol"], "warn",
                                              "quadrupolar current (sum over valleys)")
    ds.attrs.update(qmdipole.accuracy.attributes(found, snakemake.params.accuracy["rtol"]))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quadrupolar current gamma_xxz")
