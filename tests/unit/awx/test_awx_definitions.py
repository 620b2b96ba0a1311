"""The AWX job templates of playbooks/awx_setup.yml against the playbooks and roles they run.

AWX needs Kubernetes and cannot run here. These tests read the files as they are: every template's
playbook exists, every survey variable is an option a role of that playbook accepts (argument
specs; the capacity report's own play vars), with the same type, choices, required flag and
default, and the four jobs of issue #8 are there. The job_template task is rendered with Ansible's
templar, so the arguments checked are the ones the awx.awx modules would get.
"""

from __future__ import annotations

import pytest
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.template import trust_as_template
from dateutil.rrule import rrulestr

from awx_definitions import (REPO, SURVEY_TYPES, accepted_options, check_question, code_files, load_yaml, render,
                             rendered_calls, setup_play, setup_vars, tasks_using, unconverted_uses)

REQUIRED_JOBS = {
    "site.yml": "deploy site",
    "playbooks/maintenance.yml": "host maintenance",
    "playbooks/add_host.yml": "add host",
    "playbooks/capacity_report.yml": "capacity report",
}
DESTRUCTIVE = ("wipe", "destroy", "delete", "purge", "zap", "force")
PLAY = setup_play()
# values an operator must set (preflight asserts them); secrets set so every credential is rendered
VARS = setup_vars(PLAY, awx_setup_scm_url="https://git.hospital.example/it/hospital-cloud.git",
                  awx_setup_ee_image="registry.hospital.example/hospital-cloud-ee:0.1.0",
                  awx_setup_vault_password="not-a-secret", awx_setup_ceph_key="not-a-key")
TEMPLATES = VARS["awx_setup_job_templates"]


def _ids(templates):
    return [t["name"] for t in templates]


def test_the_four_jobs_of_issue_8_are_templates():
    by_playbook = {t["playbook"]: t["name"] for t in TEMPLATES}
    missing = {pb: job for pb, job in REQUIRED_JOBS.items() if pb not in by_playbook}
    assert not missing, "no job template runs %s" % missing
    for playbook, job in REQUIRED_JOBS.items():
        assert job in by_playbook[playbook], (playbook, by_playbook[playbook])
    names = _ids(TEMPLATES)
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_playbook_exists_in_the_project(template):
    # AWX runs `playbook` relative to the project (this repository) root
    path = REPO / template["playbook"]
    assert not template["playbook"].startswith("/") and ".." not in template["playbook"]
    assert path.is_file(), "%s: %s is not in the repository" % (template["name"], template["playbook"])
    assert isinstance(load_yaml(path), list), "%s is not a playbook" % template["playbook"]


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_survey_is_a_valid_awx_survey(template):
    seen = set()
    for q in template["survey"]:
        assert q.get("question_name") and q.get("variable"), q
        assert q["type"] in SURVEY_TYPES, q
        assert isinstance(q.get("required"), bool), q
        assert q["variable"] not in seen, "variable asked twice: %s" % q["variable"]
        seen.add(q["variable"])
        assert not q["variable"].startswith(("ansible_", "awx_", "tower_")), q["variable"]
        if q["type"] in ("multiplechoice", "multiselect"):
            choices = q.get("choices")
            assert isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices), q
            if q.get("default") not in (None, ""):
                assert q["default"] in choices, q
        if q["type"] in ("text", "textarea") and "min" in q:
            assert 0 <= q["min"] <= q.get("max", q["min"]), q


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_survey_variables_are_options_of_the_playbooks_roles(template):
    options = accepted_options(template["playbook"])
    problems = []
    for q in template["survey"]:
        var = q["variable"]
        if var not in options:
            problems.append("%s: not a variable %s accepts (its roles' argument specs / play vars)"
                            % (var, template["playbook"]))
            continue
        for option in options[var]:
            problems += ["%s vs %s: %s" % (var, option.source, p) for p in check_question(q, option.spec)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_boolean_answers_are_converted_where_used(template):
    # AWX passes "true"/"false" strings; ansible-core 2.19 refuses a string as a condition
    options = accepted_options(template["playbook"])
    bools = [q["variable"] for q in template["survey"]
             if any(o.spec.get("type") == "bool" for o in options.get(q["variable"], []))]
    problems = []
    for path in code_files(template["playbook"]) if bools else []:
        for var in bools:
            problems += ["%s %s" % (path.relative_to(REPO), use) for use in unconverted_uses(var, path.read_text())]
    assert not problems, "use `| bool`:\n" + "\n".join(problems)


def test_unconverted_uses_are_found():
    assert unconverted_uses("flag", "when: flag") == ["line 1: when: flag"]
    assert unconverted_uses("flag", 'x: "{{ flag | default(true) }}"')
    assert not unconverted_uses("flag", "when: flag | bool\nx: '{{ (flag | default(false) | bool) and y }}'")
    assert not unconverted_uses("flag", "flag: true  # a key, not a use\n# flag in a comment")


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids(TEMPLATES))
def test_destructive_choices_are_labelled_and_off_by_default(template):
    for q in template["survey"]:
        if any(word in q["variable"] for word in DESTRUCTIVE):
            assert q["question_name"].startswith("DESTROYS DATA"), q
            assert q.get("default") not in (None, "") and not boolean(q["default"]), q


