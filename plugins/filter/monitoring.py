# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.monitoring_targets, monitoring_vms_expected and monitoring_silence_ids (docs in the .yml files
next to this file). The logic is in plugins/plugin_utils/monitoring; bad input becomes one AnsibleFilterError."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.monitoring import targets


def _filter(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except targets.MonitoringInputError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return wrapper


class FilterModule:
    """Monitoring filters."""

    def filters(self):
        return {
            "monitoring_targets": _filter(targets.scrape_jobs),
            "monitoring_vms_expected": _filter(targets.vms_expected),
            "monitoring_silence_ids": _filter(targets.silence_ids),
        }
