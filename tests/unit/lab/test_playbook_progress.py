"""The lab's live account of ansible-playbook: parsed from recorded output, and streamed from a real run."""

from __future__ import annotations

import io
import time
from pathlib import Path

from lab import playbook

# ansible-core 2.19's default callback (no colour) on a run with a loop, a skip, an ignored failure, a
# handler, a warning, an unreachable host and the recap
RECORDED = """
PLAY [KVM hosts] ***************************************************************

TASK [hospital.cloud.kvm_host : Install packages] ******************************
changed: [hc-lab-1]
ok: [hc-lab-2]
[WARNING]: Platform linux on host hc-lab-2 is using the discovered Python interpreter
fatal: [hc-lab-3]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh", "unreachable": true}

TASK [hospital.cloud.kvm_host : Bridges] ***************************************
ok: [hc-lab-1] => (item=br0)
changed: [hc-lab-1] => (item=br1)
skipping: [hc-lab-2] => (item=br0)
skipping: [hc-lab-2]

TASK [hospital.cloud.kvm_host : Probe] *****************************************
[ERROR]: Task failed: Action failed: no such device
fatal: [hc-lab-1]: FAILED! => {"changed": false, "msg": "%s"}
...ignoring
ok: [hc-lab-2]

RUNNING HANDLER [hospital.cloud.kvm_host : Restart libvirtd] *******************
changed: [hc-lab-1]

PLAY RECAP *********************************************************************
hc-lab-1                   : ok=4    changed=3    unreachable=0    failed=0    skipped=0    rescued=0    ignored=1
hc-lab-2                   : ok=3    changed=0    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
hc-lab-3                   : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
""" % ("x" * 400)


def test_progress_shows_plays_tasks_outcomes_failures_and_the_recap():
    out = io.StringIO()
    now = [0.0]
    prog = playbook.Progress(out, clock=lambda: now[0])
    for line in RECORDED.splitlines(keepends=True):
        if line.rstrip().endswith("***"):
            now[0] += 10.0  # ten seconds pass before each banner
        prog.feed(line)
    prog.close()
    lines = out.getvalue().splitlines()
    failure = '    fatal: [hc-lab-1]: FAILED! => {"changed": false, "msg": "' + "x" * 244
    assert lines == [
        "PLAY 1 [KVM hosts]",
        "  [0:00:20] hospital.cloud.kvm_host : Install packages",
        '    fatal: [hc-lab-3]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh",'
        ' "unreachable": true}',
        "      hospital.cloud.kvm_host : Install packages -> ok=1 changed=1 unreachable=1 (10 s)",
        "  [0:00:30] hospital.cloud.kvm_host : Bridges skipped=1 changed=1 (10 s)",
        "  [0:00:40] hospital.cloud.kvm_host : Probe",
        "    [ERROR]: Task failed: Action failed: no such device",
        failure[:4 + 300] + " ...",
        "    (ignored)",
        "      hospital.cloud.kvm_host : Probe -> ok=1 ignored=1 (10 s)",
        "  [0:00:50] handler hospital.cloud.kvm_host : Restart libvirtd changed=1 (10 s)",
        "PLAY RECAP (0:01:00)",
        "  hc-lab-1                   : ok=4    changed=3    unreachable=0    failed=0    skipped=0    rescued=0"
        "    ignored=1",
        "  hc-lab-2                   : ok=3    changed=0    unreachable=0    failed=0    skipped=1    rescued=0"
        "    ignored=0",
        "  hc-lab-3                   : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0"
        "    ignored=0",
    ]
    assert (prog.plays, prog.tasks, prog.warnings) == (1, 4, 1)


PLAYBOOK = """
- name: Streaming check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: First task
      ansible.builtin.debug:
        msg: one
    - name: Wait until the reader has seen this task's name
      ansible.builtin.wait_for:
        path: "{{ go }}"
        timeout: 20
"""


class Reader(io.StringIO):
    """The terminal: once it has been shown the waiting task's name, it lets the playbook go on."""

    def __init__(self, go: Path) -> None:
        super().__init__()
        self.go = go
        self.seen_at: float | None = None

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.seen_at is None and "Wait until the reader" in self.getvalue():
            self.seen_at = time.monotonic()
            self.go.write_text("go")
        return n


def test_run_streams_each_task_while_the_playbook_runs_and_keeps_the_log(tmp_path):
    """A runner that printed only at the end would leave the playbook waiting for 20 s and failing."""
    pb = tmp_path / "stream.yml"
    pb.write_text(PLAYBOOK)
    inv = tmp_path / "inventory.ini"
    inv.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % playbook.PYTHON)
    out = Reader(tmp_path / "go")
    log = tmp_path / "logs" / "stream.log"
    t0 = time.monotonic()
    res = playbook.run([str(playbook.VENV_PY.parent / "ansible-playbook"), "-i", str(inv), str(pb),
                        "-e", "go=%s" % (tmp_path / "go")], log, out=out)
    assert res.rc == 0, out.getvalue()
    assert out.seen_at is not None and out.seen_at - t0 < 15
    shown = out.getvalue().splitlines()
    assert shown[0] == "stream.yml: running, full log in %s" % log
    assert shown[1] == "PLAY 1 [Streaming check]"
    assert shown[2].startswith("  [0:00:") and shown[2].endswith("] First task ok=1 (0 s)")
    assert "] Wait until the reader has seen this task's name ok=1 (" in shown[3]
    assert shown[-1].startswith("stream.yml: rc=0 in ") and shown[-1].endswith(", 2 tasks, 0 warnings (full log %s)" % log)
    text = log.read_text()
    assert text == res.output
    assert "TASK [Wait until the reader has seen this task's name]" in text and "PLAY RECAP" in text
