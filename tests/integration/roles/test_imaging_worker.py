"""imaging_worker on a real systemd host (nspawn container from the base image), spool source.

The tests run in file order on one host and build on each other: check mode on the fresh host,
converge, images through the service, idempotence, a refused pipeline, a live pipeline reload,
the airgapped wheelhouse path, and the RADOS settings (preflight and check-mode rendering; the
RADOS queue itself runs in the lab, against a real cluster).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from lab.rack import ssh
from testbed.poll import wait_for

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1800)]

VENV = "/opt/hospital-imaging/venv"
SPOOL = "/var/spool/hospital-imaging"
UNIT = "hospital-imaging.service"
PIP_TASK = "Install | the worker and its dependencies into the virtualenv (pip; reinstalled when the version changes)"
ROLE = Path(__file__).resolve().parents[3] / "roles" / "imaging_worker"

PLAY = """
- name: Imaging workers
  hosts: lab
  gather_subset: [min]
  roles:
    - role: hospital.cloud.imaging_worker
"""

# generates N synthetic phantoms (8- and 16-bit PNG) with the worker's own generator
GEN = ("from hospital_imaging import synthetic; import sys\n"
       "for i in range(int(sys.argv[2])):\n"
       "    size = 1024 if i == 0 else 192  # the first one: its re-stored image data spans several IDAT chunks\n"
       "    img = synthetic.phantom(size, bits=16 if i % 2 == 0 else 8, seed=int(sys.argv[3]) + i)\n"
       "    open('%s/p%d.png' % (sys.argv[1], i), 'wb').write(synthetic.png_bytes(img))\n")


def _site_ca() -> str | None:
    """The CA bundle this machine's pip trusts (a TLS-inspecting egress), if any."""
    for cand in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE")):
        if cand and Path(cand).is_file():
            return cand
    return None


@pytest.fixture(scope="module")
def rack(rack_factory):
    r = rack_factory("imgw", hosts=1, subnet="10.77.41.0/24", bridge="hcimg0")
    ca = _site_ca()
    if ca:
        # the host's own pip configuration (what the role uses by default), as a hospital with a
        # TLS-inspecting proxy would have it: trust the same CA bundle as this machine
        host = r.hosts[0]
        subprocess.run(["scp", "-q", "-i", r.ssh_key, *r.ssh_options(), "-o", "LogLevel=ERROR", ca,
                        "root@%s:/etc/ssl/site-ca-bundle.pem" % host.address], check=True, timeout=60)
        ssh(r, host, "printf '[global]\\ncert = /etc/ssl/site-ca-bundle.pem\\n' > /etc/pip.conf")
    return r


def _inv(rack):
    return Path(rack.state_dir) / "inventory.ini"


def _sh(rack, cmd, check=True):
    return ssh(rack, rack.hosts[0], cmd, check=check)


def _main_pid(rack) -> int:
    return int(_sh(rack, "systemctl show -p MainPID --value %s" % UNIT).stdout.strip())


def _changed_tasks(res):
    return [t["task"] for t in res.tasks if t["result"].get("changed")]


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (test host on our bridge)
        return resp.read().decode()


def _listening(rack, port: int) -> list:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) of the host's sockets listening on ``port``."""
    out = _sh(rack, "cat /proc/net/tcp /proc/net/tcp6").stdout.splitlines()
    return [f[1].rsplit(":", 1)[0] for f in (line.split() for line in out)
            if len(f) > 3 and f[3] == "0A" and ":" in f[1] and int(f[1].rsplit(":", 1)[1], 16) == port]


def test_check_mode_on_fresh_host_predicts_and_installs_nothing(rack, run_playbook):
    res = run_playbook(PLAY, inventory=_inv(rack), check=True, diff=True)
    assert res.rc == 0, res.stdout[-3000:]
    assert res.changed() > 0
    out = _sh(rack, "ls -d %s /etc/hospital-imaging /etc/systemd/system/%s 2>&1; id hospital-imaging 2>&1; "
                    "dpkg -s python3-venv >/dev/null 2>&1 && echo venv-installed" % (VENV, UNIT), check=False).stdout
    assert out.count("No such file") == 3, out
    assert "no such user" in out and "venv-installed" not in out, out


