"""A virtual rack of real systemd hosts: systemd-nspawn containers booted from the cached base image.

Each host is a copy of the base rootfs, booted with ``systemd-nspawn -b`` on a Linux bridge the rack
creates (default ``hclab0`` 10.77.0.1/24 on the machine, hosts at .11, .12, ...), reachable by SSH
with the test bed's key, optionally with loop devices (sparse files) passed in as OSD disks. The
machine NATs the rack's subnet out only so that hosts can reach the Debian package registry.

Everything the rack creates is recorded in its state directory and removed by ``destroy``:
the containers (stopped by their nspawn PID), loop devices, the bridge, the NAT rule, the copies.

CLI: ``python -m lab.rack up NAME [--hosts 3] [--osd-gib 8]`` / ``down NAME`` / ``status NAME``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import image, procs

STATE = Path(os.environ.get("HC_RACK_DIR", "/var/lib/hospital-cloud/racks"))


class RackError(RuntimeError):
    """The rack could not be built or reached."""


@dataclass
class Host:
    name: str
    address: str
    rack: str
    root: str
    loops: list[str] = field(default_factory=list)
    pid: int = 0


@dataclass
class Rack:
    name: str
    bridge: str
    subnet: str
    gateway: str
    hosts: list[Host]
    ssh_key: str
    state_dir: str
    # Debian suite of the hosts (lab/image.py); racks recorded before suites existed are bookworm
    suite: str = "bookworm"

    def save(self) -> None:
        Path(self.state_dir, "rack.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, name: str) -> "Rack":
        path = STATE / name / "rack.json"
        if not path.exists():
            raise RackError("no rack named %s (%s missing)" % (name, path))
        data = json.loads(path.read_text())
        data["hosts"] = [Host(**h) for h in data["hosts"]]
        return cls(**data)

    @property
    def known_hosts(self) -> str:
        """The rack's known_hosts: every host's own SSH host key, made when its root was prepared."""
        return str(Path(self.state_dir) / "known_hosts")

    def ssh_options(self) -> list[str]:
        """ssh options that verify the host keys against the rack's known_hosts (no first-use trust)."""
        return ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null"]

    def inventory(self) -> str:
        """An INI inventory fragment for the rack's hosts."""
        lines = ["[lab]"]
        for h in self.hosts:
            devs = " hc_osd_devices='%s'" % json.dumps(h.loops) if h.loops else ""
            lines.append("%s ansible_host=%s hc_rack=%s%s" % (h.name, h.address, h.rack, devs))
        lines += ["", "[lab:vars]", "ansible_user=root",
                  "ansible_ssh_private_key_file=%s" % self.ssh_key,
                  "ansible_python_interpreter=/usr/bin/python3",
                  # the base image the hosts were copied from (its kernel and disk boot the lab's VMs)
                  "hc_base_image_dir=%s" % Path(self.ssh_key).parent,
                  "ansible_ssh_common_args='-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s "
                  "-o ControlMaster=auto -o ControlPersist=120s'" % self.known_hosts, ""]
        return "\n".join(lines)


def _sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kw)
    if check and res.returncode != 0:
        raise RackError("%s failed (rc=%d): %s" % (" ".join(cmd), res.returncode, (res.stderr or res.stdout).strip()))
    return res


def _bridge_up(bridge: str, gateway: str, prefix: int) -> bool:
    """Create the bridge if absent; True if this call created it."""
    if Path("/sys/class/net", bridge).exists():
        return False
    _sh("ip", "link", "add", bridge, "type", "bridge")
    _sh("ip", "addr", "add", "%s/%d" % (gateway, prefix), "dev", bridge)
    _sh("ip", "link", "set", bridge, "up")
    return True


def _nat(subnet: str, bridge: str, add: bool) -> None:
    # -w: racks come up concurrently (make test runs the ops tier beside the others): wait for the xtables lock
    rule = ["POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE",
            "-m", "comment", "--comment", "hospital-cloud-rack"]
    exists = _sh("iptables", "-w", "-t", "nat", "-C", *rule, check=False).returncode == 0
    if add and not exists:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
        _sh("iptables", "-w", "-t", "nat", "-A", *rule)
    elif not add and exists:
        _sh("iptables", "-w", "-t", "nat", "-D", *rule)


