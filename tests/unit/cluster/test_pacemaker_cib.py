"""module_utils/cluster/cib (hospital.cloud.pacemaker_cib) against a CIB held in memory by a stand-in for
cibadmin/crm_attribute (the real tools run in tests/integration/ops/test_ops_ha.py): desired vs observed, check mode, bad input."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.cluster import cib
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError

CIB = """<configuration><crm_config><cluster_property_set id="cib-bootstrap-options">
<nvpair id="o1" name="cluster-name" value="hospital"/></cluster_property_set></crm_config>
<nodes><node id="1" uname="h1"/><node id="2" uname="h2"/></nodes>
<resources><primitive id="vm-a" class="ocf" provider="heartbeat" type="VirtualDomain">
<instance_attributes id="vm-a-ia"><nvpair id="vm-a-ia-config" name="config" value="/etc/a.xml"/></instance_attributes>
<meta_attributes id="vm-a-meta"><nvpair id="vm-a-meta-target-role" name="target-role" value="Stopped"/></meta_attributes>
</primitive></resources><constraints/></configuration>"""
PRIM_A = ('<primitive id="vm-a" class="ocf" provider="heartbeat" type="VirtualDomain"><instance_attributes id="vm-a-ia">'
          '<nvpair id="vm-a-ia-config" name="config" value="/etc/a.xml"/></instance_attributes></primitive>')


class FakeCluster:
    def __init__(self):
        self.config = ET.fromstring(CIB)
        self.attrs: dict = {}
        self.writes: list = []

    def __call__(self, *cmd):
        cmd = list(cmd)
        if cmd[:2] == ["cibadmin", "--query"]:
            return subprocess.CompletedProcess(cmd, 0, ET.tostring(self.config, encoding="unicode"), "")
        if cmd[0] == "crm_attribute":
            key = (cmd[2], cmd[4], "--utilization" in cmd)
            if "--query" in cmd:
                return subprocess.CompletedProcess(cmd, 0 if key in self.attrs else 6, self.attrs.get(key, ""), "")
            self.attrs[key] = cmd[cmd.index("--update") + 1]
            self.writes.append(cmd)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        self.writes.append(cmd)
        xml = ET.fromstring(cmd[-1]) if cmd[1] in ("--create", "--replace") else None
        if cmd[1] == "--create":
            (self.config if cmd[3] == "configuration" else self.config.find(cmd[3])).append(xml)
        elif cmd[1] == "--replace":
            ident = xml.get("id")
            for parent in self.config.iter():
                for i, child in enumerate(list(parent)):
                    if child.get("id") == ident:
                        parent.remove(child)
                        parent.insert(i, xml)
        return subprocess.CompletedProcess(cmd, 0, "", "")


@pytest.fixture(name="fake")
def _fake(monkeypatch):
    fake = FakeCluster()
    monkeypatch.setattr(cib, "_cli", fake)
    return fake


def _run(params, check_mode=False):
    return cib.run(dict({"elements": [], "absent": [], "nodes": {}}, **params), check_mode=check_mode, diff=True)


def test_operator_additions_are_left_alone(fake):
    # vm-a holds what we ask for plus a target-role an operator set: up to date, nothing written
    res = _run({"elements": [{"section": "resources", "xml": PRIM_A}]})
    assert not res["changed"] and fake.writes == []


def test_create_then_nothing_to_do(fake):
    loc = '<rsc_location id="loc-a" rsc="vm-a" node="h1" score="100"/>'
    res = _run({"elements": [{"section": "constraints", "xml": loc}], "nodes": {"h1": {"utilization": {"cpu": 8}}}})
    assert res["changed"] and res["created"] == ["loc-a"] and res["nodes"][0]["after"] == "8"
    again = _run({"elements": [{"section": "constraints", "xml": loc}], "nodes": {"h1": {"utilization": {"cpu": 8}}}})
    assert not again["changed"] and again["calls"] == []


def test_a_changed_value_replaces_the_element(fake):
    changed = PRIM_A.replace("/etc/a.xml", "/etc/b.xml")
    res = _run({"elements": [{"section": "resources", "xml": changed}]})
    assert res["updated"] == ["vm-a"] and "/etc/a.xml" in res["diff"]["before"]
    assert fake.config.find(".//nvpair[@id='vm-a-ia-config']").get("value") == "/etc/b.xml"


def test_check_mode_predicts_and_writes_nothing(fake):
    loc = '<rsc_location id="loc-a" rsc="vm-a" node="h1" score="100"/>'
    res = _run({"elements": [{"section": "constraints", "xml": loc}], "absent": ["vm-a"]}, check_mode=True)
    assert res["changed"] and res["created"] == ["loc-a"] and res["removed"] == ["vm-a"]
    assert fake.writes == []


def test_resource_defaults_create_their_section(fake):
    meta = '<meta_attributes id="d"><nvpair id="d-s" name="resource-stickiness" value="200"/></meta_attributes>'
    _run({"elements": [{"section": "rsc_defaults", "xml": meta}]})
    assert fake.writes[0][3] == "configuration" and fake.writes[0][-1].startswith("<rsc_defaults>")


def test_fencing_level_creates_its_container(fake):
    level = '<fencing-level id="fl-1" target="h1" index="1" devices="f"/>'
    _run({"elements": [{"section": "fencing-topology", "xml": level}]})
    assert fake.writes[0][3] == "configuration" and fake.writes[0][-1].startswith("<fencing-topology>")


@pytest.mark.parametrize("params,text", [
    ({"elements": [{"section": "bogus", "xml": "<a id='x'/>"}]}, "section: one of"),
    ({"elements": [{"section": "resources", "xml": "<primitive"}]}, "not well-formed"),
    ({"elements": [{"section": "resources", "xml": "<primitive/>"}]}, "needs an id"),
    ({"elements": [{"section": "resources", "xml": PRIM_A}, {"section": "resources", "xml": PRIM_A}]},
     "given more than once"),
    ({"nodes": {"h9": {"utilization": {"cpu": 1}}}}, "h9 is not a node of this cluster"),
    ({"nodes": {"h1": {"weight": 1}}}, "a dict with attributes and/or utilization"),
])
def test_bad_input_is_refused_before_anything_is_written(fake, params, text):
    with pytest.raises(ModuleError, match=text):
        _run(params)
    assert fake.writes == []


def test_missing_tools_say_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ModuleError, match="pacemaker-cli-utils"):
        cib.query_config()
