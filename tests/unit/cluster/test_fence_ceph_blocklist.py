"""roles/cluster/templates/fence_ceph_blocklist.j2: the storage fence agent's own logic (fence-agents' library
stubbed; the agent runs against a real cluster in the ops tier, tests/integration/ops/test_ops_ha.py)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import jinja2
import pytest

AGENT = Path(__file__).resolve().parents[3] / "roles" / "cluster" / "templates" / "fence_ceph_blocklist.j2"
# reef's `osd blocklist ls --format json`: the entries, then the ranges (two arrays)
REEF = '\n[{"addr":"10.0.0.2:0/0","until":"2036-12-02T00:37:59"},{"addr":"10.0.0.3:0/104","until":"x"}][]'


@pytest.fixture(name="agent")
def _agent(monkeypatch):
    monkeypatch.setitem(sys.modules, "fencing", types.SimpleNamespace(
        all_opt={"port": {}}, atexit_handler=None, check_input=None, fence_action=None, process_input=None,
        run_command=None, show_docs=None))
    text = jinja2.Template(AGENT.read_text(), keep_trailing_newline=True).render()
    assert text.startswith("#!/usr/bin/python3")
    module = types.ModuleType("fence_ceph_blocklist")
    exec(compile(text, str(AGENT), "exec"), module.__dict__)  # pylint: disable=exec-used
    return module


def test_reads_both_arrays_of_reef(agent):
    assert agent.json_values(REEF) == [[{"addr": "10.0.0.2:0/0", "until": "2036-12-02T00:37:59"},
                                        {"addr": "10.0.0.3:0/104", "until": "x"}], []]
    assert agent.json_values("") == []


def test_status_is_off_only_for_a_whole_address(agent, monkeypatch):
    monkeypatch.setattr(agent, "_ceph", lambda options, *args: REEF)
    assert agent.get_power_status(None, {"--plug": "10.0.0.2"}) == "off"
    # a single client of 10.0.0.3 blocklisted (a lock break) does not fence the host
    assert agent.get_power_status(None, {"--plug": "10.0.0.3"}) == "on"


def test_off_and_on_add_and_remove_the_address(agent, monkeypatch):
    calls = []
    monkeypatch.setattr(agent, "_ceph", lambda options, *args: calls.append(args) or "")
    agent.set_power_status(None, {"--plug": "10.0.0.2", "--action": "off", "--blocklist-expire": "99"})
    agent.set_power_status(None, {"--plug": "10.0.0.2", "--action": "on"})
    assert calls == [("osd", "blocklist", "add", "10.0.0.2", "99"), ("osd", "blocklist", "rm", "10.0.0.2")]
