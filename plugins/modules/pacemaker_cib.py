#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pacemaker_cib
short_description: Create or update Pacemaker CIB elements by id, and node attributes
version_added: 0.4.0
description:
  - Makes the given elements of the Pacemaker cluster configuration (CIB) exist as given - resources,
    constraints, cluster property sets, resource defaults, fencing levels - through C(cibadmin), and
    permanent node attributes and utilization through C(crm_attribute).
  - An element is up to date when every attribute and child it asks for is there with that value;
    what Pacemaker or an operator added beside it (for example a C(target-role)) is left alone. A
    differing element is replaced as a whole. Nothing is removed unless its id is in O(absent).
  - Runs on one cluster node (C(run_once)); the CIB is the same everywhere.
  - Bad input (unknown section, XML that is not well-formed, an element without id, an unknown node)
    fails with a clear message before anything is changed.
author:
  - hospital.cloud maintainers (@hospital-cloud)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the CIB and node attributes and reports the commands a real run would make.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
requirements:
  - Pacemaker's command line tools (C(cibadmin), C(crm_attribute)) on the node, the cluster running.
options:
  elements:
    description: The elements, each with its CIB section and its XML (one top element with an id).
    type: list
    elements: dict
    default: []
    suboptions:
      section:
        description: Section of the configuration the element belongs in.
        type: str
        required: true
        choices: [crm_config, rsc_defaults, op_defaults, resources, constraints, fencing-topology]
      xml:
        description: The element, for example C(<rsc_location id="loc-1" rsc="vm-a" node="h1" score="100"/>).
        type: str
        required: true
  absent:
    description:
      - Ids of elements to delete (an explicit choice; deleting a resource stops it).
    type: list
    elements: str
    default: []
  nodes:
    description:
      - "Per node name, C(attributes) (permanent node attributes, for example C({rack: r1})) and
        C(utilization) (capacity for C(placement-strategy), for example C({cpu: 16, memory: 65536}))."
    type: dict
    default: {}
seealso:
  - module: hospital.cloud.libvirt_domain_xml
  - name: Pacemaker Explained
    description: The CIB reference.
    link: https://clusterlabs.org/projects/pacemaker/doc/3.0/Pacemaker_Explained/html/
'''

EXAMPLES = r'''
- name: A VM resource preferring one host, and the hosts' capacity
  hospital.cloud.pacemaker_cib:
    elements:
      - section: resources
        xml: >-
          <primitive id="vm-pacs-01" class="ocf" provider="heartbeat" type="VirtualDomain">
          <instance_attributes id="vm-pacs-01-ia">
          <nvpair id="vm-pacs-01-ia-config" name="config" value="/etc/hospital-cloud/vms/pacs-01.xml"/>
          </instance_attributes></primitive>
      - section: constraints
        xml: <rsc_location id="loc-vm-pacs-01-prefer" rsc="vm-pacs-01" node="kvm-1" score="100"/>
    nodes:
      kvm-1: {utilization: {cpu: 32, memory: 262144}, attributes: {rack: r1}}
  run_once: true
'''

RETURN = r'''
created:
  description: Ids of the elements created.
  returned: success
  type: list
  elements: str
  sample: [vm-pacs-01]
updated:
  description: Ids of the elements replaced because they differed.
  returned: success
  type: list
  elements: str
  sample: []
removed:
  description: Ids of the elements deleted (from O(absent)).
  returned: success
  type: list
  elements: str
  sample: []
nodes:
  description: Node attributes and utilization values changed, with their values before and after.
  returned: success
  type: list
  elements: dict
  sample: [{"node": "kvm-1", "utilization": "cpu", "before": null, "after": "32"}]
calls:
  description: The commands made (or, in check mode, that a real run would make).
  returned: always
  type: list
  elements: str
  sample: ["cibadmin --create resources vm-pacs-01"]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute
from ansible_collections.hospital.cloud.plugins.module_utils.cluster import cib


def main():
    module = AnsibleModule(argument_spec=dict(
        elements=dict(type="list", elements="dict", default=[], options=dict(
            section=dict(type="str", required=True, choices=list(cib.SECTIONS)),
            xml=dict(type="str", required=True))),
        absent=dict(type="list", elements="str", default=[]),
        nodes=dict(type="dict", default={}),
    ), supports_check_mode=True)
    execute(module, cib.run)


if __name__ == "__main__":
    main()
