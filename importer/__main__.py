"""`python -m importer` runs the CLI in a process of its own (importer.cli.run_process)."""

import gc

# No collection while the ~1,200 modules load: they are no garbage, and the collector walked them over and
# over (0.15 s of a 10,000-row import's start-up). run_process freezes what is loaded and enables it again.
gc.disable()

from importer.cli import run_process  # noqa: E402 - after gc.disable()

run_process()
