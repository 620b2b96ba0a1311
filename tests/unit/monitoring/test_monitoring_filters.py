"""hospital.cloud.monitoring_targets / monitoring_vms_expected / monitoring_silence_ids (issue #18)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.monitoring import FilterModule

F = FilterModule().filters()
HOSTVARS = {
    "kvm-01": {"ansible_host": "10.0.0.1"},
    "kvm-02": {"ansible_host": "10.0.0.2", "imaging_worker_metrics_port": 9200},
    "kvm-03": {"ansible_host": "fd00::3", "monitoring_address": "fd00::30"},
    "mon-01": {},
}
GROUPS = {"all": ["kvm-01", "kvm-02", "kvm-03", "mon-01"], "kvm_hosts": ["kvm-01", "kvm-02", "kvm-03"],
          "ceph_mgrs": ["kvm-01"], "imaging_workers": ["kvm-01", "kvm-02"], "monitoring": ["mon-01"]}


def _targets(jobs, **kw):
    return F["monitoring_targets"](HOSTVARS, GROUPS, jobs, **kw)


def _flat(entry):
    return {c["labels"]["host"]: c["targets"][0] for c in entry["static_configs"]}


def test_groups_become_jobs_on_the_management_address():
    jobs = _targets([{"name": "node", "group": "all", "port": 9100},
                     {"name": "ceph", "group": "ceph_mgrs", "port": 9283}])
    assert [j["job_name"] for j in jobs] == ["node", "ceph"]
    assert _flat(jobs[0]) == {"kvm-01": "10.0.0.1:9100", "kvm-02": "10.0.0.2:9100", "kvm-03": "[fd00::30]:9100",
                              "mon-01": "mon-01:9100"}
    assert _flat(jobs[1]) == {"kvm-01": "10.0.0.1:9283"}
    assert jobs[0]["metrics_path"] == "/metrics" and jobs[0]["scheme"] == "http"


def test_port_var_overrides_the_port_per_host():
    jobs = _targets([{"name": "imaging", "group": "imaging_workers", "port": 9108,
                      "port_var": "imaging_worker_metrics_port"}])
    assert _flat(jobs[0]) == {"kvm-01": "10.0.0.1:9108", "kvm-02": "10.0.0.2:9200"}


def test_explicit_hosts_exclude_and_empty_jobs_dropped():
    jobs = _targets([{"name": "am", "hosts": ["mon-01"], "port": 9093},
                     {"name": "ceph", "group": "ceph_mgrs", "port": 9283}], exclude=["kvm-01"])
    assert [j["job_name"] for j in jobs] == ["am"]


def test_optional_group_may_be_missing():
    assert _targets([{"name": "backup", "group": "backup_hosts", "port": 1, "optional": True}]) == []


@pytest.mark.parametrize("jobs, words", [
    ([{"name": "x", "group": "nope", "port": 1}], ["group 'nope' is not in the inventory"]),
    ([{"name": "x", "hosts": ["kvm-01", "ghost"], "port": 1}], ["not in the inventory: ghost"]),
    ([{"name": "x", "group": "all", "port": 0}], ["port must be 1-65535"]),
    ([{"name": "x", "group": "all", "port": "ab"}], ["port must be 1-65535"]),
    ([{"name": "x", "group": "all", "port": 1, "grup": "all"}], ["unknown key(s) grup"]),
    ([{"name": "x", "group": "all", "hosts": [], "port": 1}], ["not both"]),
    ([{"name": "x", "port": 1}], ["needs a group or a list of hosts"]),
    ([{"name": "x", "group": "all", "port": 1}, {"name": "x", "group": "all", "port": 2}], ["appears twice"]),
    ([{"name": "bad name", "group": "all", "port": 1}], ["every job needs a name"]),
    ([{"name": "x", "group": "all", "port": 1, "scheme": "ftp"}], ["scheme"]),
    ("node", ["jobs must be a list"]),
])
def test_bad_jobs_are_refused_with_a_clear_message(jobs, words):
    with pytest.raises(AnsibleFilterError) as err:
        _targets(jobs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_bad_port_var_value_names_host_and_variable():
    hostvars = dict(HOSTVARS, **{"kvm-01": {"ansible_host": "10.0.0.1", "imaging_worker_metrics_port": 70000}})
    with pytest.raises(AnsibleFilterError, match="kvm-01.*imaging_worker_metrics_port"):
        F["monitoring_targets"](hostvars, GROUPS, [{"name": "i", "group": "imaging_workers", "port": 9108,
                                                    "port_var": "imaging_worker_metrics_port"}])


def test_vms_expected():
    vms = [{"name": "ris-1"}, {"name": "pacs-1", "extra": {"state": "running"}},
           {"name": "spare", "extra": {"state": "shutoff"}}]
    assert F["monitoring_vms_expected"](vms) == ["pacs-1", "ris-1"]
    assert F["monitoring_vms_expected"]([]) == []


@pytest.mark.parametrize("vms, words", [
    ([{"name": "a"}, {"name": "a"}], "appear twice: a"),
    ([{"name": 'a"} or vector(1)'}], "cannot be a label value"),
    ([{"vcpus": 1}], "needs a name"),
    ({"name": "a"}, "must be the list"),
])
def test_vms_expected_refuses(vms, words):
    with pytest.raises(AnsibleFilterError, match=words):
        F["monitoring_vms_expected"](vms)


def _silence(sid, state="active", by="hospital.cloud", matchers=None):
    return {"id": sid, "status": {"state": state}, "createdBy": by,
            "matchers": matchers if matchers is not None else [{"name": "host", "value": "kvm-01", "isRegex": False,
                                                                "isEqual": True}]}


def test_silence_ids_match_host_creator_and_live_state_only():
    silences = [
        _silence("b"), _silence("a", state="pending"), _silence("expired", state="expired"),
        _silence("other-user", by="alice"),
        _silence("regex", matchers=[{"name": "host", "value": "kvm-01", "isRegex": True}]),
        _silence("more", matchers=[{"name": "host", "value": "kvm-01"}, {"name": "job", "value": "node"}]),
        _silence("other-host", matchers=[{"name": "host", "value": "kvm-02"}]),
        _silence("old-api", matchers=[{"name": "host", "value": "kvm-01", "isRegex": False}]),  # no isEqual: equal
    ]
    assert F["monitoring_silence_ids"](silences, "kvm-01", "hospital.cloud") == ["a", "b", "old-api"]
    assert F["monitoring_silence_ids"]([], "kvm-01", "hospital.cloud") == []


@pytest.mark.parametrize("args", [({"id": "x"}, "kvm-01", "c"), ([], "", "c"), ([], "kvm-01", ""), (["x"], "h", "c")])
def test_silence_ids_refuses(args):
    with pytest.raises(AnsibleFilterError, match="monitoring_silence_ids"):
        F["monitoring_silence_ids"](*args)
