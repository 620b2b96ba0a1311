# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot-based RBD mirroring of one pool on one cluster: validate -> observe -> plan -> apply.

librbd (python3-rbd) makes the mirroring calls: pool mirror mode, site name, peer bootstrap
create/import, per-image enable (snapshot mode), promote, demote and resync. Mirror snapshot
schedules belong to the mgr's ``rbd_support`` module (``rbd mirror snapshot schedule add|remove|
list`` as mgr commands; pacific's binding has no call for them). Every change goes through the
client's recorder, so check mode runs the same code and returns the calls a real run would make.

The bootstrap token holds a cephx key: it is never put into a call, a message or a diff, and it
is returned (``peer_token``) only when the task runs with ``no_log: true``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import errno
import json
import re

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client as ceph
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

try:
    import rbd
except ImportError:
    rbd = None

NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')
INTERVAL = re.compile(r'^([1-9][0-9]{0,5})([mhd])$')
UNIT_MINUTES = {'m': 1, 'h': 60, 'd': 24 * 60}
MIRROR_MODES = {0: 'disabled', 1: 'image', 2: 'pool'}  # rbd_mirror_mode_t
IMAGE_MODES = {0: 'journal', 1: 'snapshot'}  # rbd_mirror_image_mode_t
IMAGE_STATES = {0: 'disabling', 1: 'enabled', 2: 'disabled'}  # rbd_mirror_image_state_t
STATUS_STATES = {0: 'unknown', 1: 'error', 2: 'syncing', 3: 'starting_replay', 4: 'replaying',
                 5: 'stopping_replay', 6: 'stopped'}  # rbd_mirror_image_status_state_t
DIRECTIONS = {'rx-only': 0, 'rx-tx': 2}  # rbd_mirror_peer_direction_t (tx-only is not for peers)
PEER_USER = 'client.rbd-mirror-peer'  # the user `peer bootstrap create` makes for the remote site
SNAP_STATES = {0: 'primary', 1: 'primary_demoted', 2: 'non_primary', 3: 'non_primary_demoted'}  # rbd_snap_mirror_state_t


# ---- pure helpers (unit-tested) -----------------------------------------------------------------

def interval_minutes(text):
    """Minutes of an interval like 1m, 15m, 2h, 1d; ValueError otherwise."""
    match = INTERVAL.match(str(text or '').strip())
    if not match:
        raise ValueError('schedule_interval %r is not a number with a unit m, h or d (e.g. 1m, 15m, 1h)' % text)
    return int(match.group(1)) * UNIT_MINUTES[match.group(2)]


