"""SemiISP: semi-supervised learnable ISP via one-to-many sRGB-to-RAW.

Yoshimura et al., "Semi-supervised learning for learnable ISPs by
one-to-many sRGB-to-RAW" (the SemiISP paper, `shared/papers/
semi-supervised-isp-srgb2raw.txt`; spec `shared/specs/pqdynamicisp-semiisp.md`).
One registered method, 'semiisp', whose phase is chosen by `config.phase`:

  * 'isp' (phase 1): train f_ISP, the PQDynamicISP parameter network
    (`rawjax.models.PQDynamicNet`), on the labelled pairs with the Table 5
    settings (AdamW, cosine annealing to 0.001x, flips + crops; loss MSE, or
    eq. 14's multi-scale L1 in the denoising case). Every step memorises the
    parameter sets it predicted (unconstrained values z) in a ring buffer of
    the last `isp.memory_size` sets: `state['memory']`, a pure pytree
    written in the jitted step and checkpointed with the rest of the state.
    When the pseudo-data need the local variant (USQ, or local inversion),
    a local network is trained beside the global one (loss summed).
  * 'semi' (phase 2): train ANY registered target model
    (`config.model.name`) on mini-batches of N_r real pairs and N_p pseudo
    pairs (Table 6), with the online pseudo-data filtering loss (eqs.
    10-13, `rawjax.losses.online_pseudo_filtering_loss`). Pseudo pairs are
    made on the fly inside the jitted step from unlabelled sRGB images:
      - 'one_to_many' (the paper, eq. 9): f_ISP^-1 with a parameter set
        drawn uniformly from phase 1's memory, per ISP unit (one set) or
        per function unit (CC from one set, GA from another, ...);
      - 'deterministic' (the "w/o one-to-many" row of Tables 2/3): f_ISP^-1
        with one fixed set, the mean of the memorised sets (unconstrained);
      - 'upi' (the UPI row): Brooks et al.'s random unprocessing
        (`rawjax.isp.unprocess`, layout 'rgb'), no f_ISP involved;
    optionally the sRGB quality update (USQ): sRGB -> f_ISP^-1 (random P)
    -> f_ISP with the trained local encoder's P -> updated sRGB (the pseudo
    ground truth) -> f_ISP^-1 (a fresh random P, global or local) -> final
    pseudo-RAW; and, when the target must denoise, eq. 15's noise.
    The f_ISP parameters and memory are restored from phase 1's workdir
    (`pseudo.isp_workdir`) into `state['isp']` (non-trainable).
  * 'supervised' (phase 3 / the baseline): supervised training of the
    target model on real pairs only; from scratch (the supervised-only
    baseline) or from phase 2's final parameters (`supervised.init_from`,
    the fine-tuning phase).

Data. A prepared dataset folder holds `labelled` pairs ('raw' input,
'srgb' target), `unlabelled` sRGB images and `test` pairs, as uint16
.npy arrays (see `prepare_arrays`). The quick configs generate one from the
embedded simulator (`rawjax.data.synthetic`, preset 'raw2srgb') into
`data.cache_dir` on first use; `prepare_fivek` / `prepare_lol` convert the
real datasets once. For the ISP task the 'raw' input is the demosaicked
camera RGB on the Bayer-cell grid (packed raw with its greens averaged,
`rawjax.isp.packed_to_rgb`) and the target is the sRGB rendering pooled 2x2
to the same grid, so f_ISP (a per-pixel colour/tone pipeline on 3 channels)
and any image-to-image model share one input/output layout; for
enhancement (LoL) both are sRGB images.

Evaluation: PSNR and SSIM of the trained model (target model, or f_ISP in
phase 1) on the held-out test pairs, written to results.json / results.md.
Choices where the paper is silent are listed in docs/semiisp.md.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import pathlib
import types
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import losses, metrics, models
from rawjax.data import pipeline as pipeline_lib
from rawjax.isp import color, noise as noise_lib, pqdynamic
from rawjax.isp.unprocess import unprocess as upi_unprocess
from rawjax.models import pqdynamic_net
from rawjax.io.staging import datasets_cache, staged_directory
from rawjax.train.config import check_choice
from rawjax.train import method as method_lib
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer

__all__ = [
    'AXIS_NAME', 'GENERATORS', 'PHASES', 'SAMPLINGS', 'TASKS', 'UNIT_SLICES',
    'ArrayDataset', 'compare', 'dataset_root', 'evaluate',
    'generate_pseudo_pairs',
    'init', 'inverse_luts', 'isp_variants', 'load_split', 'make_data',
    'make_steps', 'memorise', 'phase_config', 'predict', 'prepare_arrays',
    'pseudo_raw',
    'prepare_fivek', 'prepare_lol', 'prepare_synthetic', 'restore_phase',
    'sample_sets',
]

AXIS_NAME = 'batch'
PHASES = ('isp', 'semi', 'supervised')
GENERATORS = ('one_to_many', 'deterministic', 'upi')
SAMPLINGS = ('isp_unit', 'function_unit')
NOISE_LEVELS = ('semiisp', 'upi')
TASKS = ('isp', 'enhance')
# Slices of the unconstrained parameter vector per function unit
# (`pqdynamic.params_from_unconstrained`'s layout).
UNIT_SLICES = {'cc': (0, 9), 'ga': (9, 18), 'gm': (18, 27), 'cs': (27, 36),
               'itm': (36, 45)}
_SPLITS = ('labelled', 'unlabelled', 'test')
_SCALE = 65535.0


# --- configuration ------------------------------------------------------------


def _check_config(config) -> None:
  for section in ('model', 'isp_model', 'data', 'isp', 'pseudo', 'semi',
                  'supervised', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/semiisp_fivek.py.')
  check_choice(config.phase, PHASES, 'phase')
  check_choice(config.task, TASKS, 'task')
  check_choice(config.pseudo.generator, GENERATORS, 'pseudo.generator')
  check_choice(config.pseudo.sampling, SAMPLINGS, 'pseudo.sampling')
  check_choice(config.pseudo.noise_levels, NOISE_LEVELS,
               'pseudo.noise_levels')
  check_choice(config.pseudo.inverse_variant, pqdynamic_net.VARIANTS,
          'pseudo.inverse_variant')
  check_choice(config.isp.loss, ('mse', 'l1_multiscale'), 'isp.loss')
  for section in ('semi', 'supervised'):
    check_choice(config[section].loss, ('mse', 'mse_ssim', 'l1'),
            f'{section}.loss')
  if config.task == 'enhance' and config.pseudo.generator == 'upi':
    raise ValueError("config.pseudo.generator='upi' makes raw images from "
                     "sRGB; it has no meaning for the enhancement task "
                     "(config.task='enhance').")
  batches = {'isp.batch': config.isp.batch,
             'semi.real_batch': config.semi.real_batch,
             'semi.pseudo_batch': config.semi.pseudo_batch,
             'supervised.batch': config.supervised.batch}
  for key, value in batches.items():
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'config.{key} must be an int >= 1, got {value!r}.')
  if config.isp.memory_size < config.isp.batch:
    raise ValueError(f'config.isp.memory_size={config.isp.memory_size} must '
                     f'hold at least one batch (isp.batch='
                     f'{config.isp.batch}).')
  if config.semi.beta <= 0:
    raise ValueError(f'config.semi.beta must be > 0, got {config.semi.beta}.')
  low, high = config.pseudo.shot_range
  if not 0.0 < low < high:
    raise ValueError('config.pseudo.shot_range must satisfy 0 < low < high, '
                     f'got {tuple(config.pseudo.shot_range)}.')
  if config.pseudo.shot_max < 0 or config.pseudo.read_max < 0:
    raise ValueError('config.pseudo.shot_max and read_max must be >= 0, got '
                     f'{config.pseudo.shot_max} and {config.pseudo.read_max}.')


def phase_config(config, phase: str, **changes: Any):
  """A copy of `config` set up for `phase`: its step budget and changes.

  `train.num_steps` becomes `config.<phase>.num_steps` ('isp', 'semi',
  'supervised'); keyword `changes` are dotted keys, e.g.
  `**{'supervised.init_from': path}`.
  """
  check_choice(phase, PHASES, 'phase')
  new = copy.deepcopy(config)
  with new.unlocked():
    new.phase = phase
    for key, value in changes.items():
      *path, last = key.split('.')
      node = new
      for part in path:
        node = node[part]
      node[last] = value
    new.train.num_steps = _phase_steps(new)
  return new


def _fine_tuning(config) -> bool:
  return config.phase == 'supervised' and bool(config.supervised.init_from)


def _phase_steps(config) -> int:
  """The phase's budget; fine-tuning has its own (`finetune_steps`)."""
  if _fine_tuning(config):
    return int(config.supervised.finetune_steps)
  return int(config[config.phase].num_steps)


