"""hospital.cloud.ceph_release_plan: the Ceph major a host installs; every refusal and the allowed paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter import ceph_release
from ansible_collections.hospital.cloud.plugins.filter.ceph_release import ceph_release_plan, package_major

REPO = {"url": "https://download.ceph.com/debian-reef", "signing_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----"}
ROLE = Path(__file__).resolve().parents[3] / "roles" / "ceph"


def versions(*majors_and_types):
    """A `ceph versions --format json` for (daemon type, major) pairs, with the 'overall' section."""
    line = {16: "ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)",
            17: "ceph version 17.2.8 (f817ceb7f187defb1d021d6328fa833eb8e943b3) quincy (stable)",
            18: "ceph version 18.2.7 (6b0e988052ec84cf2d4a54ff9bbbc5e720b621ad) reef (stable)",
            19: "ceph version 19.2.2 (0eceb0defba60152a8182f7bd87d164b639885b8) squid (stable)"}
    out = {}
    for daemon, major in majors_and_types:
        out.setdefault(daemon, {}).setdefault(line[major], 0)
        out[daemon][line[major]] += 3
        out.setdefault("overall", {}).setdefault(line[major], 0)
        out["overall"][line[major]] += 3
    return out


def plan(candidate, running=None, release="", os_release=16, upgrade=False, **kw):
    kw.setdefault("os_name", "Debian 12" if str(os_release) in ("16", "pacific") else "Debian 13")
    return ceph_release_plan(candidate, running if running is not None else {}, release, os_release, upgrade, **kw)


def refused(result, *fragments):
    assert result["ok"] is False, result
    for fragment in fragments:
        assert fragment in result["error"], (fragment, result["error"])
    return result["error"]


# ---- package versions ----

@pytest.mark.parametrize("version, major", [
    ("16.2.15+ds-0+deb12u1", 16),        # Debian 12
    ("18.2.7+ds-1+deb13u1", 18),         # Debian 13
    ("18.2.4-1~bpo12+1", 18),            # bookworm-backports
    ("2:18.2.7-1", 18),                  # with an epoch
    ("19.2.2-1bookworm", 19),            # download.ceph.com
    ("17.2.8-1~bpo12+1", 17),
    ("  16.2.15  ", 16),
    ("", None), ("(none)", None), (None, None),
])
def test_package_major(version, major):
    assert package_major(version) == major


@pytest.mark.parametrize("version", ["ceph", "x16.2", "16", "abc:16.2.1"])
def test_package_major_unreadable(version):
    with pytest.raises(ValueError, match="cannot read a Ceph release"):
        package_major(version)


def test_unreadable_candidate_is_a_refusal():
    refused(plan("garbage"), "cannot read a Ceph release", "'garbage'")


# ---- allowed ----

def test_fresh_bookworm_installs_pacific():
    result = plan("16.2.15+ds-0+deb12u1")
    assert result == {"major": 16, "codename": "pacific", "ok": True, "error": None, "notes": [], "running": [],
                      "installed": None, "candidate": 16}


def test_fresh_trixie_installs_reef():
    result = plan("18.2.7+ds-1+deb13u1", os_release=18)
    assert (result["ok"], result["major"], result["codename"], result["candidate"]) == (True, 18, "reef", 18)


def test_os_release_as_codename_or_text():
    assert plan("18.2.7+ds-1+deb13u1", os_release="reef")["ok"]
    assert plan("18.2.7+ds-1+deb13u1", os_release="18")["major"] == 18


def test_converged_cluster_same_major():
    running = versions(("mon", 16), ("mgr", 16), ("osd", 16))
    result = plan("16.2.15+ds-0+deb12u1", running, installed_version="16.2.15+ds-0+deb12u1")
    assert result["ok"] and result["running"] == [16] and result["installed"] == 16


def test_explicit_release_equal_to_debians_needs_no_repository():
    assert plan("16.2.15+ds-0+deb12u1", release="pacific")["ok"]


def test_other_release_with_repository_on_a_fresh_cluster():
    result = plan("18.2.4-1~bpo12+1", release="reef", repository=REPO)
    assert result["ok"] and result["major"] == 18


def test_older_release_than_debians_with_repository_on_fresh_trixie():
    assert plan("17.2.8-1", release="quincy", os_release=18, repository=REPO)["ok"]


def test_upgrade_16_to_18_with_ceph_upgrade():
    running = versions(("mon", 16), ("mgr", 16), ("osd", 16))
    result = plan("2:18.2.7-1", running, release="reef", upgrade=True, repository=REPO,
                  installed_version="16.2.15+ds-0+deb12u1")
    assert result["ok"] and result["running"] == [16] and result["installed"] == 16 and result["candidate"] == 18


def test_mixed_16_and_18_during_the_upgrade_is_allowed():
    running = versions(("mon", 18), ("mgr", 18), ("osd", 16))
    assert plan("18.2.7-1bookworm", running, release="reef", upgrade=True, repository=REPO)["ok"]


def test_upgrade_by_one_release():
    assert plan("17.2.8-1", versions(("mon", 16)), release="quincy", upgrade=True, repository=REPO)["ok"]


def test_upgrade_flag_without_an_upgrade_changes_nothing():
    assert plan("16.2.15+ds-0+deb12u1", versions(("mon", 16)), upgrade=True)["ok"]


# ---- refusals ----

def test_unknown_codename_names_the_choices():
    error = refused(plan("16.2.15+ds-0+deb12u1", release="tentacle"), "ceph_release=tentacle",
                    "pacific, quincy, reef, squid", "Debian 12 ships, pacific")
    assert "''" in error


def test_other_release_without_repository():
    refused(plan("18.2.4-1~bpo12+1", release="reef"),
            "Debian 12 ships Ceph 16 (pacific); ceph_release=reef needs ceph_repository")


def test_other_release_without_repository_on_trixie():
    refused(plan("19.2.2-1", release="squid", os_release=18),
            "Debian 13 ships Ceph 18 (reef); ceph_release=squid needs ceph_repository")


def test_running_16_installing_18_without_upgrade():
    running = versions(("mon", 16), ("osd", 16))
    error = refused(plan("18.2.7+ds-1+deb13u1", running, os_release=18))
    assert error == ("the cluster runs Ceph 16 (pacific) daemons; installing 18 (reef) mixes major releases: "
                     "run playbooks/upgrade.yml (ceph_upgrade=true)")


def test_mixed_16_and_18_without_upgrade():
    running = versions(("mon", 18), ("osd", 16))
    refused(plan("18.2.7-1", running, release="reef", repository=REPO),
            "the cluster runs Ceph 16 (pacific) and 18 (reef) daemons", "mixes major releases",
            "playbooks/upgrade.yml (ceph_upgrade=true)")


@pytest.mark.parametrize("upgrade", [False, True])
def test_downgrade_below_the_running_major_is_always_refused(upgrade):
    running = versions(("mon", 18), ("osd", 18))
    refused(plan("16.2.15+ds-0+deb12u1", running, upgrade=upgrade), "runs Ceph 18 (reef) daemons",
            "installing 16 (pacific) would be a downgrade")


def test_downgrade_below_the_highest_of_a_mixed_cluster():
    running = versions(("mon", 18), ("osd", 16))
    refused(plan("16.2.15+ds-0+deb12u1", running, upgrade=True), "would be a downgrade", "reef or later")


@pytest.mark.parametrize("upgrade", [False, True])
def test_downgrade_of_the_installed_package_is_always_refused(upgrade):
    refused(plan("16.2.15+ds-0+deb12u1", upgrade=upgrade, installed_version="18.2.4-1~bpo12+1"),
            "ceph-common 18.2.4-1~bpo12+1 (Ceph 18, reef) is installed on this host", "would be a downgrade")


def test_installed_older_major_without_upgrade():
    refused(plan("18.2.7-1", release="reef", repository=REPO, installed_version="16.2.15+ds-0+deb12u1"),
            "ceph-common 16.2.15+ds-0+deb12u1 (Ceph 16, pacific) is installed on this host",
            "installing 18 (reef) mixes major releases", "ceph_upgrade=true")


@pytest.mark.parametrize("upgrade", [False, True])
def test_upgrade_skipping_more_than_two_releases(upgrade):
    running = versions(("mon", 16), ("osd", 16))
    refused(plan("19.2.2-1bookworm", running, release="squid", upgrade=upgrade, repository=REPO),
            "runs Ceph 16 (pacific) daemons", "19 (squid) is more than 2 releases newer", "upgrade to 18 (reef) first")


def test_skip_is_counted_from_the_oldest_running_daemon():
    running = versions(("mon", 18), ("osd", 16))
    refused(plan("19.2.2-1", running, release="squid", upgrade=True, repository=REPO), "more than 2 releases")


def test_installed_package_skipping_more_than_two_releases():
    refused(plan("19.2.2-1", release="squid", upgrade=True, repository=REPO, installed_version="16.2.15+ds-0"),
            "is installed on this host", "more than 2 releases newer")


def test_candidate_of_another_major_with_repository_names_repository_and_pin():
    refused(plan("16.2.15+ds-0+deb12u1", release="reef", repository=REPO),
            "apt would install ceph-common 16.2.15+ds-0+deb12u1 (Ceph 16, pacific), not Ceph 18 (reef)",
            REPO["url"], "/etc/apt/preferences.d/hospital-cloud-ceph")


def test_candidate_of_another_major_without_repository_names_the_foreign_source():
    refused(plan("18.2.4-1~bpo12+1"), "apt would install ceph-common 18.2.4-1~bpo12+1 (Ceph 18, reef)",
            "but Debian 12 ships Ceph 16 (pacific)", "backports", "ceph_release=reef")


@pytest.mark.parametrize("candidate", ["", "(none)"])
def test_no_candidate(candidate):
    refused(plan(candidate), "apt has no installation candidate for ceph-common", "apt sources")
    refused(plan(candidate, release="reef", repository=REPO), "no installation candidate", REPO["url"])


def test_the_first_refusal_wins():
    # unknown codename before anything else
    refused(plan("x", versions(("mon", 19)), release="octopus"), "ceph_release=octopus")
    # the cluster before the host's package and the candidate
    refused(plan("16.2.15", versions(("mon", 18)), installed_version="17.2.8-1"), "the cluster runs")


# ---- before the candidate is read, and check mode ----

def test_settings_check_without_candidate():
    # preflight: candidate not read yet (None) - only the settings, the cluster and the installed package count
    result = plan(None, release="reef", repository=REPO)
    assert result["ok"] and result["candidate"] is None and result["major"] == 18
    refused(plan(None, versions(("mon", 16)), release="reef", repository=REPO), "mixes major releases")


def test_check_mode_pending_candidate_is_a_note():
    result = plan("16.2.15+ds-0+deb12u1", release="reef", repository=REPO, pending=True)
    assert result["ok"] and result["candidate"] == 16
    assert len(result["notes"]) == 1 and "check mode" in result["notes"][0]
    result = plan("", release="reef", repository=REPO, pending=True)
    assert result["ok"] and "now: none" in result["notes"][0]


def test_pending_does_not_excuse_the_cluster_or_a_right_candidate_needs_no_note():
    refused(plan("16.2.15", versions(("mon", 18)), pending=True), "downgrade")
    assert plan("16.2.15+ds-0+deb12u1", pending=True)["notes"] == []


# ---- bad input ----

@pytest.mark.parametrize("running, match", [
    (["not", "a", "dict"], "running_versions must be the JSON of `ceph versions"),
    ({"mon": "ceph version 16.2.15"}, "running_versions must be the JSON"),
])
def test_bad_running_versions(running, match):
    with pytest.raises(AnsibleFilterError, match=match):
        ceph_release_plan("16.2.15", running, "", 16)


def test_unreadable_daemon_version_is_a_refusal():
    refused(ceph_release_plan("16.2.15", {"mon": {"ceph version Development (no_version)": 1}}, "", 16),
            "cannot read a Ceph release from `ceph versions` (mon)")


def test_no_cluster_as_none_or_empty():
    assert ceph_release_plan("16.2.15", None, "", 16)["ok"]
    assert ceph_release_plan("16.2.15", {}, "", 16)["ok"]


def test_daemons_with_zero_count_do_not_count():
    running = {"osd": {"ceph version 18.2.7 (x) reef (stable)": 0, "ceph version 16.2.15 (x) pacific (stable)": 3}}
    assert plan("16.2.15", running)["running"] == [16]


@pytest.mark.parametrize("os_release", ["", "debian", 12, "octopusx"])
def test_bad_os_release(os_release):
    with pytest.raises(AnsibleFilterError, match="os_release must be the Ceph major release"):
        ceph_release_plan("16.2.15", {}, "", os_release)


# ---- registration, documentation, role data ----

def test_registered_and_documented():
    assert ceph_release.FilterModule().filters() == {"ceph_release_plan": ceph_release_plan}
    doc = yaml.safe_load(Path(ceph_release.__file__).with_name("ceph_release_plan.yml").read_text(encoding="utf-8"))
    assert doc["DOCUMENTATION"]["name"] == "ceph_release_plan"
    assert set(doc["RETURN"]["_value"]["contains"]) == set(plan("16.2.15"))
    options = set(doc["DOCUMENTATION"]["options"]) - {"_input"}
    code = ceph_release_plan.__code__
    assert options == set(code.co_varnames[1:code.co_argcount])


def test_codenames_match_the_role_choices():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert specs["ceph_release"]["choices"] == [""] + list(ceph_release.RELEASES)


@pytest.mark.parametrize("platform, major", [("Debian-12", 16), ("Debian-13", 18)])
def test_role_vars_per_debian_release(platform, major):
    data = yaml.safe_load((ROLE / "vars" / (platform + ".yml")).read_text())
    assert data["__ceph_os_release"] == major
    main = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert platform in main["__ceph_supported_platforms"]