def test_site_playbook_resolves_through_import_playbook():
    options = accepted_options("site.yml")
    for role in ("kvm_host", "ceph", "vm_guests", "imaging_worker"):
        assert any(o.source.startswith("hospital.cloud.%s " % role) for opts in options.values() for o in opts), role


def test_capacity_report_choices_come_from_the_placement_filter():
    options = accepted_options("playbooks/capacity_report.yml")
    assert options["capacity_report_strategy"][0].spec.get("choices") == ["pack", "spread"]
    assert options["capacity_report_reserve"][0].spec.get("choices") == ["none", "n+1"]


def test_job_templates_as_the_module_gets_them():
    calls = rendered_calls(PLAY, "awx.awx.job_template", VARS)
    assert [c["args"]["name"] for c in calls] == _ids(TEMPLATES)
    names = {
        "project": [c["args"]["name"] for c in rendered_calls(PLAY, "awx.awx.project", VARS)],
        "inventory": [c["args"]["name"] for c in rendered_calls(PLAY, "awx.awx.inventory", VARS)],
        "ee": [c["args"]["name"] for c in rendered_calls(PLAY, "awx.awx.execution_environment", VARS)],
        "credential": [c["args"]["name"] for c in rendered_calls(PLAY, "awx.awx.credential", VARS)],
    }
    for call in calls:
        args, item = call["args"], call["item"]
        assert args["playbook"] == item["playbook"]
        assert args["project"] in names["project"] and args["inventory"] in names["inventory"]
        assert args["execution_environment"] in names["ee"]
        assert args["credentials"] and set(args["credentials"]) <= set(names["credential"]), args["credentials"]
        assert args["survey_enabled"] is bool(item["survey"])
        assert args["survey_spec"] == ({"name": item["name"], "description": item["description"],
                                        "spec": item["survey"]} if item["survey"] else {})
        assert args["job_type"] == "run" and isinstance(args["allow_simultaneous"], bool)
    # without a vault password no vault credential is created, and none is attached
    no_vault = dict(VARS, awx_setup_vault_password="")
    for call in rendered_calls(PLAY, "awx.awx.job_template", no_vault):
        assert VARS["awx_setup_names"]["credential_vault"] not in call["args"]["credentials"]
    (vault_task,) = [t for t in tasks_using(PLAY, "awx.awx.credential") if t["awx.awx.credential"].get("credential_type") == "Vault"]
    assert "awx_setup_vault_password" in vault_task["when"]


def test_inventory_source_and_project_point_into_the_repository():
    (src,) = rendered_calls(PLAY, "awx.awx.inventory_source", VARS)
    assert src["args"]["source"] == "scm"
    assert (REPO / src["args"]["source_path"]).is_file(), src["args"]["source_path"]
    (project,) = rendered_calls(PLAY, "awx.awx.project", VARS)
    assert project["args"]["scm_url"] == VARS["awx_setup_scm_url"]
    assert project["args"]["default_environment"] == VARS["awx_setup_names"]["execution_environment"]


def test_credentials_hold_no_secret_and_are_never_logged():
    # the repository's defaults: no secret at all; every credential task is no_log
    defaults = setup_vars(PLAY)
    for name in ("awx_setup_ssh_private_key", "awx_setup_vault_password", "awx_setup_ceph_key"):
        assert defaults[name] == "", name
    for name in ("awx_setup_controller_password", "awx_setup_controller_oauthtoken"):
        assert name not in defaults, name
    tasks = tasks_using(PLAY, "awx.awx.credential")
    assert len(tasks) == 3
    for task in tasks:
        assert task.get("no_log") is True, task["name"]
        assert task["awx.awx.credential"].get("update_secrets") == "{{ awx_setup_update_secrets }}"
    assert defaults["awx_setup_update_secrets"] is False


