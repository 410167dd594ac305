"""The generic training loop: one loop for every method.

`train_and_evaluate(config, workdir)`:

 1. validates the config, looks up `config.method` in the registry and
    runs the method's start-up checks (`config.check_at_start`: values,
    batches against the devices and processes, model names, data paths
    and their layout) before any data is simulated or read;
 2. builds the state with `method.init(config, jax.random.PRNGKey(seed))`
    and, if `workdir/checkpoints` has one, restores the newest checkpoint
    that verifies into it (resume);
 3. iterates from the restored step to `config.train.num_steps`: one host
    batch from `method.make_data(..., split='train')` (resumed at that
    step), placed by `rawjax.train.parallel.Parallel`, then all of
    `method.steps` in order inside one compiled per-device function
    (`make_iteration`) that also
      * gives step function i of iteration k the key
        fold_in(fold_in(state['rng'], k), i): deterministic in (seed, k),
        so a resumed run is bit-identical to an uninterrupted one; the key
        is the same on every device (fold in `lax.axis_index('batch')` for
        per-device noise);
      * skips the update when any step's 'loss' or any new float state
        entry is not finite on any device: the state is kept, only 'step'
        advances (the batch is consumed); the host counts skipped steps
        (kept in the checkpoint) and raises `TrainingDivergedError` once
        there are more than `config.train.max_bad_steps`;
 4. logs on process 0 only: a tqdm bar (rate and ETA), averaged scalars
    every `logging.log_every_steps` to TensorBoard event files
    (tensorboardX, no TensorFlow needed) under `workdir/tensorboard` and as
    JSON lines in `workdir/metrics.jsonl`, sample image grids
    (`method.sample_images`) as PNG under `workdir/images`;
 5. checkpoints every `checkpoint.every_steps` steps, at the end, and when
    SIGTERM arrives (then stops cleanly and returns), with the data
    iterator's state (`get_state()`, `rawjax.data.Pipeline`'s grain state)
    beside the train state, which a resumed run hands back to
    `make_data(...).iterate(state=)`; a save that fails
    (also in the background) stops the run with `CheckpointSaveError`;
    evaluates every `train.eval_every_steps` and at the end
    (`method.evaluate` on every process, results under
    `workdir/eval/step_<k>/`).

Host syncs are lagged by one step: the outcome (skip flag, metrics) of step
k is read while step k + 1 runs, except at log, checkpoint and stop points.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pathlib
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from rawjax import io as rawio
from rawjax.eval import figures as eval_figures
from rawjax.eval import images as eval_images
from rawjax.eval import results as eval_results
from rawjax.train import config as config_lib
from rawjax.train import parallel as parallel_lib
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer
from rawjax.train.method import Method, get_method

__all__ = [
    'MetricWriter', 'TrainingDivergedError', 'configure_logging',
    'evaluate_checkpoint', 'make_iteration', 'step_functions',
    'train_and_evaluate',
]


class TrainingDivergedError(RuntimeError):
  """More updates were non-finite than `config.train.max_bad_steps`."""


# --- the compiled iteration ---------------------------------------------------


def _step_names(steps: Sequence[Callable[..., Any]]) -> list[str]:
  names = []
  for i, fn in enumerate(steps):
    name = getattr(fn, '__name__', '') or f'step{i}'
    names.append(name if name not in names and name != '<lambda>'
                 else f'step{i}')
  return names


def _check_same_layout(name: str, new: Any, old: Any) -> None:
  if jax.tree.structure(new) != jax.tree.structure(old):
    raise ValueError(
        f'step function {name!r} returned a state with other entries than it '
        f'was given:\n  got      {jax.tree.structure(new)}\n  expected '
        f'{jax.tree.structure(old)}\nreturn the whole state dict (e.g. '
        "dict(state, params=new_params)).")
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(new),
                          jax.tree.leaves(old)):
    if a.shape != b.shape or a.dtype != b.dtype:
      raise ValueError(
          f'step function {name!r} changed state{jax.tree_util.keystr(path)} '
          f'from {b.dtype}{list(b.shape)} to {a.dtype}{list(a.shape)}; a '
          'step must keep every shape and dtype (or it recompiles).')


def make_iteration(steps: Sequence[Callable[..., Any]]
                   ) -> Callable[[Any, Any], tuple[Any, dict[str, Any], Any]]:
  """One loop iteration as a per-device function for `Parallel.compile`.

  Args:
    steps: per-device `step(state, batch, rng) -> (state, metrics)`
      functions (`Method.steps`), applied in order. Each reduces over the
      'batch' axis and reports a scalar 'loss'.

  Returns:
    `iteration(state, batch) -> (state, metrics, ok)`: `ok` is False when a
    loss or a new float state entry was not finite on any device; the state
    is then the input state with 'step' + 1 (the update is skipped).
    Metrics keep their names with one step function, else they are named
    '<function name>/<metric>'.
  """
  steps = tuple(steps)
  if not steps:
    raise ValueError('a method needs at least one step function.')
  names = _step_names(steps)

  def iteration(state, batch):
    rng = jax.random.fold_in(state['rng'], state['step'])
    new, metrics, finite = state, {}, jnp.asarray(True)
    for index, (name, fn) in enumerate(zip(names, steps)):
      new, step_metrics = fn(new, batch, jax.random.fold_in(rng, index))
      _check_same_layout(name, new, state)
      if 'loss' not in step_metrics:
        raise ValueError(f'step function {name!r} reports no "loss" metric '
                         f'(got {sorted(step_metrics)}).')
      finite &= jnp.all(jnp.isfinite(step_metrics['loss']))
      for key, value in step_metrics.items():
        metrics[key if len(steps) == 1 else f'{name}/{key}'] = value
    finite &= state_lib.all_finite(new)
    # Devices must agree, or replicas would diverge.
    ok = jax.lax.pmin(finite.astype(jnp.int32), parallel_lib.AXIS_NAME) == 1
    new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
    new['step'] = state['step'] + 1
    return new, metrics, ok

  return iteration


# --- data ---------------------------------------------------------------------


def _resume(data: Any, start_step: int,
            state: Mapping[str, Any] | None) -> Any:
  """`data.iterate(state=)` from a saved data state, else by step.

  The state is used only when it is of step `start_step` (the restored
  train state's); a checkpoint without one (older, or data without
  `get_state`), or one the data refuses (another pipeline layout), falls
  back to `iterate(start_step=)`, the (seed, step) rule: the same batches.
  """
  if state is not None:
    if state.get('step') != start_step:
      logging.warning('the checkpoint\'s data state is of step %s, not of the '
                      'restored step %d; resuming the data by step.',
                      state.get('step'), start_step)
    else:
      try:
        return data.iterate(state=state)
      except (TypeError, ValueError, KeyError, IndexError) as exc:
        logging.warning('the data does not take the checkpoint\'s data state '
                        '(%s); resuming it by step.', exc)
  return data.iterate(start_step=start_step)


class _Stream:
  """The loop's batches plus the state to save beside the train state."""

  def __init__(self, batches: Iterator[Any], iterator: Any):
    self._batches = batches
    self._get_state = getattr(iterator, 'get_state', None)

  def __iter__(self) -> Iterator[Any]:
    return self._batches

  def state(self) -> dict[str, Any] | None:
    """The data iterator's state after the batches taken (None: none)."""
    return None if self._get_state is None else dict(self._get_state())


