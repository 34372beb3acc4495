"""Rule ndd_spectrum: Delta n(omega) and <G>(omega) summed over valleys, per-valley curves kept."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.valleys
from _pipeline import logged, settings, valley_reductions

with logged(snakemake):
    valleys = valley_reductions(snakemake)
    ds = qmdipole.valleys.combine_valleys(valleys, dim="omega")
    # checked against the sum of the valleys' peaks (what the per-valley tolerances guarantee)
    rtol = qmdipole.accuracy.ndd_tolerances(snakemake.params.accuracy)
    found = qmdipole.accuracy.check_tolerance(ds, rtol, "warn", "NDD spectrum (sum over valleys)",
                                              qmdipole.accuracy.NDD_TOLERANCES)
    ds.attrs.update(qmdipole.accuracy.attributes(found, rtol))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="NDD spectrum")
