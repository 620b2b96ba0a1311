#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: rbd_image
short_description: Manage Ceph RBD images, snapshots and clones through librbd
version_added: 0.1.0
description:
  - Creates an RBD image (empty, imported from a local raw or qcow2 file, or as a copy-on-write
    clone of a snapshot), grows it, changes its features, creates and protects snapshots, and
    removes it.
  - An existing image is never re-imported or re-cloned; its data survives every re-run.
author:
  - hospital.cloud maintainers (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the image and returns the operations a real run would make, without making them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows size, features, snapshots and parent before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same parameters makes no change.
requirements:
  - python3-rbd (the C(rbd) Python binding of librbd) on the managed host.
  - qemu-img, to import a qcow2 file.
options:
  pool:
    description: Pool of the image.
    type: str
    required: true
  name:
    description: Image name.
    type: str
    required: true
  state:
    description: Whether the image exists. V(absent) also needs O(allow_delete=true).
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Size in bytes or with a binary unit (V(10G), V(512MiB)). Required to create an empty image.
        Growing is always allowed; shrinking needs O(allow_shrink=true).
    type: str
  allow_shrink:
    description: Must be V(true) to make the image smaller (the data at its end is lost).
    type: bool
    default: false
  features:
    description:
      - Exactly these image features. Without it, new images get the cluster default and existing
        ones are left alone. C(layering) and enabling C(deep-flatten) are only possible at creation.
    type: list
    elements: str
    choices: [layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling]
  snapshots:
    description: Snapshots that must exist (snapshots not listed are left alone).
    type: list
    elements: dict
    suboptions:
      name:
        description: Snapshot name.
        type: str
        required: true
      protected:
        description: Whether the snapshot is protected (needed to clone from it).
        type: bool
        default: false
  clone_from:
    description: Create the image as a copy-on-write clone of this snapshot.
    type: dict
    suboptions:
      pool:
        description: Pool of the parent image (default O(pool)).
        type: str
      image:
        description: Parent image.
        type: str
        required: true
      snapshot:
        description: Snapshot of the parent image.
        type: str
        required: true
  import_from:
    description:
      - Local raw or qcow2 file whose content the new image gets (on creation only).
      - The image is imported as C(NAME.hc-importing) and renamed to O(name) only after the last byte
        is written, so a failed or killed import never leaves a partial image under O(name) for later
        runs to snapshot and clone. The next run removes a leftover C(NAME.hc-importing) and imports
        again (RV(calls) then starts with C(rbd rm)). Names ending in C(.hc-importing) are refused.
    type: path
  import_format:
    description: Format of O(import_from); V(auto) asks C(qemu-img info).
    type: str
    choices: [auto, raw, qcow2]
    default: auto
  allow_delete:
    description: Must be V(true) for O(state=absent) to remove an existing image (and its unprotected snapshots).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Golden image imported from the Debian qcow2, with a protected snapshot
  hospital.cloud.rbd_image:
    pool: virtual-storage
    name: debian-12-golden
    import_from: /var/lib/hospital/debian-12.qcow2
    features: [layering, exclusive-lock, object-map, fast-diff, deep-flatten]
    snapshots:
      - name: base
        protected: true

- name: One clone per VM, grown to 20 GiB
  hospital.cloud.rbd_image:
    pool: virtual-storage
    name: "{{ item }}-disk0"
    clone_from:
      image: debian-12-golden
      snapshot: base
    size: 20G
  loop: [pacs-01, pacs-02]

- name: Remove a VM disk
  hospital.cloud.rbd_image:
    pool: virtual-storage
    name: pacs-02-disk0
    state: absent
    allow_delete: true
'''

RETURN = r'''
image:
  description: The image after the run (predicted in check mode).
  returned: always
  type: dict
  sample: {pool: vms, name: pacs-01-disk0, state: present, size: 21474836480,
           features: [layering, exclusive-lock], snapshots: [],
           parent: {pool: vms, image: debian-12-golden, snapshot: base}}
calls:
  description: The librbd operations made (in check mode, those a real run would make).
  returned: always
  type: list
  elements: dict
  sample: [{prefix: rbd clone, pool: vms, image: pacs-01-disk0,
            parent: {pool: vms, image: debian-12-golden, snapshot: base}}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, image
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute


def argument_spec():
    spec = dict(
        pool=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        size=dict(type='str'),
        allow_shrink=dict(type='bool', default=False),
        features=dict(type='list', elements='str', choices=[f[0] for f in image.FEATURES]),
        snapshots=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True), protected=dict(type='bool', default=False))),
        clone_from=dict(type='dict', options=dict(
            pool=dict(type='str'), image=dict(type='str', required=True),
            snapshot=dict(type='str', required=True))),
        import_from=dict(type='path'),
        import_format=dict(type='str', default='auto', choices=['auto', 'raw', 'qcow2']),
        allow_delete=dict(type='bool', default=False),
    )
    spec.update(client.connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    execute(module, image.run, prepare=client.missing_library)


if __name__ == '__main__':
    main()