@contextlib.contextmanager
def _batches(data: Any, start_step: int,
             state: Mapping[str, Any] | None = None) -> Iterator[_Stream]:
  """Host batches (leaves (L, ...)) from global step `start_step` on.

  An iterable with `iterate(start_step=)` (`rawjax.data.Pipeline`) resumes
  directly, from the saved iterator `state` when it has one (see
  `_resume`); any other iterable must be deterministic and is replayed
  past the first `start_step` batches. Iterables with a
  `local_device_count` attribute (Pipeline) yield (devices, per_device,
  ...) leaves, which are flattened here.
  """
  if hasattr(data, 'iterate'):
    iterator = _resume(data, start_step, state)
  else:
    iterator = iter(data)
    if start_step:
      logging.info('replaying %d batches of a data iterable without '
                   'iterate(start_step=)', start_step)
      iterator = itertools.islice(iterator, start_step, None)
  device_major = getattr(data, 'local_device_count', None) is not None

  def flatten(x):
    x = np.asarray(x)
    return x.reshape(-1, *x.shape[2:])

  try:
    yield _Stream((jax.tree.map(flatten, b) if device_major else b
                   for b in iterator), iterator)
  finally:
    close = getattr(iterator, 'close', None) or getattr(data, 'close', None)
    if close is not None:
      close()


