"""Rule qmd_field: the k_x-integrated quantum-metric-dipole field of one band (Fig. 3 data)."""

import qmdipole.io
import qmdipole.qmd_field
from _pipeline import logged, model, settings

with logged(snakemake):
    section = snakemake.params.qmd_field
    ds = qmdipole.qmd_field.qmd_field(
        model(snakemake), band=section["band"], k_max=section["k_max"], n=section["n"],
        kx_max=section["kx_max"], n_kx=section["n_kx"], valley=section["valley"],
    )
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="quantum metric dipole field")
