# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hc-fsfreeze: freeze or thaw the filesystems of a VM running on this KVM host, through its qemu-guest-agent,
so that hc-backup's RBD snapshots are filesystem-consistent.

Installed on the KVM hosts by hospital.cloud.backup. The backup host reaches it over SSH with a key that may run
nothing else (authorized_keys `restrict,command=...`): the request arrives in SSH_ORIGINAL_COMMAND as
`freeze <domain>` or `thaw <domain>` (or as arguments, run by hand). A freeze is always undone: a detached
watchdog thaws after --max-seconds unless a thaw came first, so a guest never stays frozen because the backup host
died or the network went. Prints one JSON line: {"domain", "action", "result", "msg"}; result is one of frozen,
thawed, not-here (no such domain on this host), not-running, no-agent (the guest runs no agent: the snapshot is
crash-consistent), failed. Standard library only.
"""

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import time

NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
URI = "qemu:///system"
STATE = "/run/hc-fsfreeze"


def virsh(*args):
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=120, check=False)


def said(res):
    return (res.stderr.strip() or res.stdout.strip())[-400:]


def marker(domain):
    return os.path.join(STATE, domain)


def watchdog(domain, token, seconds):
    """Thaw after `seconds` unless this freeze was already thawed (its marker gone or another freeze's)."""
    time.sleep(seconds)
    try:
        with open(marker(domain), encoding="ascii") as fh:
            if fh.read().strip() != token:
                return
    except FileNotFoundError:
        return
    virsh("domfsthaw", domain)
    os.unlink(marker(domain))


def request(domain, action, max_seconds):
    state = virsh("domstate", domain)
    if state.returncode != 0:
        return "not-here", said(state)
    if state.stdout.strip() != "running":
        return "not-running", state.stdout.strip()
    if action == "thaw":
        res = virsh("domfsthaw", domain)
        try:
            os.unlink(marker(domain))
        except FileNotFoundError:
            pass
        return ("thawed" if res.returncode == 0 else "failed"), said(res)
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    token = secrets.token_hex(8)
    with open(marker(domain), "w", encoding="ascii") as fh:
        fh.write(token)
    # the watchdog first: if the freeze call hangs or this process dies, the thaw still comes
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "--watchdog", token,  # pylint: disable=consider-using-with
                      "--max-seconds", str(max_seconds), "thaw", domain], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     env={k: v for k, v in os.environ.items() if k != "SSH_ORIGINAL_COMMAND"})
    res = virsh("domfsfreeze", domain)
    if res.returncode == 0:
        return "frozen", said(res)
    os.unlink(marker(domain))
    text = said(res)
    return ("no-agent" if "agent" in text.lower() else "failed"), text


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hc-fsfreeze")
    parser.add_argument("--max-seconds", type=int, default=60, help="thaw by itself after this long")
    parser.add_argument("--watchdog", help=argparse.SUPPRESS)
    parser.add_argument("words", nargs="*", help="freeze|thaw DOMAIN (else from SSH_ORIGINAL_COMMAND)")
    args = parser.parse_args(argv)
    words = os.environ.get("SSH_ORIGINAL_COMMAND", "").split() if "SSH_ORIGINAL_COMMAND" in os.environ \
        else args.words
    if len(words) != 2 or words[0] not in ("freeze", "thaw") or not NAME.match(words[1]) \
            or not 1 <= args.max_seconds <= 3600:
        print(json.dumps({"result": "failed", "msg": "usage: freeze|thaw <domain> (letters, digits, _.+-); "
                                                     "--max-seconds 1 to 3600"}))
        return 2
    action, domain = words
    if args.watchdog:
        watchdog(domain, args.watchdog, args.max_seconds)
        return 0
    result, msg = request(domain, action, args.max_seconds)
    print(json.dumps({"domain": domain, "action": action, "result": result, "msg": msg}))
    return 0 if result != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
