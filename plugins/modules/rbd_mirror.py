#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: rbd_mirror
short_description: Snapshot-based RBD mirroring of a pool's images on one Ceph cluster
version_added: 0.4.0
description:
  - Manages snapshot-based RBD mirroring on the cluster it connects to (one site of a pair) through
    librbd, and the mirror snapshot schedules through the mgr C(rbd_support) module.
  - Sets the pool's mirror mode to C(image), names the site, creates (site A) or imports (site B) a
    peer bootstrap token, enables mirroring in C(snapshot) mode for the listed images, keeps one mirror
    snapshot schedule per pool or per image, and promotes or demotes the listed images.
  - Returns the observed mirror status of each image (state, description, last snapshot sync time) so
    that a playbook can wait on it with C(until).
  - Failover and failback procedures are in the collection's C(docs/disaster_recovery.md).
author:
  - hospital.cloud maintainers (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the pool, images, peers and schedules and returns the calls a real run would make.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows mirror mode, site name, peers, schedules and per-image role before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run makes no change; O(resync=true) asks for a resync only while it is needed.
requirements:
  - python3-rbd (the C(rbd) Python binding of librbd) on the managed host.
  - An C(rbd-mirror) daemon on each site that receives images (both sites for failback).
options:
  pool:
    description: Pool whose images are mirrored (same name on both sites). Its mirror mode is set to C(image).
    type: str
    required: true
  site_name:
    description: Name of this site as its peers see it (C(rbd mirror pool peer site-name set)).
    type: str
  images:
    description:
      - Images to mirror in C(snapshot) mode; O(role) and O(resync) apply to them. Each must exist (on a
        secondary site an image appears once C(rbd-mirror) has replicated it).
    type: list
    elements: str
    default: []
  schedule_interval:
    description:
      - Interval of the mirror snapshot schedule, a number with unit C(m), C(h) or C(d) (V(1m), V(15m),
        V(1h)). Other intervals at the same level are removed. The interval bounds the recovery point
        objective (data written since the last synced mirror snapshot is lost in an unplanned failover).
    type: str
  schedule_level:
    description: Whether the schedule is set for the pool or for each listed image.
    type: str
    choices: [pool, image]
    default: pool
  peer_token_create:
    description:
      - Create the peer bootstrap token on this site (site A) and return it as RV(peer_token). The task
        must run with C(no_log=true), otherwise the token is not returned.
    type: bool
    default: false
  peer_token:
    description:
      - Bootstrap token of the other site (from O(peer_token_create) there), imported as a peer once
        (a peer with the token's monitors is not imported again). Needs the other site reachable.
    type: str
  peer_direction:
    description: Direction of the imported peer; V(rx-tx) also registers this site on the other one (failback).
    type: str
    choices: [rx-tx, rx-only]
    default: rx-tx
  role:
    description:
      - V(primary) promotes the listed images that are not primary here, V(secondary) demotes those that are.
      - A planned promotion (without O(force)) is refused, with nothing changed, until the newest mirror
        snapshot here is the other site's demotion, completely copied; retry it (C(until)). This also
        refuses to undo a local demote after which nothing was synced (the other site may have been
        promoted meanwhile; its writes would be lost); use O(force) for that.
      - A demotion is refused, with nothing changed, until the other site's C(rbd-mirror) reports the image as
        replaying (it needs up to about 30 s to notice a fresh promotion); a demotion it does not copy leaves
        both copies demoted and mirroring stopped. With O(resync=true) (split brain) it is not checked.
    type: str
    choices: [primary, secondary]
  force:
    description:
      - With O(role=primary), promote even though the other site still holds the image as primary
        (unplanned failover, other site unreachable). DESTRUCTIVE - if the other site still writes, the
        two copies diverge (split brain); the other site's copy must later be demoted and resynced.
    type: bool
    default: false
  resync:
    description:
      - DESTRUCTIVE - discard the local copy of the listed non-primary images and copy them again from the
        primary site (failback after an unplanned failover). Asked only for an image demoted in this run or
        whose replay is in error (split brain). Refused for a primary image.
    type: bool
    default: false
notes:
  - The module manages one cluster; run it against each site. Start the C(rbd-mirror) daemons yourself.
'''

EXAMPLES = r'''
- name: Site A - mirror the PACS disks, 1-minute mirror snapshots, bootstrap token for site B
  hospital.cloud.rbd_mirror:
    pool: virtual-storage
    site_name: site-a
    images: [pacs-01-disk0, pacs-02-disk0]
    schedule_interval: 1m
    peer_token_create: true
  no_log: true
  register: site_a

- name: Site B - import site A's token (rx-tx, so that failback works)
  hospital.cloud.rbd_mirror:
    pool: virtual-storage
    site_name: site-b
    schedule_interval: 1m
    peer_token: "{{ site_a.peer_token }}"
  no_log: true

- name: Planned failover, step 1 - demote on site A (retried until site B's rbd-mirror replays it)
  hospital.cloud.rbd_mirror:
    pool: virtual-storage
    images: [pacs-01-disk0]
    role: secondary
  register: demoted
  retries: 30
  delay: 5
  until: demoted is succeeded

- name: Planned failover, step 2 - promote on site B once the demotion is synced (retried until then)
  hospital.cloud.rbd_mirror:
    pool: virtual-storage
    images: [pacs-01-disk0]
    role: primary
  register: promoted
  retries: 30
  delay: 5
  until: promoted is succeeded

- name: Unplanned failover - site A is lost, promote on site B anyway (split-brain risk)
  hospital.cloud.rbd_mirror:
    pool: virtual-storage
    images: [pacs-01-disk0]
    role: primary
    force: true
'''

RETURN = r'''
pool:
  description: The pool's mirroring after the run (predicted in check mode). Peers without key material.
  returned: always
  type: dict
  sample: {name: virtual-storage, mirror_mode: image, site_name: site-a,
           peers: [{uuid: 6f5c..., site_name: site-b, direction: rx-tx, client_name: client.rbd-mirror-peer}],
           schedules: [{level: virtual-storage/, interval: 1m}]}
images:
  description:
    - One entry per listed image - C(enabled), C(mode), C(primary) after the run (predicted in check mode),
      C(last_mirror_snapshot) (state V(primary), V(primary_demoted), V(non_primary) or V(non_primary_demoted)
      and whether its copy is complete) and C(status), the mirror status read from the cluster (after the
      changes in a real run).
    - C(status.state) is the local C(rbd-mirror) replay state (C(replaying) on a healthy secondary,
      C(error) on a split brain); C(status.last_snapshot_sync) the UNIX time of the last mirror snapshot
      synced (here on a secondary, by the peer for a primary); C(status.remote_statuses) what the peer
      site's daemon reports.
  returned: always
  type: list
  elements: dict
  sample: [{name: pacs-01-disk0, enabled: true, mirror_state: enabled, mode: snapshot, primary: false,
            global_id: 2b7e..., last_mirror_snapshot: {name: .mirror.non_primary.2b7e..., state: non_primary,
            complete: true}, status: {state: replaying, summary: replaying, up: true,
            description: 'replaying, {"local_snapshot_timestamp":1764920000,"replay_state":"idle"}',
            last_update: '2026-12-05T07:10:00', replay_state: idle, last_snapshot_sync: 1764920000,
            remote_statuses: []}}]
peer_token:
  description: The bootstrap token of O(peer_token_create) (a secret); only when the task runs with C(no_log=true).
  returned: when peer_token_create and the task runs with no_log
  type: str
calls:
  description: The librbd and mgr operations made (in check mode, those a real run would make). No secrets.
  returned: always
  type: list
  elements: dict
  sample: [{prefix: rbd mirror image demote, pool: virtual-storage, image: pacs-01-disk0}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, mirror
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute


def argument_spec():
    spec = dict(
        pool=dict(type='str', required=True),
        site_name=dict(type='str'),
        images=dict(type='list', elements='str', default=[]),
        schedule_interval=dict(type='str'),
        schedule_level=dict(type='str', default='pool', choices=['pool', 'image']),
        peer_token_create=dict(type='bool', default=False),
        peer_token=dict(type='str', no_log=True),
        peer_direction=dict(type='str', default='rx-tx', choices=['rx-tx', 'rx-only']),
        role=dict(type='str', choices=['primary', 'secondary']),
        force=dict(type='bool', default=False),
        resync=dict(type='bool', default=False),
    )
    spec.update(client.connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, mirror.run, prepare=client.missing_library)


if __name__ == '__main__':
    main()