def isp_variants(config) -> tuple[str, ...]:
  """The f_ISP variants phase 1 trains together: ('global', 'local').

  Both, always: USQ needs the local encoder, the inversion the global or
  local sets, and one phase-1 checkpoint then serves every phase-2 setting
  (`pseudo.*` may change between the phases).
  """
  del config
  return pqdynamic_net.VARIANTS


def _isp_model(config, variant: str) -> pqdynamic_net.PQDynamicNet:
  return pqdynamic_net.PQDynamicNet(variant=variant,
                                    with_itm=config.task == 'enhance',
                                    **dict(config.isp_model))


def _target_model(config):
  return models.model_from_config(config.model)


def _optimizer(section, num_steps: int) -> optax.GradientTransformation:
  """AdamW, cosine annealing from the learning rate to final_fraction x."""
  schedule = optax.cosine_decay_schedule(
      section.learning_rate, decay_steps=max(1, num_steps),
      alpha=section.final_fraction)
  return optax.adamw(schedule, weight_decay=section.weight_decay)


def _phase_optimizer(config) -> optax.GradientTransformation:
  section = config[config.phase]
  if _fine_tuning(config):
    section = types.SimpleNamespace(
        learning_rate=section.finetune_learning_rate,
        final_fraction=section.final_fraction,
        weight_decay=section.weight_decay)
  return _optimizer(section, config.train.num_steps)


# --- data ---------------------------------------------------------------------


def prepare_arrays(directory: str | os.PathLike[str], *,
                   labelled_raw: np.ndarray, labelled_srgb: np.ndarray,
                   unlabelled_srgb: np.ndarray, test_raw: np.ndarray,
                   test_srgb: np.ndarray,
                   info: Mapping[str, Any] | None = None) -> pathlib.Path:
  """Writes a prepared dataset folder (atomically: staged, then renamed).

  Layout: `<split>_<field>.npy` uint16 (value * 65535, rounded) of shape
  (N, H, W, 3) for labelled_{raw,srgb}, unlabelled_srgb, test_{raw,srgb},
  plus `dataset.json` (`info` and the counts). Images of one array share a
  size.
  """
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'dataset.json').is_file():
    return directory
  arrays = {'labelled_raw': labelled_raw, 'labelled_srgb': labelled_srgb,
            'unlabelled_srgb': unlabelled_srgb, 'test_raw': test_raw,
            'test_srgb': test_srgb}
  with staged_directory(directory) as staging:
    staging.mkdir()
    for name, array in arrays.items():
      array = np.asarray(array, np.float32)
      if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f'prepare_arrays: {name} must be (N, H, W, 3), got '
                         f'{array.shape}.')
      np.save(staging / f'{name}.npy',
              np.round(np.clip(array, 0.0, 1.0) * _SCALE).astype(np.uint16))
    summary = dict(info or {})
    summary['counts'] = {k: int(len(v)) for k, v in arrays.items()}
    (staging / 'dataset.json').write_text(json.dumps(summary, indent=1))
  return directory


def _pool2(image: np.ndarray) -> np.ndarray:
  h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
  image = image[:h, :w]
  return image.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


