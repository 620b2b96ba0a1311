"""The HA tier (`make test-ha`, issue #16): ONE virtual rack of Debian 13 hosts for the whole module.

Rack "ha": hosts hc-ha-1..3, bridge hcha0, 10.77.75.0/24, one 4 GiB loop-device OSD each. The test bed's power
switch (lab/power.py) serves on the rack's gateway; its agent (lab/fence_hc_testbed) is copied onto every
host. Destroyed at the end of the module unless HC_KEEP_RACK=1 (then a later run continues on it).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lab import power
from lab import rack as rackmod

NAME, SUBNET, BRIDGE, OSD_GIB = "ha", "10.77.75.0/24", "hcha0", 4
VIRSH = "virsh -c qemu:///system "


def keep_rack() -> bool:
    return os.environ.get("HC_KEEP_RACK", "") not in ("", "0")


def install_agent(rack: rackmod.Rack, host: rackmod.Host) -> None:
    """The test-only power fence agent onto a host (fence-agents' library comes with the cluster role)."""
    subprocess.run(["ssh", "-i", rack.ssh_key, *rack.ssh_options(), "-o", "BatchMode=yes", "root@" + host.address,
                    "cat > /usr/sbin/fence_hc_testbed && chmod 0755 /usr/sbin/fence_hc_testbed"],
                   input=power.AGENT_SHEBANG + power.AGENT.read_bytes(), check=True, timeout=60, capture_output=True)


@pytest.fixture(scope="module")
def ha_rack():
    t0 = time.monotonic()
    try:
        rack = rackmod.up(NAME, hosts=3, subnet=SUBNET, bridge=BRIDGE, osd_gib=OSD_GIB)
        for h in rack.hosts:
            install_agent(rack, h)
    except BaseException:
        if not keep_rack():
            rackmod.destroy(NAME)
        raise
    switch = power.PowerSwitch(NAME)
    token_file = Path(rack.state_dir) / "power.token"
    if keep_rack() and token_file.exists():
        switch.token = token_file.read_text().strip()  # a kept rack's cluster knows the earlier token
    token_file.write_text(switch.token)
    switch.start(rack.gateway)
    print("ha rack %s up in %.1f s: %s" % (NAME, time.monotonic() - t0,
                                           ", ".join("%s=%s" % (h.name, h.address) for h in rack.hosts)))
    yield rack, switch
    switch.stop()
    if keep_rack():
        print("HC_KEEP_RACK=1: rack %s left up (python -m lab.rack down %s removes it)" % (NAME, NAME))
        return
    for h in rackmod.Rack.load(NAME).hosts:  # TCG guests make the rack's shutdown slow: power them off first
        if not power.powered(h):
            continue
        try:
            rackmod.ssh(rack, h, "systemctl stop pacemaker; for d in $(%s list --name); do %s destroy $d; done"
                        % (VIRSH, VIRSH), check=False, timeout=120)
        except subprocess.TimeoutExpired:
            print("ha: could not power off the guests of %s in 120 s" % h.name)
    rackmod.destroy(NAME)
