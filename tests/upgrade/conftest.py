"""The upgrade tier (`make test-upgrade`, issue #19): ONE virtual rack of Debian 12 hosts for the whole module.

Rack "upg": hosts hc-upg-1..3, bridge hcupg0, 10.77.73.0/24, one 4 GiB loop-device OSD each, built from the
cached bookworm base image (suite passed explicitly). It is destroyed at the end of the module unless
HC_KEEP_RACK=1: then it stays up and a later run (e.g. ``-k upgrade``) continues on it (lab.rack.up returns a
running rack of the same name and suite as it is).
"""

from __future__ import annotations

import os
import time

import pytest

from lab import rack as rackmod

NAME, SUBNET, BRIDGE, SUITE, OSD_GIB = "upg", "10.77.73.0/24", "hcupg0", "bookworm", 4


def keep_rack() -> bool:
    return os.environ.get("HC_KEEP_RACK", "") not in ("", "0")


@pytest.fixture(scope="module")
def upg_rack():
    """The running rack (built, or the kept one reused); destroyed afterwards unless HC_KEEP_RACK=1."""
    t0 = time.monotonic()
    try:
        rack = rackmod.up(NAME, hosts=3, subnet=SUBNET, bridge=BRIDGE, osd_gib=OSD_GIB, suite=SUITE)
    except BaseException:
        if not keep_rack():
            rackmod.destroy(NAME)
        raise
    print("upgrade rack %s up in %.1f s: %s" % (NAME, time.monotonic() - t0,
                                                ", ".join("%s=%s" % (h.name, h.address) for h in rack.hosts)))
    yield rack
    if keep_rack():
        print("HC_KEEP_RACK=1: rack %s left up (python -m lab.rack down %s removes it)" % (NAME, NAME))
        return
    rackmod.destroy(NAME)
