"""Test session set-up: 4 host CPU devices, before JAX initialises."""

import os
import pathlib
import tempfile
import zlib

import numpy as np
import pytest

os.environ['XLA_FLAGS'] = ' '.join(
    [f for f in os.environ.get('XLA_FLAGS', '').split()
     if not f.startswith('--xla_force_host_platform_device_count')] +
    ['--xla_force_host_platform_device_count=4'] +
    # XLA's CPU backend spends seconds optimising every small program (2 s
    # for one jitted jax.random.uniform); the tests' arrays are small, so
    # unoptimised code runs them faster overall (suite time about halved).
    ([] if 'xla_backend_optimization_level' in os.environ.get('XLA_FLAGS', '')
     else ['--xla_backend_optimization_level=0']))

# Subprocesses that start `launch.train` enable the persistent compilation
# cache (rawjax.train.compilation_cache): give them one folder per test
# session, never the user's ~/.cache.
os.environ.setdefault('RAWJAX_COMPILATION_CACHE',
                      tempfile.mkdtemp(prefix='rawjax-test-jax-cache-'))

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data() -> pathlib.Path:
  """`../shared/data` beside the repository; skips when absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f'shared data not found at {SHARED_DATA} (the tests that read '
                'real camera files need the rawjax repository layout)')
  return SHARED_DATA


@pytest.fixture(params=['eager', 'jit'])
def variant(request):
  """Runs a test body's function both as written and under `jax.jit`.

  Usage: `variant(functools.partial(fn, option=...))(array_args...)`; static
  options go into the partial, arrays are traced.
  """
  import jax  # pylint: disable=g-import-not-at-top
  if request.param == 'jit':
    return jax.jit
  return lambda fn: fn


_MODULE_RNG_NAMES = ('RNG', '_RNG')


@pytest.fixture(autouse=True)
def _own_generator_per_test(request):
  """Gives each test of a module with a module-level `RNG` its own generator.

  Seeded from the test's id, so a test draws the same numbers whatever ran
  before it in the process (xdist's scheduling, `-p random`, `-k`), instead
  of continuing a stream that the order of earlier tests decides.
  """
  module = request.module
  names = [n for n in _MODULE_RNG_NAMES
           if isinstance(getattr(module, n, None), np.random.Generator)]
  if not names:
    yield
    return
  saved = {n: getattr(module, n) for n in names}
  seed = zlib.crc32(request.node.nodeid.encode())
  for n in names:
    setattr(module, n, np.random.default_rng(seed))
  yield
  for n, generator in saved.items():
    setattr(module, n, generator)
