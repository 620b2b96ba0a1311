#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ceph_pool
short_description: Manage Ceph pools through librados
version_added: 0.1.0
description:
  - Creates, updates and deletes a Ceph pool. Every managed setting is compared with the pool as the
    monitors report it (C(osd pool ls detail)); only the differences are sent, as JSON mon commands
    through librados.
  - O(size) is applied before O(min_size), because changing the size makes Ceph reset min_size.
  - O(pg_num) and O(pgp_num) are compared with the targets Ceph is moving to (C(pg_num_target)),
    not with the current values that move gradually.
author:
  - hospital.cloud maintainers (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the real pool and returns the commands a real run would send, without sending them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the managed settings before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same parameters sends nothing.
options:
  name:
    description: Pool name (letters, digits, C(_), C(.), C(-); no spaces).
    type: str
    required: true
  state:
    description: Whether the pool exists. V(absent) also needs O(allow_delete=true).
    type: str
    choices: [present, absent]
    default: present
  pool_type:
    description:
      - Replicated or erasure-coded, on creation (V(replicated) when not set). An existing pool of
        the other type makes the module fail (the type cannot change in place).
    type: str
    choices: [replicated, erasure]
  erasure_profile:
    description: Existing erasure-code profile of an O(pool_type=erasure) pool.
    type: str
  size:
    description: Number of replicas. V(1) also needs O(allow_size_one=true). Not for erasure pools.
    type: int
  min_size:
    description:
      - Replicas needed to serve I/O; at most the size (and at most 10).
      - V(1) also needs O(allow_min_size_one=true) (not needed with O(size=1) and O(allow_size_one=true)).
    type: int
  pg_num:
    description:
      - Target number of placement groups. When the autoscaler is on it is used on creation only;
        a different value for an existing pool is reported as a warning and not applied.
      - From 1 to 65536 (the mon's C(mon_max_pool_pg_num)).
    type: int
  pgp_num:
    description: Target number of placement groups for placement (same rules and bounds as O(pg_num)).
    type: int
  pg_autoscale_mode:
    description: Placement group autoscaler mode of the pool.
    type: str
    choices: ['on', 'off', warn]
  target_size_ratio:
    description:
      - Expected share of the cluster capacity, a hint for the autoscaler (0 unsets it).
      - A finite number from 0 to 1000000 (C(nan) and C(inf) are refused).
    type: float
  application:
    description: Applications enabled on the pool (exactly these; others are disabled).
    type: list
    elements: str
    choices: [rbd, rgw, cephfs, rados, nfs, mgr, mgr_devicehealth]
  crush_rule:
    description: Name of an existing CRUSH rule.
    type: str
  max_bytes:
    description: Quota in bytes (0 removes it), at most 2^63-1.
    type: int
  max_objects:
    description: Quota in objects (0 removes it), at most 2^63-1.
    type: int
  compression_mode:
    description: BlueStore compression mode of the pool.
    type: str
    choices: [none, passive, aggressive, force]
  allow_delete:
    description:
      - Must be V(true) for O(state=absent) to delete an existing pool and its data. The module
        then enables C(mon_allow_pool_delete) for the deletion and restores it afterwards.
    type: bool
    default: false
  allow_size_one:
    description: Must be V(true) to set O(size=1) (a single copy of every object).
    type: bool
    default: false
  allow_min_size_one:
    description:
      - Must be V(true) to set O(min_size=1). With it a pool keeps accepting writes when a single copy
        is left, so the loss of one more disk loses acknowledged writes (the classic Ceph data-loss setting).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: RBD pool for the VM disks
  hospital.cloud.ceph_pool:
    name: virtual-storage
    size: 3
    min_size: 2
    pg_num: 32
    pg_autoscale_mode: "off"
    application: [rbd]

- name: Erasure-coded pool for imaging archives, with a quota
  hospital.cloud.ceph_pool:
    name: imaging-archive
    pool_type: erasure
    erasure_profile: k2m1
    application: [rados]
    max_bytes: 1099511627776
    compression_mode: aggressive

- name: Delete a pool and its data
  hospital.cloud.ceph_pool:
    name: scratch
    state: absent
    allow_delete: true
'''

RETURN = r'''
pool:
  description: The managed settings after the run (predicted in check mode).
  returned: always
  type: dict
  sample: {name: vms, state: present, size: 3, min_size: 2, pg_num: 32, pgp_num: 32,
           pg_autoscale_mode: "off", application: [rbd], crush_rule: replicated_rule,
           max_bytes: 0, max_objects: 0, compression_mode: none, target_size_ratio: 0.0,
           pool_type: replicated, erasure_profile: null}
calls:
  description: The mon commands sent (in check mode, those a real run would send).
  returned: always
  type: list
  elements: dict
  sample: [{prefix: osd pool set, pool: vms, var: size, val: "3"}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, pool
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        pool_type=dict(type='str', choices=['replicated', 'erasure']),
        erasure_profile=dict(type='str'),
        size=dict(type='int'),
        min_size=dict(type='int'),
        pg_num=dict(type='int'),
        pgp_num=dict(type='int'),
        pg_autoscale_mode=dict(type='str', choices=pool.AUTOSCALE_MODES),
        target_size_ratio=dict(type='float'),
        application=dict(type='list', elements='str', choices=pool.APPLICATIONS),
        crush_rule=dict(type='str'),
        max_bytes=dict(type='int'),
        max_objects=dict(type='int'),
        compression_mode=dict(type='str', choices=pool.COMPRESSION_MODES),
        allow_delete=dict(type='bool', default=False),
        allow_size_one=dict(type='bool', default=False),
        allow_min_size_one=dict(type='bool', default=False),
    )
    spec.update(client.connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, pool.run, prepare=client.missing_library)


if __name__ == '__main__':
    main()
