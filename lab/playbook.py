"""ansible-playbook for the lab: the checkout as the collection, and a live account of the run.

``ansible_env`` is the environment every run of this checkout uses (the lab and the test bed):
the repository visible as ``ansible_collections/hospital/cloud`` under ``.cache/collections``, the
venv's Python on both sides, no colours. ``run`` starts ``ansible-playbook``, writes every line of
its output to a log file as it comes, and feeds each line to ``Progress``, which prints one short
line per play and task (with the elapsed time and, when the task ends, what it did on the hosts),
failures and warnings as they happen, and the recap.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".cache" / "collections"
VENV_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PY) if VENV_PY.exists() else sys.executable


def ensure_collection_path() -> Path:
    """Make the checkout visible as ansible_collections/hospital/cloud; return the collections root."""
    link = COLLECTIONS / "ansible_collections" / "hospital" / "cloud"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(REPO)
    return COLLECTIONS


def ansible_env(extra: dict | None = None) -> dict:
    root = str(ensure_collection_path())
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": root,
        "PYTHONPATH": root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "ANSIBLE_PYTHON_INTERPRETER": PYTHON,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(REPO / ".cache" / "ansible-tmp"),
        "PATH": str(VENV_PY.parent) + os.pathsep + env.get("PATH", ""),
    })
    env.update(extra or {})
    return env


_BANNER = re.compile(r"^(PLAY RECAP|PLAY|TASK|RUNNING HANDLER) ?(?:\[(.*)\])? \*+\s*$")
_RESULT = re.compile(r"^(ok|changed|skipping|fatal|failed): \[([^\]]+)\]")
_RECAP_LINE = re.compile(r"^\S+\s+: ok=\d+")
# the worst outcome a host had in a task wins (a loop prints one line per item)
_RANK = {"skipped": 0, "ok": 1, "changed": 2, "ignored": 3, "failed": 4, "unreachable": 5}
_FAILURE_CHARS = 300


class Progress:
    """A short live account of ansible-playbook's default output, fed one line at a time.

    Each task is printed when it starts (``  [0:01:23] role : task``, flushed at once) and completed
    when the next one starts (`` ok=3 changed=1 (4 s)``); a failure is printed as it happens (its
    first line, cut at 300 characters: the log has all of it); the recap is printed as it is.
    """

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.t0 = clock()
        self.plays = 0
        self.tasks = 0
        self.warnings = 0
        self._task: str | None = None
        self._task_t0 = 0.0
        self._hosts: dict[str, str] = {}
        self._open = False  # a task line is printed without its end yet
        self._recap = False
        self._last_failed: str | None = None

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _line(self, text: str) -> None:
        if self._open:
            self._write("\n")
            self._open = False
        self._write(text + "\n")

    def _stamp(self) -> str:
        secs = int(self.clock() - self.t0)
        return "%d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)

    def _end_task(self) -> None:
        if self._task is None:
            return
        counts: dict[str, int] = {}
        for status in self._hosts.values():
            counts[status] = counts.get(status, 0) + 1
        tally = " ".join("%s=%d" % (k, counts[k]) for k in sorted(counts, key=_RANK.get)) or "no hosts"
        end = " %s (%.0f s)\n" % (tally, self.clock() - self._task_t0)
        self._write(end if self._open else "      %s ->%s" % (self._task, end))
        self._open = False
        self._task = None

    def _host(self, host: str, status: str) -> None:
        if _RANK[status] >= _RANK.get(self._hosts.get(host, "skipped"), 0):
            self._hosts[host] = status

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        banner = _BANNER.match(line)
        if banner:
            self._end_task()
            kind, name = banner.group(1), banner.group(2) or ""
            self._recap = kind == "PLAY RECAP"
            if self._recap:
                self._line("PLAY RECAP (%s)" % self._stamp())
            elif kind == "PLAY":
                self.plays += 1
                self._line("PLAY %d [%s]" % (self.plays, name))
            else:
                self.tasks += 1
                self._task, self._task_t0, self._hosts = name, self.clock(), {}
                self._write("  [%s] %s%s" % (self._stamp(), "handler " if kind != "TASK" else "", name))
                self._open = True
            return
        if self._recap:
            if _RECAP_LINE.match(line.strip()):
                self._line("  " + line.strip())
            return
        result = _RESULT.match(line)
        if result:
            status, host = result.group(1), result.group(2)
            if status in ("fatal", "failed"):
                status = "unreachable" if "UNREACHABLE!" in line else "failed"
                self._last_failed = host
                self._line("    " + (line if len(line) <= _FAILURE_CHARS else line[:_FAILURE_CHARS] + " ..."))
            self._host(host, {"skipping": "skipped"}.get(status, status))
        elif line.startswith("...ignoring") and self._last_failed:
            self._hosts[self._last_failed] = "ignored"
            self._line("    (ignored)")
        elif line.startswith(("[WARNING]", "[DEPRECATION WARNING]")):
            self.warnings += 1
        elif line.startswith(("ERROR!", "[ERROR]")):
            self._line(("    " if self._task else "") + line)

    def close(self) -> None:
        self._end_task()
        if self._open:
            self._write("\n")
            self._open = False


@dataclass
class Run:
    rc: int
    seconds: float
    output: str  # stdout and stderr as they came, interleaved
    log: Path


def run(cmd: list[str], log: Path, out: TextIO | None = None, env: dict | None = None,
        cwd: Path = REPO) -> Run:
    """Run ``cmd`` (an ansible-playbook command line) with live progress on ``out``; keep all output in ``log``."""
    out = out if out is not None else sys.stderr
    env = dict(ansible_env(), **(env or {}))
    # the progress reads the default callback's text; Python must not hold the lines back in a pipe buffer
    env.update({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "PYTHONUNBUFFERED": "1"})
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(out)
    title = next((Path(c).name for c in cmd if c.endswith((".yml", ".yaml"))), Path(cmd[0]).name)
    print("%s: running, full log in %s" % (title, log), file=out, flush=True)
    lines = []
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8") as fh, subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, bufsize=1, errors="replace") as proc:
        for line in proc.stdout or ():
            fh.write(line)
            fh.flush()
            lines.append(line)
            progress.feed(line)
        rc = proc.wait()
    progress.close()
    secs = time.monotonic() - t0
    print("%s: rc=%d in %.0f s, %d tasks, %d warnings (full log %s)" % (title, rc, secs, progress.tasks, progress.warnings, log),
          file=out, flush=True)
    return Run(rc, secs, "".join(lines), log)
