# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one module contract of the collection.

Every module's ``main()`` builds its argument spec and calls :func:`execute` with one function
``run(params, check_mode, diff) -> Result`` from module_utils. ``run`` reads the real state,
plans, and sends its mutating calls through a :class:`Recorder`, which records each call and,
in check mode, records it without making it: check mode runs the same code path as a real
run. Bad input and backend failures are one exception type, :class:`ModuleError`, turned into
``fail_json`` in one place (:func:`execute`), never a traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleError(Exception):
    """Bad input or a failed operation; ``msg`` is for the user, ``details`` go into the result."""

    def __init__(self, msg, **details):
        super(ModuleError, self).__init__(msg)
        self.msg = msg
        self.details = details


class Result(dict):
    """What ``run`` returns: ``changed``, ``calls`` (made, or predicted in check mode), ``diff``
    when asked for, and the module's own fields. ``secret`` fields are returned only when the
    task runs with ``no_log`` (Ansible then hides the whole result)."""

    def __init__(self, changed=False, calls=None, diff=None, secret=None, **fields):
        super(Result, self).__init__(fields)
        self['changed'] = bool(changed)
        self['calls'] = list(calls or [])
        if diff is not None:
            self['diff'] = diff
        self.secret = dict(secret or {})


class Recorder:
    """The log of the mutating calls of one run; in check mode it records without calling.

    ``what`` describes a call (a string for libvirt API calls, a dict for Ceph commands);
    ``translate(what, exc)`` turns a backend exception into a :class:`ModuleError` (or returns
    None to let it through). Reads never go through the recorder: they run in both modes.
    """

    def __init__(self, check_mode=False, translate=None):
        self.check_mode = check_mode
        self.translate = translate
        self.calls = []

    def call(self, what, fn=None, *args):
        """Record ``what``; unless in check mode, make the call ``fn(*args)`` and return its result."""
        self.calls.append(what)
        if self.check_mode or fn is None:
            return None
        try:
            return fn(*args)
        except ModuleError as exc:
            exc.details.setdefault('calls', list(self.calls))
            raise
        except Exception as exc:  # pylint: disable=broad-except
            error = self.translate(what, exc) if self.translate else None
            if error is None:
                raise
            raise ModuleError(error.msg, **dict(error.details, calls=list(self.calls)))

    def forget_last(self):
        """Drop the last record (a call that is retried is recorded once)."""
        self.calls.pop()


def execute(module, run, prepare=None):
    """The whole of a module's main(): ``run(params, check_mode, diff)`` -> exit_json / fail_json.

    ``prepare()`` (optional) returns a message when a required library is missing, checked first.
    """
    problem = prepare() if prepare else None
    if problem:
        module.fail_json(msg=problem, calls=[])
    try:
        result = run(dict(module.params), module.check_mode, module._diff)
    except ModuleError as exc:
        details = dict(exc.details)
        details.setdefault('calls', [])
        module.fail_json(msg=exc.msg, **details)
    out = dict(result)
    if module.no_log:
        out.update(getattr(result, 'secret', {}))
    warnings = out.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**out)
