"""SemiISP's config: its checks, and one phase's copy of a config.

A SemiISP config (configs/semiisp_fivek.py, configs/semiie_lol.py) holds
the settings of all three phases; `config.phase` says which one a run
trains, and `phase_config` derives the config of another phase (its step
budget, its overrides), as the comparison driver and the restores do.
"""

from __future__ import annotations

from typing import Any

from rawjax.data.simulated import semiisp as simulated_semiisp
from rawjax.data.simulated.semiisp import TASKS
from rawjax.methods.semiisp.objective import ISP_LOSSES, TARGET_LOSSES
from rawjax.methods.semiisp.perceptual import CONVERT_HINT
from rawjax.methods.semiisp.unlabelled import SOURCES as UNLABELLED_SOURCES
from rawjax.methods.semiisp.unlabelled import folder_images
from rawjax.models import pqdynamic_net, vgg
from rawjax.train import config as config_lib

__all__ = [
    'GENERATORS', 'NOISE_LEVELS', 'PHASES', 'SAMPLINGS', 'TASKS',
    'UNLABELLED_SOURCES', 'check_config', 'check_start', 'check_vgg_weights',
    'fine_tuning', 'phase_config', 'phase_steps',
]

PHASES = ('isp', 'semi', 'supervised')
GENERATORS = ('one_to_many', 'deterministic', 'upi')
SAMPLINGS = ('isp_unit', 'function_unit')
NOISE_LEVELS = ('semiisp', 'upi')
_SECTIONS = ('model', 'isp_model', 'data', 'isp', 'pseudo', 'semi',
             'supervised', 'eval')


