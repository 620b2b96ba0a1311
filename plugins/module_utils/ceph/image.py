# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RBD images through librbd: create, import, clone, resize, features, snapshots, remove."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import tempfile

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client as ceph
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

try:
    import rbd
except ImportError:
    rbd = None

NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')
# librbd feature bits (include/rbd/features.h), in the order they can be enabled
FEATURES = (('layering', 1), ('exclusive-lock', 4), ('object-map', 8), ('fast-diff', 16),
            ('deep-flatten', 32), ('journaling', 64))
MUTABLE_ON = ('exclusive-lock', 'object-map', 'fast-diff', 'journaling')
MUTABLE_OFF = MUTABLE_ON + ('deep-flatten',)
CHUNK = 4 << 20
IMPORTING_SUFFIX = '.hc-importing'
MAX_SIZE = 2 ** 63 - 1  # librbd sizes are uint64; larger ones would overflow in the binding


def parse_size(value):
    """Bytes from 10737418240, '10G', '512MiB' (binary units); ValueError on anything else."""
    text = str(value).strip()
    if re.match(r'^\d+$', text):
        return int(text)
    match = re.match(r'^(\d+(?:\.\d+)?)\s*([KMGTP])(?:i?B)?$', text, re.IGNORECASE)
    if not match:
        raise ValueError('size %r is not a number of bytes or a value like 10G / 512MiB' % value)
    return human_to_bytes(match.group(1) + match.group(2).upper())


def validate(p):
    """Raise ModuleError for the first problem with the parameters (before connecting)."""
    msg = _problem(p)
    if msg:
        raise ModuleError(msg)


def _problem(p):
    """The first problem with the parameters, None if fine."""
    for key in ('pool', 'name'):
        if not NAME.match(p[key] or ''):
            return 'invalid %s name %r: use A-Z a-z 0-9 _ . - (no spaces, no /, no @)' % (key, p[key])
    if p['name'] and p['name'].endswith(IMPORTING_SUFFIX):
        return 'invalid name name %r: %s names an image while it is imported' % (p['name'], IMPORTING_SUFFIX)
    if p['size'] is not None:
        try:
            if parse_size(p['size']) <= 0:
                return 'size must be greater than 0'
            if parse_size(p['size']) > MAX_SIZE:
                return 'size must be at most %d bytes (8 EiB), got %s' % (MAX_SIZE, p['size'])
        except ValueError as exc:
            return str(exc)
    if p['clone_from'] and p['import_from']:
        return 'clone_from and import_from are mutually exclusive'
    for snap in p['snapshots'] or []:
        if not NAME.match(snap['name'] or ''):
            return 'invalid snapshot name %r' % snap['name']
    if p['import_from'] and p['state'] == 'present' and not os.path.isfile(p['import_from']):
        return 'import_from %s is not a file' % p['import_from']
    return None


def feature_names(mask):
    return [n for n, bit in FEATURES if mask & bit]


def feature_mask(names):
    return sum(bit for n, bit in FEATURES if n in names)


def observe(ioctx, name):
    with rbd.Image(ioctx, name, read_only=True) as img:
        snaps = [{'name': s['name'], 'protected': img.is_protected_snap(s['name'])} for s in img.list_snaps()]
        try:
            parent = img.parent_info()
            parent = {'pool': parent[0], 'image': parent[1], 'snapshot': parent[2]}
        except rbd.ImageNotFound:
            parent = None
        return {'size': img.size(), 'features': feature_names(img.features()), 'snapshots': snaps,
                'parent': parent}


def plan_features(name, want, have):
    """(feature, enable) steps in dependency order; ModuleError for changes librbd cannot make."""
    add = [f for f, bit in FEATURES if f in want and f not in have and bit]
    drop = [f for f, bit in reversed(FEATURES) if f in have and f not in want and bit]
    bad = [f for f in add if f not in MUTABLE_ON] + [f for f in drop if f not in MUTABLE_OFF]
    if bad:
        raise ModuleError('feature(s) %s of image %s can only be chosen when the image is created'
                          % (', '.join(bad), name))
    return [(f, True) for f in add] + [(f, False) for f in drop]


def run(p, check_mode=False, diff=False):
    """The whole rbd_image module: parameters -> Result (ModuleError on bad input or failure)."""
    validate(p)
    if rbd is None:
        raise ModuleError(missing_required_lib('rbd (python3-rbd)'))
    with ceph.connected(p, check_mode) as client:
        ioctx = client.ioctx(p['pool'])
        try:
            exists = p['name'] in rbd.RBD().list(ioctx)
            have = observe(ioctx, p['name']) if exists else None
            if p['state'] == 'absent':
                after = _remove(p, client, ioctx, have)
            else:
                after = _present(p, client, ioctx, have)
        finally:
            ioctx.close()
        return Result(changed=bool(client.calls), calls=client.calls,
                      image=dict(after, pool=p['pool'], name=p['name']),
                      diff={'before': have or {'state': 'absent'}, 'after': after} if diff else None)


