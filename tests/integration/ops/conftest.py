"""The ops tier: ONE virtual rack (hc-ops-1..3, bridge hcops0, 10.77.50.0/24) for the whole module.

Every job template's playbook runs through ansible_runner.run(), the engine AWX uses, against it.
"""

from __future__ import annotations

import pytest

from lab import rack as rackmod


@pytest.fixture(scope="module")
def rack_factory():
    made = []

    def make(name: str, hosts: int = 1, subnet: str = "10.77.50.0/24", bridge: str = "hcops0", **kw):
        made.append(name)  # destroyed at the end even if it fails to come up
        return rackmod.up(name, hosts=hosts, subnet=subnet, bridge=bridge, **kw)

    yield make
    for name in made:
        rackmod.destroy(name)
