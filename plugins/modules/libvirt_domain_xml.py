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
extends_documentation_fragment:
  - hospital.cloud.libvirt_domain
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