def test_converge_spool_service_processes_images(rack, run_playbook):
    t0 = time.monotonic()
    res = run_playbook(PLAY, inventory=_inv(rack))
    assert res.rc == 0, res.stdout[-3000:]
    assert res.changed() > 0
    pip = res.result(PIP_TASK)
    print("\nconverge %.0f s, pip install on the host %s" % (time.monotonic() - t0, pip.get("delta")))

    assert _sh(rack, "systemctl is-active %s" % UNIT).stdout.strip() == "active"
    assert _sh(rack, "systemctl is-enabled %s" % UNIT).stdout.strip() == "enabled"
    assert _sh(rack, "ps -o user= -p %d" % _main_pid(rack)).stdout.strip() == "hospital-imaging"
    stat = _sh(rack, "stat -c '%%U:%%G %%a' /opt/hospital-imaging/venv/bin/python3 /etc/hospital-imaging/pipeline.yml "
                     "%s/inbox %s/outbox" % (SPOOL, SPOOL)).stdout.split("\n")
    assert stat[0].startswith("root:root") and stat[1] == "root:hospital-imaging 640", stat
    # inbox/ (and tmp/): sticky, group may create but not list (issue 14)
    assert stat[2] == "hospital-imaging:hospital-imaging 3730" and stat[3] == "hospital-imaging:hospital-imaging 2750"
    # spool durability on by default: the worker fsyncs outputs before acknowledging (and says so)
    assert "fsync: true" in _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout.splitlines()
    started = _sh(rack, "journalctl -u %s -o cat --no-pager | grep worker_started | tail -1" % UNIT).stdout
    assert json.loads(started)["fsync"] is True, started

    # the venv sees no Debian Python package besides what it installed itself
    probe = "import sys; print(sys.flags.no_site, [p for p in sys.path if 'dist-packages' in p])"
    assert _sh(rack, VENV + '/bin/python -c "%s"' % probe).stdout.strip() == "0 []"

    # sandbox score (lower is better; 'OK' is below 4.0)
    sec = _sh(rack, "systemd-analyze security --no-pager %s" % UNIT).stdout
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", sec).group(1))
    print("systemd-analyze security: %.1f" % score)
    assert score <= 2.0, sec[-2000:]

    # metrics on the host's management address only (not 0.0.0.0): the listening socket itself, and a
    # fleet Prometheus scraping it over the bridge
    address = rack.hosts[0].address
    assert _listening(rack, 9108) == [socket.inet_aton(address)[::-1].hex().upper()], _listening(rack, 9108)
    assert "hospital_imaging_processed_total 0.0" in _metrics("http://%s:9108/metrics" % address)
    options = _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout.splitlines()
    assert "metrics_bind: %s" % address in options and "retention_days: 30" in options, options

    # a member of the service group submits images; the service (MemoryDenyWriteExecute on) processes them
    n = 6
    _sh(rack, "id radiology >/dev/null 2>&1 || useradd --system -G hospital-imaging -s /usr/sbin/nologin radiology; "
              "install -d -o radiology -m 0700 /tmp/rad; cat > /tmp/gen.py <<'EOF'\n" + GEN + "EOF\n"
              "runuser -u radiology -- " + VENV + "/bin/python /tmp/gen.py /tmp/rad " + str(n) + " 0 && "
              "runuser -u radiology -- " + VENV + "/bin/hospital-imaging submit --source spool:" + SPOOL + " /tmp/rad/*.png")
    wait_for(lambda: int(_sh(rack, "ls %s/outbox | grep -c '\\.json$'" % SPOOL, check=False).stdout.strip() or 0) >= n,
             90, "%d sidecars in outbox/" % n)
    done = _sh(rack, "ls %s/done" % SPOOL).stdout.split()
    assert len(done) == n, done
    assert _sh(rack, "find %s/failed %s/inbox -type f | wc -l" % (SPOOL, SPOOL)).stdout.strip() == "0"
    sidecars = [json.loads(line) for line in _sh(rack, "cat %s/outbox/*.json" % SPOOL).stdout.splitlines()]
    assert len(sidecars) == n
    # every PNG was inflated by libdeflate inside the sandbox (MemoryDenyWriteExecute), not by OpenCV alone
    assert [s["source"]["decoder"] for s in sidecars] == ["opencv+libdeflate"] * n
    sidecar = json.loads(_sh(rack, "cat %s/outbox/%s.json" % (SPOOL, done[0])).stdout)
    assert sidecar["pipeline"]["name"] == "default"
    assert set(sidecar["outputs"]) == {"edges", "image"}, sidecar
    digest = _sh(rack, VENV + "/bin/python -c 'import blake3, sys; print(blake3.blake3(open(sys.argv[1], \"rb\").read())"
                 ".hexdigest())' %s/done/%s" % (SPOOL, done[0])).stdout.strip()
    assert sidecar["checksum"] == "blake3" and sidecar["source"]["blake3"] == digest
    _sh(rack, "test -s %s/outbox/%s" % (SPOOL, sidecar["outputs"]["edges"]["name"]))
    wait_for(lambda: "hospital_imaging_processed_total %d.0" % n in _metrics(
        "http://%s:9108/metrics" % rack.hosts[0].address), 15, "processed_total == %d" % n)


