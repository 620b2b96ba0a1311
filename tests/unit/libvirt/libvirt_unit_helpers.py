"""Parameter builders shared by the libvirt unit tests."""

from __future__ import annotations

from ansible_collections.hospital.cloud.plugins.modules import libvirt_domain

SECRET = "5f3a1c9e-2b4d-4e8f-9a1b-0c2d3e4f5a6b"


def params(**over):
    """Module parameters as AnsibleModule would pass them (defaults filled in)."""
    p = {k: v.get("default") for k, v in libvirt_domain.argument_spec().items()}
    p.update(name="hc-test-unit", domain_type="qemu", vcpus=1, memory=64, uri="test:///default", shutdown_timeout=0)
    p.update(over)
    return p


def disk(**over):
    d = dict(type="file", device="disk", path=None, pool=None, volume=None, image=None, monitors=None, user=None,
             secret_uuid=None, format=None, target="vda", bus="virtio", cache=None, readonly=False)
    d.update(over)
    return d


def rbd(**over):
    d = dict(type="rbd", pool="vms", image="img", monitors=["127.0.0.1:6789"], user="libvirt", secret_uuid=SECRET)
    d.update(over)
    return disk(**d)
