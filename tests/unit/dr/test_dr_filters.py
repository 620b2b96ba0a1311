"""hospital.cloud.dr_vm_problems: the failover's refusals about the VMs it stops and starts."""

from __future__ import annotations

from ansible_collections.hospital.cloud.plugins.filter.dr import FilterModule, dr_vm_problems

VMS = [{"name": "pacs-01", "host": "kvm-b1"}, {"name": "ris-01", "host": "kvm-b2"}]


def test_registered():
    assert FilterModule().filters()["dr_vm_problems"] is dr_vm_problems


def test_fine_and_empty():
    looked = [{"item": vm, "missing": [], "changed": False} for vm in VMS]
    assert dr_vm_problems(VMS, looked, "b") == []
    assert dr_vm_problems([], [], "a") == []


def test_shapes():
    assert dr_vm_problems({"name": "x"}) == ["dr_vms must be a list of {name, host}, got dict"]
    got = dr_vm_problems([{"name": "pacs-01"}, "ris-01", {"name": "", "host": "kvm"}], site="a")
    assert len(got) == 3 and all(p.startswith("site a: dr_vms[") for p in got), got
    assert "needs a name (the libvirt domain) and a host" in got[0]


def test_missing_and_unreachable_named_skipped_ignored():
    looked = [{"item": VMS[0], "missing": ["pacs-01"]},
              {"item": VMS[1], "failed": True, "msg": "libvirt: connection refused"},
              {"item": VMS[0], "skipped": True}]
    assert dr_vm_problems(VMS, looked, "b") == [
        "site b: VM pacs-01 is not defined on kvm-b1 (define it there, its disk on the mirrored image, before a "
        "failover)",
        "site b: could not ask kvm-b2 about VM ris-01: libvirt: connection refused"]