def test_second_run_and_check_mode_change_nothing(rack, run_playbook):
    pid = _main_pid(rack)
    again = run_playbook(PLAY, inventory=_inv(rack))
    assert again.rc == 0 and again.changed() == 0, _changed_tasks(again)
    assert not again.result(PIP_TASK).get("changed"), "package reinstalled although nothing changed"
    check = run_playbook(PLAY, inventory=_inv(rack), check=True, diff=True)
    assert check.rc == 0 and check.changed() == 0, _changed_tasks(check)
    assert _main_pid(rack) == pid, "service restarted by a no-op run"


def test_bad_pipeline_is_refused_and_installed_config_kept(rack, run_playbook):
    before = _sh(rack, "sha256sum /etc/hospital-imaging/pipeline.yml").stdout
    pid = _main_pid(rack)
    bad = {"imaging_worker_pipeline": {"name": "bad", "version": "9", "steps": ["read", "grey", "sharpen", "write"]}}
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars=bad)
    assert res.rc != 0
    assert "unknown step 'sharpen'" in res.stdout and "failed to validate" in res.stdout, res.stdout[-3000:]
    assert res.changed() == 0
    assert _sh(rack, "sha256sum /etc/hospital-imaging/pipeline.yml").stdout == before
    assert _main_pid(rack) == pid


def test_pipeline_change_is_reloaded_without_restart(rack, run_playbook):
    pid = _main_pid(rack)
    since = _sh(rack, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    pipe = {"name": "edges-only", "version": "2",
            "steps": ["read", "grey", {"denoise": {"method": "median", "ksize": 3}},
                      {"canny": {"threshold1": 50, "threshold2": 150}}, {"write": {"outputs": ["edges"]}}]}
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars={"imaging_worker_pipeline": pipe})
    changed = _changed_tasks(res)
    assert res.rc == 0 and len(changed) == 1 and "Configure | pipeline, validated" in changed[0], changed
    wait_for(lambda: "pipeline_reloaded" in _sh(rack, "journalctl -u %s -o cat --since '%s'" % (UNIT, since)).stdout,
             30, "pipeline_reloaded in the journal")
    assert _main_pid(rack) == pid


def test_a_source_change_reinstalls_the_worker_only(rack, run_playbook, tmp_path):
    """Changed sources are a new wheel version: pip replaces the worker (nothing else) and the service restarts."""
    pkg = tmp_path / "hospital_imaging"
    shutil.copytree(ROLE / "files" / "hospital_imaging", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    errors = pkg / "hospital_imaging" / "errors.py"
    errors.write_text(errors.read_text() + "\n# a change\n")
    pid = _main_pid(rack)
    changed_sources = {"__imaging_worker_pkg_dir": str(pkg), "imaging_worker_wheel_cache_dir": str(tmp_path / "wheels")}
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars=changed_sources)
    assert res.rc == 0, res.stdout[-3000:]
    pip = res.result(PIP_TASK)
    assert pip["changed"], pip
    installed = re.search(r"Successfully installed (.*)", pip["stdout"])[1].split()
    assert len(installed) == 1 and installed[0].startswith("hospital-imaging-0.1.0+h"), installed
    wheel = installed[0].replace("-", "_", 1) + "-py3-none-any.whl"
    assert _sh(rack, "ls /opt/hospital-imaging/wheels").stdout.split() == [wheel]  # the earlier one removed
    assert _main_pid(rack) != pid, "new package but no restart"


