"""Issue #14 items 10 and 13 for the libvirt modules, on libvirt's in-memory test:///default driver
(whose guests honour an ACPI shutdown at once, as a healthy guest OS does)."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain, secret
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.errors import LibvirtModuleError

from libvirt_unit_helpers import disk, params

URI = "test:///default"
DEFAULT_TIMEOUT = 120  # the module's default shutdown_timeout


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield c
    c.close()


@pytest.mark.parametrize("state", ["shutoff", "absent"])
def test_stop_with_the_default_timeout_prediction_matches_the_real_calls(conn, state):
    """Issue #15 remark: check mode for a stop with the default shutdown_timeout against the real run;
    state=absent shuts the guest down (ACPI) instead of powering it off."""
    p = params(disks=[disk(path="/var/tmp/hc-test.qcow2")])
    domain.run(dict(p, state="running"))
    p = dict(p, state=state, shutdown_timeout=DEFAULT_TIMEOUT)
    predicted = domain.run(p, check_mode=True)
    real = domain.run(p)
    assert real["calls"][0] == "shutdown", real["calls"]
    assert "destroy" not in real["calls"], real["calls"]  # the guest stopped by itself: no power-off
    assert domain.predicted_matches(predicted["calls"], real["calls"]), (predicted["calls"], real["calls"])
    assert predicted["changes"] == real["changes"]
    if state == "absent":
        domain.run(p)
    else:
        domain.run(dict(p, state="absent"))


def test_force_powers_off_at_once(conn):
    p = params(disks=[disk(path="/var/tmp/hc-test.qcow2")])
    domain.run(dict(p, state="running"))
    p = dict(p, state="absent", shutdown_timeout=DEFAULT_TIMEOUT, force=True)
    predicted = domain.run(p, check_mode=True)
    real = domain.run(p)
    assert predicted["calls"] == real["calls"] == ["destroy", "undefineFlags"]


def test_predicted_matches_rule():
    cond = domain.CONDITIONAL_DESTROY % 120
    assert domain.predicted_matches(["shutdown", cond, "undefineFlags"], ["shutdown", "undefineFlags"])
    assert domain.predicted_matches(["shutdown", cond, "undefineFlags"], ["shutdown", "destroy", "undefineFlags"])
    assert not domain.predicted_matches(["shutdown", cond], ["destroy"])
    assert not domain.predicted_matches(["shutdown", "destroy"], ["shutdown"])


CONTROL = [
    ({"boot": dict(devices=None, kernel="/boot/vmlinuz", initrd=None, cmdline="console=ttyS0\x00rw")},
     "boot.cmdline: contains the control character U+0000"),
    ({"boot": dict(devices=None, kernel="/boot/vmlinuz", initrd=None, cmdline="a\nb")}, "U+000A"),
    ({"metadata": {"owner": "rad\x07iology"}}, "metadata.owner: contains the control character U+0007"),
    ({"disks": [disk(path="/var/tmp/a\x00.qcow2")]}, "disks[0].path: contains the control character U+0000"),
    ({"interfaces": [dict(type="network", source="def\x1bault", model="virtio", mac=None)]},
     "interfaces[0].source: contains"),
    ({"machine": "pc\x00"}, "machine: contains"),
    ({"cpu": dict(mode="custom", model="qemu64\x0b", sockets=None, cores=None, threads=None)}, "cpu.model: contains"),
    ({"extra_devices": ["<rng model='virtio'>\x00</rng>"]}, "extra_devices[0]: contains the control character U+0000"),
    ({"serial_console": True, "serial_log": "/var/tmp/x\ud800.log"}, "serial_log: contains"),
    ({"uri": "test:///default\x00"}, "uri: contains"),
    ({"shutdown_timeout": -1}, "shutdown_timeout: needs a number of seconds from 0 to 86400"),
    ({"shutdown_timeout": 10 ** 30}, "shutdown_timeout: needs a number of seconds from 0 to 86400"),
    ({"vcpus": 1, "cpu": dict(mode="host-model", model=None, sockets=10 ** 30, cores=1, threads=1)},
     "each from 1 to 1024"),
]


@pytest.mark.parametrize("over,msg", CONTROL, ids=[m for _o, m in CONTROL])
def test_control_characters_and_out_of_range_values_fail_clearly(conn, over, msg):
    before = sorted(d.name() for d in conn.listAllDomains())
    for check in (True, False):
        with pytest.raises(LibvirtModuleError) as err:
            domain.run(params(state="running", **over), check_mode=check)
        assert msg in err.value.msg
    assert sorted(d.name() for d in conn.listAllDomains()) == before


def test_extra_devices_may_span_lines(conn):
    res = domain.run(params(extra_devices=["<rng model='virtio'>\n  <backend model='random'>/dev/urandom</backend>\n</rng>"]),
                     check_mode=True)
    assert res["changed"]


def test_secret_lookup_error_is_a_message_not_a_traceback():
    """test:///default has no secret driver: listing secrets raises a libvirtError."""
    p = {"uri": URI, "usage": "client.libvirt secret", "uuid": None, "state": "present", "private": True,
         "value": "AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g=="}
    with pytest.raises(LibvirtModuleError, match="listing the libvirt secrets failed: this function is not supported"):
        secret.run(p, check_mode=True)
    with pytest.raises(LibvirtModuleError, match="usage: contains the control character U\\+0000"):
        secret.run(dict(p, usage="client.libvirt\x00secret"), check_mode=True)
