"""Run the collection's modules and playbooks for real from tests.

``run_module`` executes a module's file directly with its arguments (the same code path Ansible
runs on a host, without a controller round trip). ``run_playbook`` runs real ``ansible-playbook``
with the checkout visible as ansible_collections/hospital/cloud and the JSON callback.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# the checkout as a collection and the environment of every ansible run: shared with the lab
from lab.playbook import COLLECTIONS, PYTHON, REPO, VENV_PY, ansible_env, ensure_collection_path

__all__ = ["COLLECTIONS", "LOCAL_INVENTORY", "PYTHON", "REPO", "VENV_PY", "ModuleCrashed", "PlaybookResult",
           "ansible_env", "ensure_collection_path", "run_module", "run_playbook"]


class ModuleCrashed(AssertionError):
    """The module printed no JSON (a traceback): always a defect."""


def run_module(fqcn: str, args: dict, check: bool = False, diff: bool = False,
               timeout: float = 300) -> dict:
    """Run module `fqcn` (e.g. hospital.cloud.ceph_pool) with args; return its JSON result."""
    ns, coll, name = fqcn.split(".")
    modname = "ansible_collections.%s.%s.plugins.modules.%s" % (ns, coll, name)
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(payload, fh)
        path = fh.name
    try:
        res = subprocess.run([PYTHON, "-m", modname, path], capture_output=True, text=True,
                             env=ansible_env(), timeout=timeout, check=False)
    finally:
        os.unlink(path)
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "")
    except (ValueError, IndexError) as exc:
        raise ModuleCrashed("%s printed no JSON (rc=%d)\nstdout: %s\nstderr: %s"
                            % (fqcn, res.returncode, res.stdout[-3000:], res.stderr[-3000:])) from exc
    out.setdefault("failed", res.returncode != 0 and out.get("failed", False))
    out["_stderr"] = res.stderr
    return out


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    data: dict = field(default_factory=dict)

    @property
    def stats(self) -> dict:
        return self.data.get("stats", {})

    @property
    def tasks(self) -> list[dict]:
        """One entry per task and host: {'play', 'task', 'host', 'result'}."""
        out = []
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    out.append({"play": play["play"]["name"], "task": task["task"]["name"],
                                "host": host, "result": result})
        return out

    def changed(self, host: str | None = None) -> int:
        return sum(s.get("changed", 0) for h, s in self.stats.items() if host in (None, h))

    def failed(self, host: str | None = None) -> int:
        return sum(s.get("failures", 0) + s.get("unreachable", 0)
                   for h, s in self.stats.items() if host in (None, h))

    def result(self, task: str, host: str | None = None) -> dict:
        for t in self.tasks:
            if (t["task"] == task or t["task"].endswith(" : " + task)) and host in (None, t["host"]):
                return t["result"]
        raise KeyError("no result for task %r (host %r)" % (task, host))


LOCAL_INVENTORY = "localhost ansible_connection=local ansible_python_interpreter=%s\n" % PYTHON


def run_playbook(playbook: str | os.PathLike, extra_vars: dict | None = None, check: bool = False,
                 diff: bool = False, inventory: str | os.PathLike | None = None,
                 args: list[str] | None = None, env: dict | None = None,
                 timeout: float = 1800) -> PlaybookResult:
    """Run ansible-playbook on a file or on YAML text; parse the json callback's output."""
    tmp = tempfile.mkdtemp(prefix="hc-pb-")
    pb = Path(str(playbook))
    if "\n" in str(playbook) or not pb.exists():
        pb = Path(tmp) / "playbook.yml"
        pb.write_text(str(playbook))
    if inventory is None:
        inventory = Path(tmp) / "inventory.ini"
        inventory.write_text(LOCAL_INVENTORY)
    cmd = [str(VENV_PY.parent / "ansible-playbook"), "-i", str(inventory), str(pb)]
    if extra_vars:
        ev = Path(tmp) / "extra_vars.json"
        ev.write_text(json.dumps(extra_vars))
        cmd += ["-e", "@%s" % ev]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd += args or []
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                         env=ansible_env(dict({"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, **(env or {}))))
    try:
        data = json.loads(res.stdout[res.stdout.index("{"):]) if "{" in res.stdout else {}
    except ValueError:
        data = {}
    return PlaybookResult(res.returncode, res.stdout, res.stderr, data)
