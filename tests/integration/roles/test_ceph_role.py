"""The ceph role on three real systemd hosts: quorum, mgr, BlueStore OSDs on loop devices, pools, users."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from testbed.rack import ssh

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(2400)]

FSID = "0b7c6f0e-5b1e-4d4b-8a53-7f6c2b9e4d21"
PLAY = """
- name: Ceph
  hosts: lab
  roles:
    - role: hospital.cloud.ceph
      vars:
        ceph_fsid: %s
        ceph_public_network: 10.77.43.0/24
        ceph_osd_devices: "{{ hc_osd_devices }}"
        # nspawn hosts on a kernel without device-mapper: no dm-crypt OSDs possible here (the preflight
        # refuses the default); encryption at rest is proven in a TCG guest (make test-dmcrypt)
        ceph_osd_dmcrypt: false
        ceph_conf_overrides:
          mon data avail warn: 5
          mon data avail crit: 2
        ceph_pools:
          - {name: vms, pg_num: 16, application: rbd}
        ceph_users:
          - {name: client.libvirt, caps: {mon: profile rbd, osd: profile rbd pool=vms}}
""" % FSID
GROUPS = "\n[ceph_mons:children]\nlab\n[ceph_mgrs]\nhc-cephr-1\n[ceph_osds:children]\nlab\n"


@pytest.fixture(scope="module")
def ceph_rack(rack_factory):
    rack = rack_factory("cephr", hosts=3, subnet="10.77.43.0/24", bridge="hccephr0", osd_gib=4)
    inv = Path(rack.state_dir) / "ceph-inventory.ini"
    inv.write_text(rack.inventory() + GROUPS)
    return rack, inv


def _head_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(1 << 20)).hexdigest()


def test_ceph_role_end_to_end(ceph_rack, run_playbook):
    rack, inv = ceph_rack
    h1, h3 = rack.hosts[0], rack.hosts[2]

    # encryption at rest is on by default: on hosts without device-mapper (these nspawn hosts) preflight
    # must refuse it clearly, before installing anything, rather than leave an OSD silently unencrypted
    no_dm = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_osd_dmcrypt": True})
    assert no_dm.rc != 0
    assert all(no_dm.failed(h.name) == 1 for h in rack.hosts), no_dm.stdout[-4000:]
    assert "cannot hold dm-crypt OSDs (no /dev/mapper/control)" in no_dm.stdout
    assert "ceph_osd_dmcrypt: false" in no_dm.stdout
    assert ssh(rack, h1, "command -v ceph-mon", check=False).returncode != 0, "refused run installed Ceph"

    pre = run_playbook(PLAY, inventory=inv, check=True)
    assert pre.rc == 0, pre.stdout[-4000:]
    assert pre.changed() > 0
    assert ssh(rack, h1, "command -v ceph-mon", check=False).returncode != 0, "check mode installed Ceph"

    # host 3's disk holds data: without the opt-in the role must refuse and leave it untouched
    dev3 = h3.loops[0]
    with open(dev3, "r+b") as fh:
        fh.write(b"patient archive, do not overwrite" * 1000)
    before = _head_digest(dev3)
    refused = run_playbook(PLAY, inventory=inv)
    assert refused.rc != 0
    assert refused.failed(h3.name) == 1 and refused.failed(h1.name) == 0
    assert "ceph_osd_wipe_devices" in refused.stdout and dev3 in refused.stdout
    assert _head_digest(dev3) == before

    wiped = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_osd_wipe_devices": True})
    assert wiped.rc == 0, wiped.stdout[-4000:]

    status = json.loads(ssh(rack, h1, "ceph -s --format json").stdout)
    assert sorted(status["quorum_names"]) == sorted(h.name for h in rack.hosts)
    osdmap = status["osdmap"].get("osdmap", status["osdmap"])
    assert osdmap["num_up_osds"] == 3 and osdmap["num_in_osds"] == 3
    pools = {p["pool_name"]: p for p in json.loads(ssh(rack, h1, "ceph osd pool ls detail --format json").stdout)}
    assert pools["vms"]["pg_num"] == 16 and "rbd" in pools["vms"]["application_metadata"]
    caps = json.loads(ssh(rack, h1, "ceph auth get client.libvirt --format json").stdout)[0]["caps"]
    assert caps == {"mon": "profile rbd", "osd": "profile rbd pool=vms"}
    ssh(rack, h1, "for i in $(seq 60); do ceph health | grep -q HEALTH_OK && exit 0; sleep 2; done; ceph health detail; exit 1")

    again = run_playbook(PLAY, inventory=inv)
    assert again.rc == 0 and again.changed() == 0, [t["task"] for t in again.tasks if t["result"].get("changed")]
    check = run_playbook(PLAY, inventory=inv, check=True, diff=True)
    assert check.rc == 0 and check.changed() == 0
    # no key material in the output of a run
    admin_key = ssh(rack, h1, "ceph auth print-key client.admin").stdout.strip()
    libvirt_key = ssh(rack, h1, "ceph auth print-key client.libvirt").stdout.strip()
    for out in (wiped.stdout, again.stdout, check.stdout):
        assert admin_key not in out and libvirt_key not in out
    # data written through RADOS on one host reads back on another
    ssh(rack, h1, "echo hospital | rados -p vms put probe -")
    assert ssh(rack, rack.hosts[1], "rados -p vms get probe -").stdout.strip() == "hospital"
    assert ssh(rack, h1, "rados -p vms get probe -").stdout.strip() == "hospital"
