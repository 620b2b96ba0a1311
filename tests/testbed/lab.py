"""`make lab`: the virtual rack with everything deployed, on this machine.

up:      build the rack (3 systemd-nspawn hosts from the base image, bridge hclab0 10.77.0.0/24, one
         loop-device OSD each, racks r1-r3), run site.yml with inventories/lab, submit sample
         images to the imaging workers, wait for them and print a summary.
down:    remove everything the rack made (make lab-destroy).
summary: print the summary of a running lab again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import rack as rackmod
from .ansible_run import REPO, ansible_env

NAME = "lab"
INVENTORY = REPO / "inventories" / "lab"


def _playbook(rack: rackmod.Rack, *extra: str) -> tuple[int, float, str]:
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), "-i",
           str(Path(rack.state_dir) / "inventory.ini"), str(REPO / "site.yml"), *extra]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, check=False)
    secs = time.monotonic() - t0
    log = Path(rack.state_dir) / ("site-%d.log" % int(time.time()))
    log.write_text(proc.stdout + proc.stderr)
    recap = proc.stdout[proc.stdout.rfind("PLAY RECAP"):] if "PLAY RECAP" in proc.stdout else proc.stdout[-3000:]
    print(recap.strip(), file=sys.stderr)
    print("site.yml: rc=%d in %.0f s (log %s)" % (proc.returncode, secs, log), file=sys.stderr)
    return proc.returncode, secs, proc.stdout


def _changed(recap: str) -> int:
    total = 0
    for line in recap.splitlines():
        if "changed=" in line:
            total += int(line.split("changed=")[1].split()[0])
    return total


def summary(rack: rackmod.Rack, images: dict | None = None) -> dict:
    h1 = rack.hosts[0]
    health = json.loads(rackmod.ssh(rack, h1, "ceph health --format json", check=False).stdout or "{}")
    domains = {}
    for h in rack.hosts:
        out = rackmod.ssh(rack, h, "virsh -c qemu:///system list --all --name --state-running", check=False).stdout
        domains[h.name] = sorted(n for n in out.split() if n)
    info = {"ceph_health": health.get("status", "unknown"), "placement": domains, "images": images or {}}
    print("\n== hospital.cloud lab ==")
    print("Ceph: %s" % info["ceph_health"])
    print("| host | rack | running VMs |\n|---|---|---|")
    for h in rack.hosts:
        print("| %s | %s | %s |" % (h.name, h.rack, ", ".join(domains[h.name]) or "-"))
    if images:
        print("Images: %(processed)d processed, %(failed)d failed, %(rate).2f images/s" % images)
    return info


def submit_and_wait(rack: rackmod.Rack, count: int = 24, timeout: float = 600) -> dict:
    """Submit synthetic images through the worker CLI on the first host; wait until all are done."""
    h1 = rack.hosts[0]
    venv = "/opt/hospital-imaging/venv/bin/"
    conf = " --config /etc/hospital-imaging/worker.yml"
    before = json.loads(rackmod.ssh(rack, h1, venv + "hospital-imaging status" + conf).stdout or "{}")
    done0 = int(before.get("done", 0))
    failed0 = int(before.get("failed", 0))
    gen = ("from hospital_imaging.synthetic import phantom, png_bytes\n"
           "import pathlib, time\n"
           "for i in range(%d):\n"
           "    pathlib.Path('/var/tmp/hc-lab-images/lab-%%d-%%d.png' %% (time.time_ns(), i))"
           ".write_bytes(png_bytes(phantom(512, seed=time.time_ns() %% 100000 + i)))\n" % count)
    rackmod.ssh(rack, h1, "rm -rf /var/tmp/hc-lab-images && mkdir -p /var/tmp/hc-lab-images && "
                "%spython -c \"%s\"" % (venv, gen))
    t0 = time.monotonic()
    rackmod.ssh(rack, h1, venv + "hospital-imaging submit" + conf + " /var/tmp/hc-lab-images/*.png")
    st = before
    while time.monotonic() - t0 < timeout:
        st = json.loads(rackmod.ssh(rack, h1, venv + "hospital-imaging status" + conf).stdout or "{}")
        if int(st.get("done", 0)) + int(st.get("failed", 0)) - done0 - failed0 >= count:
            break
        time.sleep(2)
    secs = time.monotonic() - t0
    processed = int(st.get("done", 0)) - done0
    return {"processed": processed, "failed": int(st.get("failed", 0)) - failed0,
            "seconds": round(secs, 1), "rate": processed / secs if secs else 0.0}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.lab")
    ap.add_argument("action", choices=("up", "down", "summary", "converge"))
    ap.add_argument("--images", type=int, default=24)
    a = ap.parse_args(argv)
    try:
        if a.action == "down":
            print("\n".join(rackmod.destroy(NAME)) or "nothing to remove")
            return 0
        if a.action == "summary":
            summary(rackmod.Rack.load(NAME))
            return 0
        t0 = time.monotonic()
        rack = rackmod.up(NAME, hosts=3, subnet="10.77.0.0/24", bridge="hclab0", osd_gib=6, racks=3)
        print("rack up in %.0f s" % (time.monotonic() - t0), file=sys.stderr)
        rc, secs, out = _playbook(rack)
        if rc != 0:
            return rc
        images = submit_and_wait(rack, a.images) if a.action == "up" else None
        info = summary(rack, images)
        info.update({"deploy_seconds": round(secs, 1), "changed": _changed(out[out.rfind("PLAY RECAP"):])})
        (Path(rack.state_dir) / "summary.json").write_text(json.dumps(info, indent=2))
        print("Deploy: %.0f s, changed=%d (a second `make lab` reports changed=0)" % (secs, info["changed"]))
    except (rackmod.RackError, subprocess.SubprocessError, ValueError) as exc:
        print("lab: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main(sys.argv[1:]))