def interval_text(minutes):
    """The mgr's own spelling of an interval (60 minutes is 1h): how schedules are listed."""
    for unit, size in (('d', 24 * 60), ('h', 60)):
        if minutes % size == 0:
            return '%d%s' % (minutes // size, unit)
    return '%dm' % minutes


def decode_token(token):
    """The fields of a bootstrap token (base64 JSON); ModuleError without echoing the token."""
    try:
        data = json.loads(base64.b64decode(str(token).strip().encode('ascii'), validate=True).decode('utf-8'))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        data = None
    if not isinstance(data, dict) or not all(data.get(k) for k in ('fsid', 'client_id', 'key', 'mon_host')):
        raise ModuleError('peer_token is not an rbd-mirror bootstrap token (base64 JSON with fsid, client_id, '
                          'key and mon_host, as `peer_token_create` or `rbd mirror pool peer bootstrap create` '
                          'print it)')
    return data


def problem(p):
    """The first problem with the parameters (checked before connecting), None if fine."""
    if not NAME.match(p['pool'] or ''):
        return 'invalid pool name %r: use A-Z a-z 0-9 _ . - (no spaces, no /, no @)' % p['pool']
    for name in p['images'] or []:
        if not NAME.match(name or ''):
            return 'invalid image name %r: use A-Z a-z 0-9 _ . - (no spaces, no /, no @)' % name
    if p['site_name'] is not None and not NAME.match(p['site_name']):
        return 'invalid site_name %r: use A-Z a-z 0-9 _ . -' % p['site_name']
    if p['schedule_interval'] is not None:
        try:
            interval_minutes(p['schedule_interval'])
        except ValueError as exc:
            return str(exc)
    if p['schedule_level'] == 'image' and p['schedule_interval'] is not None and not p['images']:
        return 'schedule_level=image needs the images to schedule (images is empty)'
    if p['force'] and p['role'] != 'primary':
        return ('force: true only applies to a promotion (role: primary) while the peer site is unreachable; '
                'nothing was changed')
    if p['resync'] and p['role'] == 'primary':
        return ('resync: true discards the local copy of a non-primary image and cannot be combined with '
                'role: primary; nothing was changed')
    if (p['role'] or p['resync']) and not p['images']:
        return 'role and resync apply to the listed images, but images is empty'
    if p['peer_token'] is not None and p['peer_token_create']:
        return 'peer_token (import, on the other site) and peer_token_create are mutually exclusive'
    if p['peer_token'] is not None:
        decode_token(p['peer_token'])
    return None


def parse_description(text):
    """(words, stats) of a mirror status description such as
    'replaying, {"local_snapshot_timestamp":1733380000,...}'; stats {} when there is no JSON."""
    text = text or ''
    brace = text.find('{')
    if brace < 0:
        return text.strip(), {}
    try:
        stats = json.loads(text[brace:])
    except ValueError:
        return text.strip(), {}
    return text[:brace].strip().rstrip(',').strip(), stats if isinstance(stats, dict) else {}


def role_steps(want_role, primary):
    """The librbd role change ('promote' / 'demote') from the observed role, or None."""
    if want_role == 'primary' and not primary:
        return 'promote'
    if want_role == 'secondary' and primary:
        return 'demote'
    return None


def promote_refusal(last_snapshot):
    """Why a planned (not forced) promotion must wait, from the image's newest mirror snapshot; None if safe.

    Safe only once the newest mirror snapshot here is the peer's demotion, completely copied. librbd itself
    also promotes an image whose newest snapshot is its own demotion: that undoes a demote, but if the peer
    was promoted meanwhile and this site has not synced since, the peer's writes would be silently lost."""
    state = (last_snapshot or {}).get('state')
    if state == 'non_primary_demoted' and last_snapshot.get('complete'):
        return None
    if state == 'non_primary_demoted':
        return 'the peer\'s demotion snapshot is still being copied to this site'
    if state == 'primary_demoted':
        return ('it was demoted on this site and nothing has been synced from the peer since: if the peer was '
                'promoted meanwhile, promoting here would discard the peer\'s writes (to undo your own demote '
                'while the peer stayed secondary, use force: true)')
    if state == 'non_primary':
        return 'the peer site has not demoted it, or its demotion snapshot has not reached this site yet'
    return 'it has no mirror snapshot here yet (initial sync not done)'


def demote_refusal(remote_statuses):
    """Why a planned demotion must wait, from what the peer's rbd-mirror reports; None if safe.

    The peer copies the demotion snapshot only if its daemon already replays this image. A daemon that
    has not picked up a fresh promotion yet (it re-checks within about 30 s) skips it; then both copies
    are demoted, neither is ahead, and rbd-mirror stops ("remote image is not primary")."""
    if any(r.get('state') == 'replaying' and r.get('up') for r in remote_statuses or []):
        return None
    seen = '; '.join('%s (%s)' % (r.get('state'), r.get('summary') or r.get('description'))
                     for r in remote_statuses or []) or 'no status from the peer'
    return 'the peer site\'s rbd-mirror does not replay it yet: %s' % seen


def needs_resync(demoted_now, primary_after, local_state):
    """Resync when asked for a non-primary image just demoted or whose replay is in error (split brain)."""
    return not primary_after and (demoted_now or local_state == 'error')


# ---- observe ------------------------------------------------------------------------------------

def _mgr(client, cmd):
    """A mgr command (JSON out); (ret, parsed, outs)."""
    try:
        ret, out, outs = client.handle.mgr_command(json.dumps(dict(cmd, format='json')), b'',
                                                   timeout=client.timeout)
    except Exception as exc:  # pylint: disable=broad-except
        # rados.Error, without importing rados here
        return -errno.EIO, None, str(exc)
    try:
        return ret, json.loads(out) if out else None, outs
    except ValueError:
        return ret, None, outs


def _mgr_change(client, cmd):
    ret, dummy, outs = _mgr(client, cmd)
    if ret != 0:
        raise ModuleError('%s failed (%s): %s' % (cmd['prefix'], errno.errorcode.get(-ret, ret), outs.strip()),
                          command=cmd)


def schedules_at(client, level_spec):
    """Intervals (minutes) scheduled exactly at level_spec ('pool/' or 'pool/image')."""
    ret, out, outs = _mgr(client, {'prefix': 'rbd mirror snapshot schedule list', 'level_spec': level_spec})
    if ret == -errno.EINVAL and 'not in snapshot mirror mode' in outs:
        return []  # an image not mirrored yet has no schedule (check mode before the enable)
    if ret != 0:
        raise ModuleError('rbd mirror snapshot schedule list %s failed: %s (is the mgr up?)' % (level_spec, outs.strip()))
    found = []
    for entry in (out or {}).values():
        if entry.get('name', '').rstrip('/') == level_spec.rstrip('/'):
            found.extend(interval_minutes(s['interval']) for s in entry.get('schedule', []))
    return sorted(found)


def image_status(img):
    """The mirror status of an open image, as the module returns it."""
    try:
        st = img.mirror_image_get_status()
    except rbd.Error:
        return {'state': 'unknown', 'description': 'no status', 'up': False}
    words, stats = parse_description(st.get('description'))
    out = {'state': STATUS_STATES.get(st.get('state'), str(st.get('state'))), 'description': st.get('description', ''),
           'up': bool(st.get('up')), 'last_update': _iso(st.get('last_update'))}
    remotes = []
    for remote in st.get('remote_statuses') or []:
        r_words, r_stats = parse_description(remote.get('description'))
        remotes.append({'state': STATUS_STATES.get(remote.get('state'), str(remote.get('state'))),
                        'description': remote.get('description', ''), 'up': bool(remote.get('up')),
                        'last_update': _iso(remote.get('last_update')),
                        'last_snapshot_sync': r_stats.get('local_snapshot_timestamp'),
                        'replay_state': r_stats.get('replay_state'), 'summary': r_words})
    out['summary'] = words
    out['replay_state'] = stats.get('replay_state')
    out['last_snapshot_sync'] = stats.get('local_snapshot_timestamp')
    if out['last_snapshot_sync'] is None:
        synced = [r['last_snapshot_sync'] for r in remotes if r['last_snapshot_sync']]
        out['last_snapshot_sync'] = max(synced) if synced else None
    out['remote_statuses'] = remotes
    return out


def _iso(value):
    return value.isoformat() if hasattr(value, 'isoformat') else value


def observe_image(ioctx, name):
    with rbd.Image(ioctx, name, read_only=True) as img:
        info = img.mirror_image_get_info()
        state = IMAGE_STATES.get(info.get('state'), str(info.get('state')))
        mode = IMAGE_MODES.get(img.mirror_image_get_mode()) if state == 'enabled' else None
        return {'name': name, 'enabled': state == 'enabled', 'mirror_state': state, 'mode': mode,
                'primary': bool(info.get('primary')) if state == 'enabled' else True,
                'global_id': info.get('global_id') or None,
                'last_mirror_snapshot': last_mirror_snapshot(img) if mode == 'snapshot' else None,
                'status': image_status(img)}


def last_mirror_snapshot(img):
    """State and completeness of the newest mirror snapshot of an open image; None without one."""
    last = None
    for snap in img.list_snaps():
        if snap.get('namespace') != rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR:
            continue
        if last is None or snap['id'] > last['id']:
            last = snap
    if last is None:
        return None
    ns = last.get('mirror') or img.snap_get_mirror_namespace(last['id'])
    return {'name': last['name'], 'state': SNAP_STATES.get(ns.get('state'), str(ns.get('state'))),
            'complete': bool(ns.get('complete'))}


def observe_pool(client, ioctx, pool):
    api = rbd.RBD()
    peers = []
    for peer in api.mirror_peer_list(ioctx):
        try:
            mon_host = api.mirror_peer_get_attributes(ioctx, peer['uuid']).get('mon_host')
        except rbd.Error:
            mon_host = None
        peers.append({'uuid': peer['uuid'], 'site_name': peer.get('site_name'),
                      'direction': dict((v, k) for k, v in DIRECTIONS.items()).get(peer.get('direction'), 'tx-only'),
                      'client_name': peer.get('client_name'), 'mon_host': mon_host})
    return {'name': pool, 'mirror_mode': MIRROR_MODES.get(api.mirror_mode_get(ioctx)),
            'site_name': api.mirror_site_name_get(client.handle), 'peers': peers}


# ---- run ----------------------------------------------------------------------------------------

def run(p, check_mode=False, diff=False):
    """The whole rbd_mirror module: parameters -> Result (ModuleError on bad input or failure)."""
    msg = problem(p)
    if msg:
        raise ModuleError(msg)
    if rbd is None:
        raise ModuleError(missing_required_lib('rbd (python3-rbd)'))
    with ceph.connected(p, check_mode) as client:
        ioctx = client.ioctx(p['pool'])
        try:
            before, images = _observe_all(client, ioctx, p)
            token, after = _apply(client, ioctx, p, before, images)
            if not check_mode and client.calls:  # what the playbook waits on: the state after the changes
                images = dict((n, observe_image(ioctx, n)) for n in p['images'] or [])
                after['pool'] = dict(observe_pool(client, ioctx, p['pool']), schedules=after['pool']['schedules'])
        finally:
            ioctx.close()
        calls = list(client.calls)
    out_images = [dict(images[n], **after['images'][n]) if check_mode else images[n] for n in p['images'] or []]
    for img in out_images:
        img.setdefault('status', {})
    return Result(changed=bool(calls), calls=calls, pool=_public_pool(after['pool']), images=out_images,
                  diff={'before': _diffable(before), 'after': _diffable(after)} if diff else None,
                  secret={'peer_token': token} if token else None)


def _public_pool(pool):
    return dict(pool, peers=[dict((k, v) for k, v in peer.items() if k != 'mon_host') for peer in pool['peers']])


def _diffable(state):
    return {'pool': _public_pool(state['pool']),
            'images': dict((n, dict((k, v) for k, v in i.items() if k in ('enabled', 'mode', 'primary')))
                           for n, i in state['images'].items())}


def _observe_all(client, ioctx, p):
    """The observed state; ModuleError (before any change) for unknown images and impossible asks."""
    pool = observe_pool(client, ioctx, p['pool'])
    existing = set(rbd.RBD().list(ioctx))
    unknown = [n for n in p['images'] or [] if n not in existing]
    if unknown:
        raise ModuleError('image(s) %s do not exist in pool %s (on a secondary site an image appears once '
                          'rbd-mirror has replicated it); nothing was changed' % (', '.join(unknown), p['pool']))
    if pool['mirror_mode'] == 'pool':
        raise ModuleError('pool %s mirrors in mode pool (journal-based); this module manages mode image with '
                          'snapshot-based images and does not switch an existing setup; nothing was changed' % p['pool'])
    images = dict((n, observe_image(ioctx, n)) for n in p['images'] or [])
    for name, img in images.items():
        if img['enabled'] and img['mode'] != 'snapshot':
            raise ModuleError('image %s/%s is mirrored in %s mode, not snapshot; nothing was changed'
                              % (p['pool'], name, img['mode']))
        if img['mirror_state'] == 'disabling':
            raise ModuleError('image %s/%s is being disabled for mirroring; retry later' % (p['pool'], name))
        if p['resync'] and p['role'] is None and img['primary']:
            raise ModuleError('image %s/%s is primary on this site: resync discards the local copy of a '
                              'non-primary image only (demote it first with role: secondary); nothing was changed'
                              % (p['pool'], name))
        if p['role'] == 'primary' and not p['force'] and img['enabled'] and not img['primary']:
            why = promote_refusal(img['last_mirror_snapshot'])
            if why:
                raise ModuleError('image %s/%s cannot be promoted without force yet: %s. A planned promotion works '
                                  'once the peer site has demoted the image and its demotion snapshot is synced '
                                  'here (retry); if the peer site is lost, force: true promotes anyway '
                                  '(split-brain risk). Nothing was changed.' % (p['pool'], name, why))
        if p['role'] == 'secondary' and not p['resync'] and img['enabled'] and img['primary']:
            why = demote_refusal(img['status'].get('remote_statuses'))
            if why:
                raise ModuleError('image %s/%s cannot be demoted yet: %s. A demotion the peer does not copy '
                                  'leaves no site ahead and stops mirroring; retry once the peer reports '
                                  'replaying (images[].status.remote_statuses). To demote a split-brain copy, '
                                  'use resync: true. Nothing was changed.' % (p['pool'], name, why))
    pool['schedules'] = _observe_schedules(client, p)
    return {'pool': pool, 'images': dict((n, _role_view(i)) for n, i in images.items())}, images


def _role_view(img):
    return {'enabled': img['enabled'], 'mode': img['mode'], 'primary': img['primary']}


def _levels(p):
    if p['schedule_level'] == 'image':
        return ['%s/%s' % (p['pool'], n) for n in p['images'] or []]
    return ['%s/' % p['pool']]


def _observe_schedules(client, p):
    if p['schedule_interval'] is None:
        return []
    out = []
    for level in _levels(p):
        out.extend({'level': level, 'interval': interval_text(m)} for m in schedules_at(client, level))
    return out


def _apply(client, ioctx, p, before, images):
    api = rbd.RBD()
    pool = dict(before['pool'], peers=list(before['pool']['peers']))
    base = {'pool': p['pool']}
    if p['site_name'] is not None and p['site_name'] != pool['site_name']:
        client.change({'prefix': 'rbd mirror pool peer site-name set', 'site_name': p['site_name']},
                      lambda: api.mirror_site_name_set(client.handle, p['site_name']))
        pool['site_name'] = p['site_name']
    if pool['mirror_mode'] != 'image':
        client.change(dict(base, prefix='rbd mirror pool enable', mode='image'),
                      lambda: api.mirror_mode_set(ioctx, rbd.RBD_MIRROR_MODE_IMAGE))
        pool['mirror_mode'] = 'image'
    token = _peers(client, ioctx, p, pool)
    after_images = {}
    for name in p['images'] or []:
        after_images[name] = _image(client, ioctx, p, images[name])
    schedules = _schedules(client, p, pool['schedules'])
    pool['schedules'] = schedules
    return token, {'pool': pool, 'images': after_images}


def _peers(client, ioctx, p, pool):
    """Bootstrap create (returns the token) or import (adds the peer once)."""
    api = rbd.RBD()
    if p['peer_token_create']:
        exists = client.query('auth get', missing_ok=True, entity=PEER_USER) is not None
        if exists:  # a read: the user is there, the call only reads its key
            return api.mirror_peer_bootstrap_create(ioctx)
        return client.change({'prefix': 'rbd mirror pool peer bootstrap create', 'pool': p['pool']},
                             lambda: api.mirror_peer_bootstrap_create(ioctx))
    if p['peer_token'] is not None:
        data = decode_token(p['peer_token'])
        if any(peer['mon_host'] == data['mon_host'] or peer['site_name'] == data['fsid'] for peer in pool['peers']):
            return None
        direction = p['peer_direction']
        client.change({'prefix': 'rbd mirror pool peer bootstrap import', 'pool': p['pool'], 'direction': direction,
                       'remote_fsid': data['fsid'], 'remote_mon_host': data['mon_host']},
                      lambda: api.mirror_peer_bootstrap_import(ioctx, DIRECTIONS[direction], p['peer_token']))
        pool['peers'].append({'uuid': None, 'site_name': None, 'direction': direction,
                              'client_name': 'client.' + data['client_id'], 'mon_host': data['mon_host']})
    return None


def _image(client, ioctx, p, have):
    """Enable (snapshot mode), promote / demote, resync one image; returns its role view after."""
    name = have['name']
    base = {'pool': p['pool'], 'image': name}
    after = _role_view(have)
    if not have['enabled']:
        client.change(dict(base, prefix='rbd mirror image enable', mode='snapshot'),
                      lambda: _with_image(ioctx, name, lambda img: img.mirror_image_enable(
                          rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT)))
        after.update(enabled=True, mode='snapshot', primary=True)
    step = role_steps(p['role'], after['primary'])
    if step == 'promote':
        client.change(dict(base, prefix='rbd mirror image promote', force=bool(p['force'])),
                      lambda: _promote(ioctx, p['pool'], name, p['force']))
        after['primary'] = True
    elif step == 'demote':
        client.change(dict(base, prefix='rbd mirror image demote'),
                      lambda: _with_image(ioctx, name, lambda img: img.mirror_image_demote()))
        after['primary'] = False
    if p['resync'] and needs_resync(step == 'demote', after['primary'], have['status'].get('state')):
        client.change(dict(base, prefix='rbd mirror image resync'),
                      lambda: _with_image(ioctx, name, lambda img: img.mirror_image_resync()))
    return after


def _promote(ioctx, pool, name, force):
    try:
        _with_image(ioctx, name, lambda img: img.mirror_image_promote(bool(force)))
    except rbd.Error as exc:
        hint = ('' if force else ' A planned promotion works once the peer site has demoted the image and '
                'its demotion snapshot is synced here (retry); if the peer site is lost, force: true promotes '
                'anyway (split-brain risk).')
        raise ModuleError('promote of image %s/%s failed: %s.%s' % (pool, name, exc, hint),
                          command={'prefix': 'rbd mirror image promote', 'pool': pool, 'image': name})


def _schedules(client, p, have):
    """Exactly one interval at each level asked for: add it, remove the other intervals there."""
    if p['schedule_interval'] is None:
        return have
    want = interval_minutes(p['schedule_interval'])
    after = []
    for level in _levels(p):
        at_level = [interval_minutes(s['interval']) for s in have if s['level'] == level]
        if want not in at_level:
            cmd = {'prefix': 'rbd mirror snapshot schedule add', 'level_spec': level, 'interval': interval_text(want)}
            client.change(cmd, lambda c=cmd: _mgr_change(client, c))
        for other in at_level:
            if other != want:
                cmd = {'prefix': 'rbd mirror snapshot schedule remove', 'level_spec': level,
                       'interval': interval_text(other)}
                client.change(cmd, lambda c=cmd: _mgr_change(client, c))
        after.append({'level': level, 'interval': interval_text(want)})
    return after


def _with_image(ioctx, name, fn):
    with rbd.Image(ioctx, name) as img:
        return fn(img)
