"""The test bed's libvirtd on qemu:///system and the KVM/TCG choice.

There is no systemd on the development machines, so libvirtd is started by hand the way an init
system would (``virtlogd -d``, ``libvirtd -d``) when it is not already answering; a running daemon
is reused. libvirtd is a system service: it stays up after the tests (like after a package
install); what the tests define in it they remove themselves (names start with ``hc-test-``).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import time

from . import clocks

URI = "qemu:///system"


class LibvirtError(RuntimeError):
    """libvirtd could not be reached or started."""


def kvm_usable(cpuinfo: str | None = None, sys_module: str = "/sys/module", dev: str = "/dev/kvm") -> bool:
    """True where hardware virtualisation really works.

    /dev/kvm alone is not enough: on a nested PVM layer (``kvm_pvm`` loaded, no vmx/svm CPU flag)
    the device exists but guests never boot.
    """
    if not os.path.exists(dev) or not os.access(dev, os.R_OK | os.W_OK):
        return False
    if os.path.exists(os.path.join(sys_module, "kvm_pvm")):
        return False
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"vmx", "svm"})


def domain_type() -> str:
    """'kvm' where KVM works, else 'qemu' (TCG software emulation)."""
    return "kvm" if kvm_usable() else "qemu"


def answering(uri: str = URI, timeout: float = 10) -> bool:
    try:
        res = subprocess.run(["virsh", "-c", uri, "version"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


# A cold libvirtd (no /var/cache/libvirt/qemu/capabilities yet, as on a fresh CI machine) probes QEMU before it
# answers: 28 s on a quiet machine here, more on 2 busy cores (CI failed once at a 30 s limit).
COLD_START_TIMEOUT = 180


def align_kvm_device_group(dev: str = "/dev/kvm", group: str = "kvm", qemu_user: str = "libvirt-qemu") -> bool:
    """Give `dev` the group libvirt's QEMU user is in, where the machine gives it another one.

    On this test bed /dev/kvm belongs to group ssl-cert (a container's gid mapping). libvirt's probe of QEMU
    then sees KVM but its later check ("accessible as libvirt-qemu?") does not, so it throws away its
    capabilities cache and probes QEMU again on every define/start: 32 s each, measured (0.0 s once aligned).
    Guests here stay TCG either way (domain_type()). Returns True when the group was changed.
    """
    try:
        st = os.stat(dev)
        want = grp.getgrnam(group).gr_gid
        members = {g.gr_gid for g in grp.getgrall() if qemu_user in g.gr_mem} | {pwd.getpwnam(qemu_user).pw_gid}
    except (OSError, KeyError):
        return False
    if st.st_gid in members or want not in members:
        return False
    os.chown(dev, -1, want)
    return True


def ensure_libvirtd(uri: str = URI, timeout: float = COLD_START_TIMEOUT) -> float:
    """Make sure libvirtd answers on uri; start virtlogd + libvirtd if needed. Returns seconds spent."""
    t0 = time.monotonic()
    align_kvm_device_group()
    if answering(uri):
        return time.monotonic() - t0
    for tool in ("virsh", "libvirtd", "virtlogd"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            raise LibvirtError("libvirt test bed needs '%s' (Debian packages libvirt-daemon-system "
                               "libvirt-clients qemu-system-x86; run `make deps`)" % tool)
    for daemon in ("virtlogd", "libvirtd"):
        path = shutil.which(daemon) or "/usr/sbin/" + daemon
        res = subprocess.run([path, "-d"], capture_output=True, text=True, check=False)
        # "Unable to obtain pidfile": a running daemon holds the lock (it was only slow to answer under load)
        running = any(m in (res.stderr or "") for m in ("already running", "Unable to obtain pidfile"))
        if res.returncode != 0 and not running:
            # a stale pid file from a daemon that died is the usual reason: libvirtd says so
            raise LibvirtError("%s -d failed: %s" % (daemon, res.stderr.strip()))
    # One patient call, not many short ones: a virsh killed mid-probe makes the cold start 3x slower (85 s vs 28 s).
    while (left := timeout - (time.monotonic() - t0)) > 0:
        if answering(uri, timeout=left):
            return time.monotonic() - t0
        time.sleep(0.3)
    raise LibvirtError("libvirtd started but %s does not answer after %ds (libvirtd %s)"
                       % (uri, timeout, "running" if _pid_alive("/run/libvirtd.pid") else "not running"))


def _pid_alive(pidfile: str) -> bool:
    try:
        with open(pidfile, encoding="ascii") as fh:
            os.kill(int(fh.read().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


# What a guest's serial console shows on the way to SSH, in boot order (the last one seen says how far it got).
BOOT_MILESTONES = (
    ("kernel", "Linux version"),
    ("initramfs", "Run /init"),
    ("root mounted", "EXT4-fs (vda): mounted"),
    ("systemd", "systemd[1]: "),
    ("network", "Reached target network.target"),
    ("host keys", "Finished hc-ssh-hostkeys"),
    ("sshd", "Started ssh.service"),
    ("login prompt", " login: "),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def virsh(uri: str, *args: str, check: bool = True, timeout: float | None = None) -> str:
    """virsh's standard output; with ``check``, a failure raises AssertionError with virsh's own error."""
    res = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError("virsh %s: %s" % (" ".join(args), res.stderr.strip()))
    return res.stdout


def _virsh_said(uri: str, *args: str) -> str:
    """virsh's output, or why it failed, for a report (never raises)."""
    try:
        return virsh(uri, *args, timeout=20).strip()
    except (AssertionError, OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)


def _read(path: str) -> tuple[str, str]:
    """A log's text without ANSI colours, and why it could not be read ('' when it could)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _ANSI.sub("", fh.read()), ""
    except OSError as exc:
        return "", str(exc)


def _tail(text: str, lines: int) -> list[str]:
    return [line.strip()[:160] for line in text.splitlines() if line.strip()][-lines:]


def boot_report(name: str, console_log: str, network: str, mac: str, uri: str = URI, lines: int = 6,
                wall_since: float | None = None, uptime_since: float | None = None) -> str:
    """A few lines on a guest that did not come up: domain state, DHCP lease, how far the boot got, last output.

    ``wall_since`` and ``uptime_since`` (a clocks.now() pair; /proc/uptime shows the same boot clock), taken
    when the wait began, add a line with the time the wait took by the wall clock and by the boot clock: where
    they differ, the wall clock was stepped (an NTP correction), which ends wall-clock timeouts such as
    wait_for's early.
    Kept short on purpose: CI shows only the tail of a run's output.
    """
    console, unreadable = _read(console_log)
    reached = [label for label, marker in BOOT_MILESTONES if marker in console]
    # net-dhcp-leases columns: expiry date, expiry time, MAC, protocol, address/prefix, hostname, client id
    lease = [line.split() for line in _virsh_said(uri, "net-dhcp-leases", network).splitlines()
             if mac.lower() in line.lower()]
    out = [
        "domain %s: %s; DHCP lease for %s: %s" % (
            name, _virsh_said(uri, "domstate", "--reason", name) or "?", mac,
            lease[0][4] if lease and len(lease[0]) > 4 else "none"),
        "console %s: %d bytes; reached: %s" % (console_log, len(console), ", ".join(reached) or "nothing"),
    ]
    if wall_since is not None and uptime_since is not None:
        wall, booted = clocks.elapsed((wall_since, uptime_since))
        out.append("clocks: the wait took %.1f s by the wall clock, %.1f s by the boot clock%s" % (
            wall, booted, "; the wall clock moved %+.1f s" % (wall - booted) if abs(wall - booted) > 2 else ""))
    out += ["  console| " + line for line in ([unreadable] if unreadable else _tail(console, lines))]
    qemu_log, unreadable = _read("/var/log/libvirt/qemu/%s.log" % name)
    out += ["  qemu log| " + line for line in ([unreadable] if unreadable else _tail(qemu_log, 2))]
    return "\n".join(out)
