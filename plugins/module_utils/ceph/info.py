# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ceph_info: read-only views of a Ceph cluster through the one librados client.

Each gathered key is the raw JSON of one mon command (what ``ceph <command> --format json``
prints), except ``monitors`` (the ``mons`` of ``mon dump``) and ``images`` (librbd). Nothing is
ever sent through the recorder: ``calls`` is empty and check mode runs the same reads.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client as ceph
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

try:
    import rbd
except ImportError:
    rbd = None

GATHER = ['health', 'osd_tree', 'osd_dump', 'pools', 'monitors', 'quorum', 'images']
# gathered key -> the read-only mon command (prefix, arguments) whose JSON it returns
MON_READS = {
    'health': ('health', {'detail': 'detail'}),
    'osd_tree': ('osd tree', {}),
    'osd_dump': ('osd dump', {}),
    'pools': ('osd pool ls', {'detail': 'detail'}),
    'monitors': ('mon dump', {}),
    'quorum': ('quorum_status', {}),
}


def gathered(p):
    """The gathered keys, each once, in the order of GATHER."""
    wanted = set(p['gather'] or [])
    return [key for key in GATHER if key in wanted]


def validate(p):
    """Raise ModuleError for the first problem with the parameters (before connecting)."""
    if 'images' in (p['gather'] or []) and not p['pool']:
        raise ModuleError('gather images needs pool (the pool whose RBD images are listed)')


def warnings_for(p):
    """Parameters that are accepted but have no effect."""
    if p['pool'] and 'images' not in (p['gather'] or []):
        return ['pool %s is only read with gather: [images]; it was ignored' % p['pool']]
    return []


def shape(key, raw):
    """The returned value of gathered ``key`` from the JSON of its mon command."""
    if key == 'monitors':
        return list((raw or {}).get('mons') or [])
    return raw


def image_entry(name, size, snaps):
    """One image of ``images``: snapshots (dicts with id, name, size, protected) sorted by id."""
    return {'name': name, 'size': int(size),
            'snapshots': [{'name': s['name'], 'size': int(s['size']), 'protected': bool(s['protected'])}
                          for s in sorted(snaps, key=lambda s: s['id'])]}


def sorted_images(entries):
    return sorted(entries, key=lambda e: e['name'])


def _describe(ioctx, name):
    """image_entry of one image; None when it was removed while the pool was listed."""
    try:
        with rbd.Image(ioctx, name, read_only=True) as img:
            snaps = [dict(id=s['id'], name=s['name'], size=s['size'],
                          protected=img.is_protected_snap(s['name'])) for s in img.list_snaps()]
            return image_entry(name, img.size(), snaps)
    except rbd.ImageNotFound:
        return None


def read_images(client, pool):
    """(pool_exists, images) of ``pool``; a missing pool is (False, [])."""
    try:
        exists = client.handle.pool_exists(pool)
    except ceph.rados.Error as exc:
        raise ModuleError('cannot look up pool %s: %s' % (pool, exc))
    if not exists:
        return False, []
    ioctx = client.ioctx(pool)
    try:
        entries = [_describe(ioctx, name) for name in rbd.RBD().list(ioctx)]
    except (rbd.Error, ceph.rados.Error) as exc:
        raise ModuleError('cannot read the RBD images of pool %s: %s' % (pool, exc))
    finally:
        ioctx.close()
    return True, sorted_images(e for e in entries if e is not None)


def _fsid(client):
    """The fsid the cluster handle learned from the monitors when it connected (no extra read)."""
    try:
        return client.handle.get_fsid()
    except ceph.rados.Error as exc:
        raise ModuleError('cannot read the fsid of cluster %r: %s' % (client.cluster, exc))


def run(p, check_mode=False, diff=False):  # pylint: disable=unused-argument
    """The whole ceph_info module (read-only: the same reads in check mode, nothing to diff)."""
    validate(p)
    keys = gathered(p)
    if 'images' in keys and rbd is None:
        raise ModuleError(missing_required_lib('rbd (python3-rbd)'))
    facts = {}
    with ceph.connected(p, check_mode) as client:
        facts['fsid'] = _fsid(client)
        for key in keys:
            if key == 'images':
                facts['pool_exists'], facts['images'] = read_images(client, p['pool'])
            else:
                prefix, args = MON_READS[key]
                facts[key] = shape(key, client.query(prefix, **args))
        return Result(changed=False, calls=client.calls, warnings=warnings_for(p), **facts)
