"""Capacity report rendering."""

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
