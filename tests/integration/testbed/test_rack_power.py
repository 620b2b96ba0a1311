"""The virtual rack's power-off by PID: a host that does not shut down in time is killed with its
container's init, so no container process and no veth outlive it. An orphaned init kept its veth
(vb-hc-NAME-N) alive and the next rack with the same host names could not boot that host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab import procs
from lab import rack as rackmod
from testbed.poll import wait_for

NAME, SUBNET, BRIDGE = "pwr", "10.77.72.0/24", "hcpwr0"


def _gone(pid: int, started: int) -> bool:
    """The process with this PID and start time has ended (gone, or a zombie waiting to be reaped)."""
    return not procs.alive(pid) or procs.start_time(pid) != started


@pytest.fixture(name="rack")
def fixture_rack():
    try:
        yield rackmod.up(NAME, hosts=1, subnet=SUBNET, bridge=BRIDGE)
    finally:
        rackmod.destroy(NAME)


def test_a_host_past_its_timeout_is_killed_init_included(rack):
    host = rack.hosts[0]
    init, started = rackmod._container_init(host)  # pylint: disable=protected-access
    nspawn = host.pid
    assert init and started and procs.owns(nspawn, Path(host.root))
    veth = "vb-" + host.name
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True, check=False).returncode == 0
    rackmod.stop_host(rack, host, timeout=0)  # no time to shut down cleanly: SIGKILL by PID
    wait_for(lambda: _gone(init, started), 10, "the container's init to end with its host", interval=0.2)
    assert not procs.alive(nspawn)
    wait_for(lambda: subprocess.run(["ip", "link", "show", veth], capture_output=True, check=False).returncode != 0,
             10, "%s to go with its host" % veth, interval=0.2)
    rackmod.boot_host(rack, host)  # the same host boots again under the same names
    assert rackmod.ssh(rack, host, "true").returncode == 0
