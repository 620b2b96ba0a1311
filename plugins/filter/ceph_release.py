# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.ceph_release_plan: which Ceph major release a host installs, and whether it may (docs in
ceph_release_plan.yml next to this file)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# the releases ceph_release may name
RELEASES = {"pacific": 16, "quincy": 17, "reef": 18, "squid": 19}
# every codename a cluster or a package may report (messages only)
CODENAMES = {14: "nautilus", 15: "octopus", 16: "pacific", 17: "quincy", 18: "reef", 19: "squid", 20: "tentacle"}
# Ceph upgrades by at most two major releases at a time (16 -> 18, not 16 -> 19)
MAX_STEP = 2
UPGRADE = "run playbooks/upgrade.yml (ceph_upgrade=true)"
PIN = "/etc/apt/preferences.d/hospital-cloud-ceph"

# a Debian package version: [epoch:]upstream[-revision]; the major is the upstream version's first number
_PKG_RE = re.compile(r"^\s*(?:[0-9]+:)?([0-9]+)\.[0-9]")
# a key of `ceph versions`: "ceph version 18.2.7 (<sha1>) reef (stable)"
_DAEMON_RE = re.compile(r"^\s*ceph version (?:[0-9]+:)?([0-9]+)\.[0-9]")


def package_major(version):
    """The Ceph major of a Debian package version (16 for 16.2.15+ds-0+deb12u1, 18 for 2:18.2.7-1), or None
    where apt has none ('' or '(none)'). Anything else raises ValueError."""
    text = "" if version is None else str(version).strip()
    if text in ("", "(none)"):
        return None
    match = _PKG_RE.match(text)
    if not match:
        raise ValueError("cannot read a Ceph release from the package version %r" % text)
    return int(match.group(1))


def running_majors(versions):
    """The sorted Ceph majors of the daemons in `ceph versions --format json` ({} or None: no cluster)."""
    if versions in (None, ""):
        return []
    if not isinstance(versions, dict) or not all(isinstance(v, dict) for v in versions.values()):
        raise AnsibleFilterError("ceph_release_plan: running_versions must be the JSON of `ceph versions --format "
                                 "json` ({daemon type: {version: count}}), or {} without a cluster")
    majors = set()
    for daemon_type, counts in versions.items():
        for key, count in counts.items():
            match = _DAEMON_RE.match(str(key))
            if not match:
                raise ValueError("cannot read a Ceph release from `ceph versions` (%s): %r" % (daemon_type, key))
            if count:
                majors.add(int(match.group(1)))
    return sorted(majors)


def _named(major):
    """16 (pacific)"""
    return "%d (%s)" % (major, CODENAMES.get(major, "unknown"))


def _ceph(major):
    """Ceph 16, pacific"""
    return "Ceph %d, %s" % (major, CODENAMES.get(major, "unknown"))


def _os_major(os_release):
    """The distribution's Ceph major from a number (16, '16') or a codename ('pacific')."""
    text = str(os_release).strip().lower()
    if text in RELEASES:
        return RELEASES[text]
    if text.isdigit() and int(text) in CODENAMES:
        return int(text)
    raise AnsibleFilterError("ceph_release_plan: os_release must be the Ceph major release the distribution ships "
                             "(for example 16 or pacific), got %r" % (os_release,))


def _wanted(release, os_major, os_name, repository):
    """(major, error) for ceph_release."""
    release = "" if release is None else str(release).strip().lower()
    if release and release not in RELEASES:
        return None, ("ceph_release=%s is not a Ceph release this role installs: choose '' (the release %s ships, "
                      "%s) or one of %s" % (release, os_name, CODENAMES[os_major], ", ".join(RELEASES)))
    major = RELEASES[release] if release else os_major
    if major != os_major and not repository:
        return major, ("%s ships Ceph %s; ceph_release=%s needs ceph_repository (an apt repository with Ceph %s "
                       "packages for this Debian release)" % (os_name, _named(os_major), release, _named(major)))
    return major, None