def _remove(p, client, ioctx, have):
    if have is None:
        return {'state': 'absent'}
    if not p['allow_delete']:
        raise ModuleError('image %s/%s exists and state=absent would delete it and its data; set '
                          'allow_delete: true to confirm (nothing was changed)' % (p['pool'], p['name']))
    for snap in have['snapshots']:
        if snap['protected']:
            with rbd.Image(ioctx, p['name'], snapshot=snap['name'], read_only=True) as at_snap:
                kids = list(at_snap.list_children2())
            if kids:
                raise ModuleError('image %s/%s has clones of snapshot %s (%s): remove them first'
                                  % (p['pool'], p['name'], snap['name'],
                                     ', '.join('%s/%s' % (c['pool'], c['image']) for c in kids)))
    with rbd.Image(ioctx, p['name']) as img:
        for snap in have['snapshots']:
            base = {'pool': p['pool'], 'image': p['name'], 'snapshot': snap['name']}
            if snap['protected']:
                client.change(dict(base, prefix='rbd snap unprotect'), lambda s=snap['name']: img.unprotect_snap(s))
            client.change(dict(base, prefix='rbd snap rm'), lambda s=snap['name']: img.remove_snap(s))
    client.change({'prefix': 'rbd rm', 'pool': p['pool'], 'image': p['name']},
                  lambda: rbd.RBD().remove(ioctx, p['name']))
    return {'state': 'absent'}


def _present(p, client, ioctx, have):
    size = parse_size(p['size']) if p['size'] is not None else None
    base = {'pool': p['pool'], 'image': p['name']}
    if have is None:
        have = _create(p, client, ioctx, size)
    elif p['clone_from']:
        src = dict(p['clone_from'], pool=p['clone_from']['pool'] or p['pool'])
        if have['parent'] != src:
            raise ModuleError('image %s/%s exists with parent %s, not a clone of %s: it is not re-cloned'
                              % (p['pool'], p['name'], have['parent'], src))
    after = dict(have, state='present')
    if size is not None and size != have['size']:
        if size < have['size'] and not p['allow_shrink']:
            raise ModuleError('image %s/%s is %d bytes; shrinking it to %d bytes destroys data at its end: '
                              'set allow_shrink: true to confirm' % (p['pool'], p['name'], have['size'], size))
        client.change(dict(base, prefix='rbd resize', size=size, allow_shrink=size < have['size']),
                      lambda: _with_image(ioctx, p['name'], lambda img: img.resize(size, allow_shrink=True)))
        after['size'] = size
    if p['features'] is not None:
        for feature, enable in plan_features(p['name'], p['features'], have['features']):
            client.change(dict(base, prefix='rbd feature %s' % ('enable' if enable else 'disable'), feature=feature),
                          lambda f=feature, e=enable: _with_image(
                              ioctx, p['name'], lambda img: img.update_features(dict(FEATURES)[f], e)))
        after['features'] = [f for f in dict(FEATURES) if f in p['features']]
    snaps = dict((s['name'], s['protected']) for s in have['snapshots'])
    for snap in p['snapshots'] or []:
        sname, protect = snap['name'], snap['protected']
        cmd = dict(base, snapshot=sname)
        if sname not in snaps:
            client.change(dict(cmd, prefix='rbd snap create'),
                          lambda s=sname: _with_image(ioctx, p['name'], lambda img: img.create_snap(s)))
            snaps[sname] = False
        if protect != snaps[sname]:
            client.change(dict(cmd, prefix='rbd snap %s' % ('protect' if protect else 'unprotect')),
                          lambda s=sname, on=protect: _with_image(
                              ioctx, p['name'], lambda img: img.protect_snap(s) if on else img.unprotect_snap(s)))
            snaps[sname] = protect
    after['snapshots'] = [{'name': n, 'protected': v} for n, v in snaps.items()]
    return after


def _with_image(ioctx, name, fn):
    with rbd.Image(ioctx, name) as img:
        return fn(img)


