# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cephx entities: caps compared with `auth get`, keyring file written with owner/mode.

The key never enters a result, a diff or a command log unless the task itself runs with
``no_log: true`` (then Ansible hides the whole result and the key is usable from ``register``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import tempfile

from ansible_collections.hospital.cloud.plugins.module_utils.ceph.client import CephError

ENTITY = re.compile(r'^(client|mgr|mds|osd|mon)\.[A-Za-z0-9_.-]+$')
CAP_TYPES = ('mon', 'osd', 'mgr', 'mds')


def argument_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        caps=dict(type='dict'),
        dest=dict(type='path'),
        owner=dict(type='str'),
        group=dict(type='str'),
        mode=dict(type='raw', default='0600'),
        allow_admin_delete=dict(type='bool', default=False),
    )


# entities whose deletion locks the cluster's operators or daemons out (or lets nothing new join)
ADMIN_ENTITY = re.compile(r'^(client\.admin|client\.bootstrap-[A-Za-z0-9_.-]+|(mon|mgr|osd|mds)\..+)$')


def is_admin_entity(name, connecting_as=None):
    return bool(ADMIN_ENTITY.match(name)) or name == connecting_as


def validate(p):
    if not ENTITY.match(p['name'] or ''):
        return ("invalid entity name %r: expected TYPE.ID such as client.libvirt "
                "(TYPE one of client, mgr, mds, osd, mon)" % p['name'])
    for cap_type, cap in (p['caps'] or {}).items():
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


def _get(client, name):
    out = client.query('auth get', missing_ok=True, entity=name)
    if not out:
        return None
    return {'key': out[0]['key'], 'caps': normalize_caps(out[0].get('caps'))}


def ensure(module, client):
    p = module.params
    name = p['name']
    have = _get(client, name)
    want_caps = normalize_caps(p['caps']) if p['caps'] is not None else None
    before = {'state': 'absent'} if have is None else {'state': 'present', 'caps': have['caps']}
    result = {'changed': False, 'entity': name}
    if p['state'] == 'absent':
        if have is not None:
            client.change({'prefix': 'auth del', 'entity': name})
            result['changed'] = True
        if p['dest'] and os.path.exists(p['dest']):
            result['changed'] = True
            if not module.check_mode:
                os.unlink(p['dest'])
        after = {'state': 'absent'}
    else:
        caps = want_caps if want_caps is not None else (have or {}).get('caps', {})
        if have is None:
            out = client.change({'prefix': 'auth get-or-create', 'entity': name, 'caps': caps_args(caps)})
            result['changed'] = True
            if out is not None:
                have = _get(client, name)
        elif want_caps is not None and want_caps != have['caps']:
            client.change({'prefix': 'auth caps', 'entity': name, 'caps': caps_args(want_caps)})
            result['changed'] = True
        after = {'state': 'present', 'caps': caps}
        result['caps'] = caps
        if p['dest']:
            result['keyring'] = p['dest']
            if _write_keyring(module, p, None if have is None else keyring_text(name, have['key'], caps)):
                result['changed'] = True
        if have is not None and module.no_log:
            result['key'] = have['key']
    if module._diff:
        result['diff'] = {'before': before, 'after': after}
    return result


def _ids(p, dest):
    """uid/gid the keyring gets: the asked owner/group, else those of the existing file (as
    atomic_move would keep them), else -1 (unchanged). CephError for an unknown name, raised
    before anything is written."""
    try:
        st = os.stat(dest)
        uid, gid = st.st_uid, st.st_gid
    except OSError:
        uid = gid = -1
    for key, lookup in (('owner', lambda n: pwd.getpwnam(n).pw_uid), ('group', lambda n: grp.getgrnam(n).gr_gid)):
        name = p[key]
        if name is None:
            continue
        try:
            value = int(name) if str(name).isdigit() else lookup(name)
        except KeyError:
            raise CephError('%s: unknown %s %r for %s (nothing was written)'
                            % (key, 'user' if key == 'owner' else 'group', name, dest))
        if key == 'owner':
            uid = value
        else:
            gid = value
    return uid, gid


def _write_keyring(module, p, text):
    """Write the keyring file if its content or attributes differ; text None = not known yet
    (check mode before creation). Returns whether something changed (or would).

    The key is never readable by others, not even for a moment: the temporary file is 0600 and
    gets its owner/group before any byte is written, and it is renamed into place by us
    (AnsibleModule.atomic_move would chmod a new file to 0666 & ~umask, i.e. 0644, until the
    mode is set afterwards - and for good when setting the owner/group then failed)."""
    dest = p['dest']
    current = None
    if os.path.exists(dest):
        with open(dest, 'r') as fh:
            current = fh.read()
    uid, gid = _ids(p, dest)
    if text is None:
        return True
    changed = current != text
    if changed and not module.check_mode:
        directory = os.path.dirname(dest) or '.'
        if not os.path.isdir(directory):
            raise CephError('directory %s of dest does not exist' % directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(dest))
        try:
            os.fchmod(fd, 0o600)
            try:
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
            except OSError as exc:
                os.close(fd)
                raise CephError('cannot set owner/group of %s: %s (nothing was written)' % (dest, exc))
            with os.fdopen(fd, 'w') as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if current is None and module.check_mode:
        return True
    file_args = module.load_file_common_arguments(dict(path=dest, owner=p['owner'], group=p['group'],
                                                       mode=p['mode']))
    return module.set_fs_attributes_if_different(file_args, changed)