def _against(majors, major, upgrade, subject):
    """The error for installing `major` where `subject` (e.g. 'the cluster runs Ceph 16 (pacific) daemons') runs
    or holds the sorted `majors`, or None."""
    if not majors:
        return None
    if majors[-1] > major:
        return ("%s; installing %s would be a downgrade, which Ceph does not support: keep ceph_release at %s or "
                "later" % (subject, _named(major), CODENAMES.get(majors[-1], majors[-1])))
    if major - majors[0] > MAX_STEP:
        return ("%s; %s is more than %d releases newer (Ceph upgrades by at most %d major releases at a time): "
                "upgrade to %s first" % (subject, _named(major), MAX_STEP, MAX_STEP, _named(majors[0] + MAX_STEP)))
    if majors != [major] and not upgrade:
        return "%s; installing %s mixes major releases: %s" % (subject, _named(major), UPGRADE)
    return None


def _candidate(candidate_version, major, os_major, os_name, repository, pending):
    """(candidate major, error, note) for the version apt would install."""
    candidate = package_major(candidate_version)
    if candidate == major:
        return candidate, None, None
    if pending:
        return candidate, None, (
            "check mode: the apt sources of this run (ceph_repository, the refreshed package lists) are not in place "
            "yet, so apt cannot tell which ceph-common it would install (now: %s); a real run checks it after "
            "configuring them" % (candidate_version or "none"))
    url = (repository or {}).get("url", "") if isinstance(repository, dict) else ""
    if candidate is None:
        if repository:
            return None, ("apt has no installation candidate for ceph-common: ceph_repository %s does not provide "
                          "it for this host's suite, or apt could not read it (see apt-get update)" % url), None
        return None, ("apt has no installation candidate for ceph-common: the host's apt sources do not provide it "
                      "(see apt-get update; is Debian's main archive in /etc/apt/sources.list(.d)?)"), None
    if repository:
        return candidate, (
            "apt would install ceph-common %s (%s), not Ceph %s: ceph_repository %s does not provide Ceph %s "
            "packages for this host's suite, or the pin %s is missing" % (
                candidate_version, _ceph(candidate), _named(major), url, major, PIN)), None
    return candidate, (
        "apt would install ceph-common %s (%s), but %s ships Ceph %s: an apt source or pin outside this role "
        "(backports, a third-party repository, /etc/apt/preferences.d) overrides Debian's packages; remove it, or "
        "declare it as ceph_repository with ceph_release=%s" % (
            candidate_version, _ceph(candidate), os_name, _named(os_major), CODENAMES.get(candidate, candidate))), None


def ceph_release_plan(candidate_version, running_versions, release, os_release, upgrade=False, repository=None,
                      installed_version="", os_name="", pending=False):
    """The Ceph major release this host installs and whether it may.

    candidate_version: the version apt would install of ceph-common (None: not read yet, the rule is skipped);
    running_versions: `ceph versions --format json` ({} without a cluster); release: ceph_release ('' or a
    codename); os_release: the major the distribution ships; upgrade: ceph_upgrade; repository: ceph_repository;
    installed_version: ceph-common installed on this host ('' none); os_name: e.g. 'Debian 12' (messages);
    pending: check mode with the apt sources not yet in place (a missing or other candidate is a note).
    Returns {major, codename, ok, error, notes, running, installed, candidate}; the first refusal is the error.
    """
    os_major = _os_major(os_release)
    os_name = str(os_name or "this Debian release")
    plan = {"major": None, "codename": None, "ok": False, "error": None, "notes": [], "running": [],
            "installed": None, "candidate": None}
    major, error = _wanted(release, os_major, os_name, repository)
    if major is not None:
        plan.update(major=major, codename=CODENAMES[major])
    try:
        if error is None:
            plan["running"] = running_majors(running_versions)
            error = _against(plan["running"], major, bool(upgrade), "the cluster runs Ceph %s daemons"
                             % " and ".join(_named(m) for m in plan["running"]))
        if error is None:
            installed = package_major(installed_version)
            plan["installed"] = installed
            if installed is not None:
                error = _against([installed], major, bool(upgrade), "ceph-common %s (%s) is installed on this host"
                                 % (str(installed_version).strip(), _ceph(installed)))
        if error is None and candidate_version is not None:
            plan["candidate"], error, note = _candidate(candidate_version, major, os_major, os_name, repository,
                                                        bool(pending))
            if note:
                plan["notes"].append(note)
    except ValueError as exc:
        error = str(exc)
    plan["ok"] = error is None
    plan["error"] = error
    return plan


class FilterModule:
    """Ceph release filters."""

    def filters(self):
        return {"ceph_release_plan": ceph_release_plan}
