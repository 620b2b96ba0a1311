# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    """Connection options shared by the Ceph modules (ceph_pool, rbd_image, ceph_key)."""

    DOCUMENTATION = r'''
options:
  cluster:
    description:
      - Name of the Ceph cluster (selects C(/etc/ceph/<cluster>.conf) when O(conf) is not set).
    type: str
    default: ceph
  conf:
    description:
      - Path of the C(ceph.conf) to read. Without it librados searches its default locations.
    type: path
  client:
    description:
      - Entity to authenticate as, for example C(client.admin).
    type: str
    default: client.admin
  keyring:
    description:
      - Path of the keyring holding the key of O(client). Without it librados uses the
        C(keyring) setting of the configuration file.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the monitors (librados C(client_mount_timeout) and
        C(rados_mon_op_timeout)), so that an unreachable cluster or a wrong key fails fast.
    type: int
    default: 10
requirements:
  - python3-rados (the C(rados) Python binding of librados) on the managed host.
notes:
  - The modules talk to the cluster through librados (C(mon_command) with JSON); they never run
    the C(ceph) command line tool.
'''
