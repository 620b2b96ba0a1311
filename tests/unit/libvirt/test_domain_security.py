"""Issue #14 items 10 and 13 for the libvirt modules, on libvirt's in-memory test:///default driver
(whose guests honour an ACPI shutdown at once, as a healthy guest OS does)."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain, secret
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError

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
    assert "destroy" not in real["calls"], real["calls"]
    assert real["powered_off"] is False  # the guest stopped by itself: no power-off
    assert predicted["calls"] == real["calls"], (predicted["calls"], real["calls"])
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


def test_recorder_records_in_check_mode_and_calls_for_real():
    """The one recorder both backends use: check mode records without calling, a real run calls
    and records, and a backend error becomes a ModuleError carrying the calls made so far."""
    from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import Recorder  # noqa: E402
    from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection  # noqa: E402

    made = []
    check = Recorder(check_mode=True)
    assert check.call("defineXML", made.append, 1) is None and check.calls == ["defineXML"] and made == []
    real = connection.recorder()
    real.call("defineXML", made.append, 1)
    assert real.calls == ["defineXML"] and made == [1]

    def fail():
        raise libvirt.libvirtError("boom")

    with pytest.raises(ModuleError, match="createWithFlags failed") as err:
        real.call("createWithFlags", fail)
    assert err.value.details["calls"] == ["defineXML", "createWithFlags"]


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
        with pytest.raises(ModuleError) as err:
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
    with pytest.raises(ModuleError, match="listing the libvirt secrets failed: this function is not supported"):
        secret.run(p, check_mode=True)
    with pytest.raises(ModuleError, match="usage: contains the control character U\\+0000"):
        secret.run(dict(p, usage="client.libvirt\x00secret"), check_mode=True)


# ---- item 4: console listen address, password, TLS -------------------------------------------------
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_spec, domain_xml  # noqa: E402

PW = "s3cr'et\""


def test_graphics_defaults_to_loopback_and_roundtrips_listen_password_tls(tmp_path):
    spec = domain_spec.desired_spec(params(graphics="vnc"))
    assert spec["graphics_listen"] == "127.0.0.1" and spec["graphics_password"] is None
    spec = domain_spec.desired_spec(params(graphics="spice", graphics_listen="10.1.2.3", graphics_password=PW,
                                           graphics_tls=True))
    xml = domain_xml.render(spec)
    parsed = domain_xml.parse(xml)[0]
    assert (parsed["graphics_listen"], parsed["graphics_password"], parsed["graphics_tls"]) == ("10.1.2.3", PW, True)
    assert domain_spec.compare(spec, parsed) == []
    assert [c["field"] for c in domain_spec.compare(spec, dict(parsed, graphics_listen="0.0.0.0"))] == [
        "graphics_listen"]
    assert [c["field"] for c in domain_spec.compare(spec, dict(parsed, graphics_password=None))] == [
        "graphics_password"]
    masked = domain_xml.mask_xml(xml)
    assert PW not in masked and 's3cr' not in masked and 'passwd="********"' in masked
    assert domain_spec.masked(spec)["graphics_password"] == "********"
    path = tmp_path / "d.xml"
    path.write_text(xml)
    import subprocess  # pylint: disable=import-outside-toplevel
    res = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr + xml


@pytest.mark.parametrize("over,msg", [
    ({"graphics": "vnc", "graphics_listen": "0.0.0.0"}, "graphics_listen: 0.0.0.0 is reachable from the network"),
    ({"graphics": "spice", "graphics_listen": "::"}, "graphics_listen: :: is reachable from the network"),
    ({"graphics": "vnc", "graphics_listen": "pacs-01.example"}, "is not an IP address"),
    ({"graphics": "vnc", "graphics_password": "123456789"}, "at most 8 characters"),
    ({"graphics": "vnc", "graphics_tls": True}, "graphics_tls: only for spice"),
    ({"graphics": "none", "graphics_password": "x"}, "graphics_password: needs graphics vnc or spice"),
    ({"graphics": "vnc", "graphics_password": ""}, "must not be empty"),
])
def test_graphics_bad_input(over, msg):
    with pytest.raises(ModuleError) as err:
        domain_spec.desired_spec(params(**over))
    assert msg in err.value.msg


def test_graphics_non_loopback_with_password_or_opt_in():
    assert domain_spec.desired_spec(params(graphics="vnc", graphics_listen="0.0.0.0", graphics_password="pw"))
    assert domain_spec.desired_spec(params(graphics="vnc", graphics_listen="0.0.0.0",
                                           graphics_insecure_no_password=True))
    assert domain_spec.desired_spec(params(graphics="vnc", graphics_listen="::1"))["graphics_listen"] == "::1"


def test_graphics_password_never_in_the_result_test_driver(conn):
    p = params(graphics="vnc", graphics_listen="0.0.0.0", graphics_password="pw-1234")
    for check in (True, False, False):
        res = domain.run(p, check_mode=check, diff=True)
        assert "pw-1234" not in str(res), res
    assert res["changed"] is False
    domain.run(dict(p, state="absent"))
