# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster filters (docs in <filter name>.yml next to this file): cluster_problems, cluster_fencing,
cluster_vm_problems, cluster_vm_resources, cluster_wanted,
cluster_node_utilization. The logic is in plugins/plugin_utils/cluster; here every
ClusterInputError becomes an AnsibleFilterError."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.cluster import cib


def _filter(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except cib.ClusterInputError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return wrapper


class FilterModule:
    """Cluster filters."""

    def filters(self):
        return {
            "cluster_problems": _filter(cib.cluster_problems),
            "cluster_fencing": _filter(cib.cluster_fencing),
            "cluster_vm_problems": _filter(cib.cluster_vm_problems),
            "cluster_vm_resources": _filter(cib.cluster_vm_resources),
            "cluster_wanted": _filter(cib.cluster_wanted),
            "cluster_node_utilization": _filter(cib.cluster_node_utilization),
        }
