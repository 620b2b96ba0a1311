# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Ceph connection helper of the collection (librados, no CLI forks).

Every module's ``run`` opens one :class:`CephClient` (:func:`connected`), reads state with
:meth:`CephClient.query` and sends changes with :meth:`CephClient.change`, which go through the
collection's one :class:`Recorder`: each change is recorded (the module's ``calls``) and, in
check mode, recorded without being sent. Errors are the collection's one :class:`ModuleError`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import traceback

from contextlib import contextmanager

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Recorder

RADOS_IMPORT_ERROR = None
try:
    import rados
except ImportError:
    rados = None
    RADOS_IMPORT_ERROR = traceback.format_exc()


def connection_argument_spec():
    """Options shared by every Ceph module (documented in doc_fragments/ceph.py)."""
    return dict(
        cluster=dict(type='str', default='ceph'),
        conf=dict(type='path'),
        client=dict(type='str', default='client.admin'),
        keyring=dict(type='path', no_log=False),
        connect_timeout=dict(type='int', default=10),
    )


def missing_library():
    """A message when python3-rados is missing (checked by execute before anything else)."""
    return missing_required_lib('rados (python3-rados)') if rados is None else None


def _errname(ret):
    return errno.errorcode.get(-ret, str(ret)) if ret < 0 else str(ret)


class CephClient:
    """A librados connection plus the recorder of the changes it sent (or would send in check mode)."""

    def __init__(self, cluster='ceph', conf=None, client='client.admin', keyring=None,
                 connect_timeout=10, check_mode=False):
        self.cluster = cluster
        self.conf = conf
        self.client = client
        self.keyring = keyring
        self.timeout = connect_timeout
        self.check_mode = check_mode
        self.recorder = Recorder(check_mode, _translate)
        self.handle = None

    @property
    def calls(self):
        return self.recorder.calls

    @classmethod
    def from_params(cls, params, check_mode=False):
        return cls(params['cluster'], params['conf'], params['client'], params['keyring'],
                   params['connect_timeout'], check_mode)

    def connect(self):
        if self.timeout is None or not 1 <= self.timeout <= 3600:
            raise ModuleError('connect_timeout must be a number of seconds from 1 to 3600, got %s' % self.timeout)
        if not self.client or '.' not in self.client:
            raise ModuleError("client must be an entity name like 'client.admin', got %r" % self.client)
        opts = {'client_mount_timeout': str(self.timeout), 'rados_mon_op_timeout': str(self.timeout)}
        if self.keyring:
            opts['keyring'] = self.keyring
        conffile = self.conf if self.conf else ''
        try:
            self.handle = rados.Rados(clustername=self.cluster, name=self.client, conffile=conffile,
                                      conf=opts)
        except rados.Error as exc:
            raise ModuleError('cannot read Ceph configuration %s for cluster %r: %s'
                              % (self.conf or '(default search path)', self.cluster, exc))
        try:
            self.handle.connect(timeout=self.timeout)
        except rados.Error as exc:
            self.handle = None
            raise ModuleError(
                'cannot connect to Ceph cluster %r as %s (conf %s, keyring %s) within %ss: %s. '
                'Check that the monitors are reachable and that the keyring holds the key of %s.'
                % (self.cluster, self.client, self.conf or 'default', self.keyring or 'default',
                   self.timeout, exc, self.client))
        return self

    def close(self):
        if self.handle is not None:
            self.handle.shutdown()
            self.handle = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    def _mon(self, cmd, inbuf=b''):
        try:
            ret, out, outs = self.handle.mon_command(json.dumps(cmd), inbuf, timeout=self.timeout)
        except rados.Error as exc:
            return -errno.EIO, b'', str(exc)
        return ret, out, outs

    def ioctx(self, pool):
        """An I/O context on `pool` (caller closes it); ModuleError if the pool does not exist."""
        try:
            return self.handle.open_ioctx(pool)
        except rados.ObjectNotFound:
            raise ModuleError('pool %s does not exist' % pool)
        except rados.Error as exc:
            raise ModuleError('cannot open pool %s: %s' % (pool, exc))

    def query(self, prefix, missing_ok=False, **args):
        """Run a read-only mon command with JSON output; None if missing_ok and ENOENT."""
        cmd = dict(args, prefix=prefix, format='json')
        ret, out, outs = self._mon(cmd)
        if ret == -errno.ENOENT and missing_ok:
            return None
        if ret != 0:
            raise ModuleError('%s failed (%s): %s' % (prefix, _errname(ret), outs.strip()),
                              command=redact(cmd))
        try:
            return json.loads(out) if out else None
        except ValueError:
            return out.decode('utf-8', 'replace')

    def change(self, cmd, action=None, inbuf=b''):
        """Record a change and, unless in check mode, apply it.

        ``cmd`` is a mon command dict (sent with ``mon_command``) or, with ``action``, a
        description (e.g. ``{'prefix': 'rbd create', ...}``) of a librbd call ``action()``.
        """
        if action is None:
            return self.recorder.call(redact(cmd), self._send, cmd, inbuf)
        return self.recorder.call(redact(cmd), action)

    def _send(self, cmd, inbuf):
        ret, out, outs = self._mon(cmd, inbuf)
        if ret != 0:
            raise ModuleError('%s failed (%s): %s' % (cmd['prefix'], _errname(ret), outs.strip()),
                              command=redact(cmd))
        return out


def _translate(what, exc):
    """librados / librbd errors (their own class trees) and I/O errors of a change -> ModuleError."""
    if isinstance(exc, (OSError, IOError)) or type(exc).__module__ in ('rados', 'rbd'):
        return ModuleError('%s failed: %s' % (what['prefix'], exc), command=what)
    return None


def redact(cmd):
    """A copy of a command safe to return: no key material."""
    return dict((k, '********' if k in ('key', 'secret') else v) for k, v in cmd.items())


@contextmanager
def connected(params, check_mode=False):
    """A connected :class:`CephClient` for the connection options in ``params``; closed afterwards."""
    client = CephClient.from_params(params, check_mode=check_mode)
    try:
        client.connect()
        yield client
    except ModuleError as exc:
        exc.details['calls'] = list(client.calls)  # everything sent, up to and after the failure
        raise
    finally:
        client.close()
