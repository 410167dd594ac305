"""Start-up config checks: every bad value is rejected by key, before data.

Each of the repository's configs (configs/*.py, the quick variants) is
given each bad value of issue 17 item 2 (learning rate <= 0, a batch that
does not split over devices x processes, an odd patch, a patch that is not
a multiple of the model's factor, an unknown model name, a missing or
non-existent `data.root`, a folder without the dataset's layout, steps <=
0) and run through `train.train_and_evaluate`. The rejection must be a
`ConfigError` whose one-line message names the key and the value, and it
must come before any data work: `method.init` (the loop's
`_initial_host_state`) and the simulator's cache (`datasets_cache`) are
patched to fail if reached, and the workdir is never created.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from absl import flags
import ml_collections
import pytest

from rawjax import train
from rawjax.data import simulated
from rawjax.train import config as config_lib
from rawjax.train import loop as loop_lib

REPO = pathlib.Path(__file__).resolve().parents[2]

# method -> (config file, variant): the quick variants, whose batches split
# over the test session's 4 CPU devices.
CONFIGS = {
    'raw2raw_semi': ('raw2raw_semi', 'quick'),
    'cycle_gan': ('raw2raw_cstpp', 'quick'),
    'cstpp_adapt': ('cstpp_adapt', 'quick'),
    'liteisp': ('liteisp_zrr', 'quick'),
    'kpn_isp': ('kpn_isp', 'quick'),
    'semiisp': ('semiisp_fivek', 'quick,isp'),
    'semiie': ('semiie_lol', 'quick,isp'),
}
LEARNING_RATES = {
    'raw2raw_semi': ['optim.learning_rate'],
    'cycle_gan': ['optim.generator_lr', 'optim.discriminator_lr'],
    'cstpp_adapt': ['adapt.learning_rate'],
    'liteisp': ['optim.learning_rate'],
    'kpn_isp': ['optim.learning_rate'],
    'semiisp': ['isp.learning_rate', 'semi.learning_rate',
                'supervised.learning_rate',
                'supervised.finetune_learning_rate'],
    'semiie': ['isp.learning_rate', 'semi.learning_rate'],
}
BATCHES = {
    'raw2raw_semi': ['data.unpaired_batch', 'data.anchor_batch'],
    'cycle_gan': ['data.batch_size'],
    'cstpp_adapt': ['adapt.batch_size'],
    'liteisp': ['data.batch_size'],
    'kpn_isp': ['data.batch_size'],
    'semiisp': ['isp.batch'],
    'semiie': ['isp.batch'],
}
# (patch key, the model's factor in the quick config)
PATCHES = {
    'raw2raw_semi': ('data.patch_size', 16),   # U-Net, 4 levels
    'cycle_gan': ('data.patch_size', 32),      # 32 * downsample (M = 1)
    'cstpp_adapt': ('adapt.patch_size', 4),    # the ISP U-Net, 2 levels
    'liteisp': ('data.patch_size', 8),         # three DWTs
    'kpn_isp': ('data.patch_size', 8),         # the predictor's 3 levels
    'semiisp': ('data.patch_size', 8),         # the target U-Net, 3 levels
    'semiie': ('data.patch_size', 8),
}
MODEL_NAMES = {
    'raw2raw_semi': ['model.name'],
    'cycle_gan': ['model.discriminator'],
    'cstpp_adapt': ['adapt.isp_model'],
    'liteisp': ['model.name', 'gcm.name'],
    'kpn_isp': ['model.name'],
    'semiisp': ['model.name'],
    'semiie': ['model.name'],
}
STEPS = {
    'raw2raw_semi': [('optim.warmup_steps', -1)],
    'cycle_gan': [],
    'cstpp_adapt': [],
    'liteisp': [('optim.epochs', 0), ('optim.decay_epochs', 0)],
    'kpn_isp': [('optim.warmup_steps', -1)],
    'semiisp': [('isp.num_steps', 0), ('semi.num_steps', 0),
                ('supervised.num_steps', -3),
                ('supervised.finetune_steps', 0)],
    'semiie': [('semi.num_steps', 0)],
}


def _cases():
  for name in CONFIGS:
    for key in LEARNING_RATES[name]:
      yield name, 'lr', key, 0.0
      yield name, 'lr', key, -1e-3
    for key in BATCHES[name]:
      yield name, 'batch', key, 6          # 4 devices x 1 process
    key, factor = PATCHES[name]
    yield name, 'odd patch', key, 63
    yield name, 'patch factor', key, 2 * factor + 2
    for key in MODEL_NAMES[name]:
      yield name, 'model name', key, 'no_such_model'
    yield name, 'root', 'data.root', '/no/such/dataset'
    yield name, 'layout', 'data.root', 'EMPTY_DIR'
    yield name, 'steps', 'train.num_steps', 0
    for key, value in STEPS[name]:
      yield name, 'steps', key, value


CASES = list(_cases())


def _set(config, key: str, value) -> None:
  *path, last = key.split('.')
  node = config
  for part in path:
    node = node[part]
  with node.ignore_type():
    node[last] = value


@pytest.fixture
def no_data_work(monkeypatch, tmp_path):
  """Fails the test if the run reaches init or the simulator's cache."""
  reached = []

  def initial_state(method, config):
    reached.append('init')
    raise AssertionError('method.init was reached: the checks came too late')

  def cache(cache_dir):
    reached.append('cache')
    raise AssertionError('the simulator was reached: the checks came too late')

  monkeypatch.setattr(loop_lib, '_initial_host_state', initial_state)
  monkeypatch.setattr(simulated, 'datasets_cache', cache)
  monkeypatch.setenv('RAWJAX_DATA_DIR', str(tmp_path / 'cache'))
  return reached


