"""Timing shared by the benchmark scripts (compile apart, blocking results)."""

import time

import jax
import numpy as np


def time_call(fn, repeats: int) -> tuple[float, float]:
  """(first call, median of `repeats` later calls) of `fn()`, in seconds.

  The first call includes compilation; every call waits for its result with
  `jax.block_until_ready`.
  """
  start = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - start
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    runs.append(time.perf_counter() - start)
  return first, float(np.median(runs))
