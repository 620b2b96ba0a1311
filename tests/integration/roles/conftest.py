"""A virtual rack of systemd-nspawn hosts for role tests (torn down at the end of the module)."""

from __future__ import annotations

import pytest

from lab import rack as rackmod


@pytest.fixture(scope="module")
def rack_factory():
    made = []

    def make(name: str, hosts: int = 1, subnet: str = "10.77.30.0/24", bridge: str = "hcrt0", **kw):
        r = rackmod.up(name, hosts=hosts, subnet=subnet, bridge=bridge, **kw)
        made.append(name)
        return r

    yield make
    for name in made:
        rackmod.destroy(name)
