"""Process bookkeeping for the test bed: start daemons, remember their PIDs, stop them by PID.

Each test-bed component owns one directory. ``claim`` writes the owning process's PID into it,
``spawn`` records each daemon's PID under ``pids/``, ``stop_all`` stops exactly those PIDs, and
``reap_stale`` cleans directories whose owner died without cleaning up. A recorded PID is signalled
only while its /proc/PID/cmdline still mentions the component's directory, so a recycled PID of an
unrelated process is never touched. Nothing is ever killed by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

_CHILDREN: dict[int, subprocess.Popen] = {}


def claim(root: Path, owner: int | str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "owner.pid").write_text(str(owner if owner is not None else os.getpid()))


def spawn(root: Path, key: str, cmd: list[str], log) -> int:
    """Start cmd in its own session with output to log; record its PID as pids/<key>."""
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # pylint: disable=consider-using-with
    _CHILDREN[p.pid] = p
    (root / "pids").mkdir(exist_ok=True)
    (root / "pids" / key).write_text(str(p.pid))
    return p.pid


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first); [] if gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int) -> bool:
    state = _stat(pid)[:1]
    return bool(state) and state[0] != "Z"


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, field 22): with the PID, its identity."""
    try:
        return int(_stat(pid)[19])
    except (IndexError, ValueError):
        return None


def owns(pid: int, root: Path) -> bool:
    """True if pid is alive and its command line names root (it is one of ours)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return alive(pid) and str(root) in cmdline


def recorded(root: Path) -> dict[str, int]:
    out = {}
    for f in sorted((root / "pids").glob("*")) if (root / "pids").is_dir() else []:
        try:
            out[f.name] = int(f.read_text().strip())
        except ValueError:
            continue
    return out


def stop_all(root: Path, sig: int = signal.SIGTERM, timeout: float = 20) -> list[int]:
    """Stop every recorded daemon of root by PID (TERM, then KILL after timeout)."""
    pids = [pid for pid in recorded(root).values() if owns(pid, root)]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if alive(pid) and owns(pid, root):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid, wait=True)
    return pids


def _reap(pid: int, wait: bool = False) -> None:
    p = _CHILDREN.get(pid)
    if p is None:
        return
    try:
        p.wait(timeout=5 if wait else 0.01)
        _CHILDREN.pop(pid, None)
    except subprocess.TimeoutExpired:
        pass


def reap_stale(base: Path, prefix: str) -> list[Path]:
    """Remove component directories under base whose owning process is gone."""
    cleaned = []
    if not base.is_dir():
        return cleaned
    for d in sorted(base.glob(prefix + "*")):
        owner_file = d / "owner.pid"
        try:
            owner = owner_file.read_text().strip()
        except OSError:
            owner = ""
        if owner == "keep":
            continue
        if owner.isdigit() and alive(int(owner)):
            continue
        stop_all(d, timeout=10)
        shutil.rmtree(d, ignore_errors=True)
        cleaned.append(d)
    return cleaned