def prepare_synthetic(directory: str | os.PathLike[str], *, task: str,
                      num_labelled: int, num_unlabelled: int, num_test: int,
                      seed: int, height: int, width: int,
                      camera: str = 'nikon-5100',
                      progress: bool = True) -> pathlib.Path:
  """A prepared dataset simulated by `rawjax.data.synthetic` ('raw2srgb').

  Scenes 0 .. L-1 are the labelled pairs, the next U scenes give the
  unlabelled sRGB images (their raws are discarded), the last T the test
  pairs, all captured by one camera (`camera`, a built-in profile slug).
  Task 'isp': 'raw' = packed raw with greens averaged (camera RGB on the
  Bayer-cell grid, with the preset's shot + read noise), 'srgb' = the
  reference rendering pooled 2x2 to that grid. Task 'enhance' (a LoL
  stand-in): 'srgb' is that rendering, 'raw' its low-light version
  srgb_encode(e * srgb_decode(srgb)) with a per-image exposure
  e ~ U(0.05, 0.25).
  """
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'dataset.json').is_file():
    return directory
  config = synthetic.PRESETS['raw2srgb'].replace(height=height, width=width)
  total = num_labelled + num_unlabelled + num_test
  raws, srgbs = [], []
  darken = np.random.default_rng([seed, 11])
  for scene in synthetic.generate_scenes(seed, total, config=config,
                                         cameras=[camera], progress=progress):
    capture = next(iter(scene.captures.values()))
    srgb = _pool2(np.asarray(capture.srgb, np.float32))
    if task == 'isp':
      raw = np.asarray(color.packed_to_rgb(capture.packed))
    else:
      exposure = darken.uniform(0.05, 0.25)
      raw = np.asarray(color.srgb_encode(exposure * color.srgb_decode(srgb)))
    raws.append(np.asarray(raw, np.float32))
    srgbs.append(srgb)
  raws, srgbs = np.stack(raws), np.stack(srgbs)
  a, b = num_labelled, num_labelled + num_unlabelled
  return prepare_arrays(
      directory, labelled_raw=raws[:a], labelled_srgb=srgbs[:a],
      unlabelled_srgb=srgbs[a:b], test_raw=raws[b:], test_srgb=srgbs[b:],
      info={'source': 'rawjax.data.synthetic', 'preset': 'raw2srgb',
            'task': task, 'seed': seed, 'camera': camera,
            'size': [height // 2, width // 2]})


def _resize(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Landscape (turned if portrait), antialiased bilinear to size (H, W)."""
  if image.shape[0] > image.shape[1]:
    image = np.swapaxes(image, 0, 1)
  return np.asarray(jax.image.resize(
      jnp.asarray(image, jnp.float32), (*size, image.shape[-1]),
      method='linear', antialias=True))


def prepare_fivek(root: str | os.PathLike[str], out: str | os.PathLike[str],
                  *, task: str = 'general', num_labelled: int = 100,
                  num_unlabelled: int = 4400, size: Sequence[int] = (480, 640),
                  expert: str = 'c', input_dir: str = '',
                  progress: bool = True) -> pathlib.Path:
  """FiveK as a prepared dataset (SemiISP's ISP tasks), written once.

  Labelled: the first `num_labelled` training pairs (sorted names; which
  100 / 500 the paper drew is not published); unlabelled: the expert
  renderings of the next `num_unlabelled` training images (their raws are
  not used); test: the 500 test pairs. Every image is resized to `size`
  (480 x 640, the paper's resolution; portrait images are turned to
  landscape first).
  task 'general' (RAW -> sRGB): input = packed raw, greens averaged.
  task 'tone' (tone mapping): input = the 16-bit linear renderings in
  `input_dir` (relative to root, paired by name, e.g. the 480p linear
  ProPhoto inputs distributed with 3D-LUT methods).
  """
  from rawjax import io as rawio  # pylint: disable=g-import-not-at-top
  from rawjax.data.datasets import fivek  # pylint: disable=g-import-not-at-top
  if task not in ('general', 'tone'):
    raise ValueError(f"prepare_fivek: task must be 'general' or 'tone', got "
                     f'{task!r}.')
  if task == 'tone' and not input_dir:
    raise ValueError("prepare_fivek: task 'tone' needs input_dir, the folder "
                     '(under root) of the linear input renderings.')
  out = pathlib.Path(out).expanduser()
  if (out / 'dataset.json').is_file():
    return out
  train = fivek.FiveKDataset(root, split='train', expert=expert)
  test = fivek.FiveKDataset(root, split='test', expert=expert)
  iterate = _progress(progress)

  def pairs(dataset, keys):
    raws, srgbs = [], []
    for key in iterate(keys):
      sample = dataset.load(key)
      srgbs.append(_resize(_pool2(sample['target']), size))
      if task == 'general':
        raw = np.asarray(color.packed_to_rgb(sample['raw']))
      else:
        path = pathlib.Path(dataset.root) / input_dir / f'{key}.tif'
        if not path.is_file():
          raise FileNotFoundError(f'prepare_fivek: no linear input {path} '
                                  f'for {key}.')
        raw = rawio.read_image(path)
      raws.append(_resize(raw, size))
    return np.stack(raws), np.stack(srgbs)

  labelled_keys = train.keys[:num_labelled]
  unlabelled_keys = train.keys[num_labelled:num_labelled + num_unlabelled]
  labelled = pairs(train, labelled_keys)
  targets = train._targets  # pylint: disable=protected-access
  unlabelled = np.stack([_resize(_pool2(rawio.read_image(targets[k])), size)
                         for k in iterate(unlabelled_keys)])
  tests = pairs(test, test.keys)
  return prepare_arrays(out, labelled_raw=labelled[0],
                        labelled_srgb=labelled[1], unlabelled_srgb=unlabelled,
                        test_raw=tests[0], test_srgb=tests[1],
                        info={'source': 'FiveK', 'task': task,
                              'expert': expert, 'size': list(size)})


def prepare_lol(root: str | os.PathLike[str], out: str | os.PathLike[str], *,
                version: str = 'v1', num_labelled: int = 0,
                unlabelled_dirs: Sequence[str] = (),
                size: Sequence[int] = (400, 600),
                progress: bool = True) -> pathlib.Path:
  """LoL as a prepared dataset (SemiIE), written once.

  Labelled: the first `num_labelled` training pairs (0 = all); unlabelled:
  the normal-light images of the remaining training pairs plus every PNG
  under `unlabelled_dirs` (e.g. another LoL version's normal-light
  folder); test: the test pairs. Images are resized to `size`.
  """
  from rawjax import io as rawio  # pylint: disable=g-import-not-at-top
  from rawjax.data.datasets import lol  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(out).expanduser()
  if (out / 'dataset.json').is_file():
    return out
  train = lol.LOLDataset(root, version=version, split='train')
  test = lol.LOLDataset(root, version=version, split='test')
  iterate = _progress(progress)
  count = num_labelled or len(train)

  def pairs(dataset, keys):
    samples = [dataset.load(k) for k in iterate(keys)]
    return (np.stack([_resize(s['low'], size) for s in samples]),
            np.stack([_resize(s['high'], size) for s in samples]))

  labelled = pairs(train, train.keys[:count])
  extra = [train.load(k)['high'] for k in train.keys[count:]]
  for folder in unlabelled_dirs:
    extra += [rawio.read_image(p) for p in
              sorted(pathlib.Path(folder).expanduser().rglob('*.png'))]
  if not extra:
    raise ValueError('prepare_lol: no unlabelled images (every training '
                     'pair is labelled and unlabelled_dirs is empty).')
  unlabelled = np.stack([_resize(x, size) for x in extra])
  tests = pairs(test, test.keys)
  return prepare_arrays(out, labelled_raw=labelled[0],
                        labelled_srgb=labelled[1], unlabelled_srgb=unlabelled,
                        test_raw=tests[0], test_srgb=tests[1],
                        info={'source': 'LOL', 'version': version,
                              'size': list(size)})


def _progress(enabled: bool):
  if not enabled:
    return lambda x: x
  import tqdm  # pylint: disable=g-import-not-at-top
  return lambda x: tqdm.tqdm(x, unit='image')


def dataset_root(config) -> pathlib.Path:
  """`config.data.root` (a prepared folder) or the simulated one.

  With an empty root the simulator writes the folder into
  `data.cache_dir` (default `$RAWJAX_DATA_DIR` or ~/.cache/rawjax) on first
  use, named by its settings.
  """
  data = config.data
  if data.root:
    root = pathlib.Path(data.root).expanduser()
    if not (root / 'dataset.json').is_file():
      raise FileNotFoundError(
          f'config.data.root={root} is not a prepared SemiISP dataset (no '
          'dataset.json); convert FiveK / LoL once with rawjax.train.semiisp.'
          'prepare_fivek / prepare_lol.')
    return root
  s = data.synthetic
  name = (f'semiisp-{config.task}-l{s.num_labelled}-u{s.num_unlabelled}-'
          f't{s.num_test}-s{s.seed}-{s.height}x{s.width}')
  return prepare_synthetic(
      datasets_cache(data.cache_dir) / name, task=config.task,
      num_labelled=s.num_labelled, num_unlabelled=s.num_unlabelled,
      num_test=s.num_test, seed=s.seed, height=s.height, width=s.width,
      progress=jax.process_index() == 0)


def load_split(root: str | os.PathLike[str], split: str, *,
               limit: int = 0) -> dict[str, np.ndarray]:
  """{'raw', 'srgb'} (or {'srgb'} for 'unlabelled') uint16 memory maps."""
  check_choice(split, _SPLITS, 'split')
  root = pathlib.Path(root)
  fields = ('srgb',) if split == 'unlabelled' else ('raw', 'srgb')
  out = {}
  for field in fields:
    path = root / f'{split}_{field}.npy'
    if not path.is_file():
      raise FileNotFoundError(f'the prepared SemiISP dataset {root} lacks '
                              f'{path.name}.')
    array = np.load(path, mmap_mode='r')
    out[field] = array[:limit] if limit else array
  return out


class ArrayDataset:
  """Random access to a prepared split: dict of float32 images in [0, 1]."""

  def __init__(self, arrays: Mapping[str, np.ndarray], *,
               minimum: int = 1):
    self.arrays = dict(arrays)
    self.fields = {k: pipeline_lib.Field('image') for k in self.arrays}
    self.count = len(next(iter(self.arrays.values())))
    if self.count == 0:
      raise ValueError('ArrayDataset: the split is empty.')
    # Repeated to at least one global batch (100 pairs, batch 128...).
    self.repeats = max(1, -(-minimum // self.count))

  def __len__(self) -> int:
    return self.count * self.repeats

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index %= self.count
    return {k: np.asarray(v[index], np.float32) / _SCALE
            for k, v in self.arrays.items()}


class TrainData(pipeline_lib.ZippedPipelines):
  """Zipped, resumable streams: real pairs (+ unlabelled sRGB in phase 2).

  Batch (this process's share): 'raw', 'srgb' (n_real, p, p, 3) and, in
  phase 'semi', 'unlabelled' (n_pseudo, p, p, 3), floats in [0, 1].
  """

  def __init__(self, config, *, process_index: int = 0,
               process_count: int = 1):
    _check_config(config)
    root = dataset_root(config)
    phase, data = config.phase, config.data
    real_batch = {'isp': config.isp.batch, 'semi': config.semi.real_batch,
                  'supervised': config.supervised.batch}[phase]
    sizes = {'real': real_batch}
    if phase == 'semi':
      sizes['unlabelled'] = config.semi.pseudo_batch
    for key, size in sizes.items():
      if size % process_count:
        raise ValueError(f'the {key} batch {size} does not split over '
                         f'{process_count} processes.')
    splits = {'real': load_split(root, 'labelled', limit=data.num_labelled),
              'unlabelled': load_split(root, 'unlabelled',
                                       limit=data.num_unlabelled)}
    common = dict(patch_size=data.patch_size or None,
                  augment=tuple(data.augment), local_device_count=1,
                  process_index=process_index, process_count=process_count,
                  num_workers=data.num_workers, prefetch=data.prefetch)
    self.pipelines = {
        key: pipeline_lib.Pipeline(
            ArrayDataset(splits[key], minimum=size),
            per_device_batch=size // process_count,
            seed=pipeline_lib.stream_seed(config.seed, i), **common)
        for i, (key, size) in enumerate(sizes.items())}

  def merge(self, parts: Mapping[str, Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    out = {'raw': parts['real']['raw'][0], 'srgb': parts['real']['srgb'][0]}
    if 'unlabelled' in parts:
      out['unlabelled'] = parts['unlabelled']['srgb'][0]
    return out


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> TrainData:
  if split != 'train':
    raise ValueError(f"semiisp trains on split 'train' (evaluation reads the "
                     f'test pairs itself), got {split!r}.')
  return TrainData(config, process_index=process_index,
                   process_count=process_count)


# --- f_ISP memory and pseudo-data ---------------------------------------------


def _z_shape(model: pqdynamic_net.PQDynamicNet) -> tuple[int, ...]:
  if model.variant == 'local':
    return (model.grid, model.grid, model.num_params)
  return (model.num_params,)


def memorise(memory: Mapping[str, jax.Array], sets: Mapping[str, jax.Array],
             *, axis_name: str | None = AXIS_NAME) -> dict[str, jax.Array]:
  """Writes a batch of parameter sets into the ring buffer (a pure update).

  Args:
    memory: {'count': int32 scalar (sets written so far), variant: (M,
      *z_shape) buffers}.
    sets: variant -> this device's (b, *z_shape) predicted sets.
    axis_name: gather every device's sets first (all devices then hold the
      same buffer); None on one device.

  Returns:
    The new memory: set i of the (gathered) batch goes to slot
    (count + i) mod M, so the buffer holds the last M sets.
  """
  count = memory['count']
  new = dict(memory)
  written = 0
  for variant, z in sets.items():
    z = jax.lax.stop_gradient(z)
    if axis_name is not None:
      z = jax.lax.all_gather(z, axis_name).reshape(-1, *z.shape[1:])
    buffer = memory[variant]
    slots = (count + jnp.arange(z.shape[0])) % buffer.shape[0]
    new[variant] = buffer.at[slots].set(z.astype(buffer.dtype))
    written = z.shape[0]
  new['count'] = count + written
  return new


def _valid_sets(memory, variant):
  buffer = jnp.asarray(memory[variant])
  return jnp.clip(memory['count'], 1, buffer.shape[0]), buffer


def sample_sets(key: jax.Array, memory: Mapping[str, jax.Array], n: int, *,
                variant: str = 'global', sampling: str = 'isp_unit'
                ) -> jax.Array:
  """n parameter sets drawn uniformly from the memorised ones (eq. 9).

  'isp_unit': each draw is one memorised set; 'function_unit': each
  function unit (CC, GA, GM, CS[, IT]) comes from its own uniformly drawn
  set (the paper's choice with plentiful data).

  Returns:
    (n, *z_shape) unconstrained values.
  """
  valid, buffer = _valid_sets(memory, variant)
  num_params = buffer.shape[-1]
  units = [s for s in UNIT_SLICES.values() if s[1] <= num_params]
  draws = 1 if sampling == 'isp_unit' else len(units)
  index = jax.random.randint(key, (n, draws), 0, valid)
  if draws == 1:
    return buffer[index[:, 0]]
  parts = [buffer[index[:, u]][..., a:b] for u, (a, b) in enumerate(units)]
  return jnp.concatenate(parts, axis=-1)


def _mean_set(memory, variant, n):
  valid, buffer = _valid_sets(memory, variant)
  weight = (jnp.arange(buffer.shape[0]) < valid).astype(buffer.dtype)
  weight = weight.reshape((-1,) + (1,) * (buffer.ndim - 1))
  mean = jnp.sum(buffer * weight, axis=0) / valid
  return jnp.broadcast_to(mean, (n, *buffer.shape[1:]))


def inverse_luts(config) -> pqdynamic.InverseLUTs:
  """The f_GM^-1 (and f_IT^-1) tables at `pseudo.lut_shape` (cached)."""
  shape = tuple(int(d) for d in config.pseudo.lut_shape)
  ranges = _isp_model(config, 'global').ranges
  gm = pqdynamic.gamma_tone_map_lut(p_range=ranges.gamma, shape=shape,
                                    progress=False)
  itm = (pqdynamic.inverse_tone_map_lut(p_range=ranges.itm_exponent,
                                        shape=shape, progress=False)
         if config.task == 'enhance' else None)
  return pqdynamic.InverseLUTs(gm, itm)


def pseudo_raw(model: pqdynamic_net.PQDynamicNet, srgb: jax.Array,
               z: jax.Array, luts: pqdynamic.InverseLUTs,
               newton_steps: int) -> jax.Array:
  """f_ISP^-1(srgb; P(z)) (eq. 9): (n, H, W, 3) pseudo-RAW in [0, 1].

  z: (n, *z_shape) unconstrained sets of `model`'s variant (per-pixel
  interpolated for 'local').
  """
  h, w = srgb.shape[1:3]
  params = model.to_params(z, h, w)
  return pqdynamic.isp_inverse(srgb, params, luts=luts,
                               newton_steps=newton_steps,
                               per_pixel=model.variant == 'local')


def add_pseudo_noise(config, level_key: jax.Array, noise_key: jax.Array,
                     raw: jax.Array) -> jax.Array:
  """Shot + read noise on clean (n, H, W, 3) pseudo-RAW (eq. 15, unclipped).

  Levels per image from `pseudo.noise_levels`: 'semiisp' (eq. 15's uniform
  ranges) or 'upi' (UPI's log-uniform shot over `pseudo.shot_range` with
  log-linear read, the simulator's model). With `pseudo.averaged_greens`
  the G channel gets half the variance: it stands for the mean of the two
  green sites of a Bayer cell, each noisy at the full level.
  """
  if raw.ndim != 4 or raw.shape[-1] != 3:
    raise ValueError('add_pseudo_noise: expected (n, H, W, 3) pseudo-RAW, '
                     f'got shape {raw.shape}.')
  pseudo = config.pseudo
  n = raw.shape[0]
  if pseudo.noise_levels == 'upi':
    levels = noise_lib.random_noise_levels(
        level_key, shape=(n,), shot_range=tuple(pseudo.shot_range))
  else:
    levels = noise_lib.random_semiisp_noise_levels(
        level_key, shape=(n,), shot_max=pseudo.shot_max,
        read_max=pseudo.read_max)
  scale = (jnp.array([1.0, 0.5, 1.0], raw.dtype) if pseudo.averaged_greens
           else jnp.ones((3,), raw.dtype))
  shot = levels.shot[:, None, None, None] * scale
  read = levels.read[:, None, None, None] * scale
  return noise_lib.add_noise(noise_key, raw, shot, read)


def generate_pseudo_pairs(config, isp_state: Mapping[str, Any],
                          srgb: jax.Array, key: jax.Array, *,
                          luts: pqdynamic.InverseLUTs | None
                          ) -> tuple[jax.Array, jax.Array]:
  """Pseudo (raw, sRGB target) pairs from unlabelled sRGB (traceable).

  Args:
    config: the method config (`pseudo` section).
    isp_state: {'params': {variant: f_ISP params}, 'memory': ring buffer}
      from phase 1 (unused by the 'upi' generator).
    srgb: (n, H, W, 3) unlabelled sRGB in [0, 1].
    key: PRNG key.
    luts: the inverse tables (`inverse_luts`); None only for 'upi'.

  Returns:
    (raw, target), each (n, H, W, 3): the pseudo input (noisy if
    `pseudo.noise`, clipped to [0, 1]) and its ground truth (the input sRGB,
    or the updated sRGB with USQ).
  """
  pseudo = config.pseudo
  n = srgb.shape[0]
  keys = jax.random.split(key, 4)
  target = srgb
  if pseudo.generator == 'upi':
    raw, _ = upi_unprocess(keys[0], srgb, layout='rgb')
  else:
    memory = isp_state['memory']
    global_model = _isp_model(config, 'global')

    def draw(k, variant, sampling):
      if pseudo.generator == 'deterministic':
        return _mean_set(memory, variant, n)
      return sample_sets(k, memory, n, variant=variant, sampling=sampling)

    final_variant = pseudo.inverse_variant
    final_model = _isp_model(config, final_variant)
    if pseudo.usq:
      first = pseudo_raw(global_model, srgb,
                      draw(keys[0], 'global', 'isp_unit'), luts,
                      pseudo.newton_steps)
      local = _isp_model(config, 'local')
      local_params = {'params': isp_state['params']['local']}
      target = local.apply(local_params, first)
      raw = pseudo_raw(final_model, target,
                    draw(keys[1], final_variant, pseudo.sampling), luts,
                    pseudo.newton_steps)
    else:
      raw = pseudo_raw(final_model, srgb,
                    draw(keys[1], final_variant, pseudo.sampling), luts,
                    pseudo.newton_steps)
  if pseudo.noise:
    raw = jnp.clip(add_pseudo_noise(config, keys[2], keys[3], raw), 0.0, 1.0)
  return jax.lax.stop_gradient(raw), jax.lax.stop_gradient(target)


# --- state --------------------------------------------------------------------


def _as_raw_key(rng):
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  return rng


def _init_params(model, key, size: int):
  dummy = jnp.zeros((1, size, size, 3), jnp.float32)
  return jax.jit(lambda k: model.init(k, dummy)['params'])(key)


def _model_size(config) -> int:
  """A square input size every model accepts (multiple of 2**levels)."""
  levels = int(config.model.get('levels', 0))
  return max(16, 2**levels)


def init(config, rng: jax.Array) -> dict[str, Any]:
  """The state of `config.phase`.

  'isp': {'params': {variant: f_ISP params}, 'opt_state', 'memory':
  {'count', variant: (M, *z_shape) float32 zeros}}.
  'semi': {'params': target params, 'opt_state', 'isp': {'params',
  'memory'}} with 'isp' restored from `pseudo.isp_workdir` (unless the
  generator is 'upi').
  'supervised': {'params': target params, 'opt_state'}; params restored
  from `supervised.init_from`'s final phase-2 checkpoint when set.
  """
  _check_config(config)
  rng = _as_raw_key(rng)
  key_model, key_state = jax.random.split(rng)
  tx = _phase_optimizer(config)
  if config.phase == 'isp':
    params, memory = {}, {'count': jnp.zeros((), jnp.int32)}
    for i, variant in enumerate(isp_variants(config)):
      model = _isp_model(config, variant)
      params[variant] = _init_params(model, jax.random.fold_in(key_model, i),
                                     model.resize)
      memory[variant] = jnp.zeros((config.isp.memory_size,
                                   *_z_shape(model)), jnp.float32)
    return state_lib.create(params=params, rng=key_state,
                            opt_state=jax.jit(tx.init)(params),
                            memory=memory)
  model = _target_model(config)
  params = _init_params(model, key_model, _model_size(config))
  entries = {}
  if config.phase == 'semi' and config.pseudo.generator != 'upi':
    isp = restore_phase(config, 'isp', config.pseudo.isp_workdir)
    if int(isp['memory']['count']) == 0:
      raise ValueError(f'phase 1 in {config.pseudo.isp_workdir} memorised no '
                       'parameter sets (train it first).')
    entries['isp'] = {'params': isp['params'], 'memory': isp['memory']}
  if config.phase == 'supervised' and config.supervised.init_from:
    params = restore_phase(config, 'semi',
                           config.supervised.init_from)['params']
  return state_lib.create(params=params, rng=key_state,
                          opt_state=jax.jit(tx.init)(params), **entries)


def restore_phase(config, phase: str, workdir: str | os.PathLike[str]
                  ) -> dict[str, Any]:
  """The newest checkpoint of a `phase` run in `workdir` (host numpy).

  The template state is built from `config` set to that phase, so the two
  runs must share the model and f_ISP settings.
  """
  if not workdir:
    key = ('pseudo.isp_workdir' if phase == 'isp' else
           'supervised.init_from')
    raise ValueError(f'restoring phase {phase!r} needs its workdir (set '
                     f'config.{key}).')
  directory = pathlib.Path(workdir).expanduser() / 'checkpoints'
  source = phase_config(config, phase, **(
      {'supervised.init_from': ''} if phase == 'supervised' else {}))
  if phase == 'semi':
    # Phase 2's own f_ISP entry: shapes only (no second restore).
    template = _semi_template(source)
  else:
    template = state_lib.to_host(init(source, jax.random.PRNGKey(0)))
  with Checkpointer(directory, async_save=False) as checkpointer:
    if checkpointer.latest_step() is None:
      raise FileNotFoundError(
          f'no {phase!r} checkpoint in {directory}; run that phase first '
          f'(config.phase={phase!r}).')
    restored, _ = checkpointer.restore(template)
  return restored


def _semi_template(config) -> dict[str, Any]:
  rng = jax.random.PRNGKey(0)
  target = state_lib.to_host(init(phase_config(
      config, 'supervised', **{'supervised.init_from': ''}), rng))
  tx = _optimizer(config.semi, config.semi.num_steps)
  target['opt_state'] = state_lib.to_host(
      jax.jit(tx.init)(target['params']))
  if config.pseudo.generator != 'upi':
    isp = state_lib.to_host(init(phase_config(config, 'isp'), rng))
    target['isp'] = {'params': isp['params'], 'memory': isp['memory']}
  return target


# --- losses and steps ---------------------------------------------------------


def _per_sample_loss(kind: str, prediction, target, ssim_weight: float):
  error = prediction - target
  if kind == 'l1':
    return jnp.mean(jnp.abs(error), axis=(1, 2, 3))
  loss = jnp.mean(jnp.square(error), axis=(1, 2, 3))
  if kind == 'mse_ssim':
    loss = loss + ssim_weight * (1.0 - metrics.ssim(
        jnp.clip(prediction, 0.0, 1.0), target))
  return loss


def _isp_loss(config, prediction, target):
  if config.isp.loss == 'l1_multiscale':
    return losses.multiscale_l1_loss(predictions=prediction, targets=target,
                                     scales=tuple(config.isp.loss_scales))
  return jnp.mean(jnp.square(prediction - target))


def _apply_update(tx, state, loss_fn):
  (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state['params'])
  grads = jax.lax.pmean(grads, AXIS_NAME)
  updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
  params = optax.apply_updates(state['params'], updates)
  diagnostics = state_lib.diagnostics(grads=grads, params=state['params'],
                                      updates=updates)
  return loss, aux, params, opt_state, diagnostics


def make_steps(config) -> list:
  """The per-device step of `config.phase` (closes over the config).

  Batches: 'raw', 'srgb' (n, p, p, 3) real pairs, plus 'unlabelled' in
  phase 'semi'. Metrics: 'loss', 'psnr' (on the real pairs, clipped), and
  for 'semi' 'loss_real', 'loss_pseudo', 'kept_fraction' (OPF), gradient /
  parameter / update norms. The pseudo-data are generated inside the step
  from the device's unlabelled images, with a per-device key.
  """
  _check_config(config)
  tx = _phase_optimizer(config)
  phase = config.phase

  if phase == 'isp':
    variants = isp_variants(config)
    isp_models = {v: _isp_model(config, v) for v in variants}

    def isp_step(state, batch, rng):
      del rng

      def objective(params):
        total, sets, outputs = 0.0, {}, {}
        for variant, model in isp_models.items():
          z = model.apply({'params': params[variant]}, batch['raw'],
                          method='predict')
          outputs[variant] = model.apply({'params': params[variant]},
                                         batch['raw'], z, method='render')
          total = total + _isp_loss(config, outputs[variant], batch['srgb'])
          sets[variant] = z
        return total, (sets, outputs['global'])

      loss, (sets, output), params, opt_state, diag = _apply_update(
          tx, state, objective)
      memory = memorise(state['memory'], sets)
      out = jax.lax.pmean({'loss': loss, 'psnr': jnp.mean(metrics.psnr(
          output, batch['srgb']))}, AXIS_NAME)
      out.update(diag)
      return dict(state, params=params, opt_state=opt_state,
                  memory=memory), out

    return [isp_step]

  model = _target_model(config)
  section = config[phase]
  loss_kind, ssim_weight = section.loss, float(section.ssim_weight)

  if phase == 'supervised':

    def supervised_step(state, batch, rng):
      del rng

      def objective(params):
        prediction = model.apply({'params': params}, batch['raw'])
        loss = jnp.mean(_per_sample_loss(loss_kind, prediction,
                                         batch['srgb'], ssim_weight))
        return loss, prediction

      loss, prediction, params, opt_state, diag = _apply_update(
          tx, state, objective)
      out = jax.lax.pmean({'loss': loss, 'psnr': jnp.mean(metrics.psnr(
          jnp.clip(prediction, 0.0, 1.0), batch['srgb']))}, AXIS_NAME)
      out.update(diag)
      return dict(state, params=params, opt_state=opt_state), out

    return [supervised_step]

  luts = None if config.pseudo.generator == 'upi' else inverse_luts(config)
  beta, filtering = float(config.semi.beta), bool(config.semi.filtering)

  def semi_step(state, batch, rng):
    # Each device makes different pseudo pairs.
    key = jax.random.fold_in(rng, jax.lax.axis_index(AXIS_NAME))
    pseudo_input, pseudo_target = generate_pseudo_pairs(
        config, state.get('isp'), batch['unlabelled'], key, luts=luts)
    n_real = batch['raw'].shape[0]

    def objective(params):
      inputs = jnp.concatenate([batch['raw'], pseudo_input])
      targets = jnp.concatenate([batch['srgb'], pseudo_target])
      prediction = model.apply({'params': params}, inputs)
      per_sample = _per_sample_loss(loss_kind, prediction, targets,
                                    ssim_weight)
      real, pseudo = per_sample[:n_real], per_sample[n_real:]
      if filtering:
        loss, aux = losses.online_pseudo_filtering_loss(
            real_losses=real, pseudo_losses=pseudo, beta=beta,
            axis_name=AXIS_NAME)
      else:
        loss = jnp.mean(per_sample)
        aux = dict(real_loss=jax.lax.pmean(jnp.mean(real), AXIS_NAME),
                   pseudo_loss=jax.lax.pmean(jnp.mean(pseudo), AXIS_NAME),
                   kept=jax.lax.psum(jnp.asarray(pseudo.shape[0],
                                                 jnp.float32), AXIS_NAME))
      return loss, (aux, prediction[:n_real])

    loss, (aux, prediction), params, opt_state, diag = _apply_update(
        tx, state, objective)
    num_pseudo = jax.lax.psum(batch['unlabelled'].shape[0], AXIS_NAME)
    out = {'loss': jax.lax.pmean(loss, AXIS_NAME),
           'loss_real': aux['real_loss'], 'loss_pseudo': aux['pseudo_loss'],
           'kept_fraction': aux['kept'] / num_pseudo,
           'psnr': jax.lax.pmean(jnp.mean(metrics.psnr(
               jnp.clip(prediction, 0.0, 1.0), batch['srgb'])), AXIS_NAME)}
    out.update(diag)
    return dict(state, params=params, opt_state=opt_state), out

  return [semi_step]


# --- inference and evaluation -------------------------------------------------


@functools.partial(jax.jit, static_argnames=('model',))
def _apply(model, params, images):
  return jnp.clip(model.apply({'params': params}, images), 0.0, 1.0)


def _evaluated_model(config):
  if config.phase == 'isp':
    return _isp_model(config, 'global')
  return _target_model(config)


def _evaluated_params(config, state):
  params = jax.tree.map(jnp.asarray, state['params'])
  return params['global'] if config.phase == 'isp' else params


def predict(config, state, images: np.ndarray, *,
            batch_size: int = 4) -> np.ndarray:
  """The trained model's (N, H, W, 3) outputs in [0, 1].

  Images are reflect-padded to a multiple of 2**model.levels (U-Nets) and
  cropped back.
  """
  model = _evaluated_model(config)
  params = _evaluated_params(config, state)
  multiple = 2**int(getattr(model, 'levels', 0))
  images = np.asarray(images, np.float32)
  h, w = images.shape[1:3]
  pad = ((0, 0), (0, (-h) % multiple), (0, (-w) % multiple), (0, 0))
  outputs = []
  for start in range(0, len(images), batch_size):
    chunk = np.pad(images[start:start + batch_size], pad, mode='reflect')
    outputs.append(np.asarray(_apply(model, params, jnp.asarray(chunk)))[
        :, :h, :w])
  return np.concatenate(outputs)


@jax.jit
def _scores(prediction, target):
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target)}


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """PSNR / SSIM on the held-out test pairs (`eval.max_test_images`).

  Writes workdir/results.json (per-image and mean scores) and results.md,
  and grid.png (rows: input, output, target) for `eval.num_grid_images`.
  """
  _check_config(config)
  root = dataset_root(config)
  test = load_split(root, 'test', limit=config.eval.max_test_images)
  raw = np.asarray(test['raw'], np.float32) / _SCALE
  target = np.asarray(test['srgb'], np.float32) / _SCALE
  output = predict(config, state, raw)
  scores = {k: np.asarray(v) for k, v in _scores(output, target).items()}
  summary = {k: float(v.mean()) for k, v in scores.items()}
  model_name = ('pqdynamic_net (f_ISP, phase 1)' if config.phase == 'isp'
                else config.model.name)
  results = {'phase': config.phase, 'model': model_name,
             'generator': config.pseudo.generator,
             'step': int(np.asarray(state['step'])), 'dataset': str(root),
             'num_test': int(len(raw)), **summary,
             'per_image': {k: v.tolist() for k, v in scores.items()}}
  workdir = pathlib.Path(workdir)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'results.json').write_text(json.dumps(results, indent=1) +
                                          '\n')
    (workdir / 'results.md').write_text(
        f'# SemiISP, phase {config.phase}: {model_name}\n\n'
        f'Step {results["step"]}; {len(raw)} test pairs of {root}.\n\n'
        '| PSNR (dB) | SSIM |\n|---|---|\n'
        f'| {summary["psnr"]:.2f} | {summary["ssim"]:.4f} |\n')
    count = min(config.eval.num_grid_images, len(raw))
    if count:
      from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
      from rawjax.train import loop  # pylint: disable=g-import-not-at-top
      shown = np.stack([x for i in range(count) for x in
                        (np.clip(raw[i], 0, 1), output[i], target[i])])
      write_image(workdir / 'grid.png', loop.image_grid(shown, columns=3))
  return summary


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Real training inputs, the model's outputs and their targets (N <= 4)."""
  raw = np.asarray(batch['raw']).reshape(-1, *np.shape(batch['raw'])[-3:])[:4]
  srgb = np.asarray(batch['srgb']).reshape(-1,
                                           *np.shape(batch['srgb'])[-3:])[:4]
  return {'input': np.clip(raw, 0, 1), 'output': predict(config, state, raw),
          'target': srgb}


@method_lib.register_method('semiisp')
def _method() -> method_lib.Method:
  return method_lib.Method(name='semiisp', init=init, steps=make_steps,
                           make_data=make_data, evaluate=evaluate,
                           sample_images=sample_images)


# --- the comparison of Tables 2/3 ---------------------------------------------

_ROWS = {
    'supervised': 'Supervised only',
    'one_to_many': 'SemiISP (phase 2)',
    'one_to_many_ft': 'SemiISP + fine-tuning',
    'deterministic': 'w/o one-to-many (phase 2)',
    'deterministic_ft': 'w/o one-to-many + fine-tuning',
    'upi': 'UPI pseudo-data (phase 2)',
    'upi_ft': 'UPI pseudo-data + fine-tuning',
}


def _latest_results(workdir: pathlib.Path) -> dict[str, Any]:
  runs = sorted((workdir / 'eval').glob('step_*/results.json'))
  if not runs:
    raise FileNotFoundError(f'no evaluation results under {workdir}/eval.')
  return json.loads(runs[-1].read_text())


def compare(config, workdir: str | os.PathLike[str], *,
            targets: Sequence[str] = ('unet', 'pqdynamic_net'),
            generators: Sequence[str] = ('one_to_many', 'upi'),
            progress: bool = True) -> dict[str, Any]:
  """Runs the phases for Tables 2/3: same iteration budget for every row.

  For every target in `targets` (a key of `config.target_models`: the
  model options, with 'name' the registered model, default the key): the supervised-only baseline
  (`supervised.num_steps` steps), and for every pseudo-data generator
  phase 2 (`semi.num_steps`) then fine-tuning (`supervised.finetune_steps`;
  the two add up to the baseline's budget). Phase 1 (f_ISP) runs once and
  serves every f_ISP-based generator. Runs resume from their workdirs.

  Writes workdir/results.json and results.md (PSNR / SSIM on the held-out
  test pairs, wall-clock seconds per run) and returns the results.
  """
  import time  # pylint: disable=g-import-not-at-top
  from rawjax.train import loop  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir).expanduser()
  budget = config.supervised.num_steps
  if config.semi.num_steps + config.supervised.finetune_steps != budget:
    raise ValueError(
        f'unequal budgets: semi.num_steps ({config.semi.num_steps}) + '
        f'supervised.finetune_steps ({config.supervised.finetune_steps}) '
        f'must equal supervised.num_steps ({budget}).')
  seconds: dict[str, float] = {}

  def run(name, run_config):
    start = time.perf_counter()
    with run_config.unlocked():
      run_config.logging.progress_bar = progress
    loop.train_and_evaluate(run_config, workdir / name)
    seconds[name] = time.perf_counter() - start
    return _latest_results(workdir / name)

  results = {'budget_steps': budget, 'dataset': str(dataset_root(config)),
             'targets': {}}
  isp_dir = workdir / 'isp'
  if any(g != 'upi' for g in generators):
    results['isp'] = run('isp', phase_config(config, 'isp'))
  for target in targets:
    if target not in config.target_models:
      raise ValueError(f'no options for target {target!r} in '
                       f'config.target_models ({list(config.target_models)}).')
    options = dict(config.target_models[target])
    model = {'model': _config_dict(name=options.pop('name', target),
                                   **options)}
    rows = {}
    rows['supervised'] = run(f'{target}/supervised', _with_model(
        phase_config(config, 'supervised'), model))
    for generator in generators:
      semi_dir = f'{target}/{generator}'
      rows[generator] = run(semi_dir, _with_model(phase_config(
          config, 'semi', **{'pseudo.generator': generator,
                             'pseudo.isp_workdir': str(isp_dir)}), model))
      rows[f'{generator}_ft'] = run(f'{semi_dir}_ft', _with_model(
          phase_config(config, 'supervised', **{
              'pseudo.generator': generator,
              'pseudo.isp_workdir': str(isp_dir),
              'supervised.init_from': str(workdir / semi_dir)}), model))
    results['targets'][target] = {
        k: {m: v[m] for m in ('psnr', 'ssim', 'step')} for k, v in
        rows.items()}
  results['seconds'] = seconds
  results['total_seconds'] = float(sum(seconds.values()))
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
  (workdir / 'results.md').write_text(_comparison_markdown(results))
  return results


def _config_dict(**values):
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(values)


def _with_model(config, changes):
  with config.unlocked():
    for key, value in changes.items():
      config[key] = value
  return config


def _comparison_markdown(results: Mapping[str, Any]) -> str:
  lines = ['# SemiISP comparison (held-out test pairs)', '',
           f'Dataset: {results["dataset"]}; every row of a target model '
           f'trains it for {results["budget_steps"]} iterations in total '
           '(phase 2 + fine-tuning = the supervised-only budget).', '']
  if 'isp' in results:
    lines += [f'f_ISP (PQDynamicISP, phase 1, the pseudo-data generator): '
              f'PSNR {results["isp"]["psnr"]:.2f} dB, SSIM '
              f'{results["isp"]["ssim"]:.4f}.', '']
  lines += ['| Target model | Training | PSNR (dB) | SSIM | vs supervised '
            '(dB) |', '|---|---|---|---|---|']
  for target, rows in results['targets'].items():
    reference = rows['supervised']['psnr']
    for key, row in rows.items():
      lines.append(f'| {target} | {_ROWS.get(key, key)} | {row["psnr"]:.2f} '
                   f'| {row["ssim"]:.4f} | {row["psnr"] - reference:+.2f} |')
  lines += ['', f'Wall clock of this invocation: {results["total_seconds"]:.0f}'
            ' s (runs finished earlier are only reloaded and re-read).']
  return '\n'.join(lines) + '\n'