# --- logging ------------------------------------------------------------------


class MetricWriter:
  """Scalars and images as TensorBoard events plus a JSON-lines copy.

  Writes under `logdir`: `tensorboard/` (tensorboardX event files, readable
  by `tensorboard --logdir`) and `metrics.jsonl` (one
  {"step": k, "tag": value, ...} object per call). Disabled (no files) on
  processes other than 0.
  """

  def __init__(self, logdir: str | os.PathLike[str], *, enabled: bool = True,
               tensorboard: bool = True):
    self.enabled = enabled
    self._tb = None
    self._jsonl = None
    if not enabled:
      return
    logdir = pathlib.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(logdir / 'metrics.jsonl', 'a', encoding='utf-8')
    if tensorboard:
      import tensorboardX  # pylint: disable=g-import-not-at-top
      # Event files are named by the second they are opened in: two writers
      # opened in one second (a run resumed at once, a second evaluation)
      # would share a name and the second would truncate the first.
      self._tb = tensorboardX.SummaryWriter(
          logdir=str(logdir / 'tensorboard'),
          filename_suffix=f'.{os.getpid()}.{uuid.uuid4().hex[:8]}')

  def scalars(self, step: int, values: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    values = eval_results.scalars(values)
    self._jsonl.write(json.dumps(dict(step=int(step), **values)) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for tag, value in values.items():
        self._tb.add_scalar(tag, value, int(step))
      self._tb.flush()

  def image(self, step: int, tag: str, image: np.ndarray) -> None:
    """An (H, W, 3) or (H, W) image in [0, 1] to TensorBoard."""
    if not self.enabled or self._tb is None:
      return
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    self._tb.add_image(tag, image if image.ndim == 3 else image[..., None],
                       int(step), dataformats='HWC')
    self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


# --- shared set-up ------------------------------------------------------------


def step_functions(method: Method, config) -> list[Callable[..., Any]]:
  """`method.steps`, or `method.steps(config)` when it is a function."""
  steps = method.steps(config) if callable(method.steps) else method.steps
  return list(steps)


def _initial_host_state(method: Method, config) -> Any:
  state = method.init(config, jax.random.PRNGKey(config.seed))
  state_lib.check_state(state)
  return state_lib.to_host(state)


def _evaluate(config, method: Method, host_state: Any, directory: pathlib.Path,
              *, step: int, writer: MetricWriter | None) -> dict[str, Any]:
  """Runs method.evaluate on every process; process 0 writes and logs."""
  is_main = jax.process_index() == 0
  if is_main:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ('results.json', 'results.md'):
      (directory / name).unlink(missing_ok=True)
  results = dict(method.evaluate(config, host_state, workdir=directory))
  if is_main:
    eval_results.write_default_results(directory, results, step=step)
    if writer is not None:
      writer.scalars(step, {f'eval/{k}': v for k, v in results.items()})
      # Training writes every evaluation to workdir/eval/step_k: the curves
      # (workdir/curves.png) now include this one.
      eval_figures.write_curves(directory.parents[1])
    logging.info('evaluation at step %d: %s', step, eval_results.scalars(results))
  return results


class _StopRequest:
  """SIGTERM -> stop after the current step (single process).

  Multi-process runs ask orbax's `reached_preemption` instead, which every
  process answers alike, so they all stop at the same step; JAX's own
  preemption notifier owns SIGTERM there.
  """

  def __init__(self, checkpointer: Checkpointer):
    self._checkpointer = checkpointer
    self._requested = False
    self._previous = None
    self._multi = jax.process_count() > 1
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not self._multi and in_main_thread:
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self._requested = True
    logging.warning('SIGTERM received: saving a checkpoint and stopping.')

  def __call__(self, step: int) -> bool:
    if self._multi:
      return self._checkpointer.reached_preemption(step)
    return self._requested

  def restore(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None


def configure_logging() -> None:
  """Launcher logging: INFO on process 0, WARNING elsewhere; orbax quiet.

  Orbax logs every save phase at INFO, which would bury the progress bar;
  its warnings and errors still show.
  """
  is_main = jax.process_index() == 0
  logging.set_verbosity(logging.INFO if is_main else logging.WARNING)

  def not_orbax_info(record) -> bool:
    return (record.levelno >= logging.converter.STANDARD_WARNING or
            'orbax' not in record.pathname)

  logging.get_absl_handler().addFilter(not_orbax_info)


# --- the loop -----------------------------------------------------------------


class _Outcomes:
  """Host bookkeeping of steps whose results are read lazily."""

  def __init__(self, *, skipped: int, max_bad_steps: int,
               checkpointer: Checkpointer,
               to_host: Callable[[Any], Any]):
    self.to_host = to_host
    self.skipped = skipped
    self.max_bad_steps = max_bad_steps
    self.checkpointer = checkpointer
    self.pending: list[tuple[int, Any, Any]] = []
    self.sums: dict[str, float] = {}
    self.count = 0

  def add(self, step: int, ok: Any, metrics: Any) -> None:
    self.pending.append((step, ok, metrics))

  def read(self, *, keep_last: bool) -> None:
    """Reads pending outcomes (all but the newest if keep_last)."""
    ready = self.pending[:-1] if keep_last else self.pending
    self.pending = self.pending[len(ready):]
    for step, ok, metrics in ready:
      if bool(self.to_host(ok)):
        for key, value in eval_results.scalars(self.to_host(metrics)).items():
          self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1
        continue
      self.skipped += 1
      logging.warning('step %d: non-finite loss or update; skipped (%d so '
                      'far, at most %d allowed).', step, self.skipped,
                      self.max_bad_steps)
      if self.skipped > self.max_bad_steps:
        raise TrainingDivergedError(
            f'{self.skipped} updates were non-finite (the last at step '
            f'{step}), more than config.train.max_bad_steps='
            f'{self.max_bad_steps}; stopping. The newest good checkpoint is '
            f'step {self.checkpointer.latest_step()}.')

  def means(self) -> dict[str, float]:
    out = {k: v / max(self.count, 1) for k, v in self.sums.items()}
    self.sums, self.count = {}, 0
    return out


def _due(step: int, every: int) -> bool:
  return every > 0 and step % every == 0


def _write_images(config, method: Method, host_state: Any, host_batch: Any,
                  workdir: pathlib.Path, writer: MetricWriter, step: int):
  images = method.sample_images(config, host_state, host_batch)
  (workdir / 'images').mkdir(parents=True, exist_ok=True)
  for name, value in images.items():
    grid = eval_images.image_grid(value)
    rawio.write_image(workdir / 'images' / f'{name}_{step:08d}.png', grid)
    writer.image(step, f'images/{name}', grid)


def _train(config, method: Method, parallel: parallel_lib.Parallel,
           checkpointer: Checkpointer, writer: MetricWriter, host_state: Any,
           skipped: int, workdir: pathlib.Path,
           data_state: Mapping[str, Any] | None = None) -> tuple[Any, bool]:
  """Runs the steps; returns (host state, whether a stop was requested)."""
  is_main = jax.process_index() == 0
  start, num_steps = int(host_state['step']), config.train.num_steps
  log_every = config.logging.log_every_steps
  images_every = config.logging.images_every_steps
  if images_every and method.sample_images is None:
    logging.warning('logging.images_every_steps is set but method %r has no '
                    'sample_images; no images are written.', method.name)
    images_every = 0
  iteration = parallel.compile(make_iteration(step_functions(method, config)))
  state = parallel.replicate(host_state)
  outcomes = _Outcomes(skipped=skipped,
                       max_bad_steps=config.train.max_bad_steps,
                       checkpointer=checkpointer,
                       to_host=parallel.unreplicate)
  data = method.make_data(config, split='train',
                          process_index=jax.process_index(),
                          process_count=jax.process_count())
  stop_requested = _StopRequest(checkpointer)
  bar = tqdm.tqdm(total=num_steps, initial=start, unit='step',
                  desc=f'train {method.name}', dynamic_ncols=True,
                  disable=not (is_main and config.logging.progress_bar))
  step, stopped = start, False
  interval_start, interval_steps = None, 0
  started = time.perf_counter()
  try:
    with _batches(data, start, data_state) as batches:
      for host_batch in batches:
        state, metrics, ok = iteration(state, parallel.shard_batch(host_batch))
        step += 1
        outcomes.add(step, ok, metrics)
        if interval_start is None:  # the first step includes compilation
          outcomes.read(keep_last=False)
          logging.info('step %d, the first of this run, took %.1f s '
                       '(compilation included)', step,
                       time.perf_counter() - started)
          interval_start = time.perf_counter()
        else:
          interval_steps += 1
          outcomes.read(keep_last=True)
        bar.update(1)
        stopped = stop_requested(step)
        save = _due(step, config.checkpoint.every_steps) or step == num_steps
        if _due(step, log_every) or step == num_steps or save or stopped:
          outcomes.read(keep_last=False)
        if _due(step, log_every) or step == num_steps:
          now = time.perf_counter()
          values = outcomes.means()
          values = {f'train/{k}': v for k, v in values.items()}
          values['train/skipped_steps'] = outcomes.skipped
          if interval_steps:
            values['train/steps_per_second'] = (interval_steps /
                                                max(now - interval_start, 1e-9))
          interval_start, interval_steps = now, 0
          writer.scalars(step, values)
          if 'train/loss' in values:
            bar.set_postfix(loss=f'{values["train/loss"]:.4g}',
                            skipped=outcomes.skipped)
        if is_main and _due(step, images_every):
          _write_images(config, method, parallel.unreplicate(state), host_batch,
                        workdir, writer, step)
        if save or stopped:
          checkpointer.save(step, parallel.unreplicate(state),
                            meta=dict(skipped_steps=outcomes.skipped),
                            data=batches.state())
        # A background save that failed stops the run here, not at the next
        # save point (which could be hours of lost steps away).
        checkpointer.check()
        if (_due(step, config.train.eval_every_steps) and step < num_steps and
            not stopped):
          _evaluate(config, method, parallel.unreplicate(state),
                    workdir / 'eval' / f'step_{step:08d}', step=step,
                    writer=writer)
        if stopped:
          logging.warning('stopped at step %d on request; resume by running '
                          'the same command again.', step)
          break
        if step >= num_steps:
          break
      else:  # the data ended before num_steps
        logging.warning('the training data ended at step %d, before '
                        'config.train.num_steps=%d.', step, num_steps)
        outcomes.read(keep_last=False)
        checkpointer.save(step, parallel.unreplicate(state),
                          meta=dict(skipped_steps=outcomes.skipped),
                          data=batches.state())
  finally:
    bar.close()
    stop_requested.restore()
  return parallel.unreplicate(state), stopped


def train_and_evaluate(config, workdir: str | os.PathLike[str]) -> Any:
  """Trains `config.method` in `workdir`, resuming from its checkpoints.

  Args:
    config: a config built on `rawjax.train.config.base_config()`.
    workdir: output directory (config.json, checkpoints/, tensorboard/,
      metrics.jsonl, images/, eval/); running again with the same workdir
      resumes.

  Returns:
    The final train state as a host numpy pytree (replica 0).

  Raises:
    TrainingDivergedError: more than `config.train.max_bad_steps` updates
      were non-finite (the checkpoints keep the last good state).
    ConfigError: (a ValueError, `rawjax.train.config`) a bad config value,
      raised before any data is simulated or read.
    ValueError: a checkpoint that does not match the state the config
      builds.
    CheckpointSaveError: a checkpoint could not be written (full disk,
      permission, I/O error); the earlier checkpoints are intact.
    CheckpointCorruptError: no checkpoint in the workdir verifies (the bad
      ones are kept in `checkpoints/corrupt/`).
  """
  config_lib.validate_config(config)
  method = get_method(config.method)
  parallel = parallel_lib.Parallel(
      config.parallel.mode,
      devices=parallel_lib.devices_from_config(config))
  # Before anything is simulated or read (init and make_data may simulate
  # a dataset for a minute): the method's checks, with the devices and
  # processes the global batches must split over.
  config_lib.check_at_start(config, num_devices=parallel.local_device_count,
                            num_processes=jax.process_count())
  workdir = pathlib.Path(workdir)
  is_main = jax.process_index() == 0
  if is_main:
    workdir.mkdir(parents=True, exist_ok=True)
    if hasattr(config, 'to_json_best_effort'):
      (workdir / 'config.json').write_text(
          config.to_json_best_effort(indent=2, sort_keys=True) + '\n')
  host_state = _initial_host_state(method, config)
  with contextlib.ExitStack() as stack:
    writer = MetricWriter(workdir, enabled=is_main,
                          tensorboard=config.logging.tensorboard)
    stack.callback(writer.close)
    checkpointer = stack.enter_context(Checkpointer(
        workdir / 'checkpoints', max_to_keep=config.checkpoint.max_to_keep,
        async_save=config.checkpoint.async_save))
    skipped, data_state = 0, None
    if checkpointer.latest_step() is not None:
      # The newest checkpoint that verifies; corrupt newer ones are moved
      # to checkpoints/corrupt/ and named in one warning.
      host_state, meta, data_state = checkpointer.restore_with_data(
          host_state)
      skipped = int(meta.get('skipped_steps', 0))
      logging.info('resuming %s from step %d (%s)', method.name,
                   int(host_state['step']), checkpointer.directory)
    step = int(host_state['step'])
    stopped = False
    if step < config.train.num_steps:
      host_state, stopped = _train(
          config, method, parallel, checkpointer, writer, host_state, skipped,
          workdir, data_state)
      step = int(host_state['step'])
    else:
      logging.info('%s is already trained to step %d.', method.name, step)
    eval_dir = workdir / 'eval' / f'step_{step:08d}'
    if (config.train.eval_at_end and not stopped and
        not (eval_dir / 'results.json').exists()):
      checkpointer.wait()
      _evaluate(config, method, host_state, eval_dir, step=step, writer=writer)
  return host_state


def evaluate_checkpoint(config, workdir: str | os.PathLike[str], *,
                        step: int | None = None) -> dict[str, Any]:
  """Evaluates a checkpoint of `workdir` into `workdir/eval/`.

  Restores checkpoint `step` (default: the newest), runs
  `method.evaluate(config, state, workdir=workdir/eval)` and writes
  `results.json` / `results.md` there unless the method wrote its own.

  Raises:
    FileNotFoundError: `workdir/checkpoints` has no checkpoint (train
      first) or not that step.
    CheckpointCorruptError: checkpoint `step` fails verification (without
      `step`: no checkpoint verifies; a corrupt newest one is skipped).
  """
  config_lib.validate_config(config)
  method = get_method(config.method)
  workdir = pathlib.Path(workdir)
  template = _initial_host_state(method, config)
  with Checkpointer(workdir / 'checkpoints',
                    max_to_keep=config.checkpoint.max_to_keep,
                    async_save=False) as checkpointer:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(
          f'no checkpoint in {checkpointer.directory}; train first: python '
          f'-m launch.train --config=<config> --workdir={workdir}')
    host_state, _ = checkpointer.restore(template, step=step)
  return _evaluate(config, method, host_state, workdir / 'eval',
                   step=int(host_state['step']), writer=None)
