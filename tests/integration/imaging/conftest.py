"""Imaging worker integration tests: the package from its source directory (nothing installed)."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from imaging_helpers import PKG_ROOT, cli  # noqa: E402  pylint: disable=wrong-import-position

if str(PKG_ROOT) not in sys.path:
    sys.path.insert(0, str(PKG_ROOT))


@pytest.fixture(name="imaging_cli")
def fixture_imaging_cli():
    """cli() as a fixture: kills the process groups it started if a test stops half-way."""
    started = []

    def start(*args, **kwargs):
        proc = cli(*args, **kwargs)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
