"""The Grafana dashboard shipped for sites that run Grafana (roles/monitoring/files/grafana, issue #18): a
well-formed dashboard whose every query is valid PromQL (Debian's promtool, as recording rules) over the series
this collection's monitoring serves, and no panel or query names a patient."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "roles" / "monitoring" / "files" / "grafana").glob("*.json"))
# the exporters' and the rules' series (node-exporter, libvirt exporter, Ceph mgr, imaging workers, the rules)
PREFIXES = ("node_", "libvirt_", "ceph_", "hospital_imaging_", "hospital_cloud:", "up", "ALERTS")
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "by", "without", "on", "group_left", "rate", "or", "and",
                "unless", "vector", "deriv", "mode", "fstype", "device", "name", "host", "domain", "pool_id",
                "instance", "alertstate", "job"}


def _panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def test_dashboards_are_shipped():
    assert DASHBOARDS, "no dashboard in roles/monitoring/files/grafana"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path):
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource"]  # the site picks its Prometheus
    panels = list(_panels(dash))
    assert len({p["id"] for p in panels}) == len(panels), "panel ids repeat"
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
    text = path.read_text().lower()
    assert not re.search(r"patient|study|accession|birth", text.replace("no patient data", ""))


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool missing: apt-get install prometheus")
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_is_valid_promql_over_our_series(path, tmp_path):
    exprs = [t["expr"] for p in _panels(json.loads(path.read_text())) for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?=\s*[{\[(]|\s*$|\s*[)*/+\-<>=!]|\s+(?:unless|or|and|on)\b)",
                               re.sub(r'"[^"]*"', '""', expr)))
        series = {n for n in names if n not in PROMQL_WORDS and not n.isdigit()}
        assert all(n.startswith(PREFIXES) for n in series), (expr, series)
    recorded = [{"record": "dashboard:q%d" % i, "expr": e} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": recorded}]}
    f = tmp_path / "dashboard_rules.yml"
    f.write_text(json.dumps(rules))
    out = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
