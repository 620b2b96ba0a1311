"""The libvirt_domain state machine end to end on libvirt's in-memory test:///default driver.

test:///default keeps its state while a connection is open, so each test holds one open for the
module code (which opens and closes its own).
"""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError

from libvirt_unit_helpers import disk, params

URI = "test:///default"


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield c
    c.close()


def converge(p):
    """check mode, then real: the prediction must equal what the real run did."""
    predicted = domain.run(p, check_mode=True, diff=True)
    real = domain.run(p, check_mode=False, diff=True)
    assert predicted["changes"] == real["changes"]
    # the test driver lacks VIR_DOMAIN_START_PAUSED: the module falls back to start + suspend
    assert predicted["calls"] == [c for c in real["calls"] if "unsupported" not in c]
    assert predicted["diff"]["after"] == real["diff"]["after"]
    assert predicted["changed"] == real["changed"]
    return real


STATE_NAMES = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
               libvirt.VIR_DOMAIN_SHUTOFF: "shutoff"}


def state_of(conn, name):
    return STATE_NAMES[conn.lookupByName(name).state()[0]]


@pytest.mark.parametrize("path", [
    ["running", "paused", "running", "shutoff", "paused", "shutoff", "present", "absent"],
    ["paused", "shutoff", "running", "absent"],
    ["shutoff", "running", "present", "paused", "present", "absent"],
])
def test_every_transition_converges_and_is_idempotent(conn, path):
    p = params(disks=[disk(path="/var/tmp/hc-test.qcow2")])
    previous = None
    for want in path:
        res = converge(dict(p, state=want))
        assert res["changed"] is (previous is None or want not in ("present", previous)), (want, res["changes"])
        again = converge(dict(p, state=want))
        assert again["changed"] is False, (want, again["changes"])
        if want == "absent":
            assert "hc-test-unit" not in conn.listDefinedDomains() + [d.name() for d in conn.listAllDomains()]
        elif want != "present":
            assert state_of(conn, "hc-test-unit") == want
        previous = want


def test_drift_is_detected_and_corrected_with_stable_uuid_and_mac(conn):
    p = params(state="running", interfaces=[dict(type="network", source="default", model="virtio", mac=None)])
    first = converge(p)
    dom = conn.lookupByName("hc-test-unit")
    uuid, xml = dom.UUIDString(), dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    mac = xml.split("mac address='")[1][:17]
    assert first["xml"] and mac in first["xml"]
    conn.defineXML(xml.replace("<memory unit='KiB'>65536", "<memory unit='KiB'>131072")
                   .replace("<currentMemory unit='KiB'>65536", "<currentMemory unit='KiB'>131072"))
    drift = converge(p)
    assert drift["changes"][0] == {"action": "define", "fields": ["memory", "current_memory"]}
    assert drift["needs_restart"] is False  # the live domain still runs with 64 MiB: the desired value
    assert converge(p)["changed"] is False
    dom = conn.lookupByName("hc-test-unit")
    assert dom.UUIDString() == uuid and mac in dom.XMLDesc(0)
    bigger = converge(dict(p, memory=128))
    assert bigger["needs_restart"] is True and bigger["restart_fields"] == ["memory"]
    restarted = converge(dict(p, memory=256, restart_on_change=True))
    assert [s["action"] for s in restarted["changes"]] == ["define", "stop", "start"]
    assert restarted["needs_restart"] is False
    assert conn.lookupByName("hc-test-unit").info()[1] == 256 * 1024
    converge(dict(p, state="absent"))


def test_state_only_use_and_errors(conn):
    with pytest.raises(ModuleError, match="does not exist; give vcpus and memory"):
        domain.run(params(vcpus=None, memory=None, state="running"))
    converge(params(state="shutoff"))
    res = converge(params(vcpus=None, memory=None, state="running"))
    assert [s["action"] for s in res["changes"]] == ["start"]
    with pytest.raises(ModuleError, match="cannot change a domain's uuid"):
        domain.run(params(uuid="5f3a1c9e-2b4d-4e8f-9a1b-0c2d3e4f5a6b"))
    with pytest.raises(ModuleError, match="remove_storage: only used with state=absent"):
        domain.run(params(remove_storage=True))
    converge(params(state="absent"))
