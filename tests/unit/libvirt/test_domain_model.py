"""Fast tests of the libvirt domain model: validation, XML render/parse, compare, state machine.

Run against libvirt's schema (virt-xml-validate) and the in-memory test:///default driver.
"""

from __future__ import annotations

import copy
import subprocess

import libvirt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain, domain_spec, domain_xml
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError
from ansible_collections.hospital.cloud.plugins.modules import libvirt_domain
from libvirt_unit_helpers import SECRET, disk, params, rbd

FULL = params(
    cpu=dict(mode="custom", model="qemu64", sockets=1, cores=2, threads=1), vcpus=2, machine="pc",
    boot=dict(devices=["hd", "network"], kernel="/boot/vmlinuz", initrd="/boot/initrd", cmdline="console=ttyS0"),
    disks=[disk(path="/var/tmp/a.qcow2"), disk(type="block", path="/dev/sdz", target="vdb", cache="none"),
           disk(type="volume", pool="default", volume="v1", target="vdc", format="qcow2"),
           rbd(target="vdd", cache="writeback"), disk(device="cdrom", path="/var/tmp/x.iso", target="sda", bus="sata")],
    interfaces=[dict(type="network", source="default", model="virtio", mac=None),
                dict(type="bridge", source="br0", model="e1000", mac="52:54:00:12:34:56")],
    serial_console=True, serial_log="/var/tmp/console.log", graphics="spice", autostart=True,
    metadata={"owner": "radiology", "tier": 1},
    extra_devices=["<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
                   "<watchdog model='i6300esb' action='reset'/>"])


def validate_xml(xml: str, tmp_path) -> None:
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr + res.stdout + xml


BAD = [
    ({"memory": -1}, "memory: needs a positive"),
    ({"memory": 0}, "memory: needs a positive"),
    ({"vcpus": 0}, "vcpus: needs"),
    ({"vcpus": -4}, "vcpus: needs"),
    ({"name": "a/b"}, "no '/'"),
    ({"name": ""}, "not a valid domain name"),
    ({"name": "has space"}, "not a valid domain name"),
    ({"name": "-lead"}, "not a valid domain name"),
    ({"uuid": "nope"}, "uuid: 'nope' is not a UUID"),
    ({"disks": [disk(path="/a"), disk(path="/b")]}, "target vda used by more than one disk"),
    ({"disks": [disk(path="/a", target="xyz")]}, "not a disk target"),
    ({"disks": [disk(path="relative.qcow2")]}, "needs an absolute path"),
    ({"disks": [disk(path=None)]}, "needs an absolute path"),
    ({"disks": [disk(type="block", path="/var/tmp/x")]}, "block disk needs a device path under /dev"),
    ({"disks": [disk(type="volume", pool="default")]}, "volume disk needs pool and volume"),
    ({"disks": [rbd(secret_uuid=None)]}, "needs cephx auth"),
    ({"disks": [rbd(user=None)]}, "needs cephx auth"),
    ({"disks": [rbd(monitors=[])]}, "at least one Ceph monitor"),
    ({"disks": [rbd(monitors=["mon:99999"])]}, "is not host or host:port"),
    ({"disks": [rbd(image=None)]}, "needs the Ceph image name"),
    ({"disks": [rbd(pool="a/b")]}, "needs the Ceph pool name"),
    ({"disks": [rbd(secret_uuid="xyz")]}, "secret_uuid: 'xyz' is not a UUID"),
    ({"disks": [rbd(format="qcow2")]}, "rbd disks are raw"),
    ({"disks": [disk(path="/a", image="x")]}, "disks[0].image: not used by a disk of type file"),
    ({"interfaces": [dict(type="bridge", source="", model="virtio", mac=None)]}, "source: the bridge"),
    ({"interfaces": [dict(type="network", source="default", model="virtio", mac="zz:00")]}, "not a MAC"),
    ({"interfaces": [dict(type="network", source="default", model="virtio", mac="01:00:5e:00:00:01")]},
     "multicast"),
    ({"interfaces": [dict(type="network", source="d", model="virtio", mac="52:54:00:00:00:01")] * 2}, "used twice"),
    ({"cpu": dict(mode="custom", model=None, sockets=None, cores=None, threads=None)}, "mode custom needs a CPU model"),
    ({"cpu": dict(mode="host-model", model="qemu64", sockets=None, cores=None, threads=None)}, "only used with mode"),
    ({"cpu": dict(mode="host-model", model=None, sockets=2, cores=2, threads=1)}, "does not match vcpus"),
    ({"cpu": dict(mode="host-model", model=None, sockets=1, cores=None, threads=None)}, "needs sockets, cores"),
    ({"boot": dict(devices=None, kernel=None, initrd="/boot/initrd", cmdline=None)}, "need boot.kernel"),
    ({"boot": dict(devices=None, kernel="vmlinuz", initrd=None, cmdline=None)}, "boot.kernel: needs an absolute"),
    ({"boot": dict(devices=["hd", "hd"], kernel=None, initrd=None, cmdline=None)}, "may appear once"),
    ({"serial_log": "/var/tmp/x.log"}, "needs serial_console"),
    ({"extra_devices": ["<rng model='virtio'>"]}, "not well-formed XML"),
    ({"extra_devices": ["<disk type='file'/>"]}, "has a typed parameter"),
    ({"metadata": {"1bad": "x"}}, "metadata: key '1bad'"),
    ({"metadata": {"k": {"nested": 1}}}, "must be a string"),
]


