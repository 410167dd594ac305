"""Semi-supervised raw-to-raw mapping (Afifi & Abuolaim, BMVC 2021).

Two U-Net encoder-decoders, (E_A, D_A) for camera A and (E_B, D_B) for
camera B (`rawjax.models.UNet`), trained together on

  * unpaired images of each camera: reconstruction, eq. 3;
  * a few pixel-aligned anchor pairs: the anchor loss between the outputs of
    every encoder block, eq. 4, and the decoder-swap mapping loss, eq. 5;

with L = L_r + L_a + L_m (eq. 6), Adam (lr 1e-4, betas 0.9 / 0.999). Each
term has a weight in `config.loss` (0 switches it off: the ablation rows of
Table 1). Inference maps A -> B as D_B(E_A(x)), then applies the post-fit of
Afifi's Deep-WB (the paper's "inference post-processing used in [9]"): the
network runs on a downsampled copy (longer side at most
`config.inference.postfit_size`), a 16-term kernelP polynomial is fitted by
least squares from that input to the network's output, and the polynomial is
applied to the full-resolution input (clipped to [0, 1]).

Mini-batches. The paper mixes unpaired and anchor samples in each batch of
16 without saying how. Here every step takes `data.unpaired_batch` unpaired
patches *per camera* and `data.anchor_batch` anchor pairs (both global batch
sizes), from three seeded, resumable streams: the paper config uses 4 + 4
unpaired patches and 4 pairs (16 images). Static shares keep the shapes
static (one compilation) and let each device hold an equal part of each.

Data. `config.data.root` names a dataset in the raw2raw layout (Afifi's
download or its extraction, `rawjax.data.datasets.Raw2RawPaired` /
`Raw2RawUnpaired`). Empty, the embedded two-camera simulator
(`rawjax.data.synthetic`) writes one into `config.data.cache_dir` (default
`$RAWJAX_DATA_DIR` or `~/.cache/rawjax`) on first use, named by its
generation settings, so a fresh machine needs no download.

Evaluation (`evaluate`) writes the Table 1/2 columns (PSNR, SSIM, MAE,
DeltaE 2000) for both directions on the paired test split, with the paper's
baselines beside the learned model: global 3x3 and polynomial calibrations
fitted on one anchor pair's colour chart at a time and FDA with one anchor
image at a time as its target (mean +- std over the anchors, as the paper),
plus the pooled 3x3 fit on all anchor pixels and the identity. The choices
where the paper is silent are in docs/raw2raw_semi.md.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import baselines, losses, metrics, models
from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.isp import color
from rawjax.io.staging import datasets_cache, staged_directory
from rawjax.train import loop as loop_lib
from rawjax.train.config import check_choice
from rawjax.train import method as method_lib
from rawjax.train import state as state_lib

__all__ = [
    'AXIS_NAME', 'DIRECTIONS', 'TrainData', 'apply_postfit', 'camera_names',
    'dataset_root', 'ensure_synthetic', 'evaluate', 'init',
    'learning_rate_schedule', 'make_data', 'make_steps', 'network_size',
    'sample_images', 'translate',
]

AXIS_NAME = 'batch'
# (tag, source camera index, target camera index).
DIRECTIONS = (('a_to_b', 0, 1), ('b_to_a', 1, 0))
_CAMERA_KEYS = ('camera_a', 'camera_b')
_METRICS = ('psnr', 'ssim', 'mae', 'delta_e2000')


# --- configuration ---------------------------------------------------------------


def _check_config(config) -> None:
  """Values this method relies on, checked with the key named."""
  for section in ('model', 'data', 'optim', 'loss', 'inference', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/raw2raw_semi.py.')
  data = config.data
  levels = int(config.model.get('levels', 4))
  multiple = 2**levels
  if data.patch_size % multiple or data.patch_size <= 0:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'positive multiple of 2**config.model.levels = '
                     f'{multiple}.')
  for key in ('unpaired_batch', 'anchor_batch'):
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'config.data.{key} must be an int >= 1, got '
                       f'{value!r}.')
  check_choice(config.loss.reduction, losses.REDUCTIONS, 'loss.reduction')
  weights = [config.loss[k] for k in ('reconstruction', 'anchor', 'mapping')]
  if any(w < 0 for w in weights) or not any(weights):
    raise ValueError('config.loss.{reconstruction,anchor,mapping} must be '
                     f'>= 0 and not all 0, got {weights}.')
  check_choice(config.model_init, ('independent', 'shared'), 'model_init')
  check_choice(config.eval.calibration, ('chart', 'pixels'), 'eval.calibration')
  check_choice(config.eval.delta_e, ('auto', 'metadata', 'srgb'),
               'eval.delta_e')


def _loss_weights(config) -> dict[str, float]:
  return {k: float(config.loss[k])
          for k in ('reconstruction', 'anchor', 'mapping')}


def _model(config) -> models.UNet:
  model = models.model_from_config(config.model)
  if not (hasattr(model, 'encode') and hasattr(model, 'decode')):
    raise ValueError(f'config.model.name={config.model.name!r}: the raw2raw '
                     'method needs an encoder-decoder with encode/decode '
                     "methods (e.g. 'unet').")
  return model


def learning_rate_schedule(config) -> optax.Schedule:
  """config.optim.schedule: 'constant' (the paper) or 'cosine'.

  'cosine': linear warm-up over `optim.warmup_steps` to `learning_rate`,
  then cosine decay to `learning_rate * optim.final_fraction` at
  `train.num_steps`.
  """
  o = config.optim
  if o.schedule == 'constant':
    return optax.constant_schedule(o.learning_rate)
  if o.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=o.learning_rate,
        warmup_steps=o.warmup_steps,
        decay_steps=max(config.train.num_steps, o.warmup_steps + 1),
        end_value=o.learning_rate * o.final_fraction)
  raise ValueError("config.optim.schedule must be 'constant' or 'cosine', "
                   f'got {o.schedule!r}.')


def _optimizer(config) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(learning_rate=learning_rate_schedule(config), b1=o.b1,
                    b2=o.b2, eps=o.eps)


# --- data ------------------------------------------------------------------------


def ensure_synthetic(directory: str | os.PathLike[str], *, num_scenes: int,
                     seed: int, height: int, width: int,
                     preset: str = 'raw2raw',
                     progress: bool = True) -> pathlib.Path:
  """A simulated raw2raw dataset under `directory`, generated if absent.

  The dataset folder is named by its settings, so configs with different
  data never share one. Generation writes into a temporary sibling folder
  and renames it into place, so an interrupted run leaves no half dataset
  (and concurrent processes each finish one; the first rename wins).

  Returns:
    The dataset folder (holding dataset.json).
  """
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory).expanduser()
  name = f'raw2raw-{preset}-n{num_scenes}-s{seed}-{height}x{width}'
  root = directory / name
  if (root / 'dataset.json').is_file():
    return root
  with staged_directory(root) as staging:
    config = synthetic.PRESETS[preset].replace(height=height, width=width)
    synthetic.write_dataset(staging, preset=preset, num=num_scenes,
                            seed=seed, config=config, progress=progress)
  return root


def dataset_root(config) -> pathlib.Path:
  """`config.data.root`, or the simulated dataset (generated on first use)."""
  data = config.data
  if data.root:
    return pathlib.Path(data.root).expanduser()
  s = data.synthetic
  return ensure_synthetic(
      datasets_cache(data.cache_dir), num_scenes=s.num_scenes,
      seed=s.seed, height=s.height, width=s.width, preset=s.preset,
      progress=jax.process_index() == 0)


def camera_names(config, root: str | os.PathLike[str]) -> tuple[str, str]:
  """The (A, B) camera folders: config.data.cameras, dataset.json, or Afifi's."""
  cameras = tuple(config.data.cameras or ())
  if cameras:
    if len(cameras) != 2:
      raise ValueError(f'config.data.cameras must name two camera folders, '
                       f'got {cameras!r}.')
    return cameras
  info = pathlib.Path(root) / 'dataset.json'
  if info.is_file():
    slugs = [c['slug'] for c in json.loads(info.read_text())['cameras']]
    return slugs[0], slugs[1]
  return raw2raw_data.CAMERAS


