#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: libvirt_secret
short_description: A libvirt ceph (cephx) secret with a stable UUID and an idempotent value
version_added: 0.1.0
description:
  - Defines a libvirt secret of usage type C(ceph) (what RBD disks of M(hospital.cloud.libvirt_domain)
    reference by O(uuid)) and sets its value, the cephx key.
  - A private secret's value cannot be read back. The module keeps a salted digest (sha256 over
    UUID and value) in the secret's description, so a changed key (rotation) is detected and set,
    and an unchanged one is not touched.
  - Without O(uuid) the UUID is derived from O(usage), so it is the same on every host.
author:
  - hospital.cloud contributors (@hospital-cloud)
extends_documentation_fragment:
  - hospital.cloud.libvirt
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the real secrets and returns the changes and calls a real run makes.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows UUID, usage and whether the value changes (never the value).
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Compares the stored digest; a second run with the same key does not change anything.
options:
  usage:
    description: The ceph usage name of the secret, for example V(client.libvirt secret).
    type: str
    required: true
  uuid:
    description: The secret's UUID (default derived from O(usage)).
    type: str
  value:
    description: The cephx key as printed by C(ceph auth get-key) (base64). Required with O(state=present).
    type: str
  private:
    description: Keep the value private (libvirt never returns it).
    type: bool
    default: true
  state:
    description: Whether the secret exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Key of client.libvirt for RBD disks
  hospital.cloud.libvirt_secret:
    usage: client.libvirt secret
    uuid: 2a5b0c3e-8c0f-4a44-9f3e-6d1c2b7a9e10
    value: "{{ ceph_client_libvirt_key }}"

- name: Remove it
  hospital.cloud.libvirt_secret:
    usage: client.libvirt secret
    uuid: 2a5b0c3e-8c0f-4a44-9f3e-6d1c2b7a9e10
    state: absent
"""

RETURN = r"""
uuid:
  description: The secret's UUID (use it as O(hospital.cloud.libvirt_domain#module:disks[].secret_uuid)).
  returned: always
  type: str
  sample: 2a5b0c3e-8c0f-4a44-9f3e-6d1c2b7a9e10
usage:
  description: The ceph usage name.
  returned: always
  type: str
changes:
  description: The actions taken (check mode, that would be taken).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "set_value", "reason": "value differs (digest in the description)"}]
calls:
  description: The libvirt API calls made (check mode, that a real run makes).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import execute
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection, secret


def argument_spec():
    spec = dict(usage=dict(type="str", required=True), uuid=dict(type="str"), value=dict(type="str", no_log=True),
                private=dict(type="bool", default=True),
                state=dict(type="str", default="present", choices=["present", "absent"]))
    spec.update(connection.CONNECTION_ARGS)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "present", ["value"])])
    execute(module, secret.run, prepare=connection.missing_library)


if __name__ == "__main__":
    main()
