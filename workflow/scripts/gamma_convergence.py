"""Rule gamma_convergence: gamma_xxz(mu) on a sequence of grids vs an independent reference."""

from pathlib import Path

import qmdipole.io
import qmdipole.validation
from _pipeline import grid_needs, grid_settings, logged, models, sampling, settings

with logged(snakemake):
    params = snakemake.params
    ds = qmdipole.validation.gamma_convergence(
        models(snakemake), params.model["kind"], grid_settings(snakemake), grid_needs(snakemake),
        sampling(params.mu), scales=params.scales)
    qmdipole.io.write_netcdf(ds, snakemake.output.data, config=settings(snakemake),
                             title="gamma_xxz convergence study",
                             allow_nan=("max_error",))  # NaN: the reference grid's own error
    Path(snakemake.output.table).write_text(qmdipole.validation.convergence_table(ds))
