"""Rule sweep: the points' reductions and derived features of one sweep in one dataset."""

import qmdipole.io
import qmdipole.sweeps
from _pipeline import logged, settings

with logged(snakemake):
    plan = snakemake.params.settings
    points = [qmdipole.sweeps.Point(p["id"], p["values"]) for p in plan["points"]]
    gammas = [qmdipole.io.open_dataset(f, what="point reduction")
              for f in snakemake.input.quadrupolar_current]
    ndds = [qmdipole.io.open_dataset(f, what="point reduction") for f in snakemake.input.ndd_spectrum]
    ds = qmdipole.sweeps.aggregate(snakemake.wildcards.sweep, plan["sweep"], points, gammas,
                                   ndds, plan["points"])
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title=f"sweep {snakemake.wildcards.sweep}",
                             allow_nan=qmdipole.sweeps.ALLOW_NAN)
