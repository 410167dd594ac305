"""Test session set-up: 4 host CPU devices, before JAX initialises."""

import os
import pathlib

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
