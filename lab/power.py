"""TEST BED ONLY: a power switch for a virtual rack's hosts, for the test-only power fence (lab/fence_hc_testbed).

A thread serves HTTP on the rack's gateway address (the test bed's own end of the rack bridge): GET
/status/HOST answers {"power": "on"|"off"}, POST /off/HOST kills the host's container by the PIDs the rack
recorded (a power loss: SIGKILL, no shutdown), POST /on/HOST boots it again. Every request must carry the
switch's token (X-HC-Token). Each action is recorded with its time, so that a test can tell when a host was
fenced. Real racks fence through their BMCs (fence_ipmilan, fence_redfish).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import procs
from . import rack as rackmod

AGENT = Path(__file__).resolve().parent / "fence_hc_testbed.py"
# written on the hosts as /usr/sbin/fence_hc_testbed with this first line (kept out of the source file: the
# collection's sanity test allows no python3 shebang outside modules)
AGENT_SHEBANG = b"#!/usr/bin/python3 -tt\n"


def power_loss(rack: rackmod.Rack, host: rackmod.Host) -> None:
    """Kill a host's container at once by PID (its init, then systemd-nspawn): what a pulled power cord does."""
    power_loss_together(rack, [host])


def power_loss_together(rack: rackmod.Rack, hosts: list[rackmod.Host]) -> None:
    """Several hosts lose power in the same instant (one feed): every container killed before any is reaped, so
    the cluster sees them go in one membership change, not one after the other."""
    inits = [(h, rackmod._container_init(h)) for h in hosts if powered(h)]  # pylint: disable=protected-access
    for host, init in inits:
        for pid in (init[0], host.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    for host, init in inits:
        rackmod._reap_host(host, init, timeout=0)  # pylint: disable=protected-access


def powered(host: rackmod.Host) -> bool:
    return bool(host.pid and procs.owns(host.pid, Path(host.root)))


class PowerSwitch:
    """The switch of one rack; start() serves until stop()."""

    def __init__(self, rack_name: str, port: int = 8623):
        self.rack_name = rack_name
        self.token = secrets.token_hex(16)
        self.port = port
        self.events: list[dict] = []
        # hosts whose "BMC" does not answer (a test of the storage-fence-only level)
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def _host(self, name: str) -> tuple[rackmod.Rack, rackmod.Host] | None:
        rack = rackmod.Rack.load(self.rack_name)
        for host in rack.hosts:
            if host.name == name:
                return rack, host
        return None

    def handle(self, method: str, path: str, token: str) -> tuple[int, dict]:
        if not hmac.compare_digest(token, self.token):
            return 403, {"error": "bad token"}
        parts = path.strip("/").split("/")
        if len(parts) != 2:
            return 404, {"error": "use /status|on|off/HOST"}
        action, name = parts
        found = self._host(name)
        if found is None:
            return 404, {"error": "no host %s" % name}
        rack, host = found
        if name in self.refuse:
            with self.lock:
                self.events.append({"time": time.time(), "action": action, "host": name, "refused": True})
            return 503, {"error": "the power controller of %s does not answer" % name}
        if method == "GET" and action == "status":
            state = "on" if powered(host) else "off"
            with self.lock:
                self.events.append({"time": time.time(), "action": "status", "host": name, "power": state})
            return 200, {"power": state}
        if method == "POST" and action in ("on", "off"):
            with self.lock:
                self.events.append({"time": time.time(), "action": action, "host": name})
                if action == "off":
                    power_loss(rack, host)
                elif not powered(host):
                    rackmod._spawn(rack, host)  # pylint: disable=protected-access
            return 200, {"power": action}
        return 405, {"error": "%s %s not allowed" % (method, action)}

    def start(self, address: str) -> None:
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                status, body = switch.handle(method, self.path, self.headers.get("X-HC-Token", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                self._answer("GET")

            def do_POST(self):  # noqa: N802
                self._answer("POST")

            def log_message(self, *args):  # quiet: the events list is the record
                return

        self.server = ThreadingHTTPServer((address, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="power-switch", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
