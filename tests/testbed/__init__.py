"""The test bed: real libvirtd, Ceph and base-image fixtures; its racks come from the lab package at the root."""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
