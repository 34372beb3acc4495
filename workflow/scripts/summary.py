"""Rule summary: the run's provenance, settings, curve accuracies and warnings as HTML and JSON."""

import qmdipole.summary
from _pipeline import logged

with logged(snakemake):
    summary = qmdipole.summary.read(snakemake.input, snakemake.params.config)
    qmdipole.summary.write(summary, snakemake.output.html, snakemake.output.json)
