"""The persistent compilation cache the launchers enable (CPU included)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from rawjax.train import compilation_cache

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A fresh process, as a second run would be: counts jax's cache events for
# one jitted function compiled with the cache in argv[1].
_CHILD = r'''
import json, sys
import jax, jax.numpy as jnp
from rawjax.train import compilation_cache
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
compilation_cache.enable_compilation_cache(sys.argv[1], min_compile_secs=0.0)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(axis=0) * 3.0 + 1.0)
f.lower(jax.ShapeDtypeStruct((16, 16), jnp.float32)).compile()
print(json.dumps({
    'hits': events.count('/jax/compilation_cache/cache_hits'),
    'misses': events.count('/jax/compilation_cache/cache_misses')}))
'''


def _compile_in_child(directory):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', _CHILD, str(directory)],
                       check=True, capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_executable_from_the_cache(tmp_path):
  cache = tmp_path / 'cache'
  first = _compile_in_child(cache)
  entries = sorted(p.name for p in cache.iterdir())
  second = _compile_in_child(cache)
  assert first == {'hits': 0, 'misses': 1}
  assert any(name.startswith('jit__lambda') for name in entries), entries
  assert second == {'hits': 1, 'misses': 0}
  assert sorted(p.name for p in cache.iterdir()) == entries


def test_resolve_cache_dir_order(tmp_path, monkeypatch):
  monkeypatch.delenv(compilation_cache.ENV_VAR, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert (compilation_cache.resolve_cache_dir(None) ==
          tmp_path / 'xdg' / 'rawjax' / 'jax')
  monkeypatch.setenv(compilation_cache.ENV_VAR, str(tmp_path / 'env'))
  assert compilation_cache.resolve_cache_dir('') == tmp_path / 'env'
  assert (compilation_cache.resolve_cache_dir(str(tmp_path / 'flag')) ==
          tmp_path / 'flag')
  assert compilation_cache.resolve_cache_dir(
      str(tmp_path / 'flag'), enabled=False) is None
  monkeypatch.setenv(compilation_cache.ENV_VAR, 'off')
  assert compilation_cache.resolve_cache_dir(None) is None


def test_enable_rejects_a_folder_it_cannot_create(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a folder')
  with pytest.raises(ValueError, match='cannot create .*file/cache'):
    compilation_cache.enable_compilation_cache(blocker / 'cache')
  with pytest.raises(ValueError, match='min_compile_secs'):
    compilation_cache.enable_compilation_cache(tmp_path,
                                               min_compile_secs=-1.0)


def test_launcher_flags_turn_the_cache_off_and_name_a_bad_folder(tmp_path):
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from launch import _cli  # pylint: disable=g-import-not-at-top
  blocker = tmp_path / 'file'
  blocker.write_text('not a folder')
  values = flags.FlagValues()
  cache_flags = _cli.CacheFlags(flag_values=values)
  values(['prog', '--nocompilation_cache',
          f'--compilation_cache_dir={blocker}/cache'])
  assert cache_flags.apply() is None  # off: the folder is not even made
  values.unparse_flags()
  values(['prog', f'--compilation_cache_dir={blocker}/cache',
          '--compilation_cache_min_compile_secs=2.5'])
  assert cache_flags.min_compile_secs.value == 2.5
  with pytest.raises(app.UsageError, match='cannot create .*file/cache'):
    cache_flags.apply()
  values.unparse_flags()
  with pytest.raises(flags.IllegalFlagValueError):
    values(['prog', '--compilation_cache_min_compile_secs=-1'])
