"""The backup role's preflight on this machine (tasks_from: preflight, connection local): the settings are
refused with every problem named before anything is installed or written. No cluster, no repository."""

from __future__ import annotations

import shutil

import pytest

# the KVM host is never contacted (the preflight only reads the inventory)
INVENTORY = """
localhost ansible_connection=local ansible_python_interpreter={python}
[kvm_hosts]
kvm-01 ansible_host=10.0.0.1
"""

PLAY = """
- name: Backup preflight
  hosts: localhost
  gather_facts: true
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: hospital.cloud.backup
        tasks_from: preflight
"""

VMS = [{"name": "db-1", "vcpus": 1, "memory": 256, "disk": 4, "backup": True, "backup_consistency": "filesystem"},
       {"name": "pacs-1", "vcpus": 1, "memory": 256, "disk": 4, "backup": True}]
GOOD = {"vm_guests_vms": VMS, "backup_repository_password": "hc-test-" + "x" * 16, "backup_fsfreeze": True}


def _failure(res) -> str:
    return " ".join(str(t) for t in (res.stdout[-4000:], res.stderr[-2000:]))


def _run(run_playbook, tmp_path, extra_vars):
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY.format(python=shutil.which("python3")))
    return run_playbook(PLAY, extra_vars=extra_vars, inventory=inv)


def test_settings_that_are_fine_pass(run_playbook, tmp_path):
    res = _run(run_playbook, tmp_path, GOOD)
    assert res.rc == 0, _failure(res)


@pytest.mark.parametrize("change,words", [
    ({"backup_fsfreeze": False},
     "backup_consistency filesystem (VMs db-1) needs the guest freeze: backup_fsfreeze true"),
    ({"backup_fsfreeze_kvm_group": "no_such_group"},
     "backup_consistency filesystem (VMs db-1) needs the guest freeze: backup_fsfreeze true and the KVM hosts"),
    ({"vm_guests_vms": [dict(VMS[0], backup_consistency="application")]},
     "VM db-1: backup_consistency must be one of crash, filesystem, got 'application'"),
], ids=["fsfreeze-off", "no-kvm-hosts", "unknown-value"])
def test_a_consistency_that_cannot_be_had_is_refused(run_playbook, tmp_path, change, words):
    res = _run(run_playbook, tmp_path, dict(GOOD, **change))
    assert res.rc != 0 and words in _failure(res), _failure(res)
    assert "Traceback" not in _failure(res)