@pytest.fixture
def make_config(tmp_path):
  """name -> a fresh config; cstpp_adapt points at a (fake) CSTPP workdir."""
  workdir = tmp_path / 'cstpp'
  (workdir / 'checkpoints' / '1').mkdir(parents=True)

  def make(name):
    file, variant = CONFIGS[name]
    config = config_lib.load_config_module(
        REPO / 'configs' / f'{file}.py').get_config(variant)
    config.logging.progress_bar = False
    if name == 'cstpp_adapt':
      config.adapt.cstpp_workdir = str(workdir)
    return config
  return make


def _assert_plain_one_line(message: str) -> None:
  assert '\n' not in message and '\\' not in message, message


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_good_configs_pass_the_checks_and_reach_init(name, make_config,
                                                     no_data_work, tmp_path):
  config = make_config(name)
  config_lib.check_at_start(config, num_devices=4, num_processes=1)
  with pytest.raises(AssertionError, match='method.init was reached'):
    train.train_and_evaluate(config, tmp_path / 'run')
  assert no_data_work == ['init']
  assert not (tmp_path / 'cache').exists()


@pytest.mark.parametrize(
    'name,kind,key,value', CASES,
    ids=[f'{n}-{k}-{key}={v}' for n, k, key, v in CASES])
def test_bad_value_is_rejected_by_key_before_any_data_work(
    name, kind, key, value, make_config, no_data_work, tmp_path):
  config = make_config(name)
  if value == 'EMPTY_DIR':
    value = str(tmp_path / 'empty')
    os.mkdir(value)
  _set(config, key, value)
  workdir = tmp_path / 'run'
  with pytest.raises(config_lib.ConfigError) as info:
    train.train_and_evaluate(config, workdir)
  message = str(info.value)
  _assert_plain_one_line(message)
  assert no_data_work == [] and not workdir.exists()
  assert f'config.{key}' in message
  assert f'config.{key}={config_lib.show_value(value)}' in message, message
  rule = {
      'lr': 'must be > 0',
      'batch': 'must be a multiple of 4 (4 device(s) x 1 process(es))',
      'root': 'must be an existing folder',
      'layout': 'must be a folder in the layout of',
      'model name': 'must be one of (' if kind == 'model name' and (
          key in ('model.discriminator', 'adapt.isp_model')) else
                    'must be a registered model, one of (',
  }.get(kind)
  if rule:
    assert rule in message, message
  if kind in ('odd patch', 'patch factor'):
    factor = PATCHES[name][1]
    assert f'multiple of {factor}' in message, message
  if kind == 'steps':
    assert 'must be an int >=' in message, message


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_batches_split_over_devices_times_processes(name, make_config):
  config = make_config(name)
  config_lib.check_at_start(config, num_devices=2, num_processes=2)
  key = BATCHES[name][0]
  _set(config, key, 4)
  with pytest.raises(config_lib.ConfigError,
                     match=rf'config\.{key}=4 must be a multiple of 6 \(2 '
                     r'device\(s\) x 3 process\(es\)\)'):
    config_lib.check_at_start(config, num_devices=2, num_processes=3)