@pytest.mark.parametrize("over,msg", BAD, ids=[m for _o, m in BAD])
def test_bad_input_is_rejected_with_a_clear_message(over, msg):
    with pytest.raises(ModuleError) as err:
        domain_spec.desired_spec(params(**over))
    assert msg in err.value.msg


def test_full_spec_renders_schema_valid_xml_that_parses_back(tmp_path):
    spec = domain_spec.assign_macs(domain_spec.desired_spec(copy.deepcopy(FULL)), None)
    xml = domain_xml.render(spec, uuid=SECRET)
    validate_xml(xml, tmp_path)
    parsed, uuid = domain_xml.parse(xml, spec["extra_devices"])
    assert uuid == SECRET
    assert domain_spec.compare(spec, parsed) == []
    assert spec["interfaces"][0]["mac"] == domain_spec.stable_mac("hc-test-unit", 0)
    assert spec["disks"][3]["user"] == "libvirt" and spec["disks"][4]["readonly"] is True


def test_uefi_and_defaults_render_valid_xml(tmp_path):
    spec = domain_spec.desired_spec(params(firmware="uefi", graphics="vnc"))
    xml = domain_xml.render(spec)
    validate_xml(xml, tmp_path)
    assert "firmware=\"efi\"" in xml and domain_xml.parse(xml)[0]["firmware"] == "uefi"


names = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")
paths = names.map(lambda n: "/var/tmp/" + n)
disk_st = st.one_of(
    st.builds(lambda p, f, c: disk(path=p, format=f, cache=c), paths, st.sampled_from([None, "raw", "qcow2"]),
              st.sampled_from([None, "none", "writeback"])),
    st.builds(lambda n: disk(type="block", path="/dev/" + n), names),
    st.builds(lambda a, b: disk(type="volume", pool=a, volume=b), names, names),
    st.builds(lambda a, b, m: rbd(pool=a, image=b, monitors=m), names, names,
              st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2:6789", "[::1]:3300", "mon-a"]), min_size=1,
                       max_size=3)))


