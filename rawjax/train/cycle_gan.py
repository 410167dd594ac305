"""Unsupervised raw-to-raw mapping: CSTPP generators in a CycleGAN.

Xie et al., "Generalizing ISP Model by Unsupervised Raw-to-raw Mapping"
(ACM MM 2024), as the official code trains it (spec section 1.4):

  * two generators G_AB, G_BA (`rawjax.models.CSTPPGenerator`) sharing the
    backbone (`config.model.sharing`: 'code' = BatchNorm, LayerNorm and the
    head per direction, the official code; 'paper' = only BatchNorm);
  * two discriminators D_A, D_B (`config.model.discriminator`: 'official'
    one score per image, or 'patchgan' CycleGAN's 70 x 70 PatchGAN);
  * generator loss (eqs. 8-11), LSGAN:
      L_G = 10 (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
          +  5 (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)
          + (D_B(G_AB(a)) - 1)^2 + (D_A(G_BA(b)) - 1)^2
    (L1 = mean over all elements, squares = mean over scores);
  * discriminator loss (eq. 12) x 0.5 per discriminator, on real images and
    on a history pool of 50 generated images (CycleGAN's ImagePool);
  * Adam(0.5, 0.999), lr G 1e-5, D 2e-5, gradient clipping at global norm 2
    per network, batch 4, no schedule.

Steps (`Method.steps`, in this order each iteration): `generator_step`
updates both generators, pushes this step's fakes (gathered from all
devices) through the history pools and leaves the pools' answers in
`state['pool_out']`; `discriminator_step` updates D_A and D_B on real
images and on its device's share of those answers. So the discriminators see
the fakes of the generator step of the same iteration, before the generator
update, exactly as the official loop (which uses fake.detach() after the G
step). The generator forwards run one call per image set in the official
order (identity, translation, cycle), each in train mode with its own batch
statistics and running-statistics update, as PyTorch does.

State: {'step', 'rng', 'params': {'generator': {'shared', 'a_to_b',
'b_to_a'}, 'discriminator': {'a', 'b'}}, 'batch_stats': {'a_to_b',
'b_to_a'}, 'opt_g', 'opt_d', 'pool': {'a', 'b'}: {'images' (50, p, p, C),
'count'}, 'pool_out': {'a', 'b'}: (global batch, p, p, C)}. Everything is
replicated across devices (the pool update uses the step key, identical on
all devices, and all-gathered fakes), so a checkpoint holds all of it.
BatchNorm: synchronous over the 'batch' axis by default
(`model.sync_batch_norm`; the statistics of the global batch of 4, as the
official single-GPU run); the running statistics are pmean'd either way.

Choices (docs/cstpp.md): A and B images are drawn independently (two seeded
streams; the official loader couples file i of A with file i of B for ever);
one Adam over the union of generator parameters (each shared array once; the
official optimiser lists shared tensors twice and steps them twice), with
the official per-generator clipping order emulated (`optim.clip`:
'per_network' clips G_AB's gradients, then G_BA's with the already clipped
shared part; 'union' clips all generator gradients together); the 8-bit
quantisation side effect of the official loader is off
(`data.quantize_8bit`).

Evaluation writes Table 1 (PSNR, SSIM, MAE on paired test data) and Table 2
(MAE, also on the colour charts, and the histogram KL of eq. 14) for both
directions beside the identity and the global 3x3 calibration baselines.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import metrics
from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.isp import color
from rawjax.models import cstpp
from rawjax.train import loop as loop_lib
from rawjax.train.config import check_choice
from rawjax.train import method as method_lib
from rawjax.train import raw2raw_semi
from rawjax.train import state as state_lib

__all__ = [
    'AXIS_NAME', 'DIRECTIONS', 'TrainData', 'discriminator_loss',
    'discriminator_model', 'evaluate', 'evaluate_directions',
    'generator_model', 'init', 'lsgan_generator_loss', 'make_data',
    'make_steps', 'model_view', 'pool_init', 'pool_query', 'sample_images',
    'translate',
]

AXIS_NAME = 'batch'
# (tag, source camera index, target camera index).
DIRECTIONS = (('a_to_b', 0, 1), ('b_to_a', 1, 0))
_METRICS = ('psnr', 'ssim', 'mae', 'kl', 'chart_mae')
# The official G step's generator calls: (direction 0 = A->B / 1 = B->A,
# input 0 real_a / 1 real_b / 2 fake_b / 3 fake_a); outputs same_b, same_a,
# fake_b, fake_a, rec_a, rec_b.
_CALLS = ((0, 1), (1, 0), (0, 0), (1, 1), (1, 2), (0, 3))


# --- configuration ---------------------------------------------------------------


def _check_config(config) -> None:
  for section in ('model', 'data', 'optim', 'loss', 'eval'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/raw2raw_cstpp.py.')
  m = config.model
  check_choice(m.sharing, cstpp.SHARING_MODES, 'model.sharing')
  check_choice(m.discriminator, ('official', 'patchgan'), 'model.discriminator')
  check_choice(m.transform, cstpp.TRANSFORMS, 'model.transform')
  check_choice(config.optim.clip, ('per_network', 'union'), 'optim.clip')
  data = config.data
  multiple = 32 * m.downsample
  if data.patch_size % multiple or data.patch_size < 32:
    raise ValueError(f'config.data.patch_size={data.patch_size} must be a '
                     f'multiple of 32 * config.model.downsample = {multiple} '
                     '(and >= 32 for the discriminator).')
  if data.batch_size < 1 or data.pool_size < 0:
    raise ValueError('config.data.batch_size must be >= 1 and '
                     'config.data.pool_size >= 0.')


def generator_model(config, *, train_axis: str | None = None,
                    downsample: int | None = None) -> cstpp.CSTPPGenerator:
  """The CSTPP generator of `config.model` (both directions share it)."""
  m = config.model
  return cstpp.CSTPPGenerator(
      in_channels=m.in_channels, kernel=m.kernel,
      downsample=m.downsample if downsample is None else downsample,
      base_channels=m.base_channels, channel_ratio=m.channel_ratio,
      stem_channels=m.stem_channels, embed_dim=m.embed_dim, depth=m.depth,
      num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, qkv_bias=m.qkv_bias,
      bn_axis_name=train_axis, transform=m.transform)


def discriminator_model(config):
  m = config.model
  cls = (cstpp.GlobalDiscriminator if m.discriminator == 'official' else
         cstpp.PatchDiscriminator)
  return cls(in_channels=m.in_channels, features=m.discriminator_features)


def _adam(learning_rate, config):
  o = config.optim
  return optax.adam(learning_rate, b1=o.b1, b2=o.b2, eps=o.eps)


# --- losses ----------------------------------------------------------------------


def lsgan_generator_loss(*, fake_scores: jax.Array) -> jax.Array:
  """Eq. 10 per discriminator: mean((D(fake) - 1)^2)."""
  return jnp.mean(jnp.square(fake_scores - 1.0))


def discriminator_loss(*, real_scores: jax.Array,
                       fake_scores: jax.Array) -> jax.Array:
  """Eq. 12 per discriminator, x 0.5: 0.5 (mean((D(real) - 1)^2) +
  mean(D(fake)^2))."""
  return 0.5 * (jnp.mean(jnp.square(real_scores - 1.0)) +
                jnp.mean(jnp.square(fake_scores)))


def _l1(x, y):
  return jnp.mean(jnp.abs(x - y))


# --- history pool ----------------------------------------------------------------


def pool_init(size: int, image_shape: Sequence[int]) -> dict[str, jax.Array]:
  """An empty history pool of `size` images of `image_shape` (h, w, C)."""
  return {'images': jnp.zeros((size, *image_shape), jnp.float32),
          'count': jnp.zeros((), jnp.int32)}


def pool_query(pool: Mapping[str, jax.Array], images: jax.Array,
               rng: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
  """CycleGAN's ImagePool.query, pure: (new pool, images for D).

  Per image in order: while the pool is not full, store it and return it;
  afterwards, with probability 1/2 return a random stored image and store
  the new one in its place, else return the new image. A pool of size 0
  returns the images.

  Args:
    pool: {'images': (S, h, w, C), 'count': int32 scalar}.
    images: (N, h, w, C) new generated images.
    rng: PRNG key.
  """
  size = pool['images'].shape[0]
  if size == 0:
    return dict(pool), images
  stored, count = pool['images'], pool['count']
  outputs = []
  for i, key in enumerate(jax.random.split(rng, images.shape[0])):
    image = images[i]
    key_coin, key_index = jax.random.split(key)
    filling = count < size
    swap = jnp.logical_and(~filling, jax.random.uniform(key_coin) > 0.5)
    index = jnp.where(filling, jnp.minimum(count, size - 1),
                      jax.random.randint(key_index, (), 0, size))
    old = stored[index]
    outputs.append(jnp.where(swap, old, image))
    write = jnp.logical_or(filling, swap)
    stored = stored.at[index].set(jnp.where(write, image, old))
    count = jnp.where(filling, count + 1, count)
  return {'images': stored, 'count': count}, jnp.stack(outputs)


# --- state -----------------------------------------------------------------------


def _raw_key(rng):
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  return rng


def init(config, rng: jax.Array) -> dict[str, Any]:
  """Generators (shared backbone), discriminators, optimisers, pools.

  G_AB and G_BA are initialised independently; the shared arrays are G_AB's
  (the official code builds G_BA, then replaces its Conv/Linear layers by
  G_AB's).
  """
  _check_config(config)
  g, d = generator_model(config), discriminator_model(config)
  rng = _raw_key(rng)
  keys = jax.random.split(rng, 5)
  p = config.data.patch_size
  c = config.model.in_channels
  dummy = jnp.zeros((1, p, p, c), jnp.float32)

  @jax.jit
  def build(keys):
    # vmapped over the two draws: one traced init per network type.
    v = jax.vmap(lambda k: g.init(k, dummy, train=False))(keys[:2])
    v_ab, v_ba = (jax.tree.map(lambda t, i=i: t[i], v) for i in range(2))
    dv = jax.vmap(lambda k: d.init(k, dummy)['params'])(keys[2:4])
    params = {
        'generator': cstpp.split_params(v_ab['params'], v_ba['params'],
                                        sharing=config.model.sharing),
        'discriminator': {k: jax.tree.map(lambda t, i=i: t[i], dv)
                          for i, k in enumerate(('a', 'b'))}}
    stats = {'a_to_b': v_ab['batch_stats'], 'b_to_a': v_ba['batch_stats']}
    return params, stats

  params, stats = build(keys)
  o = config.optim
  opt_g = jax.jit(_adam(o.generator_lr, config).init)(params['generator'])
  opt_d = jax.jit(_adam(o.discriminator_lr, config).init)(
      params['discriminator'])
  shape = (p, p, c)
  pool = {k: pool_init(config.data.pool_size, shape) for k in ('a', 'b')}
  pool_out = {k: jnp.zeros((config.data.batch_size, *shape), jnp.float32)
              for k in ('a', 'b')}
  return state_lib.create(params=params, rng=keys[4], batch_stats=stats,
                          opt_g=opt_g, opt_d=opt_d, pool=pool,
                          pool_out=pool_out)


# --- clipping --------------------------------------------------------------------


def _clip(tree, max_norm):
  norm = optax.tree.norm(tree)
  scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))  # torch's clip_grad_norm_
  return jax.tree.map(lambda x: x * scale, tree), norm


def clip_generator_grads(grads, *, max_norm: float, mode: str):
  """Per network (official order) or over the union; returns (grads, norm).

  'per_network': clip (shared + a_to_b) to `max_norm` (torch's
  clip_grad_norm_(G_AB)), then (clipped shared + b_to_a) (G_BA), as the
  official trainer with its shared tensors. 'union': one global norm.
  """
  if mode == 'union':
    return _clip(grads, max_norm)
  ab, norm = _clip({'shared': grads['shared'], 'own': grads['a_to_b']},
                   max_norm)
  ba, _ = _clip({'shared': ab['shared'], 'own': grads['b_to_a']}, max_norm)
  return {'shared': ba['shared'], 'a_to_b': ab['own'],
          'b_to_a': ba['own']}, norm


# --- steps -----------------------------------------------------------------------


def _quantize(x, enabled):
  # The official loader's ToPILImage/ToTensor round trip (floor to 8 bits).
  return jnp.floor(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0 if enabled else x


def model_view(config, packed: Any) -> jax.Array:
  """Packed raw as the generator sees it: (R, Gr, Gb, B), or (R, G, B) with
  greens averaged for the 3-channel variant (model.in_channels = 3)."""
  x = jnp.asarray(packed, jnp.float32)
  return color.packed_to_rgb(x) if config.model.in_channels == 3 else x


def make_steps(config) -> list:
  """[generator_step, discriminator_step], per device over axis 'batch'.

  Batch (this device's share): {'a': (n, p, p, C), 'b': (n, p, p, C)}
  unpaired images of the two cameras. Metrics: 'loss' (L_G or the summed
  discriminator losses), the loss terms, D scores, gradient norms.
  """
  _check_config(config)
  sync = config.model.sync_batch_norm
  g = generator_model(config, train_axis=AXIS_NAME if sync else None)
  d = discriminator_model(config)
  o, w = config.optim, config.loss
  tx_g = _adam(o.generator_lr, config)
  tx_d = _adam(o.discriminator_lr, config)
  quantize = config.data.quantize_8bit

  def generator_calls(split, stats, real_a, real_b):
    """The six generator calls of the official G step, in its order.

    Each call is separate, in train mode, with its own batch statistics and
    running-statistics update, as PyTorch. (A `lax.scan` over the calls
    compiled no faster here and ran 3-6x slower on CPU, so they are
    unrolled.)
    """
    outputs = []
    for direction, source in _CALLS:
      tag = cstpp.DIRECTIONS[direction]
      x = (real_a, real_b, *outputs[2:4])[source]
      y, updates = g.apply({'params': cstpp.merge_params(split, tag),
                            'batch_stats': stats[tag]}, x, train=True,
                           mutable=['batch_stats'])
      stats = dict(stats, **{tag: updates['batch_stats']})
      outputs.append(y)
    return outputs, stats

  def discriminate(d_params, images):
    """D_A on images[0], D_B on images[1] (one vmapped call)."""
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), d_params['a'],
                           d_params['b'])
    return jax.vmap(lambda p, x: d.apply({'params': p}, x))(stacked, images)

  def generator_objective(g_params, d_params, stats, real_a, real_b):
    outputs, stats = generator_calls(g_params, stats, real_a, real_b)
    same_b, same_a, fake_b, fake_a, rec_a, rec_b = outputs
    scores = discriminate(d_params, jnp.stack([fake_a, fake_b]))
    terms = {
        'identity': _l1(same_a, real_a) + _l1(same_b, real_b),
        'gan': (lsgan_generator_loss(fake_scores=scores[1]) +
                lsgan_generator_loss(fake_scores=scores[0])),
        'cycle': _l1(rec_a, real_a) + _l1(rec_b, real_b),
    }
    total = (w.cycle * terms['cycle'] + w.identity * terms['identity'] +
             w.gan * terms['gan'])
    return total, (terms, stats, {'a': fake_a, 'b': fake_b})

  def generator_step(state, batch, rng):
    real_a = model_view(config, _quantize(batch['a'], quantize))
    real_b = model_view(config, _quantize(batch['b'], quantize))
    params = state['params']
    (loss, (terms, stats, fakes)), grads = jax.value_and_grad(
        generator_objective, has_aux=True)(
            params['generator'], params['discriminator'],
            state['batch_stats'], real_a, real_b)
    grads = jax.lax.pmean(grads, AXIS_NAME)
    stats = jax.lax.pmean(stats, AXIS_NAME)
    grads, grad_norm = clip_generator_grads(grads, max_norm=o.clip_norm,
                                            mode=o.clip)
    updates, opt_g = tx_g.update(grads, state['opt_g'], params['generator'])
    new_g = optax.apply_updates(params['generator'], updates)
    pool, pool_out = {}, {}
    for i, k in enumerate(('a', 'b')):
      gathered = jax.lax.all_gather(jax.lax.stop_gradient(fakes[k]),
                                    AXIS_NAME, tiled=True)
      pool[k], pool_out[k] = pool_query(state['pool'][k], gathered,
                                        jax.random.fold_in(rng, i))
    out = {'loss': loss, **{f'loss_{k}': v for k, v in terms.items()}}
    out = jax.lax.pmean(out, AXIS_NAME)
    out['grad_norm'] = grad_norm
    out['update_norm'] = optax.tree.norm(updates)
    new = dict(state, params=dict(params, generator=new_g), batch_stats=stats,
               opt_g=opt_g, pool=pool, pool_out=pool_out)
    return new, out

  def discriminator_objective(d_params, real, fake):
    # Real and pooled fake images in one call per discriminator (instance
    # norm is per image, so this equals separate calls).
    n = real['a'].shape[0]
    scores = discriminate(d_params, jnp.stack(
        [jnp.concatenate([real[k], fake[k]]) for k in ('a', 'b')]))
    losses, report = {}, {}
    for i, k in enumerate(('a', 'b')):
      real_scores, fake_scores = scores[i, :n], scores[i, n:]
      losses[k] = discriminator_loss(real_scores=real_scores,
                                     fake_scores=fake_scores)
      report[f'd_{k}_real'] = jnp.mean(real_scores)
      report[f'd_{k}_fake'] = jnp.mean(fake_scores)
    return losses['a'] + losses['b'], (losses, report)

  def discriminator_step(state, batch, rng):
    del rng
    real = {k: model_view(config, _quantize(batch[k], quantize))
            for k in ('a', 'b')}
    n = real['a'].shape[0]
    start = jax.lax.axis_index(AXIS_NAME) * n
    fake = {k: jax.lax.dynamic_slice_in_dim(state['pool_out'][k], start, n)
            for k in ('a', 'b')}
    params = state['params']
    (loss, (losses, scores)), grads = jax.value_and_grad(
        discriminator_objective, has_aux=True)(params['discriminator'], real,
                                               fake)
    grads = jax.lax.pmean(grads, AXIS_NAME)
    norms = {}
    for k in ('a', 'b'):
      grads[k], norms[f'grad_norm_{k}'] = _clip(grads[k], o.clip_norm)
    updates, opt_d = tx_d.update(grads, state['opt_d'],
                                 params['discriminator'])
    new_d = optax.apply_updates(params['discriminator'], updates)
    out = {'loss': loss, 'loss_d_a': losses['a'], 'loss_d_b': losses['b'],
           **scores}
    out = jax.lax.pmean(out, AXIS_NAME)
    out.update(norms)
    return dict(state, params=dict(params, discriminator=new_d),
                opt_d=opt_d), out

  return [generator_step, discriminator_step]


# --- data ------------------------------------------------------------------------


class TrainData(pipeline_lib.ZippedPipelines):
  """Unpaired patches of both cameras, drawn independently.

  Batch of step s: {'a': (N, p, p, C), 'b': (N, p, p, C)} float32 in
  [0, 1], N = data.batch_size / process_count. Two seeded
  `rawjax.data.Pipeline` streams (crops, dihedral augmentation from
  data.augment), so A and B images are re-paired at random every epoch
  (the official loader keeps file i of A with file i of B).
  `iterate(start_step=k)` resumes both exactly.
  """

  def __init__(self, config, *, process_index: int = 0,
               process_count: int = 1):
    _check_config(config)
    data = config.data
    if data.batch_size % process_count:
      raise ValueError(f'config.data.batch_size={data.batch_size} does not '
                       f'split over {process_count} processes.')
    self.root = raw2raw_semi.dataset_root(config)
    self.cameras = raw2raw_semi.camera_names(config, self.root)
    n = data.batch_size
    self.pipelines = {}
    for i, (key, camera) in enumerate(zip(('a', 'b'), self.cameras)):
      dataset = raw2raw_data.Raw2RawUnpaired(self.root, camera=camera)
      self.pipelines[key] = pipeline_lib.Pipeline(
          pipeline_lib.Resampled(dataset, range(len(dataset)), n),
          per_device_batch=n // process_count, fields=('raw',),
          patch_size=data.patch_size, augment=tuple(data.augment),
          seed=pipeline_lib.stream_seed(config.seed, 10 + i),
          local_device_count=1, process_index=process_index,
          process_count=process_count, num_workers=data.num_workers,
          prefetch=data.prefetch)

  def merge(self, parts):
    return {k: np.asarray(v['raw'])[0] for k, v in parts.items()}


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> TrainData:
  if split != 'train':
    raise ValueError(f"cycle_gan trains on split 'train' (evaluation reads "
                     f'the paired test split itself), got {split!r}.')
  return TrainData(config, process_index=process_index,
                   process_count=process_count)


# --- inference -------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=('model',))
def _generate(model, params, stats, images):
  return model.apply({'params': params, 'batch_stats': stats}, images,
                     train=False)


def direction_variables(state: Mapping[str, Any],
                        direction: str) -> tuple[Any, Any]:
  """(params, batch_stats) of one direction's generator from a state."""
  split = jax.tree.map(jnp.asarray, state['params']['generator'])
  stats = jax.tree.map(jnp.asarray, state['batch_stats'][direction])
  return cstpp.merge_params(split, direction), stats


def translate(model: cstpp.CSTPPGenerator, params: Any, stats: Any,
              image: Any, *, clip: bool = True) -> np.ndarray:
  """One (h, w, C) or a batch (N, h, w, C) through a generator (eval mode).

  Any size (the generator pads to multiples of 32 M and crops). Returns
  numpy float32, clipped to [0, 1] unless `clip=False`.
  """
  image = jnp.asarray(image, jnp.float32)
  single = image.ndim == 3
  out = _generate(model, params, stats, image[None] if single else image)
  out = out[0] if single else out
  return np.asarray(jnp.clip(out, 0.0, 1.0) if clip else out)


# --- evaluation ------------------------------------------------------------------


@jax.jit
def _image_scores(prediction, target):
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'mae': metrics.mae(prediction, target),
          'kl': metrics.histogram_kl(prediction, target)}


def _score(predictions, pairs, target_index) -> dict[str, np.ndarray]:
  """Per-image scores; 'chart_mae' is NaN where the image has no chart."""
  out = {k: [] for k in _METRICS}
  for prediction, pair in zip(predictions, pairs):
    target = pair['images'][target_index]
    values = _image_scores(jnp.asarray(prediction), jnp.asarray(target))
    for k, v in values.items():
      out[k].append(float(v))
    meta = pair['meta'][target_index]
    boxes = None if meta is None else meta.get('chart_boxes')
    if boxes is not None and len(boxes):
      means = raw2raw_semi._chart_means  # pylint: disable=protected-access
      out['chart_mae'].append(float(jnp.mean(jnp.abs(
          means(prediction, boxes) - means(target, boxes)))))
    else:
      out['chart_mae'].append(float('nan'))
  return {k: np.asarray(v) for k, v in out.items()}


def _summary(repeats: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
  row = {}
  for k in _METRICS:
    means = np.array([np.nanmean(r[k]) if np.isfinite(r[k]).any() else np.nan
                      for r in repeats])
    row[k] = float(np.mean(means))
    row[f'{k}_std'] = float(np.std(means)) if len(means) > 1 else None
  row['repeats'] = len(repeats)
  return row


def evaluate_directions(config, state, pairs, *, downsample: int | None = None
                        ) -> dict[str, dict[str, Any]]:
  """CSTPP's scores on paired data for both directions: {tag: summary}.

  `downsample` overrides config.model.downsample (Table 4).
  """
  model = generator_model(config, downsample=downsample)
  rows = {}
  for tag, s, t in DIRECTIONS:
    params, stats = direction_variables(state, tag)
    outputs = [translate(model, params, stats,
                         _quantize(jnp.asarray(p['images'][s]),
                                   config.data.quantize_8bit))
               for p in pairs]
    rows[tag] = _summary([_score(outputs, pairs, t)])
  return rows


_LABELS = {'identity': 'Identity (no mapping)',
           'global_3x3': 'Global calibration (3x3, per anchor chart)',
           'global_3x3_pooled': 'Global calibration (3x3, all anchor pixels)',
           'ours': 'CSTPP (ours)'}


def _markdown(results: Mapping[str, Any]) -> str:
  dirs = results['directions']
  head = ['Method'] + [f'{dirs[t]["title"]} {m}' for t in dirs
                       for m in ('PSNR', 'SSIM', 'MAE', 'KL', 'chart MAE')]
  lines = [f'# Unsupervised raw-to-raw (CSTPP): {results["dataset"]}', '',
           f'Step {results["step"]}; {results["num_test_pairs"]} test pairs; '
           f'M = {results["downsample"]}; baselines fitted on '
           f'{results["calibration"]} of {results["num_anchors"]} anchor '
           'pairs.', '', '| ' + ' | '.join(head) + ' |',
           '|' + '---|' * len(head)]
  digits = {'psnr': 2, 'ssim': 4, 'mae': 4, 'kl': 4, 'chart_mae': 4}
  first = next(iter(dirs))
  for method in dirs[first]['rows']:
    cells = [_LABELS.get(method, method)]
    for t in dirs:
      cells += raw2raw_semi.metric_cells(dirs[t]['rows'][method], _METRICS,
                                         digits)
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def _viewed(config, pairs):
  """Pairs with images in the generator's channel view (see model_view)."""
  if config.model.in_channels == 4:
    return pairs
  return [dict(p, images=tuple(np.asarray(model_view(config, x))
                               for x in p['images'])) for p in pairs]


def load_test_pairs(config) -> tuple[pathlib.Path, tuple[str, str], list,
                                     list]:
  """(root, cameras, test pairs, anchor pairs) with metadata."""
  root = raw2raw_semi.dataset_root(config)
  cameras = raw2raw_semi.camera_names(config, root)
  load = raw2raw_semi._load_pairs  # pylint: disable=protected-access
  tests = load(root, cameras, config.eval.split,
               limit=config.eval.max_test_images)
  anchors = load(root, cameras, 'anchor')
  return root, cameras, tests, anchors


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Tables 1 and 2 on the paired test split, both directions.

  Rows: identity, the global 3x3 calibration fitted on one anchor chart at
  a time (mean +- std over anchors, the paper's baseline) and on all anchor
  pixels, and CSTPP (G_AB for A -> B, G_BA for B -> A, eval-mode BatchNorm,
  output clipped to [0, 1]). Columns: PSNR, SSIM, MAE (whole image), KL
  (eq. 14, `rawjax.metrics.histogram_kl`), chart MAE (mean absolute
  difference of the colour-chart patch means, Table 2's MAE; NaN-skipped
  where a test image has no chart). Writes results.json, results.md and
  grid_<dir>.png; returns '<dir>/<method>/<metric>' scalars.
  """
  _check_config(config)
  workdir = pathlib.Path(workdir)
  root, cameras, tests, anchors = load_test_pairs(config)
  workdir.mkdir(parents=True, exist_ok=True)
  viewed = _viewed(config, tests)
  ours = evaluate_directions(config, state, viewed)
  results = {'dataset': str(root), 'cameras': list(cameras),
             'step': int(np.asarray(state['step'])),
             'num_test_pairs': len(tests), 'num_anchors': len(anchors),
             'downsample': config.model.downsample, 'directions': {}}
  model = generator_model(config)
  flat = {}
  for tag, s, t in DIRECTIONS:
    inputs = [p['images'][s] for p in tests]
    view = lambda xs: [model_view(config, x) for x in xs]  # noqa: E731
    rows = {'identity': _summary([_score(view(inputs), viewed, t)])}
    fits, used = raw2raw_semi._calibrations(  # pylint: disable=protected-access
        anchors, s, t, mode='chart', kernel='linear', channels=3,
        ridge=1e-6)
    results['calibration'] = 'charts' if used == 'chart' else 'pixels'
    apply = raw2raw_semi._apply_mapping  # pylint: disable=protected-access
    rows['global_3x3'] = _summary([
        _score(view([apply(x, m, kernel='linear') for x in inputs]), viewed,
               t)
        for m in fits])
    pooled = raw2raw_semi._fit_global(  # pylint: disable=protected-access
        np.stack([a['images'][s] for a in anchors]),
        np.stack([a['images'][t] for a in anchors]), kernel='linear',
        channels=3, ridge=1e-6)
    pooled_out = [apply(x, pooled, kernel='linear') for x in inputs]
    rows['global_3x3_pooled'] = _summary([_score(view(pooled_out), viewed,
                                                 t)])
    rows['ours'] = ours[tag]
    results['directions'][tag] = {'title': f'{cameras[s]} -> {cameras[t]}',
                                  'rows': rows}
    for method, row in rows.items():
      for k in _METRICS:
        flat[f'{tag}/{method}/{k}'] = row[k]
    if (jax.process_index() == 0 and config.eval.num_grid_images and
        config.model.in_channels == 4):
      params, stats = direction_variables(state, tag)
      grid = []
      for i in range(min(config.eval.num_grid_images, len(tests))):
        x, target = inputs[i], tests[i]['images'][t]
        y = translate(model, params, stats, x)
        error = lambda p: np.repeat(np.clip(  # noqa: E731
            config.eval.error_gain * np.abs(np.asarray(p) - target).mean(-1),
            0, 1)[..., None], 3, -1)
        grid.append([np.asarray(color.visualize_raw(im)) for im in
                     (x, y, target)] + [error(y), error(pooled_out[i])])
      loop_lib.write_image_rows(workdir / f'grid_{tag}.png', grid)
  if jax.process_index() == 0:
    (workdir / 'results.json').write_text(json.dumps(results, indent=1) +
                                          '\n')
    (workdir / 'results.md').write_text(_markdown(results))
  return flat


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """A -> B translations of the batch's A images (raw visualisation)."""
  model = generator_model(config)
  params, stats = direction_variables(state, 'a_to_b')
  a = np.asarray(batch['a']).reshape(-1, *np.shape(batch['a'])[-3:])[:4]
  b = np.asarray(batch['b']).reshape(-1, *np.shape(batch['b'])[-3:])[:4]
  mapped = translate(model, params, stats, model_view(config, a))
  if config.model.in_channels == 3:
    mapped = mapped[..., (0, 1, 1, 2)]  # packed layout for the display
  show = lambda x: np.asarray(color.visualize_raw(x))  # noqa: E731
  return {'a': show(a), 'a_to_b': show(mapped), 'b': show(b)}


@method_lib.register_method('cycle_gan')
def _method() -> method_lib.Method:
  return method_lib.Method(name='cycle_gan', init=init, steps=make_steps,
                           make_data=make_data, evaluate=evaluate,
                           sample_images=sample_images)
