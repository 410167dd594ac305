"""Checkpoints: one small wrapper over orbax's CheckpointManager.

A checkpoint of step k holds the train state after k iterations as a host
numpy pytree (item 'state', orbax StandardSave) and a small JSON dict of
loop bookkeeping (item 'meta', e.g. the count of skipped steps), under
`directory/<k>/`.

Atomic: orbax writes into a temporary directory and renames it when
complete (on object stores it writes a commit marker instead), so a process
killed while saving leaves the previous checkpoints intact; the leftover
temporary directory is deleted when the next manager opens the directory
(`cleanup_tmp_directories`). `latest_step` only sees finished checkpoints.
Never worse than the last good one: `save` refuses a state with a NaN or
infinite float leaf (it logs and returns False), and orbax deletes old
checkpoints beyond `max_to_keep` only after a new one is finalised.

Multi-host: every process calls `save`/`restore` with the same host tree
(replica 0 of the replicated state); orbax writes from the primary process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from rawjax.train import state as state_lib

__all__ = ['Checkpointer']


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


class Checkpointer:
  """Saves and restores host train states with their loop bookkeeping.

  Args:
    directory: where the step directories live (created if absent).
    max_to_keep: how many of the newest checkpoints to keep.
    async_save: write in a background thread (`save` returns once the
      arrays are copied); `wait` / `close` block until written.
  """

  def __init__(self, directory: str | os.PathLike[str], *,
               max_to_keep: int = 3, async_save: bool = True):
    if max_to_keep < 1:
      raise ValueError(f'max_to_keep must be >= 1, got {max_to_keep}.')
    self.directory = os.path.abspath(os.fspath(directory))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save),
        # Declared up front so a fresh manager can read metadata of
        # checkpoints it did not write.
        item_handlers=dict(state=ocp.StandardCheckpointHandler(),
                           meta=ocp.JsonCheckpointHandler()))

  def latest_step(self) -> int | None:
    """The newest finished checkpoint's step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, tree: Any, *,
           meta: Mapping[str, Any] | None = None) -> bool:
    """Saves `tree` (host numpy pytree) as step `step`, with `meta` (JSON).

    Returns:
      True if a checkpoint was started; False if `tree` has a non-finite
      float leaf (the previous checkpoints stay the newest) or step `step`
      is already saved.
    """
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
    tree = jax.tree.map(np.asarray, tree)
    return self._manager.save(
        step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree),
            meta=ocp.args.JsonSave(dict(meta or {}))), force=True)

  def restore(self, target: Any, *,
              step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Restores step `step` (default: the latest) into `target`'s structure.

    Args:
      target: a host pytree with the expected structure, shapes and dtypes
        (e.g. the freshly initialised state copied to the host).
      step: which checkpoint; None for the newest.

    Returns:
      (numpy pytree like `target`, meta dict).

    Raises:
      FileNotFoundError: there is no checkpoint (or not that step).
      ValueError: the checkpoint's arrays do not match `target` (the
        message lists the differing entries, e.g. after a model change).
    """
    if step is None:
      step = self.latest_step()
      if step is None:
        raise FileNotFoundError(f'no checkpoint in {self.directory}.')
    elif step not in self._manager.all_steps():
      raise FileNotFoundError(
          f'no checkpoint of step {step} in {self.directory} (steps: '
          f'{self.all_steps()}).')
    target = jax.tree.map(np.asarray, target)
    self._check_matches(step, target)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target),
            meta=ocp.args.JsonRestore()))
    return restored.state, dict(restored.meta or {})

  def _check_matches(self, step: int, target: Any) -> None:
    stored = self._manager.item_metadata(step)['state']
    stored = getattr(stored, 'tree', stored)
    stored_leaves = {_path_name(p): _describe(x) for p, x in
                     jax.tree_util.tree_leaves_with_path(stored)}
    wanted = {_path_name(p): _describe(x) for p, x in
              jax.tree_util.tree_leaves_with_path(target)}
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

  def reached_preemption(self, step: int) -> bool:
    """Whether a multi-host preemption notice reached every process."""
    return self._manager.reached_preemption(step)

  def wait(self) -> None:
    """Blocks until background saves are written."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