def test_restore_workdirs_must_hold_checkpoints(make_config, tmp_path,
                                                no_data_work):
  config = make_config('cstpp_adapt')
  for value, rule in (('', 'must be the path of an existing folder'),
                      (str(tmp_path / 'nowhere'), 'it does not exist'),
                      (str(tmp_path), 'no checkpoint in')):
    config.adapt.cstpp_workdir = value
    with pytest.raises(config_lib.ConfigError, match=rule) as info:
      train.train_and_evaluate(config, tmp_path / 'run')
    assert 'config.adapt.cstpp_workdir' in str(info.value)
  semi = config_lib.load_config_module(
      REPO / 'configs' / 'semiisp_fivek.py').get_config('quick,semi')
  semi.parallel.num_devices = 1  # its real batch of 2 splits over 1 or 2
  with pytest.raises(config_lib.ConfigError,
                     match=r"config\.pseudo\.isp_workdir='' must be the path "
                     "of an existing folder"):
    train.train_and_evaluate(semi, tmp_path / 'run')
  assert no_data_work == []


def test_other_rules_name_the_key(make_config):
  config = make_config('raw2raw_semi')
  _set(config, 'data.synthetic.height', 255)   # the mosaic: whole CFA cells
  with pytest.raises(config_lib.ConfigError,
                     match=r'config\.data\.synthetic\.height=255 must be an '
                     'even int'):
    config_lib.check_at_start(config, num_devices=1, num_processes=1)
  config = make_config('kpn_isp')
  config.model.name = 'unet'  # registered, but not with the KPN's options
  with pytest.raises(config_lib.ConfigError,
                     match=r"config\.model \(model 'unet'\): model 'unet' has "
                     r"no option\(s\) \['global_context'"):
    config_lib.check_at_start(config, num_devices=1, num_processes=1)
  config.model = ml_collections.ConfigDict(dict(name='unet', levels=2))
  with pytest.raises(config_lib.ConfigError, match='kernel-prediction ISP'):
    config_lib.check_at_start(config, num_devices=1, num_processes=1)
  config = make_config('raw2raw_semi')
  config.model.name = 'unte'
  with pytest.raises(config_lib.ConfigError, match="Did you mean 'unet'"):
    config_lib.check_at_start(config, num_devices=1, num_processes=1)