def _anchor_indices(count: int, num_anchors: int, seed: int) -> list[int]:
  """The anchor subset of size x (Table 2's ablation); 0 = all."""
  if not num_anchors or num_anchors >= count:
    return list(range(count))
  rng = np.random.default_rng([seed, 7])
  return sorted(rng.choice(count, size=num_anchors, replace=False).tolist())


class TrainData(pipeline_lib.ZippedPipelines):
  """The training stream: unpaired patches of both cameras + anchor pairs.

  Batch of step s (this process's share, leading axis = samples):
    'unpaired_a', 'unpaired_b': (U / P, p, p, 4) float32 patches;
    'anchor_a', 'anchor_b': (A / P, p, p, 4) aligned anchor patches
  (U = data.unpaired_batch, A = data.anchor_batch, P processes, p =
  data.patch_size), in [0, 1]. Three `rawjax.data.Pipeline`s with their own
  seeds; `iterate(start_step=k)` resumes all of them exactly at step k.
  """

  def __init__(self, config, *, process_index: int = 0,
               process_count: int = 1):
    _check_config(config)
    data = config.data
    for key in ('unpaired_batch', 'anchor_batch'):
      if data[key] % process_count:
        raise ValueError(f'config.data.{key}={data[key]} does not split over '
                         f'{process_count} processes.')
    self.root = dataset_root(config)
    self.cameras = camera_names(config, self.root)
    unpaired = [raw2raw_data.Raw2RawUnpaired(self.root, camera=c)
                for c in self.cameras]
    anchors = raw2raw_data.Raw2RawPaired(self.root, split='anchor',
                                         cameras=self.cameras)
    self.anchor_keys = [anchors.keys[i] for i in _anchor_indices(
        len(anchors), data.num_anchors, config.seed)]
    common = dict(patch_size=data.patch_size, augment=tuple(data.augment),
                  local_device_count=1, process_index=process_index,
                  process_count=process_count, num_workers=data.num_workers,
                  prefetch=data.prefetch)
    u, a = data.unpaired_batch, data.anchor_batch
    self.pipelines = {
        'unpaired_a': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(unpaired[0], range(len(unpaired[0])), u),
            per_device_batch=u // process_count, fields=('raw',),
            seed=pipeline_lib.stream_seed(config.seed, 0), **common),
        'unpaired_b': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(unpaired[1], range(len(unpaired[1])), u),
            per_device_batch=u // process_count, fields=('raw',),
            seed=pipeline_lib.stream_seed(config.seed, 1), **common),
        'anchor': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(anchors, [anchors.keys.index(k)
                                 for k in self.anchor_keys], a),
            per_device_batch=a // process_count, fields=('raw_a', 'raw_b'),
            seed=pipeline_lib.stream_seed(config.seed, 2), **common),
    }

  def merge(self, parts: Mapping[str, Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    first = lambda x: np.asarray(x)[0]  # noqa: E731  (1 "device", see init)
    return {'unpaired_a': first(parts['unpaired_a']['raw']),
            'unpaired_b': first(parts['unpaired_b']['raw']),
            'anchor_a': first(parts['anchor']['raw_a']),
            'anchor_b': first(parts['anchor']['raw_b'])}


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> TrainData:
  """The method's training stream (`TrainData`); only split 'train'."""
  if split != 'train':
    raise ValueError(f"raw2raw_semi trains on split 'train' (evaluation "
                     f'reads the paired test split itself), got {split!r}.')
  return TrainData(config, process_index=process_index,
                   process_count=process_count)


# --- state and step -------------------------------------------------------------


def init(config, rng: jax.Array) -> dict[str, Any]:
  """The two cameras' U-Nets and their Adam state.

  `config.model_init`: 'independent' (separate random draws) or 'shared'
  (both start from the same draw, so the encoders agree at step 0).

  state = {'step', 'rng', 'params': {'camera_a': ..., 'camera_b': ...},
  'opt_state'}.
  """
  _check_config(config)
  model = _model(config)
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  key_a, key_b, key_state = jax.random.split(rng, 3)
  size = 2**model.levels
  dummy = jnp.zeros((1, size, size, model.in_channels), jnp.float32)
  # Jitted: op-by-op initialisation would compile every layer's ops apart.
  init_params = jax.jit(lambda key: model.init(key, dummy)['params'])
  if config.model_init == 'shared':
    key_b = key_a  # both cameras' networks start from the same weights
  params = {'camera_a': init_params(key_a), 'camera_b': init_params(key_b)}
  opt_state = jax.jit(_optimizer(config).init)(params)
  return state_lib.create(params=params, rng=key_state, opt_state=opt_state)


def _concat_features(*lists):
  return [jnp.concatenate(blocks, axis=0) for blocks in zip(*lists)]


def _objective(model, params, batch, *, weights, reduction):
  """Eq. 3-6 on one device's batch: (total, {term: value}, mapped)."""
  encode = functools.partial(model.apply, method='encode')
  decode = functools.partial(model.apply, method='decode')
  pa = {'params': params['camera_a']}
  pb = {'params': params['camera_b']}
  use_unpaired = weights['reconstruction'] != 0
  use_anchors = weights['anchor'] != 0 or weights['mapping'] != 0
  use_mapping = weights['mapping'] != 0
  parts_a = ([batch['unpaired_a']] if use_unpaired else []) + (
      [batch['anchor_a']] if use_anchors else [])
  parts_b = ([batch['unpaired_b']] if use_unpaired else []) + (
      [batch['anchor_b']] if use_anchors else [])
  # One encoder call per camera over its unpaired and anchor images.
  features_a = encode(pa, jnp.concatenate(parts_a, axis=0))
  features_b = encode(pb, jnp.concatenate(parts_b, axis=0))
  n = batch['unpaired_a'].shape[0] if use_unpaired else 0
  m = batch['unpaired_b'].shape[0] if use_unpaired else 0
  unpaired_a = [f[:n] for f in features_a]
  unpaired_b = [f[:m] for f in features_b]
  anchor_a = [f[n:] for f in features_a]
  anchor_b = [f[m:] for f in features_b]
  # One decoder call per camera: its own unpaired codes (reconstruction) and
  # the other camera's anchor codes (the swap of eq. 5).
  inputs_da = ([unpaired_a] if use_unpaired else []) + (
      [anchor_b] if use_mapping else [])
  inputs_db = ([unpaired_b] if use_unpaired else []) + (
      [anchor_a] if use_mapping else [])
  out_a = decode(pa, _concat_features(*inputs_da)) if inputs_da else None
  out_b = decode(pb, _concat_features(*inputs_db)) if inputs_db else None
  terms, mapped = {}, {}
  if use_unpaired:
    terms['reconstruction'] = losses.reconstruction_loss(
        images=jnp.concatenate([batch['unpaired_a'], batch['unpaired_b']]),
        reconstructions=jnp.concatenate([out_a[:n], out_b[:m]]),
        reduction=reduction)
  if weights['anchor'] != 0:
    terms['anchor'] = losses.anchor_loss(features_a=anchor_a,
                                         features_b=anchor_b,
                                         reduction=reduction)
  if use_mapping:
    mapped = {'b_to_a': out_a[n:], 'a_to_b': out_b[m:]}
    terms['mapping'] = losses.mapping_loss(
        targets_a=batch['anchor_a'], mapped_a=mapped['b_to_a'],
        targets_b=batch['anchor_b'], mapped_b=mapped['a_to_b'],
        reduction=reduction)
  total = losses.semi_supervised_raw2raw_loss(
      reconstruction=terms.get('reconstruction', 0.0),
      anchor=terms.get('anchor', 0.0), mapping=terms.get('mapping', 0.0),
      reconstruction_weight=weights['reconstruction'],
      anchor_weight=weights['anchor'], mapping_weight=weights['mapping'])
  return total, (terms, mapped)


def make_steps(config) -> list:
  """The per-device train step(s), closing over the config's settings.

  `train_step(state, batch, rng) -> (state, metrics)`: batch holds this
  device's 'unpaired_a', 'unpaired_b', 'anchor_a', 'anchor_b' (n, p, p, 4);
  gradients and metrics are averaged over the 'batch' axis (`lax.pmean`), so
  it must run under `jax.pmap` / `shard_map` with that axis name (one device
  is a map over one). Metrics: 'loss' (eq. 6), 'loss_reconstruction',
  'loss_anchor', 'loss_mapping' (the active terms), 'anchor_psnr_a_to_b' /
  '_b_to_a' (network output on the anchor patches, clipped to [0, 1]), and
  gradient / parameter / update norms.
  """
  _check_config(config)
  model = _model(config)
  tx = _optimizer(config)
  weights = _loss_weights(config)
  reduction = config.loss.reduction

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    objective = functools.partial(_objective, model, batch=batch,
                                  weights=weights, reduction=reduction)
    (loss, (terms, mapped)), grads = jax.value_and_grad(
        objective, has_aux=True)(state['params'])
    grads = jax.lax.pmean(grads, AXIS_NAME)
    updates, opt_state = tx.update(grads, state['opt_state'],
                                   state['params'])
    params = optax.apply_updates(state['params'], updates)
    out = {'loss': loss}
    out.update({f'loss_{k}': v for k, v in terms.items()})
    for tag, image in mapped.items():
      target = batch['anchor_b' if tag == 'a_to_b' else 'anchor_a']
      out[f'anchor_psnr_{tag}'] = jnp.mean(metrics.psnr(
          jnp.clip(image, 0.0, 1.0), target))
    out = jax.lax.pmean(out, AXIS_NAME)
    out.update(state_lib.diagnostics(grads=grads, params=state['params'],
                                     updates=updates))
    return dict(state, params=params, opt_state=opt_state), out

  return [train_step]


# --- inference ------------------------------------------------------------------


def network_size(height: int, width: int, *, max_side: int,
                 multiple: int) -> tuple[int, int]:
  """Where the network runs: longer side <= max_side, sides multiples.

  Images larger than `max_side` are scaled down (aspect kept); each side is
  then rounded to the nearest multiple of `multiple` (at least one).
  """
  scale = min(1.0, max_side / max(height, width)) if max_side > 0 else 1.0
  # Halves round up (Python's round() would send 2.5 to 2).
  return tuple(max(multiple, int(s * scale / multiple + 0.5) * multiple)
               for s in (height, width))


@functools.partial(jax.jit, static_argnames=('model',))
def _swap(model, source_params, target_params, images):
  """D_target(E_source(images)): (N, h, w, C) with h, w multiples."""
  features = model.apply({'params': source_params}, images, method='encode')
  return model.apply({'params': target_params}, features, method='decode')


@functools.partial(jax.jit, static_argnames=('size',))
def _resize(image, size):
  return jax.image.resize(image, (*size, image.shape[-1]), method='linear',
                          antialias=True)


@functools.partial(jax.jit, static_argnames=('kernel',))
def apply_postfit(small_input: Any, small_output: Any, image: Any, *,
            kernel: str = 'raw2raw16') -> jax.Array:
  """Deep-WB's post-processing: a polynomial fitted small, applied large.

  Args:
    small_input: (h, w, 4) the (downsampled) image the network saw.
    small_output: (h, w, 4) the network's output for it (unclipped).
    image: (H, W, 4) the full-resolution input.
    kernel: the polynomial kernel (default Afifi's 16-term kernelP; its
      constant term plays the role of sklearn's intercept in Deep-WB).

  Returns:
    (H, W, 4) kernel(image) @ M clipped to [0, 1], M the least-squares fit
    of kernel(small_input) @ M = small_output.
  """
  matrix = baselines.fit_image_mapping(small_input, small_output,
                                       kernel=kernel, channels=4)
  return baselines.apply_mapping(image, matrix, kernel=kernel, clip=True)


def translate(model: models.UNet, source_params: Any, target_params: Any,
              image: Any, *, postfit: bool = True, postfit_size: int = 656,
              kernel: str = 'raw2raw16') -> np.ndarray:
  """Maps one packed raw image to the other camera: D_target(E_source(x)).

  Args:
    model: the U-Net both parameter sets belong to.
    source_params, target_params: the source camera's network (its encoder
      is used) and the target camera's (its decoder).
    image: (h, w, 4) packed raw in [0, 1], any size.
    postfit: Deep-WB's post-processing: run the network at
      `network_size(h, w, max_side=postfit_size)` (bilinear, antialiased
      resize), fit `kernel` by least squares from that input to the network
      output, apply it to the full-resolution image. False: run the network
      at full resolution (reflect-padded to a multiple of 2**levels).
    postfit_size: longest side the network sees with `postfit`.
    kernel: the polynomial (`rawjax.isp.polynomial` name), Afifi's kernelP.

  Returns:
    (h, w, 4) float32 in [0, 1].
  """
  image = jnp.asarray(image, jnp.float32)
  if image.ndim != 3 or image.shape[-1] != model.in_channels:
    raise ValueError(f'translate: expected (h, w, {model.in_channels}) '
                     f'packed raw, got shape {image.shape}.')
  h, w = image.shape[:2]
  multiple = 2**model.levels
  if postfit:
    size = network_size(h, w, max_side=postfit_size, multiple=multiple)
    small = image if size == (h, w) else _resize(image, size)
    output = _swap(model, source_params, target_params, small[None])[0]
    return np.asarray(apply_postfit(small, output, image, kernel=kernel))
  pad_h, pad_w = (-h) % multiple, (-w) % multiple
  padded = jnp.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode='reflect')
  output = _swap(model, source_params, target_params, padded[None])[0]
  return np.asarray(jnp.clip(output[:h, :w], 0.0, 1.0))


def _camera_params(state: Mapping[str, Any]) -> tuple[Any, Any]:
  params = jax.tree.map(jnp.asarray, state['params'])
  return params['camera_a'], params['camera_b']


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Anchor patches mapped A -> B by the decoder swap (no post-fit).

  Returns {'anchor_a', 'a_to_b', 'anchor_b'}: (N, p, p, 3) in the papers'
  raw visualisation (`rawjax.isp.visualize_raw`), N <= 4.
  """
  model = _model(config)
  params_a, params_b = _camera_params(state)
  source = np.asarray(batch['anchor_a'])
  target = np.asarray(batch['anchor_b'])
  source = source.reshape(-1, *source.shape[-3:])[:4]
  target = target.reshape(-1, *target.shape[-3:])[:4]
  mapped = _swap(model, params_a, params_b, jnp.asarray(source))
  show = lambda x: np.asarray(color.visualize_raw(x))  # noqa: E731
  return {'anchor_a': show(source), 'a_to_b': show(mapped),
          'anchor_b': show(target)}


# --- evaluation -----------------------------------------------------------------


def _load_pairs(root: pathlib.Path, cameras: tuple[str, str], split: str,
                keys: Sequence[str] | None = None, limit: int = 0
                ) -> list[dict[str, Any]]:
  """Paired images with each camera's metadata (when the layout has it)."""
  dataset = raw2raw_data.Raw2RawPaired(root, split=split, cameras=cameras)
  chosen = list(dataset.keys) if keys is None else list(keys)
  if limit:
    chosen = chosen[:limit]
  pairs = []
  for key in chosen:
    sample = dataset.load(key)
    pair = {'name': key, 'images': (sample['raw_a'], sample['raw_b']),
            'meta': []}
    for camera in cameras:
      path = root / 'paired' / camera / 'meta' / f'{key}.npz'
      meta = None
      if path.is_file():
        with np.load(path) as f:
          meta = {k: np.asarray(f[k]) for k in
                  ('wb_gains', 'cam_to_srgb', 'chart_boxes') if k in f}
      pair['meta'].append(meta)
    pairs.append(pair)
  if not pairs:
    raise ValueError(f'no {split} pairs in {root} for cameras {cameras}.')
  return pairs


@jax.jit
def _scores_srgb(prediction, target):
  """Afifi's calc_deltaE2000 convention: greens averaged, read as sRGB."""
  lab = lambda x: color.srgb_to_lab(jnp.clip(color.packed_to_rgb(x), 0, 1))  # noqa: E731
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'mae': metrics.mae(prediction, target),
          'delta_e2000': metrics.mean_delta_e2000(lab(prediction),
                                                  lab(target))}


