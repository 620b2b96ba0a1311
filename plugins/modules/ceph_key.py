#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ceph_key
short_description: Manage cephx entities and their keyring files through librados
version_added: 0.1.0
description:
  - Creates a cephx entity (for example C(client.libvirt)) with its capabilities, updates the
    capabilities when they differ, deletes it, and optionally writes its keyring file.
  - "The secret key never appears in the result, the diff or the returned calls, except as
    RV(key) when the task runs with C(no_log: true) (Ansible then hides the whole result; use
    C(register) to pass the key on, for example to a libvirt secret)."
author:
  - hospital.cloud maintainers (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the entity and the keyring file and reports what a real run would change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the capabilities before and after (never the key).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Capabilities are compared after normalising white space; the keyring file by content and attributes.
options:
  name:
    description: Entity name, C(TYPE.ID) such as C(client.libvirt).
    type: str
    required: true
  state:
    description: Whether the entity exists. V(absent) also removes O(dest) when it is set.
    type: str
    choices: [present, absent]
    default: present
  caps:
    description:
      - Capabilities by daemon type (C(mon), C(osd), C(mgr), C(mds)), exactly these. When not set,
        the capabilities of an existing entity are left alone (a new one gets none).
    type: dict
  dest:
    description: Path of a keyring file to write for the entity.
    type: path
  owner:
    description: Owner of O(dest).
    type: str
  group:
    description: Group of O(dest).
    type: str
  mode:
    description:
      - Mode of O(dest). The file is created 0600 with its owner and group already set and only
        then given this mode, so the key is never readable by others in between.
    type: raw
    default: '0600'
  allow_admin_delete:
    description:
      - Must be V(true) for O(state=absent) on an entity the cluster is administered or run with -
        C(client.admin), C(client.bootstrap-*), C(mon.*), C(mgr.*), C(osd.*), C(mds.*) - or the
        O(client) the task connects as. Deleting one of those locks operators or daemons out.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Key used by libvirt to open the VM disks
  hospital.cloud.ceph_key:
    name: client.libvirt
    caps:
      mon: profile rbd
      osd: profile rbd pool=virtual-storage
    dest: /etc/ceph/ceph.client.libvirt.keyring
    owner: root
    group: libvirt
    mode: '0640'
  register: libvirt_key
  no_log: true

- name: Remove a retired imaging user and its keyring
  hospital.cloud.ceph_key:
    name: client.imaging-old
    state: absent
    dest: /etc/ceph/ceph.client.imaging-old.keyring
'''

RETURN = r'''
entity:
  description: The entity name.
  returned: always
  type: str
  sample: client.libvirt
caps:
  description: The capabilities after the run.
  returned: when O(state=present)
  type: dict
  sample: {mon: profile rbd, osd: profile rbd pool=vms}
keyring:
  description: Path of the keyring file.
  returned: when O(dest) is set and O(state=present)
  type: str
  sample: /etc/ceph/ceph.client.libvirt.keyring
key:
  description: The secret key (base64), only when the task runs with C(no_log=true).
  returned: when the task has no_log and the entity exists (not in check mode before creation)
  type: str
  sample: AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g==
calls:
  description:
    - The planned steps, as made (in check mode, those a real run would make); no key material.
    - Mon commands (C(auth get-or-create), C(auth caps), C(auth del)) and keyring file steps
      (C(keyring write), C(keyring chown), C(keyring chmod), C(keyring remove)).
  returned: always
  type: list
  elements: dict
  sample: [{prefix: auth caps, entity: client.libvirt, caps: [mon, profile rbd, osd, profile rbd]},
           {prefix: keyring write, path: /etc/ceph/ceph.client.libvirt.keyring, mode: '0640'}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, key
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        caps=dict(type='dict'),
        dest=dict(type='path'),
        owner=dict(type='str'),
        group=dict(type='str'),
        mode=dict(type='raw', default='0600'),
        allow_admin_delete=dict(type='bool', default=False),
    )
    spec.update(client.connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, key.run, prepare=client.missing_library)


if __name__ == '__main__':
    main()
