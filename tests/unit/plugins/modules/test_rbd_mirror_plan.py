"""Pure functions of module_utils/ceph/mirror.py (rbd_mirror): parameter checks, intervals, the
bootstrap token, status descriptions, role and resync decisions, and the module's documentation."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from ansible_collections.hospital.cloud.plugins.module_utils.ceph import mirror
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError
from ansible_collections.hospital.cloud.plugins.modules import rbd_mirror

TOKEN = base64.b64encode(json.dumps({"fsid": "0d5c0f3e-1111-2222-3333-444455556666", "client_id": "rbd-mirror-peer",
                                     "key": "AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g==",
                                     "mon_host": "[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0]"}).encode()).decode()


def params(**kw):
    spec = rbd_mirror.argument_spec()
    p = dict((k, v.get("default")) for k, v in spec.items())
    p.update(pool="vms")
    p.update(kw)
    return p


@pytest.mark.parametrize("text,minutes", [("1m", 1), ("15m", 15), ("2h", 120), ("1d", 1440), (" 5m ", 5)])
def test_interval_minutes(text, minutes):
    assert mirror.interval_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", None, "0m", "5", "5x", "1.5h", "-1m", "m", "1 m", "10000000m"])
def test_bad_intervals_are_refused(text):
    with pytest.raises(ValueError, match="is not a number with a unit"):
        mirror.interval_minutes(text)


@pytest.mark.parametrize("minutes,text", [(1, "1m"), (59, "59m"), (60, "1h"), (90, "90m"), (1440, "1d"),
                                          (2880, "2d")])
def test_interval_text_is_the_mgr_spelling(minutes, text):
    assert mirror.interval_text(minutes) == text
    assert mirror.interval_minutes(text) == minutes


def test_token_decodes():
    assert mirror.decode_token(TOKEN)["fsid"].startswith("0d5c0f3e")


@pytest.mark.parametrize("token", ["", "not base64!", base64.b64encode(b"not json").decode(),
                                   base64.b64encode(b'{"fsid": "x"}').decode(), base64.b64encode(b"[1]").decode()])
def test_bad_token_message_never_echoes_it(token):
    with pytest.raises(ModuleError) as exc:
        mirror.decode_token(token)
    assert "not an rbd-mirror bootstrap token" in exc.value.msg
    assert not token or token not in exc.value.msg


@pytest.mark.parametrize("kw,msg", [
    (dict(pool="bad/pool"), "invalid pool name"),
    (dict(images=["ok", "bad image"]), "invalid image name"),
    (dict(site_name="site a"), "invalid site_name"),
    (dict(schedule_interval="5x"), "is not a number with a unit"),
    (dict(schedule_interval="1m", schedule_level="image"), "needs the images"),
    (dict(images=["a"], force=True), "force: true only applies"),
    (dict(images=["a"], role="secondary", force=True), "force: true only applies"),
    (dict(images=["a"], role="primary", resync=True), "cannot be combined with role: primary"),
    (dict(role="primary"), "images is empty"),
    (dict(resync=True), "images is empty"),
    (dict(peer_token=TOKEN, peer_token_create=True), "mutually exclusive"),
    (dict(peer_token="garbage"), "not an rbd-mirror bootstrap token"),
])
def test_problems(kw, msg):
    if msg == "not an rbd-mirror bootstrap token":
        with pytest.raises(ModuleError, match=msg):
            mirror.problem(params(**kw))
    else:
        assert msg in mirror.problem(params(**kw))


@pytest.mark.parametrize("kw", [
    dict(), dict(images=["a"], role="primary", force=True), dict(images=["a"], role="secondary", resync=True),
    dict(images=["a"], resync=True), dict(schedule_interval="1h", schedule_level="image", images=["a"]),
    dict(peer_token=TOKEN), dict(peer_token_create=True, site_name="site-a"),
])
def test_fine_parameters(kw):
    assert mirror.problem(params(**kw)) is None


def test_parse_description():
    words, stats = mirror.parse_description(
        'replaying, {"bytes_per_second":0.0,"local_snapshot_timestamp":1796452560,"replay_state":"idle"}')
    assert words == "replaying" and stats["local_snapshot_timestamp"] == 1796452560
    assert mirror.parse_description("local image is primary") == ("local image is primary", {})
    assert mirror.parse_description("odd, {not json") == ("odd, {not json", {})
    assert mirror.parse_description(None) == ("", {})


@pytest.mark.parametrize("want,primary,step", [
    (None, True, None), (None, False, None), ("primary", True, None), ("primary", False, "promote"),
    ("secondary", True, "demote"), ("secondary", False, None)])
def test_role_steps(want, primary, step):
    assert mirror.role_steps(want, primary) == step


@pytest.mark.parametrize("snap,why", [
    ({"state": "non_primary_demoted", "complete": True}, None),
    ({"state": "non_primary_demoted", "complete": False}, "still being copied"),
    ({"state": "non_primary", "complete": True}, "has not demoted it"),
    ({"state": "primary_demoted", "complete": True}, "would discard the peer's writes"),
    (None, "no mirror snapshot"),
])
def test_planned_promotion_only_after_the_peers_demotion_is_synced(snap, why):
    got = mirror.promote_refusal(snap)
    assert got is None if why is None else why in got


@pytest.mark.parametrize("remotes,why", [
    ([{"state": "replaying", "up": True, "summary": "replaying"}], None),
    ([{"state": "replaying", "up": False, "summary": "replaying"}], "does not replay it yet: replaying"),
    ([{"state": "stopped", "up": True, "summary": "local image is primary"}], "stopped (local image is primary)"),
    ([{"state": "unknown", "up": True, "summary": "remote image is not primary"}], "remote image is not primary"),
    ([], "no status from the peer"),
    (None, "no status from the peer"),
])
def test_planned_demotion_only_while_the_peer_replays(remotes, why):
    got = mirror.demote_refusal(remotes)
    assert got is None if why is None else why in got


@pytest.mark.parametrize("demoted,primary_after,state,resync", [
    (True, False, "stopped", True),       # failback: demote and resync in one run
    (False, False, "error", True),        # split brain reported by the local rbd-mirror
    (False, False, "replaying", False),   # healthy secondary: nothing to resync (second run)
    (False, False, "syncing", False),     # resync in progress
    (False, True, "error", False),        # never on a primary
])
def test_needs_resync(demoted, primary_after, state, resync):
    assert mirror.needs_resync(demoted, primary_after, state) is resync


def test_documentation_matches_argument_spec_and_returns():
    doc = yaml.safe_load(rbd_mirror.DOCUMENTATION)
    spec = rbd_mirror.argument_spec()
    own = set(spec) - {"cluster", "conf", "client", "keyring", "connect_timeout"}
    assert own == set(doc["options"])
    for name in own:
        assert doc["options"][name]["type"] == spec[name]["type"], name
        assert doc["options"][name].get("default") == spec[name].get("default"), name
        assert doc["options"][name].get("choices") == spec[name].get("choices"), name
    assert spec["peer_token"]["no_log"] is True
    assert set(yaml.safe_load(rbd_mirror.RETURN)) == {"pool", "images", "peer_token", "calls"}
    assert yaml.safe_load(rbd_mirror.EXAMPLES)
