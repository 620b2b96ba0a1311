"""The ops tier: ONE virtual rack (hc-ops-1..3, bridge hcops0, 10.77.50.0/24) for the whole package.

test_ops.py (day-2 job templates), then test_ops_ha.py (the same rack with HA VMs and the cluster), then
test_ops_backup.py (backups of the HA counter VM), then the add_host tests (the rack grows to five hosts, so they
come last). Every playbook runs through
ansible_runner.run(), the engine AWX uses, against it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab import power
from lab import rack as rackmod
from integration.ops.opsrack import BRIDGE, NAME, SUBNET, Ops, Webhook, install_fence_agent

FIGURES: dict = {}


def pytest_collection_modifyitems(items):
    """add_host grows the rack to five hosts: its tests run after every other test of this tier (the HA tests need
    the three-node cluster), test_ops.py's before test_ops_ha.py's (the order they are collected in); the backup
    tests run after the HA tests (they back up and restore the HA counter VM). Each tier's items stay where they
    are in the session."""
    here = Path(__file__).resolve().parent
    slots = [i for i, item in enumerate(items) if here in Path(item.path).resolve().parents]
    ordered = sorted((items[i] for i in slots),
                     key=lambda item: ("test_add_host" in item.name, Path(item.path).name == "test_ops_backup.py"))
    for i, item in zip(slots, ordered):
        items[i] = item


@pytest.fixture(scope="package")
def ops(base_image, tmp_path_factory):  # pylint: disable=unused-argument
    t0 = time.monotonic()
    try:
        rack = rackmod.up(NAME, hosts=3, subnet=SUBNET, bridge=BRIDGE, osd_gib=4)
        for h in rack.hosts:
            install_fence_agent(rack, h)
    except BaseException:
        rackmod.destroy(NAME)  # destroyed even if it fails to come up
        raise
    FIGURES["rack_up_s"] = round(time.monotonic() - t0, 1)
    switch = power.PowerSwitch(NAME)
    switch.start(rack.gateway)
    o = Ops(rack, tmp_path_factory.mktemp("ops"), webhook=Webhook(rack.gateway), switch=switch)
    print("ops tier: job artefacts in %s" % o.tmp)
    try:
        yield o
    finally:
        o.webhook.close()
        switch.stop()
        print("ops rack figures: %s" % json.dumps(FIGURES))
        rackmod.destroy(NAME)
