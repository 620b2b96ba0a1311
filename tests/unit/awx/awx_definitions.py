"""Read playbooks/awx_setup.yml as AWX would receive it and the variables the templates' playbooks accept.

AWX needs Kubernetes and cannot run here; these helpers let the tests check the definitions instead:
``job_templates()`` renders the job_template task for every loop item with Ansible's own templar
(the arguments the awx.awx module gets), ``accepted_options()`` resolves a playbook's roles
(``roles:``, ``import_role``/``include_role`` with ``tasks_from``, role dependencies and role-internal
includes, ``import_playbook``) to their argument specs, plus the playbook's own ``vars:`` whose
choices come from the hospital.cloud filter they are passed to. ``check_question()`` compares one
survey question with one option spec.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[3]
AWX_SETUP = REPO / "playbooks" / "awx_setup.yml"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
INCLUDE_ROLE = {"import_role", "include_role", "ansible.builtin.import_role", "ansible.builtin.include_role",
                "ansible.legacy.import_role", "ansible.legacy.include_role"}
INCLUDE_TASKS = {"import_tasks", "include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_tasks"}
IMPORT_PLAYBOOK = {"import_playbook", "ansible.builtin.import_playbook"}
VALIDATE_SPEC = {"validate_argument_spec", "ansible.builtin.validate_argument_spec"}
TASK_LISTS = ("pre_tasks", "tasks", "post_tasks", "handlers")
FILTER_CALL = re.compile(r"hospital\.cloud\.(\w+)\(([^()]*)\)")
KWARG = re.compile(r"\b(\w+)\s*=\s*([A-Za-z_]\w*)\b")

_LOADER = DataLoader()


def load_yaml(path: Path):
    """YAML as Ansible reads a playbook: strings trusted as templates, except !unsafe ones."""
    return _LOADER.load_from_file(str(path), cache="none", trusted_as_template=True)


def _trust(data):
    if isinstance(data, dict):
        return {k: _trust(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_trust(v) for v in data]
    if isinstance(data, str):
        return trust_as_template(data)
    return data


def render(data, variables: dict):
    return Templar(loader=_LOADER, variables=variables).template(data)


def _action(task: dict, names: set[str]):
    for key in names:
        if key in task:
            return task[key]
    return None


def _tasks_of(play: dict):
    for key in TASK_LISTS:
        yield from play.get(key) or []


def _walk(tasks, base: Path):
    """Every task in a task list, through blocks and static/dynamic task includes."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            if key in task:
                yield from _walk(task[key], base)
        inc = _action(task, INCLUDE_TASKS)
        if inc is not None:
            target = inc.get("file") if isinstance(inc, dict) else inc
            path = base / str(target)
            if "{{" not in str(target) and path.exists():
                yield from _walk(load_yaml(path), path.parent)
        yield task


def role_dir(name: str, playbook_dir: Path | None = None) -> Path:
    short = name.split(".")[-1] if name.startswith("hospital.cloud.") else name
    for cand in ([playbook_dir / "roles" / short] if playbook_dir else []) + [REPO / "roles" / short]:
        if cand.is_dir():
            return cand
    raise LookupError("role %s not found (looked for roles/%s)" % (name, short))


@dataclass
class Option:
    """One variable a playbook accepts: where it comes from and its spec (argument-spec keys)."""

    source: str
    spec: dict


@dataclass
class Usage:
    roles: set = field(default_factory=set)            # (role name, entry point)
    inline_specs: list = field(default_factory=list)   # (where, options) from validate_argument_spec
    play_vars: dict = field(default_factory=dict)      # name -> (playbook, value)
    filter_args: dict = field(default_factory=dict)    # var -> (filter name, keyword)
    playbooks: list = field(default_factory=list)      # the playbook files (import_playbook followed)


def _role_usage(name: str, entry: str, usage: Usage, playbook_dir: Path | None):
    key = (name if name.startswith("hospital.cloud.") else "hospital.cloud." + name, entry)
    if key in usage.roles:
        return
    usage.roles.add(key)
    rdir = role_dir(name, playbook_dir)
    meta = rdir / "meta" / "main.yml"
    if meta.exists():
        for dep in (load_yaml(meta) or {}).get("dependencies") or []:
            dep_name = dep if isinstance(dep, str) else dep.get("role") or dep.get("name")
            _role_usage(str(dep_name), "main", usage, None)
    for tasks_file in sorted((rdir / "tasks").glob("*.y*ml")):
        for task in _walk(load_yaml(tasks_file), rdir / "tasks"):
            _task_usage(task, usage, None, str(tasks_file.relative_to(REPO)))


