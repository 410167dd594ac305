"""Checkpoints: one small wrapper over orbax's CheckpointManager.

A checkpoint of step k holds the train state after k iterations as a host
numpy pytree (item 'state', orbax StandardSave), a small JSON dict of loop
bookkeeping (item 'meta', e.g. the count of skipped steps), optionally the
input pipeline's iterator state (item 'data': grain's orbax handler, one
JSON file per process, `data/process_<i>-of-<n>.json`) and a content digest
(item 'digest': SHA-256, shape and dtype of every state leaf, SHA-256 of
the meta dict and of the primary process's data file), under
`directory/<k>/`. Checkpoints written without a data state (older ones, or
data without `get_state`) restore as before; the loop then resumes the
data by its (seed, step) rule.

Atomic: orbax writes into a temporary directory and renames it when
complete (on object stores it writes a commit marker instead), so a process
killed while saving leaves the previous checkpoints intact; the leftover
temporary directory is deleted when the next manager opens the directory
(`cleanup_tmp_directories`). `latest_step` only sees finished checkpoints.

Verified: a checkpoint is trusted once it has been read back and matched
its digest, which `restore` does before returning it and which happens to
every saved checkpoint once its write has finished (at the next `check`,
`save`, `wait` or `close`). `restore()` of the newest checkpoint falls back
to the newest one that verifies when a newer one is missing a piece, fails
to load or fails its digest; the bad ones are moved to
`directory/corrupt/<k>-<reason>` (never deleted) and one log line says
which and why. A checkpoint whose readable structure differs from the
target (a config change) is refused with ValueError instead.

Never worse than the last good one: `save` refuses a state with a NaN or
infinite float leaf (it logs and returns False); old checkpoints beyond
`max_to_keep` are deleted only after a newer one verified, and the last
verified checkpoint is never deleted. A save that fails (no space,
permission, I/O error; in the background too) raises `CheckpointSaveError`
naming the path and the reason, after removing its temporary directory.

Multi-host: every process calls `save`/`restore` with the same host tree
(replica 0 of the replicated state); orbax writes from the primary process,
which alone moves, deletes and cleans directories. Each process writes and
reads its own data file; the digest covers the primary's (the others'
states are checked by the loop against the restored step).
"""

from __future__ import annotations

import errno as errno_lib
import hashlib
import json
import logging as std_logging
import os
import pathlib
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import grain
import numpy as np
import orbax.checkpoint as ocp

from rawjax.train import state as state_lib

__all__ = ['CheckpointCorruptError', 'CheckpointSaveError', 'Checkpointer']

_TMP_MARKER = '.orbax-checkpoint-tmp'
_CORRUPT_DIR = 'corrupt'
_ITEMS = ('state', 'meta', 'digest', 'data')


class CheckpointSaveError(OSError):
  """A checkpoint could not be written; the run must stop.

  `errno` is the operating system's code when one is known (ENOSPC for a
  full disk), `filename` the checkpoint directory; `str()` is one line.
  """

  def __init__(self, message: str, *, code: int | None = None,
               path: str | None = None):
    super().__init__(code, message, path)
    self.message = message

  def __str__(self) -> str:
    return self.message


class CheckpointCorruptError(RuntimeError):
  """No checkpoint that was asked for (or none at all) verifies."""


class _Corrupt(Exception):
  """Internal: why one checkpoint is unusable (`slug` names the folder)."""

  def __init__(self, slug: str, reason: str):
    super().__init__(reason)
    self.slug = slug
    self.reason = reason


def _describe(x: Any) -> tuple[tuple[int, ...], str]:
  return tuple(x.shape), str(np.dtype(x.dtype))


def _path_name(path: Sequence[Any]) -> str:
  """'opt_state/0/mu/...' for a key path, whatever the node types.

  Orbax's metadata stores a NamedTuple (an optax state) as a dict, so the
  attribute keys of the live state and the dict keys of the stored tree must
  compare equal.
  """
  parts = []
  for key in path:
    for field in ('key', 'name', 'idx'):
      if hasattr(key, field):
        parts.append(str(getattr(key, field)))
        break
    else:
      parts.append(str(key))
  return '/'.join(parts)