def test_checker_helpers():
  config = train.base_config()
  config.method = 'toy'
  with config.train.unlocked():
    config.train.rate = float('nan')
    config.train.path = 'a\\b\nc'
  with pytest.raises(config_lib.ConfigError,
                     match=r'config\.train\.rate=nan must be a number > 0'):
    config_lib.check_positive(config, 'train.rate')
  with pytest.raises(config_lib.ConfigError) as info:
    config_lib.check_existing_path(config, 'train.path')
  # The value is shown as written, never as an escaped repr.
  assert "config.train.path='a\\b\nc' must be an existing folder" in str(
      info.value)
  config.train.path = ''
  assert config_lib.check_existing_path(config, 'train.path') is None
  with pytest.raises(config_lib.ConfigError, match='config has no key '
                     r'config\.train\.missing \(config\.train has no'):
    config_lib.get_value(config, 'train.missing')
  with pytest.raises(config_lib.ConfigError,
                     match="config has no 'model' section; start from x.py"):
    config_lib.check_sections(config, ('train', 'model'), start_from='x.py')
  config.parallel.mode = 'pamp'
  with pytest.raises(config_lib.ConfigError,
                     match=r"config\.parallel\.mode='pamp' must be one of "
                     r"\('pmap', 'shard_map'\)\. Did you mean 'pmap'\?"):
    config_lib.check_choice(config, 'parallel.mode', ('pmap', 'shard_map'))
  with pytest.raises(config_lib.ConfigError,
                     match=r'config\.train\.num_steps=1000 must be a positive '
                     r'multiple of 3 \(why\)'):
    config_lib.check_multiple(config, 'train.num_steps', of=3, why='why')


def _parse(argv):
  from launch import _cli  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  _cli.define_config_flag('config', flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  return flag_values.config


@pytest.mark.filterwarnings('ignore:the load_module:DeprecationWarning')
def test_command_line_typo_is_a_plain_flags_error():
  toy = REPO / 'tests' / 'train' / 'toy.py'
  base = ['launch.train', f'--config={toy}:kill']
  config = _parse(base + ['--config.train.num_steps=5'])
  assert config.train.num_steps == 5
  with pytest.raises(flags.IllegalFlagValueError) as info:
    _parse(base + ['--config.train.num_stpes=5'])
  assert str(info.value) == (
      "unknown config key config.train.num_stpes: config.train has no "
      "'num_stpes'; did you mean config.train.num_steps?")
  with pytest.raises(flags.IllegalFlagValueError,
                     match=r"config\.toy has no 'learning_rat'; did you mean "
                     r'config\.toy\.learning_rate\?'):
    _parse(base + ['--config.toy.learning_rat=0.1'])


def _launch(tmp_path, *overrides):
  env = dict(os.environ, RAWJAX_DATA_DIR=str(tmp_path / 'cache'),
             JAX_PLATFORMS='cpu')
  return subprocess.run(
      [sys.executable, '-m', 'launch.train',
       '--config=configs/kpn_isp.py:quick', f'--workdir={tmp_path / "run"}',
       *overrides],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
      check=False)


def test_launch_train_stops_with_one_plain_error_line(tmp_path):
  run = _launch(tmp_path, '--config.optim.learning_rate=-0.5')
  assert run.returncode == 1, run.stderr
  assert 'Traceback' not in run.stderr
  errors = [line for line in run.stderr.splitlines() if 'config.' in line]
  assert len(errors) == 1, run.stderr
  assert errors[0].endswith(
      'config.optim.learning_rate=-0.5 must be > 0.'), errors
  # Nothing simulated, nothing written.
  assert not (tmp_path / 'cache').exists() and not (tmp_path / 'run').exists()
  typo = _launch(tmp_path, '--config.train.num_stpes=5')
  assert typo.returncode == 1 and 'Traceback' not in typo.stderr
  assert ("unknown config key config.train.num_stpes: config.train has no "
          "'num_stpes'; did you mean config.train.num_steps?") in typo.stderr


def test_with_changes_sets_dotted_keys_on_a_copy():
  config = ml_collections.ConfigDict(
      {'model': {'transform': 'patch', 'width': 8}, 'seed': 0})
  new = config_lib.with_changes(config, {'model.transform': 'global',
                                         'seed': 3})
  assert (new.model.transform, new.model.width, new.seed) == ('global', 8, 3)
  assert (config.model.transform, config.seed) == ('patch', 0)  # unchanged
  with pytest.raises(config_lib.ConfigError,
                     match=r'config\.model\.depth \(config\.model has no'):
    config_lib.with_changes(config, {'model.depth': 2})
  with pytest.raises(config_lib.ConfigError, match=r'config\.optim'):
    config_lib.with_changes(config, {'optim.lr': 1.0})