def _scorer(pairs: Sequence[dict[str, Any]], convention: str):
  """score(predictions, target camera index) -> {metric: (N,) numpy}."""
  has_meta = all(m is not None and 'wb_gains' in m and 'cam_to_srgb' in m
                 for p in pairs for m in p['meta'])
  if convention == 'metadata' and not has_meta:
    raise ValueError("config.eval.delta_e='metadata' needs meta/<name>.npz "
                     '(wb_gains, cam_to_srgb) beside every test image; this '
                     "dataset has none: use 'srgb' or 'auto'.")
  use_meta = convention == 'metadata' or (convention == 'auto' and has_meta)

  def score(predictions, target_index):
    out = {k: [] for k in _METRICS}
    for pair, prediction in zip(pairs, predictions):
      target = pair['images'][target_index]
      if use_meta:
        meta = pair['meta'][target_index]
        values = baselines.evaluate(prediction, target,
                                    meta['wb_gains'].astype(np.float32),
                                    meta['cam_to_srgb'].astype(np.float32))
      else:
        values = _scores_srgb(prediction, target)
      for k in _METRICS:
        out[k].append(float(values[k]))
    return {k: np.asarray(v) for k, v in out.items()}

  return score, ('metadata' if use_meta else 'srgb')


_fit_global = jax.jit(baselines.fit_global_mapping,
                      static_argnames=('kernel', 'channels', 'ridge'))