def _task_usage(task: dict, usage: Usage, playbook_dir: Path | None, where: str):
    inc = _action(task, INCLUDE_ROLE)
    if inc is not None:
        entry = Path(str(inc.get("tasks_from") or "main")).stem
        _role_usage(str(inc["name"]), entry, usage, playbook_dir)
    spec = _action(task, VALIDATE_SPEC)
    if isinstance(spec, dict) and isinstance(spec.get("argument_spec"), dict):
        usage.inline_specs.append((where, spec["argument_spec"]))


def _strings(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)
    elif isinstance(data, str):
        yield data


def playbook_usage(path: Path, usage: Usage | None = None) -> Usage:
    usage = usage or Usage()
    rel = str(path.relative_to(REPO))
    usage.playbooks.append(path)
    for play in load_yaml(path) or []:
        target = _action(play, IMPORT_PLAYBOOK)
        if target is not None:
            target = str(target)
            if target.startswith("hospital.cloud."):
                nested = REPO / "playbooks" / (target.split(".", 2)[2] + ".yml")
            else:
                nested = path.parent / target
            playbook_usage(nested, usage)
            continue
        for role in play.get("roles") or []:
            name = role if isinstance(role, str) else role.get("role") or role.get("name")
            _role_usage(str(name), "main", usage, path.parent)
        for task in _walk(list(_tasks_of(play)), path.parent):
            _task_usage(task, usage, path.parent, rel)
        play_vars = dict(play.get("vars") or {})
        for vars_file in play.get("vars_files") or []:
            play_vars.update(load_yaml(path.parent / str(vars_file)) or {})
        for name, value in play_vars.items():
            usage.play_vars.setdefault(name, (rel, value))
        for text in _strings(play):
            for call in FILTER_CALL.finditer(text):
                for kw, var in KWARG.findall(call.group(2)):
                    usage.filter_args[var] = (call.group(1), kw)
    return usage


def code_files(playbook: str) -> list[Path]:
    """The playbook files and the task/handler/vars/template files of every role they use."""
    usage = playbook_usage(REPO / playbook)
    files = list(usage.playbooks)
    for name in sorted({role[0] for role in usage.roles}):
        rdir = role_dir(name)
        for sub in ("tasks", "handlers", "vars", "templates"):
            files += sorted(p for p in (rdir / sub).rglob("*") if p.is_file())
    return files


def unconverted_uses(var: str, text: str) -> list[str]:
    """Uses of `var` in Jinja not passed through `bool` or `string` (a survey answer is a string)."""
    text = re.sub(r"(^|\s)#.*$", "", text, flags=re.M)
    bad = []
    for match in re.finditer(r"\b%s\b(?!\s*:)((?:\s*\|\s*\w+(?:\([^()]*\))?)*)" % re.escape(var), text):
        filters = re.findall(r"\|\s*(\w+)", match.group(1))
        if not {"bool", "string"} & set(filters):
            line = text.count("\n", 0, match.start()) + 1
            bad.append("line %d: %s" % (line, text.splitlines()[line - 1].strip()))
    return bad


def role_options(name: str, entry: str) -> dict:
    rdir = role_dir(name)
    specs = (load_yaml(rdir / "meta" / "argument_specs.yml") or {}).get("argument_specs") or {}
    if entry not in specs:
        return {}  # Ansible validates nothing for an entry point without a spec: it vouches for no option
    defaults_file = rdir / "defaults" / "main.yml"
    defaults = (load_yaml(defaults_file) or {}) if defaults_file.exists() else {}
    out = {}
    for opt, spec in (specs[entry].get("options") or {}).items():
        spec = dict(spec)
        if "default" not in spec and opt in defaults:
            spec["default"] = defaults[opt]
        out[opt] = spec
    return out


def filter_option(filter_name: str, keyword: str) -> dict:
    doc = REPO / "plugins" / "filter" / (filter_name + ".yml")
    options = yaml.safe_load(doc.read_text())["DOCUMENTATION"]["options"]
    return dict(options[keyword])


