"""The monitoring role's /etc/default files: every listener on the management address, gossip off, web config
only as an opt-in (issue #18)."""

from __future__ import annotations

import shlex
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