@st.composite
def domain_params(draw):
    vcpus = draw(st.integers(1, 16))
    disks = draw(st.lists(disk_st, max_size=4))
    for idx, d in enumerate(disks):
        d["target"] = "vd" + "abcdefgh"[idx]
    cpu = draw(st.sampled_from([None, dict(mode="host-passthrough", model=None, sockets=1, cores=vcpus, threads=1),
                                dict(mode="custom", model="qemu64", sockets=None, cores=None, threads=None)]))
    ifaces = draw(st.lists(st.builds(lambda t, s: dict(type=t, source=s, model="virtio", mac=None),
                                     st.sampled_from(["bridge", "network"]), names), max_size=3))
    serial = draw(st.booleans())
    return params(name=draw(names), vcpus=vcpus, memory=draw(st.integers(1, 1 << 20)), cpu=cpu, disks=disks,
                  interfaces=ifaces, machine=draw(st.sampled_from([None, "pc", "q35"])),
                  firmware=draw(st.sampled_from(["bios", "uefi"])), serial_console=serial,
                  serial_log=draw(st.sampled_from([None, "/var/tmp/c.log"])) if serial else None,
                  graphics=draw(st.sampled_from(["none", "vnc", "spice"])),
                  metadata=draw(st.dictionaries(names.map(lambda n: "k" + n), names, max_size=3)),
                  boot=draw(st.sampled_from([None, dict(devices=["network", "hd"], kernel=None, initrd=None,
                                                        cmdline=None),
                                             dict(devices=None, kernel="/k", initrd="/i", cmdline="a=b c")])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domain_params())
def test_render_then_parse_round_trips(p):
    spec = domain_spec.assign_macs(domain_spec.desired_spec(p), None)
    parsed, _uuid = domain_xml.parse(domain_xml.render(spec), spec["extra_devices"])
    assert parsed == spec


OBS_NONE = {"exists": False, "state": "absent", "active": False, "autostart": False, "files": []}


def obs(state, autostart=False):
    return {"exists": True, "state": state, "active": state in ("running", "paused"), "autostart": autostart,
            "files": ["/var/tmp/d.qcow2"]}


CHANGE = [{"field": "memory", "before": 64, "after": 128}]
PLANS = [
    ("running", OBS_NONE, [], False, ["define", "start"]),
    ("present", OBS_NONE, [], False, ["define"]),
    ("paused", OBS_NONE, [], False, ["define", "start_paused"]),
    ("shutoff", OBS_NONE, [], False, ["define"]),
    ("absent", OBS_NONE, [], False, []),
    ("running", obs("running"), [], False, []),
    ("running", obs("paused"), [], False, ["resume"]),
    ("running", obs("shutoff"), [], False, ["start"]),
    ("paused", obs("running"), [], False, ["suspend"]),
    ("paused", obs("shutoff"), [], False, ["start_paused"]),
    ("shutoff", obs("running"), [], False, ["stop"]),
    ("shutoff", obs("paused"), [], False, ["stop"]),
    ("absent", obs("running"), [], False, ["stop", "undefine"]),
    ("absent", obs("shutoff"), [], False, ["undefine"]),
    ("present", obs("running"), CHANGE, False, ["define"]),
    ("present", obs("running"), CHANGE, True, ["define", "stop", "start"]),
    ("running", obs("running"), CHANGE, True, ["define", "stop", "start"]),
    ("paused", obs("running"), CHANGE, True, ["define", "stop", "start_paused"]),
    ("present", obs("paused"), CHANGE, True, ["define", "stop", "start_paused"]),
    ("shutoff", obs("running"), CHANGE, True, ["define", "stop"]),
    ("running", obs("shutoff"), CHANGE, True, ["define", "start"]),
]


@pytest.mark.parametrize("state,observed,changes,restart,expected", PLANS)
def test_plan_state_machine(state, observed, changes, restart, expected):
    steps = domain.plan({"state": state, "autostart": None}, observed, changes, restart_on_change=restart)
    assert [s["action"] for s in steps] == expected


def test_plan_autostart_and_storage_opt_in():
    assert domain.plan({"state": "present", "autostart": True}, obs("shutoff"), [])[-1] == \
        {"action": "autostart", "value": True}
    assert domain.plan({"state": "present", "autostart": False}, obs("shutoff"), []) == []
    steps = domain.plan({"state": "absent"}, obs("shutoff"), [], remove_storage=True)
    assert steps[-1] == {"action": "remove_storage", "paths": ["/var/tmp/d.qcow2"]}
    assert "remove_storage" not in [s["action"] for s in domain.plan({"state": "absent"}, obs("shutoff"), [])]


def test_return_doc_matches_result_keys():
    documented = set(yaml.safe_load(libvirt_domain.RETURN))
    hold = libvirt.open("test:///default")
    try:
        res = domain.run(params(), check_mode=True)
    finally:
        hold.close()
    assert set(res) - {"changed", "warnings", "diff"} == documented
