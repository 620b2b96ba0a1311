"""The monitoring role's /etc/default files: every listener on the management address, gossip off, web config
only as an opt-in (issue #18)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "monitoring"
TEMPLATES = ("prometheus-node-exporter", "prometheus-libvirt-exporter", "prometheus", "prometheus-alertmanager")


def _args(name, address, **overrides):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined)
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
    v = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    v.update(ansible_managed="managed", monitoring_listen_address=address, **overrides)
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    for key in ("__monitoring_listen_host", "__monitoring_web", "__monitoring_scheme", "__monitoring_web_config"):
        v[key] = env.from_string(internal[key]).render(**v).strip()
    v["__monitoring_web"] = v["__monitoring_web"] == "True"
    text = env.get_template("etc/default/%s.j2" % name).render(**v)
    line = next(ln for ln in text.splitlines() if ln.startswith("ARGS="))
    value = shlex.split(line[len("ARGS="):])[0]  # ARGS="..." as the unit's EnvironmentFile reads it
    return dict(a.split("=", 1) for a in shlex.split(value))


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("address, host", [("10.0.0.5", "10.0.0.5"), ("fd00::5", "[fd00::5]")])
def test_listeners_on_the_management_address(name, address, host):
    args = _args(name, address)
    assert args["--web.listen-address"].rsplit(":", 1)[0] == host
    assert "--web.config.file" not in args


def test_alertmanager_gossip_is_off():
    assert _args("prometheus-alertmanager", "10.0.0.5")["--cluster.listen-address"] == ""


@pytest.mark.parametrize("name", ["prometheus-node-exporter", "prometheus", "prometheus-alertmanager"])
def test_web_config_is_an_opt_in(name):
    args = _args(name, "10.0.0.5", monitoring_web_tls_cert_file="/etc/ssl/c.pem", monitoring_web_tls_key_file="/k")
    assert args["--web.config.file"] == "/etc/prometheus/web-config.yml"


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl missing")
def test_cert_expiry_script_writes_not_after_and_unreadable(tmp_path):
    """hospital-cloud-cert-expiry: notAfter of a real certificate, read_ok 0 for a missing one, shellcheck clean."""
    cert = tmp_path / "server-cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(cert), "-days", "10", "-subj", "/CN=kvm-01"], capture_output=True, check=True)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    script = tmp_path / "cert-expiry.sh"
    script.write_text(env.get_template("usr/local/sbin/hospital-cloud-cert-expiry.j2").render(
        ansible_managed="managed", monitoring_textfile_dir=str(tmp_path),
        monitoring_cert_files=[str(cert), str(tmp_path / "missing.pem")]))
    subprocess.run(["sh", str(script)], check=True)
    prom = (tmp_path / "hospital_cloud_certs.prom").read_text()
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert)], capture_output=True, text=True,
                         check=True).stdout.split("=", 1)[1].strip()
    not_after = int(datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc).timestamp())
    assert 'hospital_cloud_cert_not_after_seconds{path="%s"} %d' % (cert, not_after) in prom
    assert 'hospital_cloud_cert_read_ok{path="%s"} 1' % cert in prom
    assert 'hospital_cloud_cert_read_ok{path="%s"} 0' % (tmp_path / "missing.pem") in prom
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout
