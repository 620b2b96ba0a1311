#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: libvirt_domain
short_description: Define and converge a libvirt domain (VM) from typed parameters
version_added: 0.1.0
description:
  - Renders libvirt C(<domain>) XML from typed parameters and converges the domain to it.
  - Idempotent by a semantic comparison of the fields this module owns against the inactive XML of
    the domain; changes made outside Ansible (C(virsh edit), C(virsh setmaxmem)) are detected and
    corrected. Fields that are not given are not owned and keep libvirt's value.
  - The UUID and the MAC addresses stay the same across runs and re-definitions. A NIC without
    O(interfaces[].mac) keeps the MAC of the existing NIC on the same source, or gets one derived
    from the domain name and NIC index.
  - A running domain whose definition changes is redefined; it is restarted only with
    O(restart_on_change=true), otherwise RV(needs_restart) is true.
  - With only O(name) and O(state) (no O(vcpus), O(memory) and other definition options) the module
    manages the run state of an existing domain and leaves its definition alone.
author:
  - hospital.cloud contributors (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.libvirt
  - hospital.cloud.libvirt_domain
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the real domain and returns the same RV(changes) and RV(calls) a real run makes.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before/after of the owned fields, the run state and autostart.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same parameters reports no change.
options:
  name:
    description: Domain name (letters, digits, C(_ . + -); no C(/)).
    type: str
    required: true
  state:
    description:
      - V(present) defines the domain and leaves its run state; V(running), V(shutoff), V(paused)
        also bring it there; V(absent) stops it (ACPI shutdown first, see O(shutdown_timeout)) and undefines it.
    type: str
    choices: [present, running, shutoff, paused, absent]
    default: present
  uuid:
    description: UUID for a new domain (libvirt picks one if not given). An existing domain keeps its UUID.
    type: str
  autostart:
    description: Start the domain when libvirtd starts. Not changed when omitted.
    type: bool
  restart_on_change:
    description: Restart an active domain whose definition changed (otherwise RV(needs_restart) tells).
    type: bool
    default: false
  shutdown_timeout:
    description:
      - Seconds (0 to 86400) to wait for an ACPI shutdown before powering off; V(0) powers off at once.
      - Used by every stop - O(state=shutoff), O(state=absent) and O(restart_on_change) - so a VM is
        never powered off while its guest could still shut down cleanly. A paused guest cannot react
        to ACPI and is powered off at once.
    type: int
    default: 120
  force:
    description:
      - Power off (C(virsh destroy)) at once instead of an ACPI shutdown first, for O(state=shutoff),
        O(state=absent) and restarts. The guest's unwritten data is lost.
    type: bool
    default: false
  remove_storage:
    description:
      - With O(state=absent), also delete the domain's file disks (never block, volume or RBD disks).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A VM with its system disk on Ceph RBD, running
  hospital.cloud.libvirt_domain:
    name: pacs-01
    state: running
    vcpus: 4
    memory: 8192
    cpu:
      mode: host-passthrough
    disks:
      - type: rbd
        pool: vms
        image: pacs-01-root
        monitors: [10.0.0.11, 10.0.0.12, 10.0.0.13]
        user: libvirt
        secret_uuid: 2a5b0c3e-8c0f-4a44-9f3e-6d1c2b7a9e10
        target: vda
        cache: none
    interfaces:
      - type: bridge
        source: br-clinical
    serial_console: true
    autostart: true
    metadata:
      owner: radiology

- name: A small TCG test domain that direct-boots a kernel
  hospital.cloud.libvirt_domain:
    name: test-vm
    state: running
    domain_type: qemu
    vcpus: 1
    memory: 512
    boot:
      kernel: /var/lib/images/vmlinuz
      initrd: /var/lib/images/initrd.img
      cmdline: root=/dev/vda console=ttyS0
    disks:
      - path: /var/lib/libvirt/images/test-vm.qcow2
        target: vda

- name: A SPICE console reachable from the management network, with a password and TLS
  hospital.cloud.libvirt_domain:
    name: pacs-01
    vcpus: 4
    memory: 8192
    graphics: spice
    graphics_listen: 10.0.20.11
    graphics_password: "{{ vault_pacs01_console_password }}"
    graphics_tls: true

- name: Remove a VM and its image files
  hospital.cloud.libvirt_domain:
    name: test-vm
    state: absent
    remove_storage: true
"""

RETURN = r"""
changes:
  description: The actions taken (or, in check mode, that would be taken), in order.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "define", "fields": ["memory"]}, {"action": "start"}]
calls:
  description:
    - The libvirt API calls made; in check mode the calls a real run makes (the same code path runs,
      with the calls recorded instead of made).
    - A graceful stop is C(shutdown), then C(destroy if still running after N s), in check mode and
      in a real run alike; whether that power-off was needed is RV(powered_off).
  returned: always
  type: list
  elements: str
  sample: ["defineXML", "createWithFlags"]
powered_off:
  description:
    - The run powered the guest off (C(destroy)) - with O(force), for a paused guest, or because it had
      not stopped by itself within O(shutdown_timeout) after the ACPI shutdown request.
    - Always V(false) in check mode (nothing is called).
  returned: always
  type: bool
  sample: false
xml:
  description:
    - The domain XML rendered from the parameters (null with state absent or state-only use).
    - A console password is shown as C(passwd="********").
  returned: always
  type: str
needs_restart:
  description: The domain runs with a definition older than the desired one.
  returned: always
  type: bool
restart_fields:
  description: The owned fields in which the running domain differs from the desired definition.
  returned: always
  type: list
  elements: str
state:
  description: The domain's run state after the task.
  returned: always
  type: str
  sample: running
domain:
  description: Name, UUID, state and autostart of the domain after the task.
  returned: always
  type: dict
  sample: {"name": "pacs-01", "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "state": "running", "autostart": true}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection, domain
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.domain_args import argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, domain.run, prepare=connection.missing_library)


if __name__ == "__main__":
    main()
