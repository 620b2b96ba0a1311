"""playbooks/awx_setup.yml with real ansible-playbook and the real awx.awx modules, without an AWX.

AWX needs Kubernetes and cannot run here. What runs: the syntax check, the preflight, and every
awx.awx call of the playbook (loops expanded, as Ansible renders them) through its module's own
argument validation; each then stops at the first API request, at a local port where nothing
listens, which shows that the arguments were accepted.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from testbed.ansible_run import REPO, VENV_PY, ansible_env

# the renderer of the definitions test (tests/unit/awx)
sys.path.insert(0, str(REPO / "tests" / "unit" / "awx"))
from awx_definitions import AWX_SETUP, rendered_calls, setup_play, setup_vars  # noqa: E402  pylint: disable=wrong-import-position

OPERATOR_VARS = {"awx_setup_scm_url": "https://git.hospital.example/it/hospital-cloud.git",
                 "awx_setup_ee_image": "registry.hospital.example/hospital-cloud-ee:0.1.0",
                 "awx_setup_vault_password": "not-a-secret", "awx_setup_ceph_key": "not-a-key"}


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_syntax_check():
    res = subprocess.run([str(VENV_PY.parent / "ansible-playbook"), "--syntax-check", str(AWX_SETUP)],
                         capture_output=True, text=True, check=False, env=ansible_env(), cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


def test_preflight_stops_before_touching_the_controller(run_playbook, closed_port):
    res = run_playbook(AWX_SETUP, extra_vars={"awx_setup_controller_host": "http://127.0.0.1:%d" % closed_port})
    assert res.rc != 0
    failed = [t for t in res.tasks if t["result"].get("failed")]
    assert [t["task"] for t in failed] == ["Preflight | the project URL and the execution environment image are set"]
    assert "awx_setup_scm_url" in failed[0]["result"]["msg"]


def test_first_api_call_after_the_preflight(run_playbook, closed_port):
    url = "http://127.0.0.1:%d" % closed_port
    res = run_playbook(AWX_SETUP, extra_vars=dict(OPERATOR_VARS, awx_setup_controller_host=url,
                                                  awx_setup_controller_oauthtoken="not-a-token"))
    assert res.rc != 0
    failed = [t for t in res.tasks if t["result"].get("failed")]
    assert [t["task"] for t in failed] == ["Organization"], [t["task"] for t in failed]
    assert url + "/api/v2/organizations/" in failed[0]["result"]["msg"]


def _calls():
    play = setup_play()
    variables = setup_vars(play, **OPERATOR_VARS)
    out = []
    for task in play["tasks"]:
        for module in [k for k in task if k.startswith("awx.awx.")]:
            for call in rendered_calls({"tasks": [task]}, module, variables):
                label = call["args"].get("name", "")
                out.append(pytest.param(module, dict(call["args"]), id="%s:%s" % (module.split(".")[-1], label)))
    return out


@pytest.mark.parametrize("module,args", _calls())
def test_module_accepts_the_rendered_arguments(run_module, closed_port, module, args):
    url = "http://127.0.0.1:%d" % closed_port
    result = run_module(module, dict(args, controller_host=url, controller_oauthtoken="not-a-token"))
    assert result.get("failed"), result
    # the argument spec passed (no "Unsupported parameters" / "must be one of"): the request was made
    assert "Connection refused" in result["msg"] and url in result["msg"], result["msg"]