def test_airgapped_wheelhouse_reinstall(rack, run_playbook):
    """Wheels on the host, an unusable index: pip must install everything from the wheelhouse (no index)."""
    reqs = " ".join(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["imaging_worker_pip_requirements"])
    _sh(rack, "%s/bin/pip download -q -d /srv/wheels %s" % (VENV, reqs))
    _sh(rack, "rm -rf %s" % VENV)  # nothing installed: every package must come from /srv/wheels
    pid = _main_pid(rack)
    offline = {"imaging_worker_wheelhouse": "/srv/wheels", "imaging_worker_pip_index_url": "http://192.0.2.1/none"}
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars=offline)
    assert res.rc == 0, res.stdout[-3000:]
    out = res.result(PIP_TASK)["stdout"]
    assert "Looking in links: /opt/hospital-imaging/wheels, /srv/wheels" in out, out[:2000]
    assert "Looking in indexes" not in out and "192.0.2.1" not in out, out[:2000]
    assert "numpy-2.4.6" in out and "hospital-imaging-0.1.0+h" in out, out[-2000:]
    assert _main_pid(rack) != pid, "new package but no restart"
    wait_for(lambda: "hospital_imaging_processed_total" in _metrics("http://%s:9108/metrics" % rack.hosts[0].address),
             60, "metrics after the restart")
    again = run_playbook(PLAY, inventory=_inv(rack), extra_vars=offline)
    assert again.rc == 0 and again.changed() == 0, _changed_tasks(again)


RADOS = {"imaging_worker_source": "rados", "imaging_worker_rados_pool": "imaging",
         "imaging_worker_ceph_mon_host": "10.77.41.250:6789", "imaging_worker_ceph_key": "AQDtestkeyDoNotLeak0000000000000000000=="}


def test_unknown_checksum_is_refused_before_any_change(rack, run_playbook):
    before = _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars={"imaging_worker_checksum": "md5"})
    assert res.rc != 0 and res.changed() == 0
    assert "imaging_worker_checksum" in res.stdout and "blake3, sha256" in res.stdout, res.stdout[-2000:]
    assert _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout == before


@pytest.mark.parametrize("bad, message", [
    ({"imaging_worker_metrics_bind": "0.0.0.0"}, "imaging_worker_metrics_bind_all=true to opt in"),
    ({"imaging_worker_retention_days": 0}, "imaging_worker_retention_days a whole number of days >= 1 (got '0')"),
])
def test_metrics_on_every_address_and_a_zero_retention_are_refused(rack, run_playbook, bad, message):
    before = _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars=bad)
    assert res.rc != 0 and res.changed() == 0
    assert message in res.stdout, res.stdout[-2000:]
    assert _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout == before


def test_rados_needs_pool_and_key(rack, run_playbook):
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars={"imaging_worker_source": "rados"})
    assert res.rc != 0 and res.changed() == 0
    assert "imaging_worker_source=rados needs imaging_worker_rados_pool" in res.stdout, res.stdout[-2000:]


def test_rados_check_mode_renders_and_hides_the_key(rack, run_playbook):
    res = run_playbook(PLAY, inventory=_inv(rack), extra_vars=RADOS, check=True, diff=True)
    assert res.rc == 0, res.stdout[-3000:]
    assert RADOS["imaging_worker_ceph_key"] not in res.stdout + res.stderr
    changed = _changed_tasks(res)
    assert any("Ceph keyring of the worker from the key" in t for t in changed), changed
    assert any("ceph.conf for the worker" in t for t in changed), changed
    opts = res.result("Configure | worker options")["diff"]
    after = opts[0]["after"] if isinstance(opts, list) else opts["after"]
    assert "source: rados:imaging" in after and "keyring: /etc/hospital-imaging/ceph.client.imaging.keyring" in after
    assert "fsync" not in after  # RADOS acknowledges writes once they are on the OSDs' disks
    # check mode changed nothing on the host
    assert _sh(rack, "systemctl is-active %s" % UNIT).stdout.strip() == "active"
    assert "spool:" in _sh(rack, "cat /etc/hospital-imaging/worker.yml").stdout
