# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Connection options shared by the libvirt modules."""

    DOCUMENTATION = r"""
options:
  uri:
    description:
      - libvirt connection URI of the host to manage.
      - C(qemu:///system) on the host itself (the usual case, the task runs on the KVM host);
        C(test:///default) is libvirt's in-memory test driver.
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (Debian package C(python3-libvirt)) on the managed host
notes:
  - The module talks to libvirtd through libvirt-python; it fails with a clear message when that
    library cannot be imported by the Python interpreter Ansible uses on the host.
"""
