# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cephx entities and their keyring files: desired -> observed -> plan -> apply.

:func:`desired` turns the parameters into the wanted entity and file, :func:`observe` reads the
entity (``auth get``) and the file, :func:`plan` (pure) lists the steps between them, and
:func:`run` sends exactly those steps through the client's recorder (in check mode, records
them only). ``changed`` is whether the plan has steps.

The key never enters a result, a diff or a call log unless the task itself runs with
``no_log: true`` (then Ansible hides the whole result and the key is usable from ``register``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client as ceph
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

ENTITY = re.compile(r'^(client|mgr|mds|osd|mon)\.[A-Za-z0-9_.-]+$')
CAP_TYPES = ('mon', 'osd', 'mgr', 'mds')
NEW_FILE_MODE = 0o600
# entities whose deletion locks the cluster's operators or daemons out (or lets nothing new join)
ADMIN_ENTITY = re.compile(r'^(client\.admin|client\.bootstrap-[A-Za-z0-9_.-]+|(mon|mgr|osd|mds)\..+)$')


def is_admin_entity(name, connecting_as=None):
    return bool(ADMIN_ENTITY.match(name)) or name == connecting_as


def _problem(p):
    """The first problem with the parameters, None if fine."""
    if not ENTITY.match(p['name'] or ''):
        return ("invalid entity name %r: expected TYPE.ID such as client.libvirt "
                "(TYPE one of client, mgr, mds, osd, mon)" % p['name'])
    for cap_type, cap in (p.get('caps') or {}).items():
        if cap_type not in CAP_TYPES:
            return 'unknown cap type %r in caps (use %s)' % (cap_type, ', '.join(CAP_TYPES))
        if not isinstance(cap, str) or not cap.strip():
            return 'caps.%s must be a non-empty string such as "profile rbd"' % cap_type
        if any(ord(c) < 32 or ord(c) == 127 for c in cap):
            return 'caps.%s must not contain control characters' % cap_type
    if (p.get('state') == 'absent' and not p.get('allow_admin_delete')
            and is_admin_entity(p['name'], p.get('client'))):
        return ('state=absent on %s would delete a key the cluster is administered or run with (client.admin, '
                'mon./mgr./osd./mds. daemons, client.bootstrap-*, or the client this task connects as): set '
                'allow_admin_delete: true to confirm (nothing was changed)' % p['name'])
    return None


def validate(p):
    """Raise ModuleError for the first problem with the parameters (before connecting)."""
    msg = _problem(p)
    if msg:
        raise ModuleError(msg)


def normalize_caps(caps):
    return dict((k, ' '.join(str(v).split())) for k, v in (caps or {}).items())


def caps_args(caps):
    out = []
    for k in sorted(caps):
        out += [k, caps[k]]
    return out


def keyring_text(entity, key, caps):
    lines = ['[%s]' % entity, '\tkey = %s' % key]
    lines += ['\tcaps %s = "%s"' % (k, caps[k]) for k in sorted(caps)]
    return '\n'.join(lines) + '\n'


# ---- desired ------------------------------------------------------------------------------------

def _id(kind, name, dest):
    """uid/gid of a user/group name or number; None when not asked for (left as it is)."""
    if name is None:
        return None
    if str(name).isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if kind == 'owner' else grp.getgrnam(name).gr_gid
    except KeyError:
        raise ModuleError('%s: unknown %s %r for %s (nothing was written)'
                          % (kind, 'user' if kind == 'owner' else 'group', name, dest))


def file_mode(mode, current=None):
    """The permission bits asked for: octal text or number, or symbolic (u=rw,g=r) relative to
    the current mode (a new file starts at 0600)."""
    if isinstance(mode, int):
        bits = mode
    else:
        try:
            bits = int(str(mode), 8)
        except ValueError:
            base = os.stat_result((NEW_FILE_MODE if current is None else current,) + (0,) * 9)
            try:
                bits = AnsibleModule._symbolic_mode_to_octal(base, str(mode))  # pylint: disable=protected-access
            except ValueError as exc:
                raise ModuleError('mode %r must be in octal or symbolic form: %s' % (mode, exc))
    if bits != stat.S_IMODE(bits):
        raise ModuleError('mode %r: only permission bits are allowed' % (mode,))
    return bits


def desired(p):
    """The entity and keyring file the parameters ask for (owner/group resolved, so an unknown
    name fails before anything is sent or written)."""
    want = {'name': p['name'], 'state': p['state'],
            'caps': normalize_caps(p['caps']) if p.get('caps') is not None else None, 'file': None}
    if p.get('dest'):
        want['file'] = {'path': p['dest'], 'uid': _id('owner', p.get('owner'), p['dest']),
                        'gid': _id('group', p.get('group'), p['dest']), 'mode': p.get('mode')}
    return want


# ---- observed -----------------------------------------------------------------------------------

def _get(client, name):
    out = client.query('auth get', missing_ok=True, entity=name)
    if not out:
        return None
    return {'key': out[0]['key'], 'caps': normalize_caps(out[0].get('caps'))}


def read_file(path):
    """The keyring file as {'text', 'uid', 'gid', 'mode'}, None if missing."""
    if not path or not os.path.exists(path):
        return None
    st = os.stat(path)
    with open(path, 'r') as fh:
        return {'text': fh.read(), 'uid': st.st_uid, 'gid': st.st_gid, 'mode': stat.S_IMODE(st.st_mode)}


def observe(client, want):
    return {'entity': _get(client, want['name']),
            'file': read_file(want['file']['path']) if want['file'] else None}


# ---- plan (pure) --------------------------------------------------------------------------------

def plan(want, have):
    """The steps (the calls a run makes) from `have` to `want`, in order; [] when nothing differs.

    A keyring for an entity that does not exist yet gets a key only when the entity is created,
    so its file is always (re)written then."""
    name, wfile, hfile = want['name'], want['file'], have['file']
    entity = have['entity']
    steps = []
    if want['state'] == 'absent':
        if entity is not None:
            steps.append({'prefix': 'auth del', 'entity': name})
        if wfile and hfile is not None:
            steps.append({'prefix': 'keyring remove', 'path': wfile['path']})
        return steps
    caps = after_caps(want, have)
    if entity is None:
        steps.append({'prefix': 'auth get-or-create', 'entity': name, 'caps': caps_args(caps)})
    elif caps != entity['caps']:
        steps.append({'prefix': 'auth caps', 'entity': name, 'caps': caps_args(caps)})
    if not wfile:
        return steps
    mode = file_mode(wfile['mode'], hfile['mode'] if hfile else None)
    text = None if entity is None else keyring_text(name, entity['key'], caps)
    if hfile is None or text is None or hfile['text'] != text:
        steps.append({'prefix': 'keyring write', 'path': wfile['path'], 'mode': '%04o' % mode})
        return steps
    uid = hfile['uid'] if wfile['uid'] is None else wfile['uid']
    gid = hfile['gid'] if wfile['gid'] is None else wfile['gid']
    if (uid, gid) != (hfile['uid'], hfile['gid']):
        steps.append({'prefix': 'keyring chown', 'path': wfile['path'], 'uid': uid, 'gid': gid})
    if mode != hfile['mode']:
        steps.append({'prefix': 'keyring chmod', 'path': wfile['path'], 'mode': '%04o' % mode})
    return steps


def after_caps(want, have):
    """Caps after the run: the asked ones, else those of the existing entity (a new one: none)."""
    if want['caps'] is not None:
        return want['caps']
    return (have['entity'] or {}).get('caps', {})


# ---- apply --------------------------------------------------------------------------------------

def run(p, check_mode=False, diff=False):
    """The whole ceph_key module: parameters -> Result (ModuleError on bad input or failure)."""
    validate(p)
    want = desired(p)
    with ceph.connected(p, check_mode) as client:
        have = observe(client, want)
        steps = plan(want, have)
        key = apply(client, want, have, steps)
        result = Result(changed=bool(steps), calls=client.calls, entity=p['name'],
                        secret={'key': key} if key is not None else None)
    before = {'state': 'absent'} if have['entity'] is None else {'state': 'present', 'caps': have['entity']['caps']}
    if p['state'] == 'present':
        result['caps'] = after_caps(want, have)
        after = {'state': 'present', 'caps': result['caps']}
        if want['file']:
            result['keyring'] = want['file']['path']
    else:
        after = {'state': 'absent'}
    if diff:
        result['diff'] = {'before': before, 'after': after}
    return result


def apply(client, want, have, steps):
    """Send the planned steps (recorded only in check mode); returns the key when known."""
    key = (have['entity'] or {}).get('key')
    for step in steps:
        prefix = step['prefix']
        if prefix.startswith('auth '):
            client.change(step)
            if prefix == 'auth get-or-create' and not client.check_mode:
                key = _get(client, want['name'])['key']
        elif prefix == 'keyring remove':
            client.change(step, lambda s=step: os.unlink(s['path']))
        elif prefix == 'keyring write':
            text = keyring_text(want['name'], key, after_caps(want, have)) if key else None
            client.change(step, lambda s=step, t=text: write_keyring(want['file'], t, int(s['mode'], 8)))
        elif prefix == 'keyring chown':
            client.change(step, lambda s=step: os.chown(s['path'], s['uid'], s['gid']))
        elif prefix == 'keyring chmod':
            client.change(step, lambda s=step: os.chmod(s['path'], int(s['mode'], 8)))
    return key if want['state'] == 'present' else None


def write_keyring(wfile, text, mode):
    """Write the keyring atomically with its owner, group and mode.

    The key is never readable by others, not even for a moment: the temporary file is 0600 and
    gets its owner/group before any byte is written, is renamed into place, and only then gets
    the asked mode (AnsibleModule.atomic_move would chmod a new file to 0666 & ~umask, i.e. 0644,
    until the mode is set afterwards - and for good when setting the owner/group then failed)."""
    dest = wfile['path']
    directory = os.path.dirname(dest) or '.'
    if not os.path.isdir(directory):
        raise ModuleError('directory %s of dest does not exist' % directory)
    current = read_file(dest)
    uid = wfile['uid'] if wfile['uid'] is not None else (current['uid'] if current else -1)
    gid = wfile['gid'] if wfile['gid'] is not None else (current['gid'] if current else -1)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(dest))
    try:
        os.fchmod(fd, NEW_FILE_MODE)
        try:
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
        except OSError as exc:
            os.close(fd)
            raise ModuleError('cannot set owner/group of %s: %s (nothing was written)' % (dest, exc))
        with os.fdopen(fd, 'w') as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if mode != NEW_FILE_MODE:
        os.chmod(dest, mode)
