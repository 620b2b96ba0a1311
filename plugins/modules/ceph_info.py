#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ceph_info
short_description: Read the state of a Ceph cluster through librados
version_added: 0.1.0
description:
  - Reads health, the OSD tree and map, pools, monitors, the quorum and the RBD images of a pool,
    as JSON mon commands through librados and through librbd. It never runs the C(ceph) or C(rbd)
    command line tools and never changes anything.
  - Each gathered key is the JSON the matching C(ceph ... --format json) command prints, unchanged,
    so tasks can use the fields documented by Ceph.
  - Only the keys named in O(gather) are returned, besides RV(fsid) and RV(calls).
author:
  - hospital.cloud maintainers (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read-only; check mode makes the same reads and returns the same data.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Never changes anything.
requirements:
  - python3-rbd (the C(rbd) Python binding of librbd) on the managed host, for O(gather=images) only.
options:
  gather:
    description:
      - What to read. V(health) is C(ceph health detail), V(osd_tree) C(ceph osd tree), V(osd_dump)
        C(ceph osd dump) (epoch, flags, OSDs, pools), V(pools) C(ceph osd pool ls detail),
        V(monitors) the monitors of C(ceph mon dump), V(quorum) C(ceph quorum_status), V(images)
        the RBD images of O(pool) with their snapshots.
    type: list
    elements: str
    choices: [health, osd_tree, osd_dump, pools, monitors, quorum, images]
    default: [health]
  pool:
    description:
      - Pool whose RBD images are listed. Required when O(gather) contains V(images).
      - A pool that does not exist is not an error; RV(pool_exists) is then V(false).
    type: str
'''

EXAMPLES = r'''
- name: Wait until the cluster is healthy
  hospital.cloud.ceph_info:
    gather: [health]
  register: ceph_state
  until: ceph_state.health.status == 'HEALTH_OK'
  retries: 30
  delay: 10

- name: OSD flags, monitor addresses and quorum
  hospital.cloud.ceph_info:
    gather: [osd_dump, monitors, quorum]
  register: ceph_state

- name: Stop when noout is still set
  ansible.builtin.assert:
    that: "'noout' not in ceph_state.osd_dump.flags_set"
    fail_msg: "noout is set on cluster {{ ceph_state.fsid }}"

- name: Images and snapshots of the VM disk pool, as a restricted client
  hospital.cloud.ceph_info:
    gather: [images]
    pool: virtual-storage
    client: client.libvirt
    keyring: /etc/ceph/ceph.client.libvirt.keyring
  register: vm_disks

- name: Names of the VM disks
  ansible.builtin.debug:
    msg: "{{ vm_disks.images | map(attribute='name') | list }}"
  when: vm_disks.pool_exists
'''

RETURN = r'''
fsid:
  description: The cluster's fsid.
  returned: always
  type: str
  sample: 6b7ec881-12fd-439e-b50b-667342d0035a
calls:
  description: The mutating calls made, always empty (read-only module; returned like every module's).
  returned: always
  type: list
  elements: dict
  sample: []
health:
  description: C(ceph health detail --format json) as returned by the monitors.
  returned: when O(gather) contains V(health)
  type: dict
  sample: {status: HEALTH_WARN, checks: {OSDMAP_FLAGS: {severity: HEALTH_WARN,
           summary: {message: noout flag(s) set, count: 1}, muted: false, detail: []}}, mutes: []}
osd_tree:
  description: C(ceph osd tree --format json) (C(nodes) with the CRUSH hierarchy and OSD status, C(stray)).
  returned: when O(gather) contains V(osd_tree)
  type: dict
  sample: {nodes: [{id: -1, name: default, type: root, type_id: 11, children: [-3]},
                   {id: -3, name: kvm-01, type: host, type_id: 1, pool_weights: {}, children: [0]},
                   {id: 0, device_class: hdd, name: osd.0, type: osd, type_id: 0, crush_weight: 0.0098,
                    depth: 2, pool_weights: {}, exists: 1, status: up, reweight: 1, primary_affinity: 1}],
           stray: []}
osd_dump:
  description: C(ceph osd dump --format json) (C(epoch), C(flags), C(flags_set), C(osds), C(pools), ...).
  returned: when O(gather) contains V(osd_dump)
  type: dict
  sample: {epoch: 19, fsid: 6b7ec881-12fd-439e-b50b-667342d0035a,
           flags: "noout,sortbitwise,recovery_deletes,purged_snapdirs,pglog_hardlimit",
           flags_set: [noout, pglog_hardlimit, purged_snapdirs, recovery_deletes, sortbitwise],
           osds: [{osd: 0, up: 1, in: 1, weight: 1.0}], pools: []}
pools:
  description: C(ceph osd pool ls detail --format json), one entry per pool.
  returned: when O(gather) contains V(pools)
  type: list
  elements: dict
  sample: [{pool_id: 2, pool_name: virtual-storage, type: 1, size: 3, min_size: 2, crush_rule: 0,
            pg_num: 32, pg_autoscale_mode: "off", application_metadata: {rbd: {}}}]
monitors:
  description: The C(mons) list of C(ceph mon dump --format json).
  returned: when O(gather) contains V(monitors)
  type: list
  elements: dict
  sample: [{rank: 0, name: kvm-01, public_addrs: {addrvec: [{type: v2, addr: "10.0.0.11:3300", nonce: 0}]},
            addr: "10.0.0.11:6789/0", public_addr: "10.0.0.11:6789/0", priority: 0, weight: 0,
            crush_location: "{}"}]
quorum:
  description: C(ceph quorum_status --format json) (C(quorum_names), C(quorum_leader_name), C(monmap), ...).
  returned: when O(gather) contains V(quorum)
  type: dict
  sample: {election_epoch: 3, quorum: [0], quorum_names: [kvm-01], quorum_leader_name: kvm-01, quorum_age: 18}
pool_exists:
  description: Whether O(pool) exists. A missing pool is not an error; RV(images) is then empty.
  returned: when O(gather) contains V(images)
  type: bool
  sample: true
images:
  description:
    - The RBD images of O(pool), sorted by name, with their size in bytes and their snapshots in
      the order they were taken (snapshot id).
  returned: when O(gather) contains V(images)
  type: list
  elements: dict
  contains:
    name:
      description: Image name.
      type: str
    size:
      description: Size in bytes.
      type: int
    snapshots:
      description: Snapshots, oldest first, each with C(name), C(size) (bytes) and C(protected).
      type: list
      elements: dict
  sample: [{name: debian-12, size: 10737418240, snapshots: [{name: base, size: 10737418240, protected: true}]},
           {name: pacs-01-root, size: 34359738368, snapshots: []}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, info
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute


def argument_spec():
    spec = dict(
        gather=dict(type='list', elements='str', default=['health'], choices=info.GATHER),
        pool=dict(type='str'),
    )
    spec.update(client.connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, info.run, prepare=client.missing_library)


if __name__ == '__main__':
    main()
