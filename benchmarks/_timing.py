"""What the benchmark scripts share: host devices, timing, tables and JSON.

Timing keeps compilation apart and blocks on every result. jax is imported
inside the functions, not here: a script imports this module first and
calls `simulate_host_devices` before anything initialises jax.
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'

_DEVICE_FLAG = '--xla_force_host_platform_device_count'


def simulate_host_devices(count: int) -> None:
  """Asks XLA for `count` simulated CPU devices (for the pmapped steps).

  Only before jax is imported: a script imported by a process that already
  runs jax (the tests) keeps that process's devices.
  """
  if 'jax' in sys.modules:
    return
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split()
           if not f.startswith(_DEVICE_FLAG)]
  os.environ['XLA_FLAGS'] = ' '.join(flags + [f'{_DEVICE_FLAG}={count}'])


def argument_parser(doc: str, name: str, *,
                    repeats: int) -> argparse.ArgumentParser:
  """A parser titled by the docstring's first line, with --repeats and --json.

  --json defaults to benchmarks/results/<name>.json.
  """
  parser = argparse.ArgumentParser(description=doc.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=repeats)
  parser.add_argument('--json', type=pathlib.Path,
                      default=RESULTS / f'{name}.json')
  return parser


def time_call(fn, repeats: int) -> tuple[float, float]:
  """(first call, median of `repeats` later calls) of `fn()`, in seconds.

  The first call includes compilation; every call waits for its result with
  `jax.block_until_ready`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - start
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    runs.append(time.perf_counter() - start)
  return first, float(np.median(runs))


def time_pmapped_step(step, state, batch, devices,
                      repeats: int) -> tuple[float, float]:
  """`time_call` of a train step pmapped over `devices`, as the loop runs it.

  Args:
    step: `(state, batch, rng) -> (state, metrics)` with a 'loss' metric.
    state: one device's state, replicated here.
    batch: already split, (len(devices), per-device batch, ...).
    devices: the devices.
    repeats: timed calls after the first.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  n = len(devices)
  state = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)),
                       state)
  p_step = jax.pmap(step, axis_name='batch', devices=devices)
  keys = jnp.stack([jax.random.PRNGKey(1)] * n)
  return time_call(lambda: p_step(state, batch, keys)[1]['loss'], repeats)


def machine() -> dict:
  """The JSON's 'machine' entry: platform, CPUs, jax, local devices."""
  import jax  # pylint: disable=g-import-not-at-top
  return {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
          'jax': jax.__version__, 'devices': len(jax.local_devices())}


def markdown_table(columns, rows) -> str:
  """A Markdown table of `rows` (dicts), one line a row.

  Args:
    columns: [(title, format)], each format applied to a row's keys, e.g.
      ('run s', '{run_s:.3f}').
    rows: the rows.
  """
  lines = ['| ' + ' | '.join(title for title, _ in columns) + ' |',
           '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(form.format(**row) for _, form in columns) +
            ' |' for row in rows]
  return '\n'.join(lines)


def device_memory() -> dict | None:
  """Peak and current bytes of the first accelerator, None on CPU.

  From `Device.memory_stats()` (GPU and TPU backends); on CPU the process's
  peak resident memory is what counts, and the driver (`run_all.py`) records
  it per script.
  """
  if 'jax' not in sys.modules:
    return None
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.local_devices()[0]
  if device.platform == 'cpu':
    return None
  stats = device.memory_stats() or {}
  return {key: stats[key] for key in ('peak_bytes_in_use', 'bytes_in_use',
                                      'bytes_limit') if key in stats}


def write_json(payload, path) -> None:
  """Prints `payload` as indented JSON and writes it to `path`.

  On an accelerator the device's memory figures are added under
  'device_memory'.
  """
  memory = device_memory()
  if memory:
    payload = {**payload, 'device_memory': memory}
  text = json.dumps(payload, indent=1)
  print(text)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text + '\n')


def time_side_by_side(jax_fn, torch_fn, repeats: int) -> dict[str, float]:
  """Median seconds of `jax_fn()` and `torch_fn()`, timed alternately.

  Alternating the calls (jax, torch, jax, torch, ...) lets both see the same
  machine load, so their ratio holds on a shared machine where the absolute
  times drift. The first call of each is timed apart: for jax it includes
  compilation (reported as compile_s = first - median); for torch it warms
  the allocator and the oneDNN primitive caches. Every jax call waits for
  its result with `jax.block_until_ready`; torch on CPU is synchronous.

  Returns:
    {'jax_s', 'jax_compile_s', 'torch_s', 'ratio'}: ratio = torch_s / jax_s,
    i.e. > 1 where rawjax is faster.
  """
  import jax  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  jax.block_until_ready(jax_fn())
  jax_first = time.perf_counter() - start
  torch_fn()
  jax_runs, torch_runs = [], []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(jax_fn())
    jax_runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    torch_fn()
    torch_runs.append(time.perf_counter() - start)
  jax_s, torch_s = float(np.median(jax_runs)), float(np.median(torch_runs))
  return {'jax_s': jax_s, 'jax_compile_s': max(jax_first - jax_s, 0.0),
          'torch_s': torch_s, 'ratio': torch_s / jax_s}