def _prepare_root(base: image.BaseImage, host: Host, rack: Rack, prefix: int) -> None:
    root = Path(host.root)
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _sh("cp", "-a", "--reflink=auto", str(base.rootfs), str(root))
    (root / "etc" / "hostname").write_text(host.name + "\n")
    hosts = ["127.0.0.1 localhost"] + ["%s %s" % (h.address, h.name) for h in rack.hosts]
    (root / "etc" / "hosts").write_text("\n".join(hosts) + "\n")
    net = root / "etc" / "systemd" / "network"
    for f in net.glob("*.network"):
        f.unlink()
    (net / "10-host0.network").write_text(
        "[Match]\nName=host0\n[Network]\nAddress=%s/%d\nGateway=%s\n" % (host.address, prefix, rack.gateway))
    resolv = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text(resolv)
    # systemd-resolved is not installed; keep the static resolv.conf
    (root / "etc" / "machine-id").write_text("")
    _linger_root(root)
    _host_key(root, host, rack)
    _site_trust(root)


def _linger_root(root: Path) -> None:
    """Keep root's user manager (user@0) running between SSH sessions. In an nspawn container on cgroup v1
    systemd is never told that a cgroup emptied, so stopping user@0 after the last session waits its whole stop
    timeout ("Processes still around after final SIGKILL", 90 s) and every login meanwhile stalls: the SSH
    stalls of 15-120 s seen in the ops, upgrade and HA tiers. Lingering (loginctl enable-linger) never stops it."""
    linger = root / "var" / "lib" / "systemd" / "linger"
    linger.mkdir(parents=True, exist_ok=True)
    (linger / "root").touch()


def _host_key(root: Path, host: Host, rack: Rack) -> None:
    """Make the host's SSH host key here (the base image has none: it would make one at first boot, which
    nobody could verify) and record it in the rack's known_hosts under the host's name and address."""
    key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    for old in (root / "etc" / "ssh").glob("ssh_host_*"):
        old.unlink()
    _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@%s" % host.name, "-f", str(key))
    pub = Path(str(key) + ".pub").read_text().split()[:2]
    known = Path(rack.known_hosts)
    lines = [ln for ln in (known.read_text().splitlines() if known.exists() else [])
             if ln.split(" ", 1)[0] != "%s,%s" % (host.name, host.address)]
    lines.append("%s,%s %s" % (host.name, host.address, " ".join(pub)))
    known.write_text("\n".join(lines) + "\n")


