"""Rule band_structure: bands along k_z at k_x = k_y = 0 of every valley (Fig. 2 data)."""

import numpy as np
import qmdipole.band_structure
import qmdipole.io
from _pipeline import logged, models, settings

with logged(snakemake):
    section = snakemake.params.band_structure
    kz = np.linspace(-section["kz_max"], section["kz_max"], int(section["n"]))
    ds = qmdipole.band_structure.band_structure(models(snakemake), kz=kz)
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="band structure")