@functools.lru_cache(maxsize=None)
def accepted_options(playbook: str) -> dict[str, list[Option]]:
    """Variable name -> the specs that accept it in this playbook (argument specs first)."""
    usage = playbook_usage(REPO / playbook)
    out: dict[str, list[Option]] = {}
    for name, entry in sorted(usage.roles):
        for opt, spec in role_options(name, entry).items():
            out.setdefault(opt, []).append(Option("%s (%s)" % (name, entry), spec))
    for where, options in usage.inline_specs:
        for opt, spec in options.items():
            out.setdefault(opt, []).append(Option("validate_argument_spec in " + where, dict(spec)))
    for var, (where, value) in usage.play_vars.items():
        if var in out:
            continue  # a role's argument spec is the stricter contract
        spec = {"type": {bool: "bool", int: "int", float: "float", list: "list", dict: "dict"}.get(type(value), "str"),
                "default": value}
        source = where + " vars"
        if var in usage.filter_args:
            fname, keyword = usage.filter_args[var]
            fopt = filter_option(fname, keyword)
            if "choices" in fopt:
                spec["choices"] = fopt["choices"]
            source += " (passed to hospital.cloud.%s as %s=)" % (fname, keyword)
        out[var] = [Option(source, spec)]
    return out


def _survey_value(value, spec_type: str):
    """How AWX passes a default of this spec type in a survey (strings; booleans as true/false)."""
    if spec_type == "bool":
        return "true" if boolean(value, strict=True) else "false"
    if spec_type in ("int", "float"):
        return value
    return "" if value is None else str(value)


def check_question(q: dict, spec: dict) -> list[str]:
    """Problems of survey question `q` against option spec `spec` ([] = they agree)."""
    problems = []
    spec_type = spec.get("type", "str")
    qtype = q.get("type")
    choices = spec.get("choices")
    if spec_type == "bool":
        expect_type, expect_choices = "multiplechoice", ["true", "false"]
    elif choices:
        expect_type = "multiselect" if spec_type == "list" else "multiplechoice"
        expect_choices = [str(c) for c in choices]
    elif spec_type in ("str", "path", "raw"):
        expect_type = "password" if spec.get("no_log") else ("text", "textarea")
        expect_choices = None
    elif spec_type == "int":
        expect_type, expect_choices = "integer", None
    elif spec_type == "float":
        expect_type, expect_choices = "float", None
    else:
        return ["type %s cannot be asked in a survey" % spec_type]
    if qtype not in ((expect_type,) if isinstance(expect_type, str) else expect_type):
        problems.append("survey type %s, spec type %s%s wants %s" % (
            qtype, spec_type, " with choices" if choices else "", expect_type))
    if spec.get("no_log") and qtype != "password":
        problems.append("no_log option must be a password question")
    if expect_choices is not None:
        got = q.get("choices")
        got = got.split("\n") if isinstance(got, str) else list(got or [])
        if sorted(got) != sorted(expect_choices) or len(set(got)) != len(got):
            problems.append("choices %s != spec choices %s" % (got, expect_choices))
    has_default = q.get("default") not in (None, "")
    if spec.get("required"):
        if not q.get("required"):
            problems.append("required option asked as optional")
        if has_default:
            problems.append("required option has a survey default %r" % q.get("default"))
    elif "default" in spec and not (isinstance(spec["default"], str) and "{{" in spec["default"]):
        want = _survey_value(spec["default"], spec_type)
        got = q.get("default")
        if (want in (None, "") and has_default) or (want not in (None, "") and got != want):
            problems.append("survey default %r != spec default %r (as %r)" % (got, spec["default"], want))
    elif has_default:
        problems.append("survey default %r for an option without a fixed default" % q.get("default"))
    return problems


def setup_play() -> dict:
    plays = load_yaml(AWX_SETUP)
    assert isinstance(plays, list) and len(plays) == 1, "awx_setup.yml: expected one play"
    return plays[0]


def setup_vars(play: dict, **extra) -> dict:
    variables = {}
    for vars_file in play.get("vars_files") or []:
        variables.update(load_yaml(AWX_SETUP.parent / str(vars_file)) or {})
    variables.update(play.get("vars") or {})
    variables.update(_trust(extra))
    return variables


def tasks_using(play: dict, module: str) -> list[dict]:
    return [t for t in _walk(play.get("tasks") or [], AWX_SETUP.parent) if module in t]


def rendered_calls(play: dict, module: str, variables: dict) -> list[dict]:
    """The arguments each call of `module` gets (loops expanded, task vars applied, omit dropped)."""
    calls = []
    for task in tasks_using(play, module):
        items = [None]
        if "loop" in task:
            items = render(task["loop"], variables)
        for item in items:
            scope = dict(variables, item=item) if item is not None else dict(variables)
            scope.update(task.get("vars") or {})
            args = render(task[module], scope)
            calls.append({"task": task, "item": item, "args": args})
    return calls