def test_ceph_credential_type_injects_role_options_literally():
    (ctype,) = rendered_calls(PLAY, "awx.awx.credential_type", VARS)
    fields = {f["id"]: f for f in ctype["args"]["inputs"]["fields"]}
    injected = ctype["args"]["injectors"]["extra_vars"]
    # AWX renders the injector templates: this playbook must pass them through untouched (!unsafe)
    assert injected == {"imaging_worker_ceph_client": "{{ ceph_client }}", "imaging_worker_ceph_key": "{{ ceph_key }}"}
    users = [t for t in TEMPLATES if "ceph" in t["credentials"]]
    assert users, "no template uses the Ceph credential"
    for template in users:
        options = accepted_options(template["playbook"])
        for var, value in injected.items():
            field_id = value.strip("{} ")
            assert var in options, (template["playbook"], var)
            secret = bool(fields[field_id].get("secret"))
            assert all(bool(o.spec.get("no_log")) == secret for o in options[var]), (var, secret)


def _schedule(calls, name):
    (sched,) = [c for c in calls if c["args"]["name"] == VARS["awx_setup_names"][name]]
    return sched


def test_capacity_report_schedule():
    sched = _schedule(rendered_calls(PLAY, "awx.awx.schedule", VARS), "schedule_capacity_report")
    assert sched["args"]["unified_job_template"] in _ids(TEMPLATES)
    assert "capacity_report" in [t["playbook"] for t in TEMPLATES
                                 if t["name"] == sched["args"]["unified_job_template"]][0]
    rule = rrulestr(sched["args"]["rrule"].replace(" RRULE:", "\nRRULE:"))
    assert rule[0].weekday() == 0 and (rule[1] - rule[0]).days == 7
    off = rendered_calls(PLAY, "awx.awx.schedule", dict(VARS, awx_setup_capacity_report_rrule=""))
    assert _schedule(off, "schedule_capacity_report")["args"]["state"] == "absent"


def test_restore_drill_schedule():
    """The restore drill as an AWX schedule of the backup template (action verify), daily."""
    sched = _schedule(rendered_calls(PLAY, "awx.awx.schedule", VARS), "schedule_restore_drill")
    (template,) = [t for t in TEMPLATES if t["name"] == sched["args"]["unified_job_template"]]
    assert template["playbook"] == "playbooks/backup.yml" and sched["args"]["extra_data"] == {"backup_action": "verify"}
    rule = rrulestr(sched["args"]["rrule"].replace(" RRULE:", "\nRRULE:"))
    assert (rule[1] - rule[0]).days == 1


def test_preflight_refuses_missing_project_url_and_image():
    (assert_task,) = tasks_using(PLAY, "ansible.builtin.assert")
    that = assert_task["ansible.builtin.assert"]["that"]

    def passes(**overrides):
        scope = dict(VARS, **overrides)
        return all(render(trust_as_template("{{ %s }}" % cond), scope) is True for cond in that)

    assert passes()
    assert not passes(awx_setup_scm_url="")
    assert not passes(awx_setup_ee_image="")


# the checker itself: it must find each kind of mismatch
BASE_Q = {"question_name": "q", "variable": "v", "required": True}


@pytest.mark.parametrize("question,spec,problem", [
    (dict(BASE_Q, type="multiplechoice", choices=["a", "b"], default="a"),
     {"type": "str", "choices": ["a", "b", "c"], "default": "a"}, "choices"),
    (dict(BASE_Q, type="multiplechoice", choices=["a", "b"], default="b"),
     {"type": "str", "choices": ["a", "b"], "default": "a"}, "default"),
    (dict(BASE_Q, type="text", required=False), {"type": "str", "required": True}, "required option asked as optional"),
    (dict(BASE_Q, type="text", default="h1"), {"type": "str", "required": True}, "survey default"),
    (dict(BASE_Q, type="multiplechoice", choices=["true", "false"], default="true"),
     {"type": "bool", "default": False}, "default"),
    (dict(BASE_Q, type="text", default="true"), {"type": "bool", "default": True}, "survey type"),
    (dict(BASE_Q, type="text"), {"type": "str", "no_log": True, "required": True}, "password"),
    (dict(BASE_Q, type="integer", default=5), {"type": "float", "default": 5.0}, "survey type"),
    (dict(BASE_Q, type="text"), {"type": "dict", "default": {}}, "cannot be asked"),
], ids=["choices", "default", "required", "required-default", "bool-default", "bool-type", "no_log", "int-float",
        "dict"])
def test_checker_finds_mismatches(question, spec, problem):
    problems = check_question(question, spec)
    assert any(problem in p for p in problems), problems


def test_checker_accepts_matching_questions():
    assert check_question(dict(BASE_Q, type="multiplechoice", choices=["false", "true"], default="false"),
                          {"type": "bool", "default": False}) == []
    assert check_question(dict(BASE_Q, type="text", min=1, max=255), {"type": "str", "required": True}) == []
    assert check_question(dict(BASE_Q, type="integer", default=300), {"type": "int", "default": 300}) == []
