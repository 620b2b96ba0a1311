# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ceph monitor addresses as the monmap and `mon host` write them."""

from __future__ import annotations

import ipaddress
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


def _in_network(address, network):
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


def mon_addresses(hostvars, monitors, public_network):
    """{monitor: public address, '' when unknown}, in monitor order.

    A monitor's address is the one the ceph role found for it in this run (__ceph_public_address), else
    the inventory's ceph_public_address, else its ansible_host when that lies inside public_network: a
    monitor unreachable in this run keeps its place in ceph.conf. Raises ValueError on bad input.
    """
    if not isinstance(hostvars, Mapping):
        raise ValueError("ceph_mon_addresses: the input must be hostvars (host -> variables)")
    if isinstance(monitors, str) or not isinstance(monitors, (list, tuple)):
        raise ValueError("ceph_mon_addresses: monitors must be a list of hosts, got %r" % (monitors,))
    try:
        network = ipaddress.ip_network(public_network, strict=False)
    except (TypeError, ValueError):
        raise ValueError("ceph_mon_addresses: public_network must be a network in CIDR notation, got %r"
                         % (public_network,)) from None
    out = {}
    for host in monitors:
        hv = hostvars[host] if host in hostvars else {}
        listed = str(hv.get("ansible_host", host))
        out[host] = (hv.get("__ceph_public_address") or hv.get("ceph_public_address")
                     or (listed if _in_network(listed, network) else ""))
    return out
