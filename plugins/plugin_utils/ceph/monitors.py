# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ceph monitor addresses as the monmap and `mon host` write them."""

from __future__ import annotations

from collections.abc import Mapping

MSGR2_PORT = 3300
MSGR1_PORT = 6789


def mon_addrvec(addresses, msgr_v1=False):
    """{monitor: '[v2:ADDR:3300]'} (with ',v1:ADDR:6789' inside the brackets when msgr_v1).

    addresses: {monitor: public address}. Raises ValueError for anything else or an empty address.
    """
    if not isinstance(addresses, Mapping):
        raise ValueError("ceph_mon_addrvec: the input must be a mapping {monitor: public address}, got %r"
                         % (addresses,))
    bad = sorted(str(h) for h, a in addresses.items() if not isinstance(a, str) or not a)
    if bad:
        raise ValueError("ceph_mon_addrvec: no address for monitor(s) %s" % ", ".join(bad))
    if not isinstance(msgr_v1, bool):
        raise ValueError("ceph_mon_addrvec: msgr_v1 must be a boolean, got %r" % (msgr_v1,))
    return dict((h, "[v2:%s:%d%s]" % (a, MSGR2_PORT, (",v1:%s:%d" % (a, MSGR1_PORT)) if msgr_v1 else ""))
                for h, a in addresses.items())


def admin_host(monitors, explicit="", exclude=()):
    """The one host the roles run Ceph admin operations on (admin keyring, python3-rados/rbd).

    explicit wins when set; else the first monitor not in exclude (the host under maintenance or being
    added). '' when there is none (the roles' preflight says so). Raises ValueError on bad input.
    """
    if not isinstance(explicit, str):
        raise ValueError("ceph_admin_host: explicit must be a host name, got %r" % (explicit,))
    if explicit:
        return explicit
    if isinstance(monitors, str) or not isinstance(monitors, (list, tuple)):
        raise ValueError("ceph_admin_host: the input must be the list of monitor hosts, got %r" % (monitors,))
    if isinstance(exclude, str):
        exclude = [exclude]
    return next((h for h in monitors if h not in exclude), "")
