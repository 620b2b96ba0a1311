"""Capacity report rendering."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.placement import capacity_live_usage, capacity_markdown
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import report
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement


def test_markdown_and_png(tmp_path):
    hosts = [{"name": "h1", "vcpus": 8, "memory": 16384, "disk": 100, "rack": "r1"},
             {"name": "h2", "vcpus": 8, "memory": 16384, "disk": 100, "maintenance": True}]
    vms = [{"name": "a", "vcpus": 2, "memory": "4 GiB", "disk": 10}]
    plan = placement(vms, hosts, current={"a": "h2"})
    md = report.markdown(plan)
    assert "| h2 (maintenance) | h2 | 1 | 2 / 8 (25.0 %) | 4 / 16 GiB (25.0 %) | 10 / 100 GiB (10.0 %) |" in md
    plan["vm_sizes"] = {"a": {"vcpus": 2, "memory": 4096}}
    out = tmp_path / "c.png"
    report.render_png(plan, str(out))
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli(tmp_path):
    import json
    plan = placement([{"name": "a", "vcpus": 1, "memory": 512, "disk": 1}],
                     [{"name": "h", "vcpus": 2, "memory": 1024, "disk": 2}])
    (tmp_path / "p.json").write_text(json.dumps(plan))
    assert report.main(["--plan", str(tmp_path / "p.json"), "--md", str(tmp_path / "r.md"),
                        "--png", str(tmp_path / "r.png")]) == 0
    assert "| h | h | 1 |" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("vm, expected", [
    ({"name": "a", "vcpus": 2, "memory": 4096}, {"vcpus": 2, "memory": 4096}),
    ({"name": "a", "vcpus": "2", "memory": "4 GiB"}, {"vcpus": 2, "memory": 4096}),
    # the placement filter reads these (model.parse_amount); the old duplicate parser did not
    ({"name": "a", "vcpus": 2, "memory": "8GiB"}, {"vcpus": 2, "memory": 8192}),
    ({"name": "a", "vcpus": 2, "memory": " 1 TiB "}, {"vcpus": 2, "memory": 1024 * 1024}),
    # ... and refuses these, so the plot does not stack them (the duplicate took them as sizes)
    ({"name": "a", "vcpus": "4 GiB", "memory": -5}, {"vcpus": None, "memory": None}),
    ({"name": "a", "vcpus": True, "memory": "4 PiB"}, {"vcpus": None, "memory": None}),
    ({"name": "a"}, {"vcpus": 0, "memory": 0}),
])
def test_vm_sizes_read_like_the_placement_filter(vm, expected):
    assert report.vm_sizes([vm]) == {"a": expected}


def test_capacity_markdown_filter():
    plan = placement([{"name": "a", "vcpus": 1, "memory": 512, "disk": 1}],
                     [{"name": "h", "vcpus": 2, "memory": 1024, "disk": 2}])
    assert capacity_markdown(plan) == report.markdown(plan)
    for bad in (None, [], {"hosts": {"h": {}}}):
        with pytest.raises(AnsibleFilterError, match="capacity_markdown"):
            capacity_markdown(bad)


def _vector(*samples):
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": m, "value": [1764800000.0, v]} for m, v in samples]}}


def test_live_usage_from_prometheus_answers():
    live = report.live_usage({
        "cpu": _vector(({"host": "kvm-01"}, "0.123"), ({"host": "kvm-02"}, "NaN")),
        "memory": _vector(({"host": "kvm-01"}, "0.5"), ({"host": "kvm-02"}, "0.25")),
        "ceph": _vector(({}, "0.0321")),
    })
    assert live == {"hosts": {"kvm-01": {"cpu": 12.3, "memory": 50.0}, "kvm-02": {"memory": 25.0}}, "ceph_used": 3.2}
    plan = placement([{"name": "a", "vcpus": 1, "memory": 512}],
                     [{"name": "kvm-01", "vcpus": 4, "memory": 4096}, {"name": "kvm-02", "vcpus": 4, "memory": 4096}])
    md = capacity_markdown(plan, live=live)
    assert "## Live usage (Prometheus)" in md
    assert "| kvm-01 | 12.3 % | 50.0 % |" in md and "| kvm-02 | - | 25.0 % |" in md
    assert "Ceph raw capacity used: 3.2 %." in md
    assert "Live usage" not in capacity_markdown(plan)  # without monitoring: the plan only


@pytest.mark.parametrize("answers, words", [
    ({"cpu": {"status": "error", "error": "parse error"}}, "query cpu: not a successful instant vector"),
    ({"cpu": {"status": "success", "data": {"resultType": "matrix", "result": []}}}, "query cpu"),
    ({"memory": _vector(({"host": "h"}, "many"))}, "query memory: a sample without a number"),
    ({"disk": _vector()}, "names from ['ceph', 'cpu', 'memory']"),
    (["cpu"], "expects {name: Prometheus answer}"),
])
def test_live_usage_refuses_what_is_not_an_answer(answers, words):
    with pytest.raises(AnsibleFilterError, match="capacity_live_usage: .*" + words.replace("[", r"\[").replace("]", r"\]")):
        capacity_live_usage(answers)
    with pytest.raises(AnsibleFilterError, match="live must be"):
        capacity_markdown(placement([], [{"name": "h", "vcpus": 1, "memory": 1024}]), live={"cpu": 1})
