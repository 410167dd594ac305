"""How long a method's train iteration takes to build, lower and compile.

`time_iteration_compile(config)` builds the compiled iteration exactly as
`rawjax.train.loop.train_and_evaluate` does (registry lookup, start-up
checks, `method.init`, `Parallel(config.parallel.mode)`, `make_iteration`
of the method's step functions, the state replicated and the first host
batch of `method.make_data` placed by `Parallel`), then times
`lower(state, batch)` and `.compile()` apart. With the persistent
compilation cache on (`rawjax.train.compilation_cache`) a second process
reports the cache-load time as its compile time.

`benchmarks/compile_time.py` runs it per method, cold and warm.
"""

from __future__ import annotations

import collections
import re
import time
from typing import Any

import jax

from rawjax.train import config as config_lib
from rawjax.train import loop
from rawjax.train import parallel as parallel_lib
from rawjax.train.method import get_method

__all__ = ['hlo_op_counts', 'time_iteration_compile']

_CACHE_HIT = '/jax/compilation_cache/cache_hits'
_OP = re.compile(r'\b(?:stablehlo|mhlo|chlo|func|sdy)\.([a-z_]+)')


def hlo_op_counts(text: str) -> collections.Counter:
  """Op name -> count in a lowered program's StableHLO text
  (`lowered.as_text()`), e.g. {'convolution': 120, 'add': 900, ...}."""
  return collections.Counter(_OP.findall(text))


def time_iteration_compile(config, *, per_step: bool = False,
                           events: list[str] | None = None
                           ) -> dict[str, Any]:
  """Times building, lowering and compiling `config`'s train iteration.

  Args:
    config: a method config (as for `train_and_evaluate`).
    per_step: also lower and compile each step function alone (for a method
      with several: where the time goes); these compile again, so the
      total time roughly doubles.
    events: the list a `jax.monitoring.register_event_listener` callback
      appends event names to, if the caller registered one: the report then
      says whether the iteration's compile was a persistent-cache hit.

  Returns:
    {'method', 'init_s' (method.init, its own compilations included),
    'data_s' (make_data and the first batch), 'lower_s', 'compile_s',
    'hlo_ops' (StableHLO op count), 'hlo_counts' ({op: count}, most
    frequent first), 'steps' ([{'name', 'lower_s', 'compile_s', 'hlo_ops'}] when
    per_step), 'cache_hit' (True / False, None without `events`)}; times in
    seconds of wall clock.
  """
  config_lib.validate_config(config)
  method = get_method(config.method)
  parallel = parallel_lib.Parallel(
      config.parallel.mode, devices=parallel_lib.devices_from_config(config))
  config_lib.check_at_start(config, num_devices=parallel.local_device_count,
                            num_processes=jax.process_count())
  start = time.perf_counter()
  host_state = loop._initial_host_state(method, config)  # pylint: disable=protected-access
  init_s = time.perf_counter() - start
  start = time.perf_counter()
  data = method.make_data(config, split='train',
                          process_index=jax.process_index(),
                          process_count=jax.process_count())
  # The loop's own batch reader (resumption, device-major flattening).
  with loop._batches(data, 0) as batches:  # pylint: disable=protected-access
    host_batch = next(iter(batches))
  data_s = time.perf_counter() - start
  state = parallel.replicate(host_state)
  batch = parallel.shard_batch(host_batch)
  steps = loop.step_functions(method, config)

  def lower_and_compile(fn):
    compiled_fn = parallel.compile(fn)
    start = time.perf_counter()
    lowered = compiled_fn.lower(state, batch)
    lower_s = time.perf_counter() - start
    counts = hlo_op_counts(lowered.as_text())
    seen = len(events) if events is not None else 0
    start = time.perf_counter()
    lowered.compile()
    compile_s = time.perf_counter() - start
    hit = None if events is None else _CACHE_HIT in events[seen:]
    return dict(lower_s=lower_s, compile_s=compile_s, cache_hit=hit,
                hlo_ops=sum(counts.values()), counts=counts)

  whole = lower_and_compile(loop.make_iteration(steps))
  report = dict(method=config.method, init_s=init_s, data_s=data_s,
                lower_s=whole['lower_s'], compile_s=whole['compile_s'],
                hlo_ops=whole['hlo_ops'], cache_hit=whole['cache_hit'],
                hlo_counts=dict(whole['counts'].most_common()))
  if per_step:
    names = loop._step_names(steps)  # pylint: disable=protected-access
    report['steps'] = []
    for name, fn in zip(names, steps):
      one = lower_and_compile(loop.make_iteration([fn]))
      report['steps'].append(dict(name=name, lower_s=one['lower_s'],
                                  compile_s=one['compile_s'],
                                  cache_hit=one['cache_hit'],
                                  hlo_ops=one['hlo_ops']))
  return report