def _site_trust(root: Path) -> None:
    """Give the host the CA bundle and pip configuration this machine uses for the package registries.

    Where the registries are reached through a TLS-inspecting proxy (as in many hospitals), pip on the
    rack's hosts must trust the same CA as this machine: the site's pip configuration, as an
    administrator would install it.
    """
    bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if not Path(bundle).is_file():
        return
    shutil.copyfile(bundle, root / "etc" / "ssl" / "site-ca-bundle.pem")
    (root / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/site-ca-bundle.pem\n")


def ssh(rack: Rack, host: Host, command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell command on a rack host as root over SSH."""
    res = _sh("ssh", "-i", rack.ssh_key, *rack.ssh_options(), "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
              "-o", "ConnectTimeout=5", "root@" + host.address,
              command, check=False, timeout=timeout)
    if check and res.returncode != 0:
        raise RackError("ssh %s %r failed (rc=%d): %s" % (host.name, command, res.returncode, res.stderr.strip()))
    return res


def _wait_ssh(rack: Rack, host: Host, timeout: float = 300) -> None:
    """Wait until the host answers SSH and systemd finished booting. On a loaded 2-core machine (CI runs lint
    and sanity beside a rack's boot) one boot took over 60 s, so a slow attempt is retried, not fatal."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, 22), timeout=2):
                pass
            res = ssh(rack, host, "systemctl is-system-running --wait || true", check=False,
                      timeout=max(5.0, min(60.0, deadline - time.monotonic())))
            if res.returncode == 0:
                return
            last = res.stderr.strip()
        except OSError as exc:
            last = str(exc)
        except subprocess.TimeoutExpired:
            last = "systemd still booting after 60 s"
        time.sleep(1)
    raise RackError("host %s (%s) not reachable by SSH after %ds: %s" % (host.name, host.address, timeout, last))


def up(name: str = "lab", hosts: int = 3, subnet: str = "10.77.0.0/24", bridge: str = "hclab0",
       osd_gib: int = 0, racks: int = 0, suite: str | None = None) -> Rack:
    """Build and boot the rack of Debian `suite` hosts (default: image.default_suite()); idempotent: a running
    rack of that name and suite is returned as is."""
    suite = suite or image.default_suite()
    if (STATE / name / "rack.json").exists():
        rack = Rack.load(name)
        if rack.suite != suite:
            raise RackError("rack %s runs Debian %s, not %s: destroy it first (python -m lab.rack down %s)"
                            % (name, rack.suite, suite, name))
        if all(procs.owns(h.pid, Path(h.root)) for h in rack.hosts):
            return rack
        destroy(name)
    for other in sorted(STATE.glob("*/rack.json")) if STATE.is_dir() else []:
        data = json.loads(other.read_text())
        if other.parent.name != name and (data["subnet"] == subnet or data["bridge"] == bridge):
            raise RackError("subnet %s / bridge %s already belong to rack %s: pick others (or destroy it)"
                            % (subnet, bridge, other.parent.name))
    for tool in ("systemd-nspawn", "ip", "iptables", "losetup", "ssh"):
        if shutil.which(tool) is None:
            raise RackError("rack needs '%s' (run `make deps`)" % tool)
    base, dummy = image.ensure(suite=suite)
    net = ipaddress.ip_network(subnet)
    gateway = str(net.network_address + 1)
    state = STATE / name
    state.mkdir(parents=True, exist_ok=True)
    procs.claim(state, owner="keep")
    hl = [Host(name="hc-%s-%d" % (name, i + 1), address=str(net.network_address + 11 + i),
               rack="r%d" % (i % racks + 1) if racks else "r1", root=str(state / ("host%d" % (i + 1))))
          for i in range(hosts)]
    rack = Rack(name=name, bridge=bridge, subnet=subnet, gateway=gateway, hosts=hl,
                ssh_key=str(base.ssh_key), state_dir=str(state), suite=suite)
    rack.save()
    created = _bridge_up(bridge, gateway, net.prefixlen)
    (state / "bridge.created").write_text("1" if created else "0")
    _nat(subnet, bridge, add=True)
    (state / "pids").mkdir(exist_ok=True)
    for h in hl:
        _prepare_root(base, h, rack, net.prefixlen)
        _create_host(rack, h, osd_gib)
    for h in hl:
        _wait_ssh(rack, h)
    (state / "inventory.ini").write_text(rack.inventory())
    return rack


def _spawn(rack: Rack, host: Host) -> None:
    """Boot a host from its own root with systemd-nspawn on the rack's bridge (its loop devices bound in)."""
    state = Path(rack.state_dir)
    log = open(state / ("%s.console.log" % host.name), "ab")  # pylint: disable=consider-using-with
    host.pid = procs.spawn(state, host.name, [
        "systemd-nspawn", "-D", host.root, "-M", host.name, "--register=no", "--keep-unit",
        "--network-bridge=%s" % rack.bridge, "--capability=all", "--property=DeviceAllow=char-* rwm",
        *["--bind=%s" % loop for loop in host.loops], "-b"], log)
    rack.save()


def _attach_loop(img_file: Path) -> str:
    """A free loop device for the file; retried: another rack coming up at the same time may take the free
    device between losetup's look-up and its attach (EBUSY)."""
    for attempt in range(5):
        res = _sh("losetup", "--find", "--show", str(img_file), check=attempt == 4)
        if res.returncode == 0:
            return res.stdout.strip()
        time.sleep(0.5 + attempt)
    raise RackError("losetup: no loop device for %s" % img_file)  # not reached: the last attempt raises


def _create_host(rack: Rack, host: Host, osd_gib: int) -> None:
    """Give a prepared host its OSD disk (a sparse file on a loop device) if asked, then boot it."""
    if osd_gib:
        img_file = Path(rack.state_dir) / ("%s-osd.img" % host.name)
        _sh("truncate", "-s", "%dG" % osd_gib, str(img_file))
        host.loops.append(_attach_loop(img_file))
    rack.save()
    _spawn(rack, host)


def boot_host(rack: Rack, host: Host) -> None:
    """Boot a stopped host again (its root, data and OSD loop devices kept) and wait for SSH."""
    _spawn(rack, host)
    _wait_ssh(rack, host)


def _container_init(host: Host) -> tuple[int, int | None]:
    """(PID, start time) of the container's init (systemd-nspawn's child); (0, None) if the host is not running."""
    if not (host.pid and procs.owns(host.pid, Path(host.root))):
        return 0, None
    for task in Path("/proc/%d/task" % host.pid).glob("*/children"):
        for child in task.read_text().split():
            return int(child), procs.start_time(int(child))
    return 0, None


def _reap_host(host: Host, init: tuple[int, int | None], timeout: float) -> None:
    """Wait for a host told to power off; past the timeout SIGKILL its init (which ends the container's PID
    namespace, so no process keeps its veth on the bridge) and then its systemd-nspawn, both by PID."""
    deadline = time.monotonic() + timeout
    while host.pid and procs.alive(host.pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    pid, started = init
    # The PID must still be the init recorded before the power-off: same start time. (Its /proc/PID/root
    # cannot tell: after nspawn's pivot_root it reads "/", and once the rack is removed "/ (deleted)".)
    if pid and started is not None and procs.start_time(pid) == started:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if host.pid and procs.owns(host.pid, Path(host.root)):
        os.kill(host.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while host.pid and procs.alive(host.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def stop_host(rack: Rack, host: Host, timeout: float = 60) -> None:
    """Power one host off (SIGTERM to its systemd-nspawn, by the PID the rack recorded)."""
    if not (host.pid and procs.owns(host.pid, Path(host.root))):
        raise RackError("host %s is not running under its recorded PID" % host.name)
    init = _container_init(host)
    os.kill(host.pid, signal.SIGTERM)
    _reap_host(host, init, timeout)


GUESTS_OFF = ("systemctl stop pacemaker 2>/dev/null; "
              "for d in $(virsh -c qemu:///system list --name 2>/dev/null); do virsh -c qemu:///system destroy $d; done")


def power_off_guests(rack: Rack, timeout: float = 120) -> list[str]:
    """Power off the VMs of every running host (the cluster's first, or it would start them again): TCG guests
    make a host's shutdown slow. Best effort: a host that does not answer is powered off with its guests."""
    done = []
    for h in rack.hosts:
        if not (h.pid and procs.owns(h.pid, Path(h.root))):
            continue
        try:
            ssh(rack, h, GUESTS_OFF, check=False, timeout=timeout)
            done.append("guests of %s" % h.name)
        except subprocess.TimeoutExpired:
            pass
    return done


def destroy(name: str = "lab") -> list[str]:
    """Remove everything the rack created (its VMs powered off first); returns what was removed."""
    done = []
    state = STATE / name
    if not (state / "rack.json").exists():
        return done
    rack = Rack.load(name)
    done += power_off_guests(rack)
    inits = {h.name: _container_init(h) for h in rack.hosts}
    for h in rack.hosts:
        if h.pid and procs.owns(h.pid, Path(h.root)):
            os.kill(h.pid, signal.SIGTERM)  # nspawn powers the container off cleanly
    for h in rack.hosts:
        _reap_host(h, inits[h.name], timeout=30)
        done.append("host %s" % h.name)
        for loop in h.loops:
            _sh("losetup", "-d", loop, check=False)
            done.append("loop %s" % loop)
    _nat(rack.subnet, rack.bridge, add=False)
    if (state / "bridge.created").exists() and (state / "bridge.created").read_text() == "1":
        _sh("ip", "link", "del", rack.bridge, check=False)
        done.append("bridge %s" % rack.bridge)
    shutil.rmtree(state, ignore_errors=True)
    return done


def add_host(name: str, osd_gib: int = 0) -> Host:
    """Boot one more host in the running rack `name` (next address, same bridge); return it.

    The new host's /etc/hosts lists every host; the older hosts' files are left as they were (address by
    IP). The rack's inventory.ini is rewritten with the new host in it.
    """
    rack = Rack.load(name)
    state = Path(rack.state_dir)
    net = ipaddress.ip_network(rack.subnet)
    base, dummy = image.ensure(suite=rack.suite)
    i = len(rack.hosts)
    h = Host(name="hc-%s-%d" % (name, i + 1), address=str(net.network_address + 11 + i),
             rack=rack.hosts[-1].rack if rack.hosts else "r1", root=str(state / ("host%d" % (i + 1))))
    rack.hosts.append(h)
    rack.save()
    _prepare_root(base, h, rack, net.prefixlen)
    _create_host(rack, h, osd_gib)
    _wait_ssh(rack, h)
    (state / "inventory.ini").write_text(rack.inventory())
    return h


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.rack")
    ap.add_argument("action", choices=("up", "down", "status", "inventory"))
    ap.add_argument("name", nargs="?", default="lab")
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--racks", type=int, default=0)
    ap.add_argument("--osd-gib", type=int, default=0)
    ap.add_argument("--subnet", default="10.77.0.0/24")
    ap.add_argument("--bridge", default="hclab0")
    ap.add_argument("--suite", choices=image.SUITES, default=None,
                    help="Debian suite of the hosts (default: $HC_DEBIAN_SUITE or %s)" % image.SUITES[0])
    a = ap.parse_args(argv)
    try:
        if a.action == "up":
            t0 = time.monotonic()
            rack = up(a.name, a.hosts, a.subnet, a.bridge, a.osd_gib, a.racks, a.suite)
            print("rack %s up in %.1f s: %s" % (rack.name, time.monotonic() - t0,
                                                ", ".join("%s=%s" % (h.name, h.address) for h in rack.hosts)),
                  file=sys.stderr)
            print(Path(rack.state_dir) / "inventory.ini")
        elif a.action == "down":
            print("\n".join(destroy(a.name)) or "nothing to remove")
        elif a.action == "inventory":
            print(Rack.load(a.name).inventory())
        else:
            rack = Rack.load(a.name)
            for h in rack.hosts:
                print("%s %s %s" % (h.name, h.address, "running" if procs.owns(h.pid, Path(h.root)) else "stopped"))
    except (RackError, ValueError) as exc:
        print("rack: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
