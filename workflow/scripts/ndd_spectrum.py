"""Rules ndd_spectrum and ndd_tensor: Delta n(omega) and <G>(omega), or the NDD tensor
(params.tensor), summed over valleys, per-valley curves kept."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.valleys
from _pipeline import logged, settings, valley_reductions

with logged(snakemake):
    valleys = valley_reductions(snakemake)
    ds = qmdipole.valleys.combine_valleys(valleys, dim="omega")
    # checked against the sum of the valleys' peaks (what the per-valley tolerances guarantee)
    what, curves = (("NDD tensor", qmdipole.accuracy.NDD_TENSOR_TOLERANCES)
                    if snakemake.params.tensor else
                    ("NDD spectrum", qmdipole.accuracy.NDD_TOLERANCES))
    rtol = qmdipole.accuracy.ndd_tolerances(snakemake.params.accuracy, curves)
    found = qmdipole.accuracy.check_tolerance(ds, rtol, "warn", f"{what} (sum over valleys)",
                                              curves)
    ds.attrs.update(qmdipole.accuracy.attributes(found, rtol))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake), title=what)
