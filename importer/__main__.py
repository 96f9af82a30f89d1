"""`python -m importer` runs the CLI."""

import sys

from importer.cli import main

sys.exit(main())
