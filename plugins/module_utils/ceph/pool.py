# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ceph pools: desired state from module parameters, observed state from `osd pool ls detail`,
one planning function (pure, unit-tested) producing the mon commands, and their application."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
import time

from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client as ceph
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

APPLICATIONS = ['rbd', 'rgw', 'cephfs', 'rados', 'nfs', 'mgr', 'mgr_devicehealth']
COMPRESSION_MODES = ['none', 'passive', 'aggressive', 'force']
AUTOSCALE_MODES = ['on', 'off', 'warn']
POOL_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')
# parameters compared with the observed pool (in the order they are applied)
MANAGED = ('size', 'min_size', 'crush_rule', 'pg_autoscale_mode', 'pg_num', 'pgp_num',
           'target_size_ratio', 'compression_mode', 'max_bytes', 'max_objects', 'application')


# upper bounds (the mon's own limits or what its integer fields hold): a larger value must fail
# here with the option named, not pass validation and fail (or wrap around) later
MAX_PG_NUM = 65536  # mon_max_pool_pg_num
MAX_QUOTA = 2 ** 63 - 1  # quota_max_bytes / quota_max_objects are signed 64 bit in the mon command
MAX_TARGET_SIZE_RATIO = 1e6


def _problem(p):
    """The first problem with the parameters (None if fine): checked before connecting."""
    if not POOL_NAME.match(p['name'] or ''):
        return ("invalid pool name %r: use 1-128 characters from A-Z a-z 0-9 _ . - "
                "(no spaces, not starting with '.' or '-')" % p['name'])
    if p['state'] == 'absent':
        return None
    if p['pool_type'] == 'erasure' and not p['erasure_profile']:
        return 'pool_type=erasure needs erasure_profile (an existing erasure-code profile)'
    if p['erasure_profile'] and p['pool_type'] != 'erasure':
        return 'erasure_profile is only valid with pool_type=erasure'
    if p['pool_type'] == 'erasure' and p['size'] is not None:
        return 'size of an erasure-coded pool is k+m of its profile; do not set size'
    for key in ('size', 'min_size', 'pg_num', 'pgp_num'):
        if p[key] is not None and p[key] < 1:
            return '%s must be at least 1, got %d' % (key, p[key])
    for key in ('size', 'min_size'):
        if p[key] is not None and p[key] > 10:
            return '%s must be at most 10, got %d' % (key, p[key])
    for key in ('pg_num', 'pgp_num'):
        if p[key] is not None and p[key] > MAX_PG_NUM:
            return '%s must be at most %d (mon_max_pool_pg_num), got %d' % (key, MAX_PG_NUM, p[key])
    if p['size'] == 1 and not p['allow_size_one']:
        return 'size=1 keeps a single copy of every object (no redundancy): set allow_size_one: true'
    if p['min_size'] == 1 and not (p['allow_min_size_one'] or (p['size'] == 1 and p['allow_size_one'])):
        return ('min_size=1 lets a pool accept writes with a single copy left, so the loss of one more '
                'disk loses data: set allow_min_size_one: true to confirm (nothing was changed)')
    if p['size'] is not None and p['min_size'] is not None and p['min_size'] > p['size']:
        return 'min_size (%d) cannot be greater than size (%d)' % (p['min_size'], p['size'])
    if p['pg_num'] is not None and p['pgp_num'] is not None and p['pgp_num'] > p['pg_num']:
        return 'pgp_num (%d) cannot be greater than pg_num (%d)' % (p['pgp_num'], p['pg_num'])
    ratio = p['target_size_ratio']
    if ratio is not None and not (math.isfinite(ratio) and 0 <= ratio <= MAX_TARGET_SIZE_RATIO):
        return 'target_size_ratio must be a number from 0 to %g, got %s' % (MAX_TARGET_SIZE_RATIO, ratio)
    for key in ('max_bytes', 'max_objects'):
        if p[key] is not None and p[key] < 0:
            return '%s must be >= 0 (0 removes the quota), got %d' % (key, p[key])
        if p[key] is not None and p[key] > MAX_QUOTA:
            return '%s must be at most %d, got %d' % (key, MAX_QUOTA, p[key])
    if p['application'] is not None and not p['application']:
        return 'application needs at least one entry (a pool without application raises a warning)'
    return None


def validate(p):
    """Raise ModuleError for the first problem with the parameters."""
    msg = _problem(p)
    if msg:
        raise ModuleError(msg)


def desired(p):
    """The managed values the user asked for (None = leave as it is)."""
    d = dict((k, p[k]) for k in MANAGED if p[k] is not None)
    if 'application' in d:
        d['application'] = sorted(set(d['application']))
    return d


