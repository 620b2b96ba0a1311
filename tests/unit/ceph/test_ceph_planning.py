"""Pure functions of module_utils/ceph: pool planning/validation, image sizes/features, key text,
and the RETURN documentation of each module against the keys the code returns."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, image, key, pool
from ansible_collections.hospital.cloud.plugins.modules import ceph_info, ceph_key, ceph_pool, rbd_image

from refusals import refusal


HAVE = {"pool_type": "replicated", "erasure_profile": None, "size": 3, "min_size": 2,
        "crush_rule": "replicated_rule", "pg_autoscale_mode": "off", "pg_num": 8, "pgp_num": 8,
        "target_size_ratio": 0.0, "compression_mode": "none", "max_bytes": 0, "max_objects": 0,
        "application": ["rbd"]}


def params(**kw):
    p = dict((k, None) for k in ceph_pool.argument_spec())
    p.update(state="present", allow_delete=False, allow_size_one=False, allow_min_size_one=False, name="vms")
    p.update(kw)
    return p


def test_nothing_to_do_when_equal():
    assert pool.plan("vms", pool.desired(params(**{k: v for k, v in HAVE.items()
                                                   if k in pool.MANAGED})), HAVE) == ([], [], HAVE)


def test_size_change_resets_min_size_so_min_size_follows():
    cmds, warnings, after = pool.plan("vms", {"size": 2, "min_size": 2}, HAVE)
    assert [(c["var"], c["val"]) for c in cmds] == [("size", "2"), ("min_size", "2")]
    assert after["size"] == 2 and after["min_size"] == 2


def test_size_one_is_forced_and_min_size_above_size_refused():
    cmds, warnings, after = pool.plan("vms", {"size": 1}, HAVE)
    assert cmds[0]["yes_i_really_mean_it"] is True
    with pytest.raises(ModuleError, match="cannot be greater than the size"):
        pool.plan("vms", {"min_size": 4}, HAVE)


@pytest.mark.parametrize("mode,expected", [("on", []), ("warn", [("pg_num", "16")]), ("off", [("pg_num", "16")])])
def test_pg_num_against_autoscaler(mode, expected):
    cmds, warnings, after = pool.plan("vms", {"pg_num": 16}, dict(HAVE, pg_autoscale_mode=mode))
    assert [(c["var"], c["val"]) for c in cmds] == expected
    assert after["pg_num"] == (8 if mode == "on" else 16)
    assert bool(warnings) == (mode == "on")


def test_pgp_num_follows_pg_num():
    cmds, warnings, after = pool.plan("vms", {"pg_num": 16, "pgp_num": 16}, HAVE)
    assert [c["var"] for c in cmds] == ["pg_num"] and after["pgp_num"] == 16


def test_applications_exact_set_second_needs_flag():
    cmds, warnings, after = pool.plan("vms", {"application": ["rados", "rgw"]}, HAVE)
    assert [(c["prefix"].split()[-1], c["app"], c.get("yes_i_really_mean_it")) for c in cmds] == [
        ("enable", "rados", True), ("enable", "rgw", True), ("disable", "rbd", True)]
    assert after["application"] == ["rados", "rgw"]


def test_create_command_and_check_mode_prediction():
    p = params(size=2, min_size=1, pg_num=8, application=["rbd"])
    want = pool.desired(p)
    cmd = pool.create_command("vms", want, p)
    assert cmd == {"prefix": "osd pool create", "pool": "vms", "pool_type": "replicated", "pg_num": 8, "size": 2}


@pytest.mark.parametrize("kw,msg", [
    ({"name": "a b"}, "invalid pool name"), ({"size": 3, "min_size": 4}, "min_size"),
    ({"size": 1}, "allow_size_one"), ({"max_bytes": -1}, "max_bytes"), ({"pool_type": "erasure"}, "erasure_profile"),
    ({"erasure_profile": "x"}, "only valid"), ({"pool_type": "erasure", "erasure_profile": "x", "size": 3}, "k+m"),
    ({"application": []}, "at least one"), ({"pg_num": 8, "pgp_num": 9}, "pgp_num"),
])
def test_pool_validation(kw, msg):
    assert msg in refusal(pool.validate, params(**kw))


def test_pool_validation_accepts_good_input_and_absent():
    assert refusal(pool.validate, params(size=3, min_size=2, pg_num=32, application=["rbd"])) is None
    assert refusal(pool.validate, params(state="absent", size=1)) is None


def test_observed_reads_targets_and_options():
    raw = {"pool_name": "vms", "type": 1, "size": 3, "min_size": 2, "crush_rule": 0, "pg_autoscale_mode": "on",
           "pg_num": 12, "pg_num_target": 16, "pg_placement_num": 12, "pg_placement_num_target": 16,
           "quota_max_bytes": 5, "quota_max_objects": 0, "erasure_code_profile": "",
           "options": {"compression_mode": "force", "target_size_ratio": 0.5}, "application_metadata": {"rbd": {}}}
    obs = pool.observed(raw, {0: "replicated_rule"})
    got = (obs["pg_num"], obs["pgp_num"], obs["compression_mode"], obs["crush_rule"])
    assert got == (16, 16, "force", "replicated_rule")


@pytest.mark.parametrize("text,size", [("1024", 1024), ("10G", 10 << 30), ("512MiB", 512 << 20), ("1.5K", 1536)])
def test_parse_size(text, size):
    assert image.parse_size(text) == size


def test_parse_size_rejects():
    with pytest.raises(ValueError):
        image.parse_size("ten gigs")


def test_feature_plan_order_and_immutables():
    steps = image.plan_features("d", ["layering", "exclusive-lock", "object-map", "fast-diff"], ["layering"])
    assert steps == [("exclusive-lock", True), ("object-map", True), ("fast-diff", True)]
    steps = image.plan_features("d", ["layering"], ["layering", "exclusive-lock", "object-map"])
    assert steps == [("object-map", False), ("exclusive-lock", False)]
    with pytest.raises(ModuleError, match="layering"):
        image.plan_features("d", [], ["layering"])
    assert image.feature_names(image.feature_mask(["layering", "deep-flatten"])) == ["layering", "deep-flatten"]


def test_keyring_text_and_caps():
    assert key.keyring_text("client.x", "KEY", {"osd": "profile rbd", "mon": "profile rbd"}) == (
        '[client.x]\n\tkey = KEY\n\tcaps mon = "profile rbd"\n\tcaps osd = "profile rbd"\n')
    assert key.normalize_caps({"mon": " profile   rbd "}) == {"mon": "profile rbd"}
    assert key.caps_args({"osd": "b", "mon": "a"}) == ["mon", "a", "osd", "b"]
    assert refusal(key.validate, {"name": "client.x", "caps": {"mon": "allow r"}}) is None
    assert "invalid entity" in refusal(key.validate, {"name": "x", "caps": None})


def test_redact_hides_secrets():
    assert client.redact({"prefix": "auth import", "key": "AQ..."})["key"] == "********"


@pytest.mark.parametrize("mod,keys", [(ceph_pool, {"pool", "calls"}), (rbd_image, {"image", "calls"}),
                                      (ceph_key, {"entity", "caps", "keyring", "key", "calls"}),
                                      (ceph_info, {"fsid", "calls", "health", "osd_tree", "osd_dump", "pools",
                                                   "monitors", "quorum", "pool_exists", "images"})])
def test_return_docs_match_code(mod, keys):
    assert set(yaml.safe_load(mod.RETURN)) == keys
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert set(doc["attributes"]) == {"check_mode", "diff_mode", "idempotent"}
