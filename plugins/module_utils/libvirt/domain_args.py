# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of a domain, shared by libvirt_domain (defines it in libvirt) and libvirt_domain_xml
(writes its XML to a file, for a cluster manager that starts it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection

# what only libvirt_domain has: the life cycle in libvirt and the connection
LIFECYCLE_ARGS = ("state", "uuid", "autostart", "restart_on_change", "shutdown_timeout", "force", "remove_storage")


def argument_spec():
    """libvirt_domain's options (the domain, its life cycle and the libvirt connection)."""
    disk = dict(type=dict(type="str", default="file", choices=["file", "block", "volume", "rbd"]),
                device=dict(type="str", default="disk", choices=["disk", "cdrom"]),
                path=dict(type="str"), pool=dict(type="str"), volume=dict(type="str"), image=dict(type="str"),
                monitors=dict(type="list", elements="str"), user=dict(type="str"),
                secret_uuid=dict(type="str", no_log=False), format=dict(type="str", choices=["raw", "qcow2"]),
                target=dict(type="str", required=True),
                bus=dict(type="str", default="virtio", choices=["virtio", "scsi", "sata", "ide", "usb"]),
                cache=dict(type="str", choices=["default", "none", "writethrough", "writeback", "directsync",
                                                "unsafe"]),
                readonly=dict(type="bool", default=False))
    iface = dict(type=dict(type="str", default="network", choices=["bridge", "network"]),
                 source=dict(type="str", required=True), model=dict(type="str", default="virtio"),
                 mac=dict(type="str"))
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "running", "shutoff", "paused", "absent"]),
        uuid=dict(type="str"),
        domain_type=dict(type="str", default="kvm", choices=["kvm", "qemu"]),
        vcpus=dict(type="int"), memory=dict(type="int"),
        cpu=dict(type="dict", options=dict(
            mode=dict(type="str", default="host-model", choices=["host-passthrough", "host-model", "custom"]),
            model=dict(type="str"), sockets=dict(type="int"), cores=dict(type="int"), threads=dict(type="int"))),
        machine=dict(type="str"),
        firmware=dict(type="str", default="bios", choices=["bios", "uefi"]),
        boot=dict(type="dict", options=dict(
            devices=dict(type="list", elements="str", choices=["hd", "cdrom", "network", "fd"]),
            kernel=dict(type="str"), initrd=dict(type="str"), cmdline=dict(type="str"))),
        disks=dict(type="list", elements="dict", options=disk),
        interfaces=dict(type="list", elements="dict", options=iface),
        serial_console=dict(type="bool", default=False),
        serial_log=dict(type="str"),
        graphics=dict(type="str", default="none", choices=["none", "vnc", "spice"]),
        graphics_listen=dict(type="str"),
        graphics_password=dict(type="str", no_log=True),
        graphics_insecure_no_password=dict(type="bool", default=False, no_log=False),
        graphics_tls=dict(type="bool", default=False),
        autostart=dict(type="bool"),
        metadata=dict(type="dict"),
        extra_devices=dict(type="list", elements="str"),
        restart_on_change=dict(type="bool", default=False),
        shutdown_timeout=dict(type="int", default=120),
        force=dict(type="bool", default=False),
        remove_storage=dict(type="bool", default=False),
    )
    spec.update(connection.CONNECTION_ARGS)
    return spec


def domain_only_spec():
    """The options that describe the domain itself (libvirt_domain_xml's, without `path` and `mode`)."""
    spec = argument_spec()
    for key in LIFECYCLE_ARGS + tuple(connection.CONNECTION_ARGS):
        spec.pop(key)
    return spec
