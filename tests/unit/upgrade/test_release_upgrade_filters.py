"""The order of a rolling release upgrade and the Ceph restart steps (filters of playbooks/upgrade.yml)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter import release_upgrade as ru

HOSTS = {"h1": "12", "h2": "12", "h3": "12", "h4": "12"}


def test_monitor_hosts_first_then_inventory_order():
    plan = ru.release_upgrade_plan(HOSTS, "trixie", mons=["h3", "h1"])
    assert plan["hosts"] == ["h3", "h1", "h2", "h4"]
    assert plan["ceph_major"] == 18 and plan["version"] == "13" and plan["from_suite"] == "bookworm"


def test_a_rerun_resumes_after_the_hosts_done():
    hosts = dict(HOSTS, h3="13")
    plan = ru.release_upgrade_plan(hosts, "trixie", mons=["h3", "h1"], done=["h3"])
    assert plan["hosts"] == ["h1", "h2", "h4"] and plan["done"] == ["h3"]
    # a host whose os-release already says 13 but whose upgrade did not finish (no marker) is upgraded again
    assert "h3" in ru.release_upgrade_plan(hosts, "trixie", mons=["h3"])["hosts"]


@pytest.mark.parametrize("target", ["forky", "bookworm", ""])
def test_unknown_target_is_refused_with_the_supported_one(target):
    with pytest.raises(AnsibleFilterError, match="unknown target release .*upgrades to trixie"):
        ru.release_upgrade_plan(HOSTS, target)


def test_host_on_another_release_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match=r"from Debian 12 only: h2 \(Debian 11\)"):
        ru.release_upgrade_plan({"h1": "12", "h2": "11"}, "trixie")


def _meta(kind, name, host, version):
    key = "id" if kind == "osd" else "name"
    return {key: name, "hostname": host,
            "ceph_version": "ceph version %s (abc) %s (stable)" % (version, "reef" if version[:2] == "18" else "pacific")}


def test_ceph_steps_list_old_daemons_in_cephs_order():
    meta = {"mon": [_meta("mon", "a", "h1", "18.2.7"), _meta("mon", "b", "h2", "16.2.15")],
            "mgr": [_meta("mgr", "a", "h1", "16.2.15")],
            "osd": [_meta("osd", 2, "h2", "16.2.15"), _meta("osd", 0, "h1", "16.2.15"), _meta("osd", 1, "h1", "18.2.7"),
                    _meta("osd", 3, "h1", "16.2.15")]}
    steps = ru.release_upgrade_ceph_steps(meta, 18, host_names={"h1": "kvm-01"})
    assert steps["mons"] == [{"name": "b", "host": "h2"}]
    assert steps["mgrs"] == [{"name": "a", "host": "kvm-01"}]
    assert steps["osd_hosts"] == [{"host": "h2", "osds": [2]}, {"host": "kvm-01", "osds": [0, 3]}]
    assert not steps["done"] and steps["newer"] == []


def test_ceph_steps_done_when_everything_runs_the_target():
    meta = {"mon": [_meta("mon", "a", "h1", "18.2.7")], "mgr": [_meta("mgr", "a", "h1", "18.2.7")],
            "osd": [_meta("osd", 0, "h1", "18.2.7")]}
    assert ru.release_upgrade_ceph_steps(meta, 18)["done"]


def test_ceph_steps_refuse_a_daemon_without_version():
    with pytest.raises(AnsibleFilterError, match="osd.4 reports no ceph_version"):
        ru.release_upgrade_ceph_steps({"osd": [{"id": 4, "hostname": "h1"}]}, 18)
