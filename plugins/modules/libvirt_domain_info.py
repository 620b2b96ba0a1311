#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: libvirt_domain_info
short_description: The libvirt domains of a host, as data the placement filter consumes
version_added: 0.1.0
description:
  - Lists the domains of a libvirt host with run state, vCPUs, memory (MiB), disks, NICs,
    autostart and the owner tags set by M(hospital.cloud.libvirt_domain).
  - RV(placement) maps each domain name to O(host); merged over all hosts it is the C(current)
    argument of the C(hospital.cloud.placement) filter.
author:
  - hospital.cloud contributors (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.libvirt
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Never changes anything.
options:
  names:
    description: Only these domains (default all). Names not found are listed in RV(missing).
    type: list
    elements: str
  host:
    description: Host name used in RV(placement) (default the hypervisor's host name); use C(inventory_hostname).
    type: str
"""

EXAMPLES = r"""
- name: Current domains of every KVM host
  hospital.cloud.libvirt_domain_info:
    host: "{{ inventory_hostname }}"
  register: libvirt_info

- name: Current placement for the placement filter
  ansible.builtin.set_fact:
    vm_guests_current: "{{ ansible_play_hosts | map('extract', hostvars, ['libvirt_info', 'placement'])
                           | combine }}"
"""

RETURN = r"""
host:
  description: The host name used in RV(placement).
  returned: always
  type: str
domains:
  description: One entry per domain, sorted by name.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "pacs-01", "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "state": "running", "active": true,
            "persistent": true, "autostart": true, "vcpus": 4, "memory": 8192, "domain_type": "kvm",
            "disks": [{"target": "vda", "type": "rbd", "device": "disk", "source": "vms/pacs-01-root",
                       "format": "raw"}],
            "interfaces": [{"type": "bridge", "source": "br0", "mac": "52:54:00:12:34:56"}],
            "metadata": {"owner": "radiology"}}]
placement:
  description: Domain name -> O(host), the shape of the placement filter's C(current).
  returned: always
  type: dict
  sample: {"pacs-01": "kvm-01"}
missing:
  description: Names from O(names) that are not defined on the host.
  returned: always
  type: list
  elements: str
calls:
  description: The mutating calls made, always empty (read-only module; returned like every module's).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection, info


def argument_spec():
    spec = dict(names=dict(type="list", elements="str"), host=dict(type="str"))
    spec.update(connection.CONNECTION_ARGS)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, info.run, prepare=connection.missing_library)


if __name__ == "__main__":
    main()
