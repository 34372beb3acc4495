"""Rule ndd_valley: Delta n(omega) and <G>(omega) of one valley (Eqs. 4, 11-13), checked against
accuracy.rtol_delta_n and accuracy.rtol_avg_qmd."""

import qmdipole.accuracy
import qmdipole.io
import qmdipole.ndd
import qmdipole.tabulate
from _pipeline import logged, model, sampling, settings

with logged(snakemake):
    section, accuracy = snakemake.params.ndd, snakemake.params.accuracy
    table = qmdipole.tabulate.read_table(snakemake.input.table, model=snakemake.params.model)
    ds = qmdipole.ndd.spectrum_from_table(
        table, model(snakemake), omega=sampling(section["omega"]),
        eta=section["eta"], mu=section["mu"], temperature=section["temperature"],
        transition_cutoff=section["transition_cutoff"], kubo=section["kubo_check"],
        dq=section["kubo_dq"], q_direction=section["q_direction"],
        polarization=section["polarization"],
    )
    rtol = qmdipole.accuracy.ndd_tolerances(accuracy)
    found = qmdipole.accuracy.check_tolerance(
        ds, rtol, accuracy["on_miss"], f"NDD spectrum of valley {snakemake.wildcards.valley}",
        qmdipole.accuracy.NDD_TOLERANCES)
    ds.attrs.update(qmdipole.accuracy.attributes(found, rtol))
    qmdipole.io.write_netcdf(ds, snakemake.output[0], config=settings(snakemake),
                             title="NDD spectrum, one valley")