def check_config(config, *, num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Raises ConfigError naming the key of a setting SemiISP cannot run.

  Cheap (no file is touched), so every entry point runs it. With
  `num_devices` and `num_processes` (the loop's), the batches of the
  phase being trained must split over them.
  """
  config_lib.check_sections(config, _SECTIONS,
                            start_from='configs/semiisp_fivek.py')
  config_lib.check_choice(config, 'phase', PHASES)
  config_lib.check_choice(config, 'task', TASKS)
  config_lib.check_choice(config, 'pseudo.generator', GENERATORS)
  config_lib.check_choice(config, 'pseudo.sampling', SAMPLINGS)
  config_lib.check_choice(config, 'pseudo.noise_levels', NOISE_LEVELS)
  config_lib.check_choice(config, 'pseudo.inverse_variant',
                          pqdynamic_net.VARIANTS)
  config_lib.check_choice(config, 'isp.loss', ISP_LOSSES)
  config_lib.check_non_negative(config, 'isp.vgg_weight')
  config_lib.check_choice(config, 'isp.vgg_layer',
                          tuple(vgg.relu_names(vgg.VGG16_CONFIG)))
  _check_unlabelled(config)
  _check_unlabelled_pairs(config)
  for section in ('semi', 'supervised'):
    config_lib.check_choice(config, f'{section}.loss', TARGET_LOSSES)
  if config.task == 'enhance' and config.pseudo.generator == 'upi':
    raise config_lib.ConfigError(
        'pseudo.generator', message="config.pseudo.generator='upi' makes "
        'raw images from sRGB; it has no meaning for the enhancement task '
        "(config.task='enhance').")
  # One config holds all three phases, and the comparison driver trains
  # them all from it: the target model of phases 2-3 must take its patches
  # whatever the phase of this run.
  target = config_lib.check_model(config, 'model')
  config_lib.check_model(config, 'isp_model', name='pqdynamic_net')
  factor, why = config_lib.model_multiple(target)
  config_lib.check_multiple(
      config, 'data.patch_size', of=factor, allow_zero=True,
      why=f'{why}, the target model of phases 2 and 3 (config.model)')
  config_lib.check_simulation(config, scenes=False)
  phase_batches = {'isp': ('isp.batch',),
                   'semi': ('semi.real_batch', 'semi.pseudo_batch'),
                   'supervised': ('supervised.batch',)}
  for phase, keys in phase_batches.items():
    for key in keys:
      if phase == config.phase:
        config_lib.check_batch_divisible(config, key, devices=num_devices,
                                         processes=num_processes)
      else:
        config_lib.check_int(config, key, minimum=1)
  for key in ('isp.learning_rate', 'semi.learning_rate',
              'supervised.learning_rate', 'supervised.finetune_learning_rate'):
    config_lib.check_positive(config, key)
  for key in ('isp.num_steps', 'semi.num_steps', 'supervised.num_steps',
              'supervised.finetune_steps'):
    config_lib.check_int(config, key, minimum=1)
  if config.isp.memory_size < config.isp.batch:
    raise config_lib.ConfigError(
        'isp.memory_size', config.isp.memory_size,
        f'at least one batch (config.isp.batch={config.isp.batch})')
  config_lib.check_positive(config, 'semi.beta')
  low, high = config.pseudo.shot_range
  if not 0.0 < low < high:
    raise config_lib.ConfigError(
        'pseudo.shot_range', tuple(config.pseudo.shot_range),
        'a pair (low, high) with 0 < low < high',
        message='config.pseudo.shot_range must satisfy 0 < low < high, got '
        f'{tuple(config.pseudo.shot_range)}.')
  for key in ('pseudo.shot_max', 'pseudo.read_max'):
    config_lib.check_non_negative(config, key)


def _check_unlabelled(config) -> None:
  """`data.unlabelled`, its folder key and the simulated preset agree."""
  data = config.data
  config_lib.check_choice(config, 'data.unlabelled', UNLABELLED_SOURCES)
  config_lib.check_choice(config, 'data.synthetic.preset',
                          tuple(simulated_semiisp.PRESETS))
  if data.unlabelled == 'folder' and not data.unlabelled_dir:
    raise config_lib.ConfigError(
        'data.unlabelled_dir', data.unlabelled_dir,
        message="config.data.unlabelled='folder' reads the user's "
        'photographs (COCO in the paper): set config.data.unlabelled_dir to '
        'a folder of .png/.jpg/.jpeg/.tif/.tiff files.')
  if data.unlabelled != 'folder' and data.unlabelled_dir:
    raise config_lib.ConfigError(
        'data.unlabelled_dir', data.unlabelled_dir,
        message='config.data.unlabelled_dir is only read with '
        f"config.data.unlabelled='folder' (it is {data.unlabelled!r}).")
  if (data.unlabelled == 'raw2srgb_v2_content' and not data.root and
      data.synthetic.preset != 'raw2srgb_v2'):
    raise config_lib.ConfigError(
        'data.synthetic.preset', data.synthetic.preset,
        message="config.data.unlabelled='raw2srgb_v2_content' with simulated "
        "labelled pairs needs config.data.synthetic.preset='raw2srgb_v2': "
        f'preset {data.synthetic.preset!r} renders every built-in '
        'photograph in its labelled scenes, so no unlabelled photograph is '
        'disjoint from them.')


def _check_unlabelled_pairs(config) -> None:
  """`data.unlabelled_pairs` (the real-pairs ceiling) is a supervised run
  on a prepared folder that stores the unlabelled scenes' raws."""
  data = config.data
  if not data.get('unlabelled_pairs', False):
    return
  if not isinstance(data.unlabelled_pairs, bool):
    raise config_lib.ConfigError('data.unlabelled_pairs',
                                 data.unlabelled_pairs, 'True or False')
  if config.phase != 'supervised' or config.supervised.init_from:
    raise config_lib.ConfigError(
        'data.unlabelled_pairs', True,
        message='config.data.unlabelled_pairs=True is the real-pairs '
        "ceiling, a supervised-only run (config.phase='supervised' without "
        f'supervised.init_from); this run is phase {config.phase!r}'
        f'{" (fine-tuning)" if config.supervised.init_from else ""}.')
  if not data.root and not data.synthetic.num_unlabelled:
    raise config_lib.ConfigError(
        'data.synthetic.num_unlabelled', 0,
        message='config.data.unlabelled_pairs=True trains on the simulated '
        "unlabelled scenes' raws, but config.data.synthetic.num_unlabelled "
        'is 0: no such scene is rendered.')


def check_vgg_weights(config) -> None:
  """With `isp.vgg_weight` > 0 (eq. 5's VGG term), `isp.vgg_weights` must
  name a file: rawjax ships no weights, and the loss is not silently
  dropped."""
  if config.isp.vgg_weight > 0:
    config_lib.check_existing_path(
        config, 'isp.vgg_weights', kind='file', required=True,
        what=f'{CONVERT_HINT}; eq. 5 with config.isp.vgg_weight='
        f'{config.isp.vgg_weight} needs it, or set config.isp.vgg_weight=0 '
        'for MSE alone')


def _arrays_layout(config):
  """The prepared-arrays files this phase opens (listed, not read)."""
  from rawjax.data.datasets import arrays  # pylint: disable=g-import-not-at-top
  names = ['labelled_raw', 'labelled_srgb', 'test_raw', 'test_srgb']
  if config.phase == 'semi' and config.data.unlabelled == 'fivek_expert':
    names.append('unlabelled_srgb')
  if config.data.get('unlabelled_pairs', False):
    names += ['unlabelled_raw', 'unlabelled_srgb']

  def layout(root):
    arrays.check_prepared(root)
    missing = [f'{n}.npy' for n in names if not (root / f'{n}.npy').is_file()]
    if missing:
      raise FileNotFoundError(f'the prepared dataset lacks {missing}')
  return layout


@config_lib.register_start_check('semiisp')
def check_start(config, *, num_devices: int | None,
                num_processes: int | None) -> None:
  """`check_config` with the loop's devices, `data.root`'s layout, the
  workdirs this phase restores from (they must hold checkpoints), phase
  1's VGG16 weights (eq. 5 with alpha > 0) and phase 2's photograph folder.
  """
  check_config(config, num_devices=num_devices, num_processes=num_processes)
  if config.phase == 'isp':
    check_vgg_weights(config)
  if config.phase == 'semi' and config.data.unlabelled == 'folder':
    config_lib.check_existing_path(
        config, 'data.unlabelled_dir', required=True,
        what='photographs for the unlabelled set', layout=folder_images)
  config_lib.check_existing_path(
      config, 'data.root', layout=_arrays_layout(config),
      what='FiveK / LoL arrays prepared by rawjax.data.datasets.fivek.'
      'prepare_fivek or lol.prepare_lol')
  if config.phase == 'semi' and config.pseudo.generator != 'upi':
    config_lib.check_existing_path(
        config, 'pseudo.isp_workdir', required=True,
        what="phase 1's workdir", layout=config_lib.checkpoints_layout)
  if config.phase == 'supervised' and config.supervised.init_from:
    config_lib.check_existing_path(
        config, 'supervised.init_from', what="phase 2's workdir",
        layout=config_lib.checkpoints_layout)


def phase_config(config, phase: str, **changes: Any):
  """A copy of `config` set up for `phase`: its step budget and changes.

  `train.num_steps` becomes `config.<phase>.num_steps` ('isp', 'semi',
  'supervised'; fine-tuning: `supervised.finetune_steps`); keyword
  `changes` are dotted keys, e.g. `**{'supervised.init_from': path}`.
  """
  if phase not in PHASES:
    raise config_lib.ConfigError('phase', phase, f'one of {PHASES}')
  new = config_lib.with_changes(config, {'phase': phase, **changes})
  with new.unlocked():
    new.train.num_steps = phase_steps(new)
  return new


def fine_tuning(config) -> bool:
  """Phase 3 started from phase 2's parameters (`supervised.init_from`)."""
  return config.phase == 'supervised' and bool(config.supervised.init_from)


def phase_steps(config) -> int:
  """The phase's budget; fine-tuning has its own (`finetune_steps`)."""
  if fine_tuning(config):
    return int(config.supervised.finetune_steps)
  return int(config[config.phase].num_steps)