_apply_mapping = jax.jit(baselines.apply_mapping, static_argnames=('kernel',))
_chart_means = jax.jit(baselines.chart_patch_means)


@functools.partial(jax.jit, static_argnames=('beta',))
def _fda(image, style, *, beta):
  if style.shape != image.shape:
    style = jax.image.resize(style, image.shape, method='linear',
                             antialias=True)
  return jnp.clip(baselines.fda(image, style, beta=beta), 0.0, 1.0)


def _calibrations(anchors, source: int, target: int, *, mode: str,
                  kernel: str, channels: int, ridge: float):
  """One mapping per anchor pair: its chart (paper) or its pixels.

  With mode 'chart', anchors without a chart are skipped; if none has one,
  every anchor's pixels are used (reported in the results).
  """
  charted = [a for a in anchors
             if a['meta'][source] is not None and
             len(a['meta'][source].get('chart_boxes', ())) > 0]
  fits, used = [], 'pixels'
  if mode == 'chart' and charted:
    used = 'chart'
    for a in charted:
      boxes = a['meta'][source]['chart_boxes']
      x = _chart_means(a['images'][source], boxes)
      y = _chart_means(a['images'][target], boxes)
      fits.append(_fit_global(x, y, kernel=kernel, channels=channels,
                              ridge=ridge))
  else:
    for a in anchors:
      fits.append(_fit_global(a['images'][source][None],
                              a['images'][target][None], kernel=kernel,
                              channels=channels, ridge=ridge))
  return fits, used


