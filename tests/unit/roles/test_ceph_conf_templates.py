"""The ceph.conf files the collection writes (ceph role, imaging worker): msgr2 secure, no msgr v1 by default."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from ansible_collections.hospital.cloud.plugins.filter.ceph_mon import ceph_mon_addrvec

ROLES = Path(__file__).resolve().parents[3] / "roles"
MODES = ("ms cluster mode", "ms service mode", "ms client mode",
         "ms mon cluster mode", "ms mon service mode", "ms mon client mode")


def _env():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLES)), undefined=jinja2.StrictUndefined)
    env.filters["extract"] = lambda item, container, key=None: container[item][key] if key else container[item]
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
    env.filters["hospital.cloud.ceph_mon_addrvec"] = ceph_mon_addrvec
    return env


def _ceph_conf(**overrides) -> dict:
    defaults = yaml.safe_load((ROLES / "ceph" / "defaults" / "main.yml").read_text())
    hosts = {"m1": "10.0.0.1", "m2": "10.0.0.2", "m3": "10.0.0.3"}
    v = dict(defaults, ceph_fsid="0b7c6f0e-5b1e-4d4b-8a53-7f6c2b9e4d21", ceph_public_network="10.0.0.0/24",
             ansible_managed="managed", __ceph_mons=list(hosts), __ceph_mon_addresses=hosts,
             hostvars={h: {"inventory_hostname_short": h} for h in hosts})
    v.update(overrides)
    env = _env()
    # the same expression the role uses (vars/main.yml)
    expr = yaml.safe_load((ROLES / "ceph" / "vars" / "main.yml").read_text())["__ceph_mon_addrvec"]
    v["__ceph_mon_addrvec"] = eval(env.from_string(expr).render(**v).strip())  # pylint: disable=eval-used
    text = env.get_template("ceph/templates/etc/ceph/ceph.conf.j2").render(**v)
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith("#"))


def test_default_is_secure_without_msgr1():
    conf = _ceph_conf()
    assert all(conf[k] == "secure" for k in MODES), conf
    assert conf["ms bind msgr1"] == "false"
    assert conf["mon host"] == "[v2:10.0.0.1:3300],[v2:10.0.0.2:3300],[v2:10.0.0.3:3300]"


@pytest.mark.parametrize("mode", ["secure crc", "crc"])
def test_old_clients_are_an_opt_in(mode):
    conf = _ceph_conf(ceph_ms_mode=mode, ceph_msgr_v1=True)
    assert all(conf[k] == mode for k in MODES)
    assert conf["ms bind msgr1"] == "true" and "v1:10.0.0.2:6789" in conf["mon host"]


def test_imaging_worker_client_conf_is_secure():
    text = _env().get_template("imaging_worker/templates/etc/hospital-imaging/ceph.conf.j2").render(
        ansible_managed="managed", imaging_worker_ceph_mon_host="v2:10.0.0.1:3300")
    conf = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert conf["ms_client_mode"] == "secure" and conf["ms_mon_client_mode"] == "secure"
