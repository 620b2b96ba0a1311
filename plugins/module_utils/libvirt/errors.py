# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the libvirt module_utils raise; modules turn it into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class LibvirtModuleError(Exception):
    """Bad input or a libvirt failure, with a message fit for the user."""

    def __init__(self, msg, **details):
        super(LibvirtModuleError, self).__init__(msg)
        self.msg = msg
        self.details = details