def _summary(per_repeat: Sequence[Mapping[str, np.ndarray]]
             ) -> dict[str, float]:
  """Mean over test images per repeat; mean and std over repeats."""
  row = {}
  for k in _METRICS:
    means = np.array([r[k].mean() for r in per_repeat])
    row[k] = float(means.mean())
    row[f'{k}_std'] = float(means.std()) if len(means) > 1 else None
  row['repeats'] = len(per_repeat)
  return row


def _error_map(prediction, target, gain):
  error = np.abs(np.asarray(prediction) - np.asarray(target)).mean(-1)
  return np.repeat(np.clip(gain * error, 0.0, 1.0)[..., None], 3, axis=-1)


_LABELS = {
    'identity': 'Identity (no mapping)',
    'global_3x3': 'Global calibration (3x3)',
    'global_poly': 'Global calibration (poly)',
    'global_3x3_pooled': 'Global calibration (3x3, all anchor pixels)',
    'fda': 'FDA',
    'ours_network': 'Ours (network output, no post-fit)',
    'ours': 'Ours',
}


def metric_cells(row: Mapping[str, Any], keys: Sequence[str],
                 digits: Mapping[str, int]) -> list[str]:
  """Table cells of one results row: 'mean' or 'mean +- std' per metric."""
  cells = []
  for k in keys:
    text = f'{row[k]:.{digits[k]}f}'
    if row.get(f'{k}_std') is not None:
      text += f' +- {row[f"{k}_std"]:.{digits[k]}f}'
    cells.append(text)
  return cells


