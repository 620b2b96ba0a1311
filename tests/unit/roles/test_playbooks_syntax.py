"""Every playbook and molecule scenario passes ansible-playbook --syntax-check against the lab inventory."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from testbed.ansible_run import REPO, VENV_PY, ansible_env


def _is_playbook(path):
    doc = yaml.safe_load(path.read_text())
    return isinstance(doc, list) and all(isinstance(p, dict) and ("hosts" in p or "import_playbook" in p
                                                                  or "ansible.builtin.import_playbook" in p) for p in doc)


# every play file: site.yml, playbooks/, and each molecule scenario's create/converge/side_effect/destroy
PLAYBOOKS = sorted([REPO / "site.yml", *(REPO / "playbooks").glob("*.yml"),
                    *(p for p in (REPO / "molecule").glob("*/*.yml") if _is_playbook(p))])


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_syntax(playbook):
    res = subprocess.run([str(VENV_PY.parent / "ansible-playbook"), "--syntax-check", "-i", str(REPO / "inventories" / "lab"),
                          str(playbook)], capture_output=True, text=True, env=ansible_env(), cwd=REPO, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("scenario", sorted((REPO / "molecule").glob("*/molecule.yml")), ids=lambda p: p.parent.name)
def test_molecule_scenarios_are_complete(scenario):
    conf = yaml.safe_load(scenario.read_text())
    assert conf["platforms"], "no platforms"
    assert (scenario.parent / "converge.yml").exists()
    seq = conf.get("scenario", {}).get("test_sequence", [])
    assert "idempotence" in seq and "verify" in seq
