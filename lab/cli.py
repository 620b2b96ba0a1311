"""`make lab` (``python -m lab``): the virtual rack with everything deployed, on this machine.

up:      build the rack (3 systemd-nspawn hosts from the base image, bridge hclab0 10.77.0.0/24, one
         loop-device OSD each, racks r1-r3), run site.yml with inventories/lab, submit sample
         images to the imaging workers, wait for them and print a summary.
down:    remove everything the rack made (make lab-destroy).
summary: print the summary of a running lab again.
converge: run site.yml again on the running lab (no images).
reliability: on the converged lab, measure and assert: `--check --diff` reports changed=0; with one host
         stopped, a re-run fails clearly for that host only while the others converge and Ceph still serves
         data; the host boots again and a re-run brings the rack back to HEALTH_OK (molecule side_effect).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from . import playbook
from . import rack as rackmod
from .playbook import REPO

NAME = "lab"
INVENTORY = REPO / "inventories" / "lab"


def _playbook(rack: rackmod.Rack, *extra: str) -> tuple[int, float, str]:
    """site.yml on the rack, with live progress on stderr and the full log in the rack's state directory."""
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), "-i",
           str(Path(rack.state_dir) / "inventory.ini"), str(REPO / "site.yml"), *extra]
    res = playbook.run(cmd, Path(rack.state_dir) / ("site-%d.log" % int(time.time())))
    # stdout and stderr together: where failures go depends on the callback settings in the environment
    return res.rc, res.seconds, res.output


def _changed(recap: str) -> int:
    return sum(counts["changed"] for counts in _recap(recap).values())


def _recap(out: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP of an ansible-playbook run: host -> {ok, changed, unreachable, failed, ...}."""
    stats = {}
    for line in out[out.rfind("PLAY RECAP"):].splitlines()[1:]:
        m = re.match(r"^(\S+)\s+:\s+(ok=\d+.*)$", line.strip())
        if m:
            stats[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        elif stats:
            break  # the recap ends at its first non-host line (profile_tasks' TASKS RECAP follows)
    return stats


def _ceph(rack: rackmod.Rack, host: rackmod.Host, args: str, check: bool = True) -> dict:
    """``ceph ARGS --format json`` on ``host``; with ``check=False`` an unreachable cluster gives {}."""
    out = rackmod.ssh(rack, host, "ceph --connect-timeout 20 %s --format json" % args, timeout=60, check=check).stdout
    try:
        return json.loads(out or "{}")
    except ValueError:
        if check:
            raise
        return {}


def _wait_health(rack: rackmod.Rack, host: rackmod.Host, want: str = "HEALTH_OK", timeout: float = 600) -> float:
    t0 = time.monotonic()
    status = ""
    while time.monotonic() - t0 < timeout:
        status = _ceph(rack, host, "health").get("status", "")
        if status == want:
            return time.monotonic() - t0
        time.sleep(5)
    raise rackmod.RackError("Ceph did not reach %s in %d s (last: %s)" % (want, timeout, status))


def reliability(rack: rackmod.Rack) -> dict:
    """Measure the lab's reliability figures on a converged lab; raise RackError if one does not hold."""
    first, victim = rack.hosts[0], rack.hosts[-1]
    fig: dict = {}

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise rackmod.RackError("reliability: " + what)

    rc, secs, out = _playbook(rack, "--check", "--diff")
    fig["check_diff"] = {"rc": rc, "seconds": round(secs, 1), "changed": _changed(out)}
    need(rc == 0 and fig["check_diff"]["changed"] == 0, "--check --diff on the converged lab: %s" % fig["check_diff"])

    rackmod.stop_host(rack, victim)
    t0 = time.monotonic()
    rc, secs, out = _playbook(rack)
    stats = _recap(out)
    fig["one_host_down"] = {"host": victim.name, "rc": rc, "seconds": round(secs, 1), "recap": stats}
    need(rc != 0, "site.yml with %s down must fail (rc=%d)" % (victim.name, rc))
    need(stats.get(victim.name, {}).get("unreachable", 0) >= 1 and "UNREACHABLE" in out,
         "%s must be reported unreachable: %s" % (victim.name, stats.get(victim.name)))
    for h in rack.hosts[:-1]:
        need(stats.get(h.name, {}).get("failed", 1) == 0 and stats[h.name].get("unreachable", 1) == 0,
             "%s must converge while %s is down: %s" % (h.name, victim.name, stats.get(h.name)))
    status = _ceph(rack, first, "status")
    fig["one_host_down"]["quorum"] = status.get("quorum_names", [])
    fig["one_host_down"]["health"] = status.get("health", {}).get("status")
    need(len(fig["one_host_down"]["quorum"]) == len(rack.hosts) - 1, "mon quorum without %s: %s"
         % (victim.name, fig["one_host_down"]["quorum"]))
    probe = "hc-reliability-%d" % time.time_ns()
    rackmod.ssh(rack, first, "head -c 1048576 /dev/urandom > /tmp/{p} && rados -p imaging put {p} /tmp/{p} && "
                "rados -p imaging get {p} /tmp/{p}.back && cmp /tmp/{p} /tmp/{p}.back && rados -p imaging rm {p} && "
                "rm -f /tmp/{p} /tmp/{p}.back".format(p=probe), timeout=120)
    fig["one_host_down"]["ceph_serves_data"] = True  # rados put/get/cmp of 1 MiB above (raises otherwise)

    rackmod.boot_host(rack, victim)
    rc, secs, out = _playbook(rack)
    fig["host_back"] = {"rc": rc, "seconds": round(secs, 1), "changed": _changed(out)}
    need(rc == 0, "site.yml after %s came back: rc=%d" % (victim.name, rc))
    fig["host_back"]["health_ok_after_s"] = round(_wait_health(rack, first), 1)
    fig["outage_total_s"] = round(time.monotonic() - t0, 1)
    return fig


def summary(rack: rackmod.Rack, images: dict | None = None) -> dict:
    h1 = rack.hosts[0]
    health = _ceph(rack, h1, "health", check=False)
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
    ap = argparse.ArgumentParser(prog="python -m lab")
    ap.add_argument("action", choices=("up", "down", "summary", "converge", "reliability"))
    ap.add_argument("--images", type=int, default=24)
    a = ap.parse_args(argv)
    try:
        if a.action == "down":
            print("\n".join(rackmod.destroy(NAME)) or "nothing to remove")
            return 0
        if a.action == "summary":
            summary(rackmod.Rack.load(NAME))
            return 0
        if a.action == "reliability":
            rack = rackmod.Rack.load(NAME)
            fig = reliability(rack)
            (Path(rack.state_dir) / "reliability.json").write_text(json.dumps(fig, indent=2))
            print(json.dumps(fig, indent=2))
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
