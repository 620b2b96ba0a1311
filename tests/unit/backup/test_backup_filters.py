"""hospital.cloud.backup_images and backup_problems: what the backup host backs up, and the preflight's refusals."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.backup import backup_images, backup_problems

VMS = [{"name": "pacs-1", "backup": True}, {"name": "ris-1", "backup": "yes"}, {"name": "lab-1"},
       {"name": "tmp-1", "backup": False}]


def test_vms_that_ask_for_it_and_those_named():
    assert backup_images(VMS, "vms") == [{"image": "vms/pacs-1-root", "vm": "pacs-1"},
                                         {"image": "vms/ris-1-root", "vm": "ris-1"}]
    named = backup_images(VMS, "vms", names=["lab-1"], extra=["golden/img"], golden="vms/debian-13-golden")
    assert [i["image"] for i in named] == ["vms/pacs-1-root", "vms/ris-1-root", "vms/lab-1-root", "golden/img",
                                           "vms/debian-13-golden"]
    # default: every VM that does not say no
    assert [i["vm"] for i in backup_images(VMS, "vms", suffix="-disk", default=True)] == ["pacs-1", "ris-1", "lab-1"]


def test_a_vm_that_needs_filesystem_consistency_says_so():
    vms = [{"name": "db-1", "backup": True, "backup_consistency": "filesystem"},
           {"name": "pacs-1", "backup": True, "backup_consistency": "crash"}]
    assert backup_images(vms, "vms") == [{"image": "vms/db-1-root", "vm": "db-1", "consistency": "filesystem"},
                                         {"image": "vms/pacs-1-root", "vm": "pacs-1"}]


@pytest.mark.parametrize("kwargs,text", [
    ({"names": ["nope"]}, "unknown VMs ['nope']"),
    ({"extra": ["no-pool"]}, "is not pool/image"),
    ({"vms": [{"name": "db-1", "backup": True, "backup_consistency": "application"}]},
     "VM db-1: backup_consistency must be one of crash, filesystem, got 'application'"),
])
def test_bad_selection_is_refused(kwargs, text):
    kwargs = dict(kwargs)  # the parameter is shared between runs: pop from a copy
    vms = kwargs.pop("vms", VMS)
    with pytest.raises(AnsibleFilterError, match=text.replace("[", r"\[").replace("]", r"\]")):
        backup_images(vms, "vms", **kwargs)


GOOD = {"retention": {"hourly": 24, "daily": 14}, "password": "x" * 16, "repository": "/srv/r",
        "full_every_hours": 168, "images": [{"image": "vms/a"}]}


def test_good_settings_have_no_problem():
    assert backup_problems(GOOD) == []


@pytest.mark.parametrize("change,text", [
    ({"retention": {"hourly": 0, "daily": 0}}, "keeps nothing"),
    ({"retention": {"hourly": -1, "daily": 1}}, "0 or more"),
    ({"retention": {"yearly": 1}}, "unknown unit 'yearly'"),
    ({"password": "short"}, "at least 16 characters"),
    ({"repository": ""}, "backup_repository: empty"),
    ({"full_every_hours": 0}, "1 or more"),
    ({"images": []}, "nothing to back up"),
])
def test_each_problem_is_named(change, text):
    problems = backup_problems(dict(GOOD, **change))
    assert any(text in p for p in problems), problems
    assert "x" * 16 not in " ".join(problems)


def test_filesystem_consistency_needs_the_freeze():
    images = [{"image": "vms/db-1-root", "vm": "db-1", "consistency": "filesystem"}, {"image": "vms/a-root"}]
    assert backup_problems(dict(GOOD, images=images, fsfreeze=True)) == []
    assert backup_problems(dict(GOOD, images=images)) == []  # not said: not checked
    problems = backup_problems(dict(GOOD, images=images, fsfreeze=False))
    assert problems == ["backup_consistency filesystem (VMs db-1) needs the guest freeze: backup_fsfreeze true and"
                        " the KVM hosts in backup_fsfreeze_kvm_group"]
    assert backup_problems(dict(GOOD, fsfreeze=False)) == []


def test_fsfreeze_max_seconds_bounds():
    fine = {"retention": {"hourly": 1}, "password": "x" * 16, "repository": "/srv/r", "full_every_hours": 1,
            "images": [{"image": "vms/a-root"}]}
    assert backup_problems(dict(fine, fsfreeze_max_seconds=60)) == [] and backup_problems(fine) == []
    for bad in (0, 3601, -5):
        assert backup_problems(dict(fine, fsfreeze_max_seconds=bad)) == [
            "backup_fsfreeze_max_seconds: 1 to 3600 (a guest stays frozen at most this long)"]
    assert backup_problems(dict(fine, fsfreeze_max_seconds="soon")) == ["backup_fsfreeze_max_seconds: a number"]