def _markdown(results: Mapping[str, Any]) -> str:
  directions = results['directions']
  tags = list(directions)
  head = ['Method'] + [f'{directions[t]["title"]} {m}' for t in tags
                       for m in ('PSNR', 'SSIM', 'MAE', 'DeltaE2000')]
  lines = [f'# Semi-supervised raw-to-raw mapping: {results["dataset"]}',
           '', f'Step {results["step"]}; {results["num_test_pairs"]} test '
           f'pairs; anchors: {results["num_anchors"]}; DeltaE convention: '
           f'{results["delta_e_convention"]}; baselines fitted on '
           f'{results["calibration"]}.', '',
           '| ' + ' | '.join(head) + ' |',
           '|' + '---|' * len(head)]
  digits = {'psnr': 2, 'ssim': 4, 'mae': 4, 'delta_e2000': 2}
  for method in directions[tags[0]]['rows']:
    cells = [_LABELS.get(method, method)]
    for t in tags:
      cells += metric_cells(directions[t]['rows'][method], _METRICS, digits)
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Table 1/2 of the paper on the test split, both directions.

  Writes `workdir/results.json` (every row, with std over anchors where the
  paper repeats a baseline), `workdir/results.md` (the table) and
  `workdir/grid_<a_to_b|b_to_a>.png` (rows: test images; columns: input,
  ours, target, |ours - target| and |global 3x3 - target| times
  `eval.error_gain`, all in `rawjax.isp.visualize_raw` except the error
  maps). Returns flat scalars '<a_to_b|b_to_a>/<method>/<metric>'.
  """
  _check_config(config)
  ev, inf = config.eval, config.inference
  workdir = pathlib.Path(workdir)
  root = dataset_root(config)
  cameras = camera_names(config, root)
  model = _model(config)
  params = _camera_params(state)
  tests = _load_pairs(root, cameras, ev.split, limit=ev.max_test_images)
  anchor_set = raw2raw_data.Raw2RawPaired(root, split='anchor',
                                          cameras=cameras)
  anchor_keys = [anchor_set.keys[i] for i in _anchor_indices(
      len(anchor_set), config.data.num_anchors, config.seed)]
  anchors = _load_pairs(root, cameras, 'anchor', keys=anchor_keys)
  score, convention = _scorer(tests, ev.delta_e)

  results = {'dataset': str(root), 'cameras': list(cameras),
             'step': int(np.asarray(state['step'])),
             'num_test_pairs': len(tests), 'num_anchors': len(anchors),
             'delta_e_convention': convention, 'directions': {}}
  flat = {}
  workdir.mkdir(parents=True, exist_ok=True)
  for tag, s, t in DIRECTIONS:
    inputs = [p['images'][s] for p in tests]
    rows = {'identity': _summary([score(inputs, t)])}
    repeats = {}
    for name, kernel, channels in (
        ('global_3x3', 'linear', 3),
        ('global_poly', ev.poly_kernel, 4 if ev.poly_kernel in (
            'raw2raw16', 'cstpp14', 'cstpp14_code') else 3)):
      fits, used = _calibrations(
          anchors, s, t, mode=ev.calibration, kernel=kernel,
          channels=channels,
          ridge=ev.poly_ridge if name == 'global_poly' else 1e-6)
      results['calibration'] = used
      repeats[name] = [[_apply_mapping(x, m, kernel=kernel) for x in inputs]
                       for m in fits]
      rows[name] = _summary([score(r, t) for r in repeats[name]])
    pooled = _fit_global(np.stack([a['images'][s] for a in anchors]),
                         np.stack([a['images'][t] for a in anchors]),
                         kernel='linear', channels=3, ridge=1e-6)
    pooled_outputs = [_apply_mapping(x, pooled, kernel='linear')
                      for x in inputs]
    rows['global_3x3_pooled'] = _summary([score(pooled_outputs, t)])
    rows['fda'] = _summary([
        score([_fda(x, a['images'][t], beta=ev.fda_beta) for x in inputs], t)
        for a in anchors])
    source_params, target_params = params[s], params[t]
    if ev.report_network_output:
      network = [translate(model, source_params, target_params, x,
                           postfit=False) for x in inputs]
      rows['ours_network'] = _summary([score(network, t)])
    ours = [translate(model, source_params, target_params, x,
                      postfit=inf.postfit, postfit_size=inf.postfit_size,
                      kernel=inf.postfit_kernel) for x in inputs]
    rows['ours'] = _summary([score(ours, t)])
    title = f'{cameras[s]} -> {cameras[t]}'
    results['directions'][tag] = {'title': title, 'rows': rows}
    for method, row in rows.items():
      for k in _METRICS:
        flat[f'{tag}/{method}/{k}'] = row[k]
    grid = []
    for i in range(min(ev.num_grid_images, len(tests))):
      target = tests[i]['images'][t]
      grid.append([np.asarray(color.visualize_raw(im)) for im in
                   (inputs[i], ours[i], target)] +
                  [_error_map(ours[i], target, ev.error_gain),
                   _error_map(pooled_outputs[i], target, ev.error_gain)])
    if grid and jax.process_index() == 0:
      loop_lib.write_image_rows(workdir / f'grid_{tag}.png', grid)
  if jax.process_index() == 0:
    (workdir / 'results.json').write_text(json.dumps(results, indent=1) +
                                          '\n')
    (workdir / 'results.md').write_text(_markdown(results))
  return flat


@method_lib.register_method('raw2raw_semi')
def _method() -> method_lib.Method:
  return method_lib.Method(name='raw2raw_semi', init=init, steps=make_steps,
                           make_data=make_data, evaluate=evaluate,
                           sample_images=sample_images)