def _layout(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  return {_path_name(p): _describe(x) for p, x in
          jax.tree_util.tree_leaves_with_path(tree)}


def _meta_sha256(meta: Mapping[str, Any]) -> str:
  return hashlib.sha256(
      json.dumps(dict(meta), sort_keys=True).encode()).hexdigest()


def _data_file() -> str:
  """This process's file in a checkpoint's 'data' item (grain's naming)."""
  return f'process_{jax.process_index()}-of-{jax.process_count()}.json'


def _data_bytes(data: Mapping[str, Any]) -> bytes:
  return json.dumps(dict(data), sort_keys=True).encode()


class _DataState:
  """What grain's orbax handler saves from and restores into.

  grain's `CheckpointHandler` calls `get_state()` (bytes) when saving and
  `set_state(bytes)` then `start_prefetch()` when restoring; a snapshot
  taken at `save` time, so a background save writes the state of the step
  it was asked for.
  """

  def __init__(self, data: bytes | None = None):
    self.data = data

  def get_state(self) -> bytes:
    return self.data

  def set_state(self, data: bytes) -> None:
    self.data = data

  def start_prefetch(self) -> None:
    pass


def digest(tree: Any, meta: Mapping[str, Any],
           data: bytes | None = None) -> dict[str, Any]:
  """The content digest stored beside a checkpoint (JSON).

  Per leaf: SHA-256 of the C-ordered bytes, shape and dtype; so a flipped
  byte, a truncated array or a reinterpreted dtype all show. `data`: this
  process's data-state file, recorded under its file name.
  """
  leaves = {}
  for path, x in jax.tree_util.tree_leaves_with_path(tree):
    x = np.asarray(x)
    leaves[_path_name(path)] = dict(
        shape=list(x.shape), dtype=str(x.dtype),
        sha256=hashlib.sha256(x.tobytes(order='C')).hexdigest())
  record = dict(algorithm='sha256', leaves=leaves, meta=_meta_sha256(meta))
  if data is not None:
    record['data'] = {_data_file(): hashlib.sha256(data).hexdigest()}
  return record


def _summarise(exc: BaseException, *, limit: int = 240) -> str:
  """One line from an orbax / tensorstore error (no spec dumps)."""
  text = f'{type(exc).__name__}: {exc}' if not str(exc) else str(exc)
  text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
  text = re.sub(r"\s*\[tensorstore_spec=.*", '', text)
  return text if len(text) <= limit else text[:limit - 3] + '...'


_STATUS_ERRNO = {'RESOURCE_EXHAUSTED': errno_lib.ENOSPC,
                 'PERMISSION_DENIED': errno_lib.EACCES}


def _os_error_code(exc: BaseException) -> int | None:
  """The errno behind `exc` (OSError, or a tensorstore status message)."""
  seen = set()
  while exc is not None and id(exc) not in seen:
    seen.add(id(exc))
    if isinstance(exc, OSError) and exc.errno:
      return exc.errno
    text = str(exc)
    match = re.search(r"os_error_code='(\d+)'", text)
    if match:
      return int(match.group(1))
    match = re.match(r'([A-Z_]+):', text)
    if match and match.group(1) in _STATUS_ERRNO:
      return _STATUS_ERRNO[match.group(1)]
    exc = exc.__cause__ or exc.__context__
  return None


def _reason(exc: BaseException) -> tuple[int | None, str]:
  code = _os_error_code(exc)
  if code is not None:
    return code, f'{os.strerror(code)} ({errno_lib.errorcode.get(code, code)})'
  return None, _summarise(exc)


def _size(path: pathlib.Path) -> int:
  return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def _orbax_noise(record: std_logging.LogRecord) -> bool:
  """Keeps a record unless it is an orbax traceback of a failed operation.

  Every failure this wrapper sees is raised again as one clear error; the
  same failure logged with a traceback by each of orbax's threads only
  buries it. The tracebacks go to DEBUG.
  """
  if (record.levelno >= std_logging.ERROR and record.exc_info and
      f'{os.sep}orbax{os.sep}' in record.pathname):
    logging.debug('orbax: %s', record.getMessage(), exc_info=record.exc_info)
    return False
  return True


def _is_loop_closed(value: BaseException | None) -> bool:
  return (isinstance(value, RuntimeError) and
          str(value) == 'Event loop is closed')


def _quiet_hooks() -> None:
  """sys.excepthook / unraisablehook minus asyncio's 'Event loop is closed'.

  When an orbax read or write fails, tensorstore's callbacks still try to
  reach the already closed event loop of the failed thread and print that
  traceback once per pending operation; it is only noise after the real
  error, which this wrapper raises.
  """
  if not getattr(sys.excepthook, 'rawjax_quiet', False):
    previous_excepthook = sys.excepthook

    def excepthook(kind, value, tb):
      if not _is_loop_closed(value):
        previous_excepthook(kind, value, tb)

    excepthook.rawjax_quiet = True
    sys.excepthook = excepthook
  if not getattr(sys.unraisablehook, 'rawjax_quiet', False):
    previous_unraisablehook = sys.unraisablehook

    def unraisablehook(unraisable):
      if not _is_loop_closed(unraisable.exc_value):
        previous_unraisablehook(unraisable)

    unraisablehook.rawjax_quiet = True
    sys.unraisablehook = unraisablehook


def _install_quieting() -> None:
  absl_logger = std_logging.getLogger('absl')
  if _orbax_noise not in absl_logger.filters:
    absl_logger.addFilter(_orbax_noise)
  _quiet_hooks()


class Checkpointer:
  """Saves, verifies and restores host train states with their bookkeeping.

  Args:
    directory: where the step directories live (created if absent).
    max_to_keep: how many of the newest checkpoints to keep (the last
      verified one is kept in addition while newer ones are unverified).
    async_save: write in a background thread (`save` returns once the
      arrays are copied); `check` reports a finished background failure
      without blocking, `wait` / `close` block until written.
  """

  def __init__(self, directory: str | os.PathLike[str], *,
               max_to_keep: int = 3, async_save: bool = True):
    if max_to_keep < 1:
      raise ValueError(f'max_to_keep must be >= 1, got {max_to_keep}.')
    _install_quieting()
    self.directory = os.path.abspath(os.fspath(directory))
    self.max_to_keep = max_to_keep
    self._primary = jax.process_index() == 0
    self._multi_process = jax.process_count() > 1
    # (step, saved host tree, its digest) until the write is read back.
    self._pending: tuple[int, Any, dict[str, Any]] | None = None
    self._verified: int | None = None
    self._last_size = 0
    # The failure already raised: later saves raise it again, close is quiet.
    self._error: CheckpointSaveError | None = None
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            # Retention is ours (`_retain`): orbax would delete old steps
            # even when the newer save failed or does not read back.
            max_to_keep=None, create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save),
        # Declared up front so a fresh manager can read metadata of
        # checkpoints it did not write.
        item_handlers=dict(state=ocp.StandardCheckpointHandler(),
                           meta=ocp.JsonCheckpointHandler(),
                           digest=ocp.JsonCheckpointHandler(),
                           data=grain.checkpoint.CheckpointHandler()))

  def latest_step(self) -> int | None:
    """The newest finished checkpoint's step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  # --- saving -----------------------------------------------------------------

  def save(self, step: int, tree: Any, *,
           meta: Mapping[str, Any] | None = None,
           data: Mapping[str, Any] | None = None) -> bool:
    """Saves `tree` (host numpy pytree) as step `step`, with `meta` (JSON).

    `data`: this process's input-pipeline iterator state (a JSON dict, e.g.
    `rawjax.data.pipeline.BatchIterator.get_state()`), saved through
    grain's orbax handler; every process passes its own.

    Returns:
      True if a checkpoint was started; False if `tree` has a non-finite
      float leaf (the previous checkpoints stay the newest) or step `step`
      is already saved.

    Raises:
      CheckpointSaveError: this save, or an earlier background one, failed
        (or was written but does not read back); the run must stop.
    """
    if self._error is not None:
      raise self._error
    self.wait()
    if not state_lib.host_all_finite(tree):
      bad = [jax.tree_util.keystr(p) for p, x in
             jax.tree_util.tree_leaves_with_path(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact) and
             not np.isfinite(x).all()]
      logging.error('not saving step %d: non-finite values in %s; the last '
                    'good checkpoint (step %s) is kept.', step,
                    ', '.join(bad), self.latest_step())
      return False
    if step in self._manager.all_steps():
      return False
    self._warn_if_short_of_space(step)
    tree = jax.tree.map(np.asarray, tree)
    meta = dict(meta or {})
    data_bytes = None if data is None else _data_bytes(data)
    record = digest(tree, meta, data_bytes)
    items = dict(state=ocp.args.StandardSave(tree),
                 meta=ocp.args.JsonSave(meta),
                 digest=ocp.args.JsonSave(record))
    if data_bytes is not None:
      items['data'] = grain.checkpoint.CheckpointSave(_DataState(data_bytes))
    try:
      started = self._manager.save(step, args=ocp.args.Composite(**items),
                                   force=True)
    except Exception as exc:  # pylint: disable=broad-except
      self._raise_save_error(step, exc)
    if started:
      self._pending = (step, tree, record)
      if not self._manager.is_saving_in_progress():
        self.wait()
    return started

  def check(self) -> None:
    """Raises now if a finished background save failed (does not block).

    The loop calls this every step, so a failed background save stops the
    run within a step of its failure rather than at the next save. With
    several processes it does nothing: processes see the end of a write at
    different steps, and the read-back must happen at the same point on
    all of them (the next `save`, `wait` or `close`).
    """
    if (self._pending is not None and not self._multi_process and
        not self._manager.is_saving_in_progress()):
      self.wait()

  def wait(self) -> None:
    """Blocks until background saves are written, then verifies them.

    Raises:
      CheckpointSaveError: the save failed or does not read back.
    """
    if self._error is not None:
      return
    try:
      self._manager.wait_until_finished()
    except Exception as exc:  # pylint: disable=broad-except
      step = self._pending[0] if self._pending else self.latest_step()
      self._raise_save_error(step, exc)
    if self._pending is None:
      return
    step, tree, record = self._pending
    self._pending = None
    try:
      self._verify_written(step, tree, record)
    except _Corrupt as bad:
      moved = self._move_aside(step, bad.slug)
      self._error = CheckpointSaveError(
          f'checkpoint step {step} was written to {self.directory} but does '
          f'not read back ({bad.reason}); kept aside as {moved}. The earlier '
          f'checkpoints {self.all_steps()} are intact.',
          code=errno_lib.EIO, path=self.directory)
      raise self._error from None
    self._verified = step
    self._last_size = _size(self._step_dir(step))
    self._retain()

  def _verify_written(self, step: int, tree: Any,
                      record: Mapping[str, Any]) -> None:
    """Reads `step` back and compares it with the digest it was saved with."""
    self._check_pieces(step)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(tree),
          meta=ocp.args.JsonRestore(),
          digest=ocp.args.JsonRestore()))
    except Exception as exc:  # pylint: disable=broad-except
      raise _Corrupt('load-failed', f'fails to load: {_summarise(exc)}'
                     ) from None
    # Processes other than the primary digest their own data file; the
    # stored digest names the primary's (checked by `_check_digest`).
    stored = {k: v for k, v in dict(restored.digest or {}).items()
              if k != 'data'}
    if stored != {k: v for k, v in record.items() if k != 'data'} or (
        self._primary and dict(restored.digest or {}).get('data') !=
        record.get('data')):
      raise _Corrupt('digest-differs', 'its stored digest differs from the '
                     'saved one')
    data = self._read_data(step) if 'data' in record else None
    self._check_digest(restored.state, dict(restored.meta or {}), record,
                       data)

  def _raise_save_error(self, step: int | None, exc: BaseException):
    self._pending = None
    logging.debug('checkpoint save failed', exc_info=exc)
    self._remove_tmp_directories()
    self._manager.reload()
    code, reason = _reason(exc)
    self._error = CheckpointSaveError(
        f'could not write checkpoint step {step} to {self.directory}: '
        f'{reason}. No partial checkpoint is left; the earlier checkpoints '
        f'{self.all_steps()} are intact.', code=code, path=self.directory)
    raise self._error from None

  def _remove_tmp_directories(self) -> None:
    if not self._primary or not os.path.isdir(self.directory):
      return
    for entry in os.scandir(self.directory):
      if _TMP_MARKER in entry.name:
        shutil.rmtree(entry.path, ignore_errors=True)

  def _warn_if_short_of_space(self, step: int) -> None:
    if not self._primary:
      return
    if not self._last_size and self.latest_step() is not None:
      self._last_size = _size(self._step_dir(self.latest_step()))
    free = shutil.disk_usage(self.directory).free
    if free < self._last_size:
      logging.warning(
          'only %.1f MB free in %s, less than the last checkpoint (%.1f MB): '
          'the save of step %d will probably fail and stop the run.',
          free / 2**20, self.directory, self._last_size / 2**20, step)

  def _retain(self) -> None:
    """Deletes checkpoints beyond max_to_keep, never the last verified."""
    steps = self.all_steps()
    keep = set(steps[-self.max_to_keep:])
    if self._verified is not None:
      keep.add(self._verified)
    for step in steps:
      if step not in keep:
        self._manager.delete(step)

  # --- restoring --------------------------------------------------------------

  def restore(self, target: Any, *,
              step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """(state, meta) of `restore_with_data` (the data state left out)."""
    state, meta, _ = self.restore_with_data(target, step=step)
    return state, meta

  def restore_with_data(
      self, target: Any, *, step: int | None = None
  ) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """Restores a verified checkpoint into `target`'s structure.

    With `step=None`, the newest checkpoint that verifies: newer ones that
    miss a piece, fail to load or fail their digest are moved to
    `directory/corrupt/<step>-<reason>` and named in one warning.

    Args:
      target: a host pytree with the expected structure, shapes and dtypes
        (e.g. the freshly initialised state copied to the host).
      step: which checkpoint (it must verify); None for the newest good one.

    Returns:
      (numpy pytree like `target`, meta dict, this process's data state or
      None when the checkpoint has none).

    Raises:
      FileNotFoundError: there is no checkpoint (or not that step).
      ValueError: the checkpoint's arrays do not match `target` (the
        message lists the differing entries, e.g. after a model change).
      CheckpointCorruptError: checkpoint `step`, or every checkpoint, is
        unusable.
    """
    target = jax.tree.map(np.asarray, target)
    if step is not None:
      if step not in self._manager.all_steps():
        raise FileNotFoundError(
            f'no checkpoint of step {step} in {self.directory} (steps: '
            f'{self.all_steps()}).')
      try:
        return self._restore_verified(step, target)
      except _Corrupt as bad:
        raise CheckpointCorruptError(
            f'checkpoint {step} in {self.directory} is unusable: '
            f'{bad.reason}.') from None
    steps = self.all_steps()
    if not steps:
      raise FileNotFoundError(f'no checkpoint in {self.directory}.')
    rejected = []
    for candidate in reversed(steps):
      try:
        restored = self._restore_verified(candidate, target)
      except _Corrupt as bad:
        moved = self._move_aside(candidate, bad.slug)
        rejected.append(f'checkpoint {candidate} {bad.reason} (moved to '
                        f'{moved})')
        continue
      if rejected:
        logging.warning('%s; restored step %d instead, the newest checkpoint '
                        'that verifies.', '; '.join(rejected), candidate)
      return restored
    raise CheckpointCorruptError(
        f'no checkpoint in {self.directory} verifies: ' + '; '.join(rejected) +
        '. Nothing was deleted; move a step directory back from '
        f'{os.path.join(self.directory, _CORRUPT_DIR)} to retry it, or run '
        'again to start from step 0.')

  def _restore_verified(
      self, step: int, target: Any
  ) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    self._check_pieces(step)
    record = self._read_digest(step)
    self._check_matches(step, target, record)
    try:
      restored = self._manager.restore(
          step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(target),
              meta=ocp.args.JsonRestore()))
    except Exception as exc:  # pylint: disable=broad-except
      raise _Corrupt('load-failed', f'fails to load: {_summarise(exc)}'
                     ) from None
    meta = dict(restored.meta or {})
    data = self._read_data(step) if self._has_data(step) else None
    if record is None:
      logging.warning('checkpoint %d in %s has no digest (written before '
                      'digests were recorded); restored unverified.', step,
                      self.directory)
    else:
      if data is not None and 'data' not in record:
        logging.warning('checkpoint %d has a data state its digest does not '
                        'cover; ignored (the data resumes by step).', step)
        data = None
      self._check_digest(restored.state, meta, record, data)
      self._verified = step if self._verified is None else max(
          self._verified, step)
    if data is None:
      return restored.state, meta, None
    try:
      state = json.loads(data)
      if not isinstance(state, dict):
        raise ValueError(f'a {type(state).__name__}, not a dict')
    except ValueError as exc:
      raise _Corrupt('bad-data', f'has an unreadable data state ({exc})'
                     ) from None
    return restored.state, meta, state

  def _has_data(self, step: int) -> bool:
    return (self._step_dir(step) / 'data').is_dir()

  def _read_data(self, step: int) -> bytes:
    """This process's data-state file, through grain's orbax handler."""
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          data=grain.checkpoint.CheckpointRestore(_DataState())))
    except Exception as exc:  # pylint: disable=broad-except
      raise _Corrupt('data-failed', 'has a data state that fails to load: '
                     f'{_summarise(exc)}') from None
    return restored.data.data

  def _step_dir(self, step: int) -> pathlib.Path:
    return pathlib.Path(self.directory) / str(step)

  def _check_pieces(self, step: int) -> None:
    """Names the first missing file orbax would otherwise trip over."""
    root = self._step_dir(step)
    pieces = ['state/_METADATA', 'state/manifest.ocdbt', 'meta/metadata']
    if self._has_digest(step):
      pieces.append('digest/metadata')
    record = None
    with_data = self._has_data(step)
    if not with_data and self._has_digest(step):
      try:
        record = json.loads((root / 'digest' / 'metadata').read_text())
      except (OSError, ValueError):
        record = None  # reported by _read_digest
      with_data = isinstance(record, dict) and 'data' in record
    if with_data:
      pieces.append(f'data/{_data_file()}')
    for piece in pieces:
      if not (root / piece).is_file():
        raise _Corrupt('missing-' + re.sub(r'[^A-Za-z0-9]+', '-', piece)
                       .strip('-'), f'is missing {piece}')

  def _has_digest(self, step: int) -> bool:
    """Whether `step` was written with a digest (else: an older format)."""
    root = self._step_dir(step)
    if (root / 'digest').is_dir():
      return True
    try:
      handlers = json.loads((root / '_CHECKPOINT_METADATA').read_text())[
          'item_handlers']
    except (OSError, ValueError, KeyError, TypeError):
      return True  # unreadable: cannot tell, so the digest is required
    return 'digest' in handlers

  def _read_digest(self, step: int) -> dict[str, Any] | None:
    if not self._has_digest(step):
      return None
    try:
      record = json.loads(
          (self._step_dir(step) / 'digest' / 'metadata').read_text())
      if not isinstance(record.get('leaves'), dict):
        raise ValueError('no leaves')
    except (OSError, ValueError, AttributeError) as exc:
      raise _Corrupt('bad-digest', f'has an unreadable digest ({exc})'
                     ) from None
    return record

  def _check_digest(self, tree: Any, meta: Mapping[str, Any],
                    record: Mapping[str, Any],
                    data: bytes | None = None) -> None:
    got = digest(tree, meta, data)
    bad = [k for k in sorted(set(got['leaves']) | set(record['leaves']))
           if got['leaves'].get(k) != record['leaves'].get(k)]
    if got['meta'] != record.get('meta'):
      bad.append('meta')
    # Only the primary process's data file is in the digest.
    name = _data_file()
    wanted = (record.get('data') or {}).get(name)
    if wanted is not None and got.get('data', {}).get(name) != wanted:
      bad.append(f'data/{name}')
    if bad:
      raise _Corrupt('digest-mismatch', 'fails its digest (in ' +
                     ', '.join(bad[:4]) + ('' if len(bad) <= 4 else ', ...') +
                     ')')

  def _check_matches(self, step: int, target: Any,
                     record: Mapping[str, Any] | None) -> None:
    """ValueError if `step`'s structure readably differs from `target`'s."""
    try:
      stored = self._manager.item_metadata(step)['state']
      stored = getattr(stored, 'tree', stored)
      stored_leaves = _layout(stored)
    except Exception as exc:  # pylint: disable=broad-except
      raise _Corrupt('unreadable-metadata', 'has unreadable structure '
                     f'metadata ({_summarise(exc)})') from None
    if not stored_leaves:
      raise _Corrupt('bad-metadata', 'has empty structure metadata '
                     '(state/_METADATA)')
    if record is not None:
      recorded = {k: (tuple(v['shape']), v['dtype'])
                  for k, v in record['leaves'].items()}
      if recorded != stored_leaves:
        raise _Corrupt('bad-metadata', 'has structure metadata '
                       '(state/_METADATA) that disagrees with its digest')
    wanted = _layout(target)
    problems = [f'{k}: missing from the checkpoint' for k in wanted
                if k not in stored_leaves]
    problems += [f'{k}: in the checkpoint but not in the state' for k in
                 stored_leaves if k not in wanted]
    problems += [f'{k}: checkpoint {stored_leaves[k]} vs state {v}' for k, v
                 in wanted.items() if k in stored_leaves and
                 stored_leaves[k] != v]
    if problems:
      raise ValueError(
          f'checkpoint {step} in {self.directory} does not match the state '
          'built from the config (shape, dtype) - ' + '; '.join(problems[:8]) +
          ('' if len(problems) <= 8 else f'; and {len(problems) - 8} more'))

  def _move_aside(self, step: int, slug: str) -> str:
    """Moves step `step` to corrupt/<step>-<slug> (primary process)."""
    corrupt = pathlib.Path(self.directory) / _CORRUPT_DIR
    destination = corrupt / f'{step}-{slug}'
    index = 1
    while destination.exists():
      index += 1
      destination = corrupt / f'{step}-{slug}-{index}'
    if self._primary:
      corrupt.mkdir(exist_ok=True)
      os.replace(self._step_dir(step), destination)
    if self._multi_process:
      multihost_utils.sync_global_devices(f'rawjax_move_aside_{step}')
    self._manager.reload()
    return str(destination)

  # --- the rest ---------------------------------------------------------------

  def reached_preemption(self, step: int) -> bool:
    """Whether a multi-host preemption notice reached every process."""
    return self._manager.reached_preemption(step)

  def close(self) -> None:
    """Waits for (and verifies) the last save, then closes the manager.

    After a save failure (already raised) it only releases resources.
    """
    try:
      self.wait()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        if self._error is None:
          raise

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
