"""Tiny TCG test guests: the base image's kernel and initrd, a small ext4 root holding only the programs a test
needs (copied from this machine with their libraries), and an init script.

The whole base image as a root disk would make every copy of it (rbd-mirror syncs, resyncs, backups) ~700 MB;
these roots are 32 MiB. The guest prints to its serial console (``serial_log`` of the domain).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

BOOT_DIR = Path("/var/lib/libvirt/boot")  # where qemu (libvirt-qemu) may read a kernel
LIBS = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")
COUNT = re.compile(rb"hc-count (\d+)")
# the counter: once a second into a file on the root disk (synced), and to the console; it goes on from the disk
COUNTER = ('i=$(cat /hc-counter 2>/dev/null || echo 0)\n'
           'while :; do i=$((i+1)); echo $i > /hc-counter; sync; echo hc-count $i; sleep 1; done\n')
# qemu-ga on the agent's virtio port (no udev in the guest: found by its name in sysfs)
AGENT = ('for p in /sys/class/virtio-ports/*; do\n'
         '  [ "$(cat $p/name 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue\n'
         '  /usr/sbin/qemu-ga -d -m virtio-serial -p /dev/${p##*/} -t /run -f /run/qemu-ga.pid -l /run/qemu-ga.log\n'
         '  echo hc-agent-started\n'
         'done\n')
COUNTER_TOOLS = ("/bin/dash", "/bin/cat", "/bin/sleep", "/bin/sync")


def counts(console_log: Path) -> list[int]:
    """The counts a counter guest printed since it last started (libvirt truncates its serial log at each start)."""
    try:
        return [int(n) for n in COUNT.findall(console_log.read_bytes())]
    except FileNotFoundError:
        return []


def console_tail(console_log: Path, size: int = 2000) -> str:
    """The end of a guest's serial log, for a failure message."""
    try:
        return "console: %r" % console_log.read_bytes()[-size:]
    except FileNotFoundError:
        return "no console log at %s" % console_log


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return LIBS.findall(out)


def tiny_root(dest: Path, init: str, binaries: tuple[str, ...] = COUNTER_TOOLS, size_mib: int = 32) -> Path:
    """A raw ext4 image: ``binaries`` (and their libraries) at their paths, /bin/sh (dash), /hc-init = ``init``."""
    root = dest / "root"
    for d in ("dev", "proc", "sys", "run", "tmp", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    files = set()
    for binary in binaries:
        files.add(binary)
        files.update(_libraries(binary))
    for path in sorted(files):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(path), target)
        target.chmod(0o755)
    (root / "usr/bin/sh").unlink(missing_ok=True)
    (root / "usr/bin/sh").symlink_to("dash")
    (root / "hc-init").write_text("#!/bin/sh\n" + init)
    (root / "hc-init").chmod(0o755)
    raw = dest / "root.raw"
    subprocess.run(["truncate", "-s", "%dM" % size_mib, str(raw)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(raw)], check=True)
    return raw


class Boot:
    """The base image's kernel and initrd copied where qemu may read them (removed by ``remove``)."""

    def __init__(self, tag: str):
        from lab import image  # pylint: disable=import-outside-toplevel

        base = image.ensure()[0]
        BOOT_DIR.mkdir(parents=True, exist_ok=True)
        self.kernel, self.initrd = BOOT_DIR / ("%s-vmlinuz" % tag), BOOT_DIR / ("%s-initrd" % tag)
        shutil.copyfile(base.kernel, self.kernel)
        shutil.copyfile(base.initrd, self.initrd)
        # the kernel hands what follows "--" to init: /bin/sh runs the root's /hc-init
        self.cmdline = base.cmdline + " init=/bin/sh -- /hc-init"

    def spec(self) -> dict:
        """libvirt_domain's ``boot`` option."""
        return {"kernel": str(self.kernel), "initrd": str(self.initrd), "cmdline": self.cmdline}

    def remove(self) -> None:
        self.kernel.unlink(missing_ok=True)
        self.initrd.unlink(missing_ok=True)