def observed(pool, rules):
    """Our model of one entry of `osd pool ls detail` (pg values are the *targets*)."""
    opts = pool.get('options') or {}
    return dict(
        pool_type='erasure' if pool['type'] == 3 else 'replicated',
        erasure_profile=pool.get('erasure_code_profile') or None,
        size=pool['size'], min_size=pool['min_size'],
        crush_rule=rules.get(pool['crush_rule'], str(pool['crush_rule'])),
        pg_autoscale_mode=pool.get('pg_autoscale_mode', 'off'),
        pg_num=pool.get('pg_num_target', pool['pg_num']),
        pgp_num=pool.get('pg_placement_num_target', pool.get('pg_placement_num')),
        target_size_ratio=float(opts.get('target_size_ratio', 0.0)),
        compression_mode=opts.get('compression_mode', 'none'),
        max_bytes=pool.get('quota_max_bytes', 0), max_objects=pool.get('quota_max_objects', 0),
        application=sorted(pool.get('application_metadata') or {}),
    )


def _set(name, var, val, force=False):
    cmd = {'prefix': 'osd pool set', 'pool': name, 'var': var, 'val': str(val)}
    if force:
        cmd['yes_i_really_mean_it'] = True
    return cmd


def create_command(name, want, p):
    cmd = {'prefix': 'osd pool create', 'pool': name,
           'pool_type': p['pool_type'] or 'replicated'}
    if p['erasure_profile']:
        cmd['erasure_code_profile'] = p['erasure_profile']
    for key, arg in (('pg_num', 'pg_num'), ('pgp_num', 'pgp_num'), ('crush_rule', 'rule'),
                     ('size', 'size'), ('pg_autoscale_mode', 'autoscale_mode')):
        if key in want:
            cmd[arg] = want[key]
    return cmd


def plan(name, want, have, creating=False):
    """Commands turning `have` into `want`, warnings, and the predicted state after them.

    On create, `have` holds only what `osd pool create` sets from `want`; everything else the
    user asked for is set explicitly, so check mode predicts exactly what a real run sends.
    """
    cmds, warnings = [], []
    after = dict(have)
    if 'size' in want and want['size'] != have.get('size'):
        if have.get('pool_type') == 'erasure':
            raise ModuleError('cannot change size of erasure-coded pool %s (k+m of its profile)' % name)
        cmds.append(_set(name, 'size', want['size'], force=want['size'] == 1))
        after['size'] = want['size']
        after['min_size'] = None  # Ceph resets min_size when size changes
    if 'min_size' in want:
        size = after.get('size')
        if size is not None and want['min_size'] > size:
            raise ModuleError('min_size (%d) cannot be greater than the size (%d) of pool %s'
                              % (want['min_size'], size, name))
        if want['min_size'] != after.get('min_size'):
            cmds.append(_set(name, 'min_size', want['min_size']))
            after['min_size'] = want['min_size']
    for key in ('crush_rule', 'pg_autoscale_mode'):
        if key in want and want[key] != have.get(key):
            cmds.append(_set(name, key, want[key]))
            after[key] = want[key]
    mode = after.get('pg_autoscale_mode')
    for key in ('pg_num', 'pgp_num'):
        current = after.get(key)
        if key == 'pgp_num' and after.get('pg_num') != have.get('pg_num'):
            current = after.get('pg_num')  # setting pg_num moves the pgp_num target with it
        if key not in want or want[key] == current:
            continue
        if mode == 'on' and not creating:
            warnings.append('%s=%d not applied to pool %s: pg_autoscale_mode is on and the autoscaler '
                            'owns it (target now %s); set pg_autoscale_mode: off or warn to manage '
                            'it, or use target_size_ratio' % (key, want[key], name, current))
            continue
        cmds.append(_set(name, key, want[key]))
        after[key] = want[key]
        if key == 'pg_num':
            after['pgp_num'] = want[key]
    if 'target_size_ratio' in want and abs(want['target_size_ratio'] - (have.get('target_size_ratio') or 0.0)) > 1e-9:
        cmds.append(_set(name, 'target_size_ratio', want['target_size_ratio']))
        after['target_size_ratio'] = want['target_size_ratio']
    if 'compression_mode' in want and want['compression_mode'] != have.get('compression_mode', 'none'):
        cmds.append(_set(name, 'compression_mode', want['compression_mode']))
        after['compression_mode'] = want['compression_mode']
    for key in ('max_bytes', 'max_objects'):
        if key in want and want[key] != have.get(key, 0):
            cmds.append({'prefix': 'osd pool set-quota', 'pool': name, 'field': key, 'val': str(want[key])})
            after[key] = want[key]
    if 'application' in want:
        apps = list(have.get('application') or [])
        for app in want['application']:
            if app not in apps:
                cmd = {'prefix': 'osd pool application enable', 'pool': name, 'app': app}
                if apps:
                    cmd['yes_i_really_mean_it'] = True  # Ceph asks for it for a second application
                cmds.append(cmd)
                apps.append(app)
        for app in sorted(set(apps) - set(want['application'])):
            cmds.append({'prefix': 'osd pool application disable', 'pool': name, 'app': app,
                         'yes_i_really_mean_it': True})
            apps.remove(app)
        after['application'] = sorted(apps)
    return cmds, warnings, after


