"""Session fixtures: the real components the tests run against (see tests/testbed/)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import ansible_run  # noqa: E402  pylint: disable=wrong-import-position

# unit tests import plugins as ansible_collections.hospital.cloud.*
sys.path.insert(0, str(ansible_run.ensure_collection_path()))

TIMINGS: dict[str, float] = {}


def _timed(name, fn, *a, **kw):
    t0 = time.monotonic()
    out = fn(*a, **kw)
    TIMINGS[name] = time.monotonic() - t0
    return out


@pytest.fixture(scope="session")
def libvirt_uri():
    from testbed import libvirt  # pylint: disable=import-outside-toplevel

    _timed("libvirtd", libvirt.ensure_libvirtd)
    return libvirt.URI


@pytest.fixture(scope="session")
def libvirt_domain_type():
    from testbed import libvirt  # pylint: disable=import-outside-toplevel

    return libvirt.domain_type()


@pytest.fixture(scope="session")
def ceph_cluster():
    from testbed import ceph  # pylint: disable=import-outside-toplevel

    cluster = _timed("ceph", ceph.start)
    try:
        yield cluster
    finally:
        ceph.stop(cluster, remove=not os.environ.get("HC_KEEP_CEPH"))


@pytest.fixture(scope="session")
def base_image():
    from lab import image  # pylint: disable=import-outside-toplevel

    img, dummy = _timed("base_image", image.ensure)
    return img


@pytest.fixture(scope="session")
def run_module():
    return ansible_run.run_module


@pytest.fixture(scope="session")
def run_playbook():
    return ansible_run.run_playbook


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "test bed start-up (s)")
        for name, secs in TIMINGS.items():
            terminalreporter.write_line("%-12s %6.1f" % (name, secs))
