"""Helpers for the libvirt integration tests (real libvirtd on qemu:///system)."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from testbed.libvirt import virsh

FQCN = "hospital.cloud.libvirt_domain"


def validate(xml: str, tmp_path) -> None:
    """libvirt's own schema accepts the XML the module rendered."""
    path = tmp_path / ("rendered-%s.xml" % uuid.uuid4().hex[:6])
    path.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr + res.stdout + xml


def host_snapshot(uri) -> dict:
    """Everything a failed module run must leave untouched: the domain list and every definition."""
    names = virsh(uri, "list", "--all", "--name").split()
    return {"list": virsh(uri, "list", "--all"), "secrets": virsh(uri, "secret-list"),
            "xml": {n: virsh(uri, "dumpxml", "--inactive", n) for n in names}}


def cleanup(uri, name):
    virsh(uri, "destroy", name, check=False)
    virsh(uri, "undefine", name, "--nvram", check=False)


@pytest.fixture
def domain_name(libvirt_uri):
    name = "hc-test-%s" % uuid.uuid4().hex[:8]
    yield name
    cleanup(libvirt_uri, name)


@pytest.fixture
def small(libvirt_uri, libvirt_domain_type, domain_name):
    """Parameters of a cheap real domain: diskless, 64 MiB, TCG here (SeaBIOS keeps it running)."""
    return {"name": domain_name, "uri": libvirt_uri, "domain_type": libvirt_domain_type, "vcpus": 1,
            "memory": 64, "machine": "pc", "shutdown_timeout": 0}
