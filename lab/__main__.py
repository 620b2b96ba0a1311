"""``python -m lab ACTION`` from the repository root: see lab/cli.py."""

from __future__ import annotations

import os
import sys

from .cli import main
from .playbook import REPO

os.chdir(REPO)
sys.exit(main(sys.argv[1:]))