def _create(p, client, ioctx, size):
    """Create (plain, clone or import) and return the state of the new image."""
    features = feature_mask(p['features']) if p['features'] is not None else None
    base = {'pool': p['pool'], 'image': p['name']}
    kw = {'features': features} if features is not None else {}
    if p['clone_from']:
        src = dict(p['clone_from'], pool=p['clone_from']['pool'] or p['pool'])
        pio = client.ioctx(src['pool'])
        try:
            if src['image'] not in rbd.RBD().list(pio):
                raise ModuleError('clone_from image %s/%s does not exist' % (src['pool'], src['image']))
            parent = observe(pio, src['image'])
            if src['snapshot'] not in [s['name'] for s in parent['snapshots']]:
                raise ModuleError('clone_from snapshot %s@%s does not exist' % (src['image'], src['snapshot']))
            client.change(dict(base, prefix='rbd clone', parent=src, features=p['features']),
                          lambda: rbd.RBD().clone(pio, src['image'], src['snapshot'], ioctx, p['name'], **kw))
        finally:
            pio.close()
        feats = p['features'] if p['features'] is not None else parent['features']
        return {'size': parent['size'], 'features': feats, 'snapshots': [], 'parent': src}
    if p['import_from']:
        fmt, virtual = _inspect(p['import_from'], p['import_format'])
        if size is not None and size < virtual:
            raise ModuleError('size %d is smaller than the %d bytes of %s' % (size, virtual, p['import_from']))
        size = size or virtual
    elif size is None:
        raise ModuleError('size is required to create image %s/%s' % (p['pool'], p['name']))
    if not p['import_from']:
        client.change(dict(base, prefix='rbd create', size=size, features=p['features']),
                      lambda: rbd.RBD().create(ioctx, p['name'], size, old_format=False, **kw))
    else:
        # import under a temporary name and rename only after the last byte is written: a run that
        # is killed or fails half-way leaves no image under the real name to be snapshotted and cloned
        tmp = importing_name(p['name'])
        if tmp in rbd.RBD().list(ioctx):
            client.change(dict(base, prefix='rbd rm', image=tmp, reason='partial import of an earlier run'),
                          lambda: rbd.RBD().remove(ioctx, tmp))
        client.change(dict(base, prefix='rbd create', image=tmp, size=size, features=p['features']),
                      lambda: rbd.RBD().create(ioctx, tmp, size, old_format=False, **kw))
        client.change(dict(base, prefix='rbd import', image=tmp, source=p['import_from'], format=fmt),
                      lambda: _import_or_remove(ioctx, tmp, p['import_from'], fmt))
        client.change(dict(base, prefix='rbd rename', source=tmp),
                      lambda: rbd.RBD().rename(ioctx, tmp, p['name']))
    feats = p['features'] if p['features'] is not None else []
    return {'size': size, 'features': feats, 'snapshots': [], 'parent': None}


def importing_name(name):
    """Name an image has while it is imported (renamed to `name` once complete)."""
    return name + IMPORTING_SUFFIX


def _import_or_remove(ioctx, name, path, fmt):
    try:
        _import(ioctx, name, path, fmt)
    except BaseException:
        try:
            rbd.RBD().remove(ioctx, name)
        except Exception:  # pylint: disable=broad-except
            pass  # the next run removes it (it never carries the real name)
        raise


def _run_command(argv):
    """(rc, stdout, stderr) of a local command; rc 127 when it is not installed."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                              universal_newlines=True)
    except OSError as exc:
        return 127, '', str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def _inspect(path, fmt):
    rc, out, err = _run_command(['qemu-img', 'info', '--output=json', path])
    if rc != 0:
        raise ModuleError('qemu-img info %s failed: %s' % (path, err.strip()))
    info = json.loads(out)
    found = info.get('format')
    if fmt != 'auto' and found != fmt:
        raise ModuleError('%s is %s, not %s' % (path, found, fmt))
    if found not in ('raw', 'qcow2'):
        raise ModuleError('%s is in format %s; only raw and qcow2 can be imported' % (path, found))
    return found, int(info['virtual-size'])


def _import(ioctx, name, path, fmt):
    """Stream a raw file (qcow2: converted to a sparse temporary raw first) into the image,
    skipping all-zero chunks (a new image reads as zeros)."""
    tmpdir = None
    try:
        if fmt == 'qcow2':
            tmpdir = tempfile.mkdtemp(prefix='rbd-import-', dir=os.path.dirname(os.path.abspath(path)))
            raw = os.path.join(tmpdir, 'image.raw')
            rc, dummy, err = _run_command(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path, raw])
            if rc != 0:
                raise ModuleError('qemu-img convert %s failed: %s' % (path, err.strip()))
            path = raw
        zero = bytes(CHUNK)
        with rbd.Image(ioctx, name) as img, open(path, 'rb') as fh:
            offset = 0
            while True:
                chunk = fh.read(CHUNK)
                if not chunk:
                    break
                if chunk != zero[:len(chunk)]:
                    img.write(chunk, offset)
                offset += len(chunk)
            img.flush()
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
