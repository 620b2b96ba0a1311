"""module_utils/libvirt/domain_file (hospital.cloud.libvirt_domain_xml): the XML libvirt_domain would define,
written once, the same on a second run, nothing in check mode, bad input refused with nothing written."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_file

PARAMS = {"name": "pacs-01", "domain_type": "qemu", "vcpus": 2, "memory": 1024,
          "disks": [{"type": "rbd", "pool": "vms", "image": "pacs-01-root", "monitors": ["10.0.0.1"], "user": "libvirt",
                     "secret_uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "target": "vda", "cache": "none",
                     "device": "disk", "bus": "virtio", "readonly": False}],
          "interfaces": [{"type": "bridge", "source": "br-vm", "model": "virtio", "mac": None}],
          "serial_console": True, "mode": "0640"}


def test_written_once_then_unchanged(tmp_path):
    path = str(tmp_path / "pacs-01.xml")
    first = domain_file.run(dict(PARAMS, path=path), diff=True)
    assert first["changed"] and first["calls"] == ["write %s" % path]
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    # VirtualDomain greps the name line by line
    assert "  <name>pacs-01</name>\n" in open(path).read()
    dom = ET.parse(path).getroot()
    assert dom.find("name").text == "pacs-01" and dom.get("type") == "qemu"
    assert dom.find("devices/disk/source").get("name") == "vms/pacs-01-root"
    # the MAC is derived from the name: the same file on every host
    mac = dom.find("devices/interface/mac").get("address")
    assert mac.startswith("52:54:00:")
    again = domain_file.run(dict(PARAMS, path=path))
    assert not again["changed"] and again["calls"] == []


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "pacs-01.xml"
    res = domain_file.run(dict(PARAMS, path=str(path)), check_mode=True)
    assert res["changed"] and not path.exists()


@pytest.mark.parametrize("change,text", [
    ({"vcpus": 0}, "vcpus: needs a number of virtual CPUs"),
    ({"mode": "0644"}, "no access for others"),
    ({"path": "relative.xml"}, "needs an absolute path"),
])
def test_bad_input_writes_nothing(tmp_path, change, text):
    params = dict(PARAMS, path=str(tmp_path / "pacs-01.xml"))
    params.update(change)
    with pytest.raises(ModuleError, match=text):
        domain_file.run(params)
    assert list(tmp_path.iterdir()) == []
