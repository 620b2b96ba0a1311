#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: libvirt_domain_xml
short_description: Write a VM's libvirt domain XML to a file, for a cluster manager to start
version_added: 0.4.0
description:
  - Renders the domain XML of the same options as M(hospital.cloud.libvirt_domain) (the domain itself,
    without its life cycle) and writes it to O(path) when the content or mode differ.
  - Used for high-availability VMs - Pacemaker's C(VirtualDomain) agent starts the VM from this file on
    whichever host the cluster picks, so the file is written on every host and no host keeps a
    persistent definition (the agent would undefine it). MACs not given are derived from the name, the
    same on every host.
  - Bad input fails with the message M(hospital.cloud.libvirt_domain) gives; nothing is written.
author:
  - hospital.cloud maintainers (@hospital-cloud)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Renders and compares the same way; only the write is skipped.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
options:
  path:
    description: Absolute path of the XML file; its directory must exist.
    type: path
    required: true
  mode:
    description: Mode of the file (octal); no access for others is allowed.
    type: str
    default: '0640'
  name:
    description: Domain name.
    type: str
    required: true
  domain_type:
    description: C(kvm) or C(qemu) (TCG).
    type: str
    default: kvm
    choices: [kvm, qemu]
  vcpus:
    description: Virtual CPUs.
    type: int
  memory:
    description: Memory in MiB.
    type: int
  cpu:
    description: CPU mode and topology, as in M(hospital.cloud.libvirt_domain).
    type: dict
    suboptions:
      mode:
        description: CPU mode.
        type: str
        default: host-model
        choices: [host-passthrough, host-model, custom]
      model:
        description: CPU model (mode custom).
        type: str
      sockets:
        description: Sockets.
        type: int
      cores:
        description: Cores per socket.
        type: int
      threads:
        description: Threads per core.
        type: int
  machine:
    description: Machine type.
    type: str
  firmware:
    description: BIOS or UEFI.
    type: str
    default: bios
    choices: [bios, uefi]
  boot:
    description: Boot devices or direct kernel boot, as in M(hospital.cloud.libvirt_domain).
    type: dict
    suboptions:
      devices:
        description: Boot order.
        type: list
        elements: str
        choices: [hd, cdrom, network, fd]
      kernel:
        description: Kernel path on the host.
        type: str
      initrd:
        description: Initrd path on the host.
        type: str
      cmdline:
        description: Kernel command line.
        type: str
  disks:
    description: Disks, as in M(hospital.cloud.libvirt_domain).
    type: list
    elements: dict
    suboptions:
      type:
        description: Disk source type.
        type: str
        default: file
        choices: [file, block, volume, rbd]
      device:
        description: Disk or CD-ROM.
        type: str
        default: disk
        choices: [disk, cdrom]
      path:
        description: File or block device path.
        type: str
      pool:
        description: Storage pool (volume) or RBD pool (rbd).
        type: str
      volume:
        description: Volume name (type volume).
        type: str
      image:
        description: RBD image name.
        type: str
      monitors:
        description: Ceph monitors (host or host:port).
        type: list
        elements: str
      user:
        description: cephx user without C(client.).
        type: str
      secret_uuid:
        description: UUID of the libvirt secret holding the cephx key.
        type: str
      format:
        description: Image format.
        type: str
        choices: [raw, qcow2]
      target:
        description: Target device name (vda).
        type: str
        required: true
      bus:
        description: Disk bus.
        type: str
        default: virtio
        choices: [virtio, scsi, sata, ide, usb]
      cache:
        description: Cache mode.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      readonly:
        description: Read-only disk.
        type: bool
        default: false
  interfaces:
    description: NICs, as in M(hospital.cloud.libvirt_domain).
    type: list
    elements: dict
    suboptions:
      type:
        description: Bridge or libvirt network.
        type: str
        default: network
        choices: [bridge, network]
      source:
        description: Bridge or network name.
        type: str
        required: true
      model:
        description: NIC model.
        type: str
        default: virtio
      mac:
        description: MAC address (default derived from the name and the NIC's index).
        type: str
  serial_console:
    description: A serial console.
    type: bool
    default: false
  serial_log:
    description: File the serial console is also written to.
    type: str
  graphics:
    description: Graphics console.
    type: str
    default: none
    choices: [none, vnc, spice]
  graphics_listen:
    description: Listen address of the graphics console.
    type: str
  graphics_password:
    description: Password of the graphics console.
    type: str
  graphics_insecure_no_password:
    description: Allow a graphics console without password (explicit opt-in).
    type: bool
    default: false
  graphics_tls:
    description: TLS for the graphics console.
    type: bool
    default: false
  metadata:
    description: hospital.cloud metadata tags.
    type: dict
  extra_devices:
    description: Further device XML snippets.
    type: list
    elements: str
seealso:
  - module: hospital.cloud.libvirt_domain
  - module: hospital.cloud.pacemaker_cib
'''

EXAMPLES = r'''
- name: The domain XML of an HA VM on every KVM host
  hospital.cloud.libvirt_domain_xml:
    path: /etc/hospital-cloud/vms/pacs-01.xml
    name: pacs-01
    vcpus: 4
    memory: 8192
    disks:
      - {type: rbd, pool: vms, image: pacs-01-root, monitors: [10.0.0.11], user: libvirt,
         secret_uuid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427, target: vda, cache: none}
    interfaces:
      - {type: bridge, source: br-vm}
'''

RETURN = r'''
path:
  description: The file.
  returned: success
  type: str
  sample: /etc/hospital-cloud/vms/pacs-01.xml
name:
  description: The domain name.
  returned: success
  type: str
  sample: pacs-01
calls:
  description: The writes made (or, in check mode, that a real run would make).
  returned: always
  type: list
  elements: str
  sample: ["write /etc/hospital-cloud/vms/pacs-01.xml"]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_file
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.domain_args import domain_only_spec


def main():
    spec = domain_only_spec()
    spec.update(path=dict(type="path", required=True), mode=dict(type="str", default="0640"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    execute(module, domain_file.run)


if __name__ == "__main__":
    main()
