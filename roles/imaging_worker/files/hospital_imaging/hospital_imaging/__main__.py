"""Entry point for ``python -m hospital_imaging``."""

import sys

from hospital_imaging.cli import main

sys.exit(main())
