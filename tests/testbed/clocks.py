"""The wall clock against the boot clock: how far an NTP step moved the wall clock during a wait.

Ceph leases (ceph_clock_now on the OSD) and Ansible's wait_for time themselves by the wall clock
(CLOCK_REALTIME), which an NTP correction can step. The boot clock (CLOCK_BOOTTIME, the clock of
/proc/uptime) is never stepped.
"""

from __future__ import annotations

import time


def now() -> tuple[float, float]:
    """(wall, boot) now."""
    return time.time(), time.clock_gettime(time.CLOCK_BOOTTIME)


def elapsed(since: tuple[float, float]) -> tuple[float, float]:
    """(wall, boot) seconds since ``since`` (a ``now()``); they differ by how far the wall clock was stepped."""
    wall, boot = now()
    return wall - since[0], boot - since[1]