def _read(client, name):
    pools = client.query('osd pool ls', detail='detail')
    rules = dict((r['rule_id'], r['rule_name']) for r in client.query('osd crush rule dump'))
    for pool in pools:
        if pool['pool_name'] == name:
            return observed(pool, rules), rules
    return None, rules


def run(p, check_mode=False, diff=False):
    """The whole ceph_pool module: parameters -> Result (ModuleError on bad input or failure)."""
    validate(p)
    warnings = []
    with ceph.connected(p, check_mode) as client:
        have, rules = _read(client, p['name'])
        if p['state'] == 'absent':
            before, after = _absent(p, client, have)
        else:
            before, after, warnings = _present(p, client, have, rules)
            after = dict(after, state='present', name=p['name'])
        show = diff and (p['state'] == 'present' or have is not None)
        return Result(changed=bool(client.calls), calls=client.calls, pool=after, warnings=warnings,
                      diff=dict(before=before, after=after) if show else None)


def _present(p, client, have, rules):
    name = p['name']
    want = desired(p)
    if 'crush_rule' in want and want['crush_rule'] not in rules.values():
        raise ModuleError('crush_rule %r does not exist (rules: %s)'
                          % (want['crush_rule'], ', '.join(sorted(rules.values()))))
    if p['erasure_profile'] and (have is None or have['erasure_profile'] != p['erasure_profile']):
        if client.query('osd erasure-code-profile get', missing_ok=True, name=p['erasure_profile']) is None:
            raise ModuleError('erasure-code profile %r does not exist' % p['erasure_profile'])
    warnings = []
    if have is None:
        create = create_command(name, want, p)
        start = dict((k, want[k]) for k in ('pg_num', 'crush_rule', 'size', 'pg_autoscale_mode') if k in want)
        start['pgp_num'] = want.get('pgp_num', want.get('pg_num'))
        start['pool_type'] = create['pool_type']
        cmds, warnings, after = plan(name, want, start, creating=True)
        cmds.insert(0, create)
        if 'pg_num' in want and want.get('pg_autoscale_mode') in (None, 'on'):
            mode = want.get('pg_autoscale_mode') or client.query(
                'config get', who='mon', key='osd_pool_default_pg_autoscale_mode')
            if mode == 'on':
                warnings.append('pg_num=%d is only the initial value of pool %s: pg_autoscale_mode '
                                'is on and the autoscaler may change it' % (want['pg_num'], name))
        before = {'state': 'absent'}
    else:
        for key in ('pool_type', 'erasure_profile'):
            if p[key] and p[key] != have[key]:
                raise ModuleError('pool %s exists with %s=%s; it cannot be changed to %s in place '
                                  '(create a new pool and migrate)' % (name, key, have[key], p[key]))
        cmds, warnings, after = plan(name, want, have)
        before = dict(have, state='present')
    for cmd in cmds:
        client.change(cmd)
    return before, after, warnings


def _allow_delete_commands(client):
    """Commands to enable mon_allow_pool_delete, and those restoring the previous setting."""
    current = client.query('config get', who='mon', key='mon_allow_pool_delete')
    if str(current).lower() == 'true':
        return [], []
    dump = client.query('config dump')
    mine = [e for e in dump if e.get('section') == 'mon' and e.get('name') == 'mon_allow_pool_delete']
    enable = [{'prefix': 'config set', 'who': 'mon', 'name': 'mon_allow_pool_delete', 'value': 'true'}]
    if mine:
        restore = [{'prefix': 'config set', 'who': 'mon', 'name': 'mon_allow_pool_delete',
                    'value': str(mine[0]['value'])}]
    else:
        restore = [{'prefix': 'config rm', 'who': 'mon', 'name': 'mon_allow_pool_delete'}]
    return enable, restore


def _absent(p, client, have):
    """Delete the pool (opt-in); returns the diff's before and after."""
    name = p['name']
    if have is None:
        return {'state': 'absent'}, {'name': name, 'state': 'absent'}
    if not p['allow_delete']:
        raise ModuleError('pool %s exists and state=absent would delete it with all its data; '
                          'set allow_delete: true to confirm (nothing was changed)' % name)
    enable, restore = _allow_delete_commands(client)
    delete = {'prefix': 'osd pool delete', 'pool': name, 'pool2': name,
              'yes_i_really_really_mean_it': True}
    for cmd in enable:
        client.change(cmd)
    try:
        for attempt in range(20):
            try:
                client.change(delete)
                break
            except ModuleError as exc:
                # the mon applies a config change asynchronously: retry while it says EPERM
                client.recorder.forget_last()
                if 'EPERM' not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.25)
    finally:
        for cmd in restore:
            client.change(cmd)
    return dict(have, state='present'), {'name': name, 'state': 'absent'}
