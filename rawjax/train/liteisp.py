"""RAW-to-sRGB with inaccurately aligned supervision (Zhang et al., ICCV 2021).

LiteISPNet (eq. 1) and the GCM (eq. 2) trained jointly as the released code
does (`zrrjoint_model.py`, `train_zrr.sh`):

  1. x_hat = bilinear demosaic of the packed raw (RGGB), GCM: y_tilde =
     C(x_hat, y, tau);
  2. the flow Psi = F(y_tilde, y) (eq. 3) from the GCM output to the DSLR
     image, without gradient, and y_w = W(y, Psi) with the validity mask m
     (eqs. 4, 6; `rawjax.isp.warp.backward_warp`, eps 0.001);
  3. y_hat = LiteISPNet(x); both outputs are multiplied by m;
  4. L = L1(m y_tilde, y_w) + L1(m y_hat, y_w) + VGG(m y_hat, y_w)
     + 0.15 (1 - SSIM(m y_hat, y_w)) (eqs. 5, 7, 11 as coded), plus
     0.01 LSGAN (eqs. 8-10) for LiteISPGAN (`config.gan.enabled`, with the
     PatchGAN discriminator updated first in the same step).

GCM receives gradient only from its L1 term and LiteISPNet only from its
own terms (the flow is a constant), so each network has its own Adam (lr
1e-4, betas 0.9/0.999) halved every 40 epochs (StepLR per epoch), 80 epochs,
batch 16. The aligner is `config.align.method`: 'pyramid' (the weight-free
coarse-to-fine estimator of `rawjax.models.flow`, default), 'pwcnet' (the
reference's PWC-Net; converted weights in `config.align.weights`) or 'none'
(the no-alignment ablation: y_w = y, m = 1).

Data: `config.data.root` in the ZRR layout (`rawjax.data.datasets.zrr`).
Empty, a simulated ZRR-layout dataset is generated once into the cache
(`ensure_synthetic_zrr`): raws of one simulated camera, targets rendered by
*another* camera (colour inconsistency) and displaced by a known smooth
random warp per image (misalignment), with the true aligned target kept in
`<split>/canon_aligned/` for evaluation.

Evaluation (`evaluate`, the paper's Table 1 columns on the 8-bit outputs):
PSNR/SSIM against the original GT, the GT aligned with the raw (warped onto
the GCM output), the GT aligned with the result (warped onto the LiteISPNet
output), and on simulated data against the true aligned target; LPIPS
(AlexNet, v0.1, `rawjax.models.lpips`) too when `config.eval.lpips_weights`
names converted weights. Full-frame inference goes through
`rawjax.models.tiling.tiled_apply` (`process_full_frame`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rawjax import losses, metrics, models
from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import zrr
from rawjax.isp import cfa, demosaic
from rawjax.isp.warp import backward_warp
from rawjax.models import tiling
from rawjax.io.staging import datasets_cache, staged_directory
from rawjax.train import loop as loop_lib
from rawjax.train.config import check_choice
from rawjax.train import method as method_lib
from rawjax.train import state as state_lib

__all__ = [
    'ALIGNERS', 'AXIS_NAME', 'align_target', 'dataset_root', 'demosaic_raw',
    'ensure_synthetic_zrr', 'evaluate', 'init', 'learning_rate_schedule',
    'make_data', 'make_steps', 'process_full_frame', 'sample_images',
    'smooth_warp_flow',
]

AXIS_NAME = 'batch'
ALIGNERS = ('pyramid', 'pwcnet', 'none')
_CONVERT_VGG = ('python -m rawjax.convert vgg19 vgg19-dcbb9e9d.pth '
                'vgg19.npz  (torchvision\'s vgg19 state dict)')
_CONVERT_LPIPS = ('python -m rawjax.convert lpips alexnet-owt-7be5be79.pth '
                  'lpips.npz --lpips-lin=alex.pth')


# --- configuration -----------------------------------------------------------------


def _check_config(config) -> None:
  for section in ('model', 'gcm', 'gan', 'align', 'loss', 'optim', 'data',
                  'eval', 'inference'):
    if section not in config:
      raise ValueError(f'config has no {section!r} section; start from '
                       'configs/liteisp_zrr.py.')
  check_choice(config.align.padding, ('zeros', 'border'), 'align.padding')
  check_choice(config.align.method, ALIGNERS, 'align.method')
  eval_aligner = _eval_aligner(config)
  check_choice(config.eval.aligner, ('', 'pyramid', 'pwcnet'), 'eval.aligner')
  if 'pwcnet' in (config.align.method, eval_aligner) and not (
      config.align.weights):
    raise ValueError("the 'pwcnet' aligner needs converted PWC-Net weights: "
                     'set config.align.weights=PATH (an .npz written by '
                     'rawjax.convert, or the reference ckpt/pwc-net.pth), or '
                     "use config.align.method='pyramid'.")
  batch = config.data.batch_size
  if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
    raise ValueError(f'config.data.batch_size must be an int >= 1, got '
                     f'{batch!r}.')
  for key in ('gcm', 'l1', 'vgg', 'ssim'):
    if config.loss[key] < 0:
      raise ValueError(f'config.loss.{key} must be >= 0, got '
                       f'{config.loss[key]}.')
  if config.loss.vgg > 0 and not config.loss.vgg_weights:
    raise ValueError(
        f'config.loss.vgg={config.loss.vgg} needs VGG-19 weights: set '
        'config.loss.vgg_weights=PATH to the Flax parameters written by '
        f'`{_CONVERT_VGG}`, or switch the term off with config.loss.vgg=0.')
  lpips_weights = _lpips_weights(config)
  if lpips_weights and not pathlib.Path(lpips_weights).expanduser().is_file():
    raise ValueError(
        f'config.eval.lpips_weights={lpips_weights!r} does not exist: give '
        f'the .npz written by `{_CONVERT_LPIPS}` (torchvision\'s alexnet and '
        "the lpips package's weights/v0.1/alex.pth), or '' to skip LPIPS.")


def _lpips_weights(config) -> str:
  """`config.eval.lpips_weights` ('' when unset or in an older config)."""
  return str(config.eval.get('lpips_weights', '') or '')


def _eval_aligner(config) -> str:
  name = config.eval.aligner
  if name:
    return name
  return 'pyramid' if config.align.method == 'none' else config.align.method


def _isp_model(config) -> models.LiteISPNet:
  return models.model_from_config(config.model)


def _gcm_model(config) -> models.GCM:
  return models.model_from_config(config.gcm)


def _discriminator(config, *, axis_name: str | None = AXIS_NAME):
  return models.liteisp.PatchDiscriminator(features=config.gan.features,
                                   num_layers=config.gan.num_layers,
                                   axis_name=axis_name)


def steps_per_epoch(config) -> int:
  """`data.steps_per_epoch`, or len(train split) // batch (drop_last)."""
  if config.data.steps_per_epoch:
    return int(config.data.steps_per_epoch)
  dataset = zrr.ZRRDataset(dataset_root(config), split='train')
  return max(1, len(dataset) // config.data.batch_size)


def learning_rate_schedule(config, *, epoch_steps: int | None = None
                           ) -> optax.Schedule:
  """StepLR per epoch: lr * factor ** floor(epoch / decay_epochs)."""
  o = config.optim
  epoch_steps = epoch_steps or steps_per_epoch(config)
  return optax.exponential_decay(
      init_value=o.learning_rate,
      transition_steps=max(1, o.decay_epochs * epoch_steps),
      decay_rate=o.decay_factor, staircase=True)


def _optimizer(config, epoch_steps: int | None = None
               ) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(learning_rate_schedule(config, epoch_steps=epoch_steps),
                    b1=o.b1, b2=o.b2, eps=o.eps)


# --- simulated ZRR data ------------------------------------------------------------


def smooth_warp_flow(rng: np.random.Generator, height: int, width: int, *,
                     max_shift: float) -> np.ndarray:
  """A random smooth displacement field (height, width, 2), pixels (x, y).

  Per channel: a random translation in [-max_shift/2, max_shift/2] plus a
  sinusoid of random orientation, phase, 0.3-1 cycles per image and
  amplitude in [0.25, 0.5] max_shift: a spatially varying, parallax-like
  misalignment whose magnitude stays below max_shift. Zero mean over the
  distribution, so an unaligned model cannot learn one global shift.
  """
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
  channels = []
  for _ in range(2):
    shift = rng.uniform(-0.5, 0.5) * max_shift
    angle = rng.uniform(0, 2 * np.pi)
    cycles = rng.uniform(0.3, 1.0)
    amplitude = rng.uniform(0.25, 0.5) * max_shift
    phase = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    channels.append(shift + amplitude * np.sin(2 * np.pi * cycles * t + phase))
  return np.stack(channels, axis=-1).astype(np.float32)


def _write_zrr_sample(root: pathlib.Path, folder: str, key: int,
                      scene_seed: int, index: int, *, size: int,
                      margin: int, max_shift: float, preset: str) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
  full = size + 2 * margin
  config = synthetic.PRESETS[preset].replace(height=full, width=full)
  scene = synthetic.generate_scene(scene_seed, index, config=config)
  phone, dslr = (scene.captures[c.slug] for c in synthetic.DEFAULT_CAMERAS[:2])
  half = margin // 2
  packed = phone.packed[half:half + size // 2, half:half + size // 2]
  with pipeline_lib.on_host():
    mosaic = np.asarray(cfa.unpack(packed, pattern='RGGB'))
    flow = smooth_warp_flow(np.random.default_rng([scene_seed, index, 7]),
                            full, full, max_shift=max_shift)
    warped, _ = backward_warp(dslr.srgb, flow, padding='border',
                              apply_mask=False)
    warped = np.asarray(warped)
  counts = np.round(np.clip(mosaic, 0, 1) * (zrr.WHITE_LEVEL -
                                              zrr.BLACK_LEVEL) +
                    zrr.BLACK_LEVEL).astype(np.uint16)
  crop = (slice(margin, margin + size), slice(margin, margin + size))
  write_image(root / folder / 'huawei_raw' / f'{key}.png', counts,
              bit_depth=16)
  target = np.round(np.clip(warped[crop], 0, 1) * 255).astype(np.uint8)
  Image.fromarray(target).save(root / folder / 'canon' / f'{key}.jpg',
                               quality=95)
  write_image(root / folder / 'canon_aligned' / f'{key}.png',
              np.clip(dslr.srgb[crop], 0, 1), bit_depth=8)


def ensure_synthetic_zrr(directory: str | os.PathLike[str], *,
                         num_train: int, num_test: int, seed: int, size: int,
                         max_shift: float, preset: str = 'raw2srgb',
                         progress: bool = True) -> pathlib.Path:
  """A simulated dataset in the ZRR layout under `directory` (made once).

  <root>/{train,test}/huawei_raw/<i>.png: size x size RGGB mosaics of the
  first simulated camera, 10-bit values with ZRR's black 63 / white 1020;
  <root>/{train,test}/canon/<i>.jpg: the *second* camera's sRGB rendering
  of the same scene (JPEG quality 95), displaced by `smooth_warp_flow`
  (|d| < max_shift px, seeded per image); canon_aligned/<i>.png: the same
  rendering without the displacement (the evaluation's true target). The
  scenes are rendered with a margin so the warp never samples outside.
  Written to a temporary folder and renamed, so an interrupted run leaves
  nothing half-made.
  """
  directory = pathlib.Path(directory).expanduser()
  name = (f'zrr-{preset}-n{num_train}+{num_test}-s{seed}-{size}-'
          f'shift{max_shift:g}')
  root = directory / name
  if (root / 'dataset.json').is_file():
    return root
  if size % 16:
    raise ValueError(f'synthetic ZRR size must be a multiple of 16, got '
                     f'{size}.')
  margin = 2 * int(math.ceil(max_shift / 2.0 + 1))
  jobs = [('train', i, i) for i in range(num_train)] + [
      ('test', i, num_train + i) for i in range(num_test)]
  with staged_directory(root) as staging:
    for folder in ('train', 'test'):
      for sub in ('huawei_raw', 'canon', 'canon_aligned'):
        (staging / folder / sub).mkdir(parents=True)
    iterator = jobs
    if progress:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      iterator = tqdm(jobs, desc='synthetic ZRR', unit='scene')
    for folder, key, index in iterator:
      _write_zrr_sample(staging, folder, key, seed, index, size=size,
                        margin=margin, max_shift=max_shift, preset=preset)
    (staging / 'dataset.json').write_text(json.dumps(dict(
        generator='rawjax.train.liteisp.ensure_synthetic_zrr', preset=preset,
        seed=seed, num_train=num_train, num_test=num_test, size=size,
        max_shift=max_shift, margin=margin), indent=1))
  return root


def dataset_root(config) -> pathlib.Path:
  """`config.data.root`, or the simulated ZRR dataset (generated once)."""
  data = config.data
  if data.root:
    return pathlib.Path(data.root).expanduser()
  s = data.synthetic
  return ensure_synthetic_zrr(
      datasets_cache(data.cache_dir), num_train=s.num_train,
      num_test=s.num_test, seed=s.seed, size=s.size, max_shift=s.max_shift,
      preset=s.preset, progress=jax.process_index() == 0)


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> pipeline_lib.Pipeline:
  """ZRR batches: 'raw' (b, h, w, 4), 'rgb' (b, 2h, 2w, 3), 'coord' (b, 2h, 2w, 2).

  Whole 448x448 samples (no cropping, as the reference), flips and
  transposes applied alike to all three (the GCM coordinates move with the
  pixels), a global batch of `data.batch_size` split over processes.
  """
  _check_config(config)
  if split != 'train':
    raise ValueError(f"liteisp trains on split 'train' (evaluation reads "
                     f"the test split itself), got {split!r}.")
  data = config.data
  if data.batch_size % process_count:
    raise ValueError(f'config.data.batch_size={data.batch_size} does not '
                     f'split over {process_count} processes.')
  dataset = zrr.ZRRDataset(dataset_root(config), split='train', coords=True)
  return pipeline_lib.Pipeline(
      dataset, per_device_batch=data.batch_size // process_count,
      patch_size=data.patch_size or None, augment=tuple(data.augment),
      seed=config.seed, fields=('raw', 'rgb', 'coord'), local_device_count=1,
      process_index=process_index, process_count=process_count,
      num_workers=data.num_workers, prefetch=data.prefetch)


# --- weights -------------------------------------------------------------------------


def _load_weights(path: str, network: str) -> Any:
  """Flax params from an .npz of `rawjax.convert.save_params`, or a torch file."""
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  p = pathlib.Path(path).expanduser()
  if not p.is_file():
    raise FileNotFoundError(f'{network} weights not found: {p}')
  if p.suffix == '.npz':
    with np.load(p) as f:
      flax_layout = any('/' in k for k in f.files)
    if flax_layout:
      return convert.load_params(p)
  state_dict = convert.load_state_dict(p)
  if network == 'vgg19':
    return convert.convert_vgg19(state_dict)
  converter = getattr(convert, 'convert_pwcnet', None)
  if converter is None:
    raise ValueError(f'{p}: no PWC-Net converter available; give an .npz of '
                     'Flax parameters.')
  return converter(state_dict)


# --- state and step ----------------------------------------------------------------


def init(config, rng: jax.Array) -> dict[str, Any]:
  """LiteISPNet + GCM (+ discriminator) parameters and their Adam states.

  state = {'step', 'rng', 'params': {'isp', 'gcm'[, 'disc']},
  'opt_state': {'isp', 'gcm'[, 'disc']}[, 'batch_stats': {'disc'}],
  'frozen': {'vgg'[, 'pwc']}} ('frozen' holds the fixed VGG-19 and PWC-Net
  weights the losses and the aligner need; {} when unused).
  """
  _check_config(config)
  rng = jnp.asarray(rng)
  if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  k_isp, k_gcm, k_disc, k_state = jax.random.split(rng, 4)
  s = 8 * 2
  raw = jnp.zeros((1, s, s, 4), jnp.float32)
  rgb = jnp.zeros((1, 2 * s, 2 * s, 3), jnp.float32)
  coord = jnp.zeros((1, 2 * s, 2 * s, 2), jnp.float32)
  isp, gcm = _isp_model(config), _gcm_model(config)
  params = {
      'isp': jax.jit(lambda k: isp.init(k, raw)['params'])(k_isp),
      'gcm': jax.jit(lambda k: gcm.init(k, rgb, rgb, coord)['params'])(k_gcm),
  }
  entries: dict[str, Any] = {}
  if config.gan.enabled:
    disc = _discriminator(config, axis_name=None)
    variables = jax.jit(lambda k: disc.init(k, rgb, train=False))(k_disc)
    params['disc'] = variables['params']
    entries['batch_stats'] = {'disc': variables['batch_stats']}
  epoch_steps = steps_per_epoch(config)
  tx = _optimizer(config, epoch_steps)
  opt_state = {k: jax.jit(tx.init)(v) for k, v in params.items()}
  frozen: dict[str, Any] = {}
  if config.loss.vgg > 0:
    frozen['vgg'] = jax.tree.map(jnp.asarray, _load_weights(
        config.loss.vgg_weights, 'vgg19'))
  if 'pwcnet' in (config.align.method, _eval_aligner(config)):
    frozen['pwc'] = jax.tree.map(jnp.asarray, _load_weights(
        config.align.weights, 'pwcnet'))
  return state_lib.create(params=params, rng=k_state, opt_state=opt_state,
                          frozen=frozen, **entries)


def demosaic_raw(raw: jax.Array) -> jax.Array:
  """x_hat: the RGGB bilinear demosaic of packed raw (..., h, w, 4) -> (..., 2h, 2w, 3).

  The reference demosaics the normalised mosaic with colour-demosaicing's
  bilinear (RGGB); `rawjax.isp.demosaic_bilinear` is that filter.
  """
  return demosaic.demosaic_bilinear(cfa.unpack(raw, pattern='RGGB'),
                                    pattern='RGGB')


def align_target(source: jax.Array, target: jax.Array, *, method: str,
                 pwc_params: Any = None,
                 options: Mapping[str, Any] | None = None,
                 eps: float = 1e-3, padding: str = 'zeros'
                 ) -> tuple[jax.Array, jax.Array]:
  """(y_w, m): the target warped onto `source` and its validity mask.

  method 'pyramid' / 'pwcnet' estimate the flow source -> target without
  gradient (`rawjax.models.flow.estimate_flow`) and warp; 'none' returns
  (target, ones). padding 'zeros' is the reference (eqs. 3, 4, 6): zero
  padding, y_w masked, m = 0 where the flow leaves the target. 'border'
  (ours) clamps the sampling position and returns m = 1 everywhere, so the
  border strip is supervised too (with the target's edge pixels).
  """
  if padding not in ('zeros', 'border'):
    raise ValueError(f"align padding must be 'zeros' or 'border', got "
                     f'{padding!r}.')
  if method == 'none':
    return target, jnp.ones(target.shape[:-1] + (1,), target.dtype)
  from rawjax.models.flow import estimate_flow  # pylint: disable=g-import-not-at-top
  source = jax.lax.stop_gradient(source)
  flow = estimate_flow(source, target, method=method,
                       params=pwc_params if method == 'pwcnet' else None,
                       **dict(options or {}))
  flow = jax.lax.stop_gradient(flow)
  if padding == 'border':
    warped, _ = backward_warp(target, flow, padding='border', eps=eps,
                              apply_mask=False)
    return warped, jnp.ones(target.shape[:-1] + (1,), target.dtype)
  return backward_warp(target, flow, eps=eps)


def _masked_terms(config, out, target, mask, frozen):
  """LiteISPNet's terms on m * out vs y_w: {'l1', 'ssim', 'vgg'}."""
  out = out * mask
  terms = {'l1': losses.masked_l1_loss(prediction=out, target=target)}
  if config.loss.ssim > 0:
    terms['ssim'] = losses.ssim_loss(prediction=out, target=target)
  if config.loss.vgg > 0:
    terms['vgg'] = losses.vgg_perceptual_loss(
        prediction=out, target=target, vgg_params=frozen['vgg'],
        layer=config.loss.vgg_layer)
  return terms


def make_steps(config) -> list:
  """The per-device step: GCM + LiteISPNet (+ D first, for LiteISPGAN).

  `train_step(state, batch, rng) -> (state, metrics)`; batch holds this
  device's 'raw' (n, h, w, 4), 'rgb' (n, 2h, 2w, 3), 'coord'
  (n, 2h, 2w, 2). Gradients, BatchNorm statistics and metrics are averaged
  over the 'batch' axis. Metrics: 'loss' (eq. 11), 'loss_gcm', 'loss_l1',
  'loss_ssim', 'loss_vgg' (active terms), 'loss_adv' / 'loss_disc' (GAN),
  'mask_fraction', 'psnr_gcm' / 'psnr_isp' (masked outputs vs y_w) and the
  gradient / parameter / update norms of both networks.
  """
  _check_config(config)
  isp, gcm = _isp_model(config), _gcm_model(config)
  tx = _optimizer(config)
  align = dict(method=config.align.method,
               options=dict(config.align.options), eps=config.align.mask_eps,
               padding=config.align.padding)
  lw = config.loss
  use_gan = bool(config.gan.enabled)
  disc = _discriminator(config) if use_gan else None

  def train_step(state, batch, rng):
    del rng  # deterministic: no dropout or noise
    params, frozen = state['params'], state['frozen']
    raw, rgb, coord = batch['raw'], batch['rgb'], batch['coord']
    x_hat = demosaic_raw(raw)
    gcm_out, gcm_vjp = jax.vjp(
        lambda p: gcm.apply({'params': p}, x_hat, rgb, coord), params['gcm'])
    target, mask = align_target(gcm_out, rgb, pwc_params=frozen.get('pwc'),
                                **align)
    out, isp_vjp = jax.vjp(lambda p: isp.apply({'params': p}, raw),
                           params['isp'])
    new_params, new_opt, out_metrics = dict(params), dict(state['opt_state']), {}
    new_state = dict(state)

    if use_gan:
      fake = jax.lax.stop_gradient(out * mask)

      def d_loss(p):
        logits, updates = disc.apply(
            {'params': p, 'batch_stats': state['batch_stats']['disc']},
            jnp.concatenate([fake, target]), train=True,
            mutable=['batch_stats'])
        fake_logits, real_logits = jnp.split(logits, 2)
        return losses.lsgan_discriminator_loss(
            real_logits=real_logits, fake_logits=fake_logits), updates
      (loss_d, d_updates), d_grads = jax.value_and_grad(
          d_loss, has_aux=True)(params['disc'])
      d_grads = jax.lax.pmean(d_grads, AXIS_NAME)
      updates, new_opt['disc'] = tx.update(d_grads, state['opt_state']['disc'],
                                           params['disc'])
      new_params['disc'] = optax.apply_updates(params['disc'], updates)
      new_state['batch_stats'] = {'disc': d_updates['batch_stats']}
      out_metrics['loss_disc'] = loss_d

    def isp_objective(y):
      terms = _masked_terms(config, y, target, mask, frozen)
      if use_gan:
        # D in training mode as the reference (its statistics of this
        # batch), with the just-updated weights; its running averages are
        # not touched by the generator pass.
        logits, _ = disc.apply(
            {'params': new_params['disc'],
             'batch_stats': new_state['batch_stats']['disc']},
            y * mask, train=True, mutable=['batch_stats'])
        terms['adv'] = losses.lsgan_generator_loss(fake_logits=logits)
      total = losses.liteisp_total_loss(
          gcm=0.0, l1=terms['l1'], vgg=terms.get('vgg', 0.0),
          ssim=terms.get('ssim', 0.0), adversarial=terms.get('adv', 0.0),
          gcm_weight=0.0, l1_weight=lw.l1, vgg_weight=lw.vgg,
          ssim_weight=lw.ssim,
          adversarial_weight=config.gan.weight if use_gan else 0.0)
      return total, terms

    def gcm_objective(y):
      return losses.masked_l1_loss(prediction=y * mask, target=target)

    (isp_loss, terms), d_out = jax.value_and_grad(
        isp_objective, has_aux=True)(out)
    gcm_loss, d_gcm = jax.value_and_grad(gcm_objective)(gcm_out)
    grads = {'isp': isp_vjp(d_out)[0], 'gcm': gcm_vjp(d_gcm)[0]}
    grads = jax.lax.pmean(grads, AXIS_NAME)
    for name in ('isp', 'gcm'):
      updates, new_opt[name] = tx.update(grads[name],
                                         state['opt_state'][name],
                                         params[name])
      new_params[name] = optax.apply_updates(params[name], updates)
      for key, value in state_lib.diagnostics(
          grads=grads[name], params=params[name], updates=updates).items():
        out_metrics[f'{name}_{key}'] = value
    total = lw.gcm * gcm_loss + isp_loss
    scalars = {'loss': total, 'loss_gcm': gcm_loss,
               'mask_fraction': jnp.mean(mask),
               'psnr_gcm': jnp.mean(metrics.psnr(
                   jnp.clip(gcm_out * mask, 0, 1), target)),
               'psnr_isp': jnp.mean(metrics.psnr(
                   jnp.clip(out * mask, 0, 1), target))}
    scalars.update({f'loss_{k}': v for k, v in terms.items()})
    scalars.update({k: v for k, v in out_metrics.items()
                    if k.startswith('loss_')})
    scalars = jax.lax.pmean(scalars, AXIS_NAME)
    scalars.update({k: v for k, v in out_metrics.items()
                    if not k.startswith('loss_')})
    new_state.update(params=new_params, opt_state=new_opt)
    return new_state, scalars

  return [train_step]


# --- inference ------------------------------------------------------------------------


def process_full_frame(model: models.LiteISPNet, params: Any, raw: Any, *,
                       tile: int | tuple[int, int] = 256, overlap: int = 32,
                       batch_tiles: int = 1, progress: bool = False
                       ) -> np.ndarray:
  """LiteISPNet on a whole frame, tiled: packed (H, W, 4) -> (2H, 2W, 3).

  The coordinate input is the frame-wide [-1, 1] grid (the reference's
  full-resolution visual path), each tile receiving its part of it. Tiles of
  `tile` packed pixels (an int or (th, tw), multiples of 8; clamped to the
  frame, so a frame no larger than the tile runs in one piece) overlap by
  `overlap`; the frame is reflect-padded to a multiple of 8 first. Memory
  stays bounded by one batch of tiles plus the output
  (`rawjax.models.tiling.tiled_apply`). Output linear, not clamped.

  Channel attention pools over the whole input, so a tiled result differs
  slightly from a whole-frame one everywhere (as the reference's
  `forward_chop` would); large tiles keep the difference small.
  """
  raw = np.asarray(raw, np.float32)
  if raw.ndim != 3 or raw.shape[-1] != 4:
    raise ValueError(f'process_full_frame: expected packed raw (H, W, 4), got '
                     f'{raw.shape}.')
  th, tw = (tile, tile) if isinstance(tile, int) else tuple(tile)
  if th % 8 or tw % 8 or overlap % 8 or not 0 <= overlap < min(th, tw):
    raise ValueError(f'process_full_frame: tile and overlap must be multiples '
                     f'of 8 with overlap < tile, got {tile}, {overlap}.')
  h, w = raw.shape[:2]
  ph, pw = (-h) % 8, (-w) % 8
  coord = zrr.coordinate_map(h, w)
  if ph or pw:
    raw = np.pad(raw, ((0, ph), (0, pw), (0, 0)), mode='reflect')
    coord = np.pad(coord, ((0, ph), (0, pw), (0, 0)), mode='reflect')
  apply = _jitted_apply(model)
  fn = lambda r, c: apply(params, r, c)  # noqa: E731
  tile_hw = (min(th, raw.shape[0]), min(tw, raw.shape[1]))
  out = tiling.tiled_apply(fn, [raw, coord], tile=tile_hw,
                           overlap=min(overlap, min(tile_hw) - 8),
                           scale=2, batch_tiles=batch_tiles, multiple=8,
                           progress=progress)
  return out[:2 * h, :2 * w]


@functools.lru_cache(maxsize=8)
def _jitted_apply(model):
  return jax.jit(lambda p, r, c: model.apply({'params': p}, r, c))


# --- evaluation -----------------------------------------------------------------------


def _eval_functions(config):
  """Jitted (forward, align) for evaluation, cached per config values."""
  freeze = lambda d: tuple(sorted(  # noqa: E731
      (k, tuple(v) if isinstance(v, (list, tuple)) else v)
      for k, v in dict(d).items()))
  return _cached_eval_functions(freeze(config.model), freeze(config.gcm),
                                _eval_aligner(config),
                                freeze(config.align.options),
                                float(config.align.mask_eps))


@functools.lru_cache(maxsize=4)
def _cached_eval_functions(model_items, gcm_items, method, option_items, eps):
  isp = models.model_from_config(dict(model_items))
  gcm = models.model_from_config(dict(gcm_items))
  options = dict(option_items)

  @jax.jit
  def forward(params, raw, rgb, coord):
    out = isp.apply({'params': params['isp']}, raw)
    gcm_out = gcm.apply({'params': params['gcm']}, demosaic_raw(raw), rgb,
                        coord)
    return out, gcm_out

  @jax.jit
  def align(source, target, pwc):
    return align_target(source, target, method=method, pwc_params=pwc,
                        options=options, eps=eps)

  return forward, align


@jax.jit
def _scores(prediction, target):
  """The reference's metrics.py on 8-bit images: PSNR, skimage SSIM."""
  return {'psnr': metrics.psnr(prediction, target, data_range=255.0),
          'ssim': metrics.ssim(prediction, target, data_range=255.0,
                               use_sample_covariance=True)}


@jax.jit
def _lpips_scores(lpips_params, prediction, target):
  """LPIPS-alex v0.1 of 8-bit images (as [0, 1], normalize=True), (N,).

  Module-level jit with the weights as an argument: compiled once per image
  size, whatever the config or the weights file.
  """
  return models.lpips.lpips_distance(lpips_params, prediction / 255.0,
                                     target / 255.0, normalize=True)


def _load_lpips(path: str) -> Any:
  """LPIPS params from `rawjax.convert lpips`' .npz, checked by shape."""
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  params = convert.load_params(path)
  template = jax.eval_shape(lambda: models.LPIPS().init(
      jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)),
      jnp.zeros((1, 64, 64, 3))))['params']
  flat = lambda tree: {  # noqa: E731
      '/'.join(str(getattr(k, 'key', k)) for k in kp): tuple(np.shape(v))
      for kp, v in jax.tree_util.tree_leaves_with_path(tree)}
  want, got = flat(template), flat(params)
  if want != got:
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    raise ValueError(
        f'config.eval.lpips_weights={path!r} is not LPIPS-alex parameters '
        f'(missing, misshapen or unexpected: {", ".join(bad)}); write it with '
        f'`{_CONVERT_LPIPS}`.')
  return jax.tree.map(jnp.asarray, params)


def _to8(x):
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0)


_SETTINGS = {
    'original': 'Original GT',
    'align_raw': 'Align GT with raw',
    'align_result': 'Align GT with result',
    'true_aligned': 'True aligned GT (simulated)',
    'true_aligned_interior': 'True aligned GT, interior (simulated)',
}


def evaluate(config, state, *, workdir) -> dict[str, float]:
  """Table 1's columns on the test split: PSNR, SSIM (and LPIPS).

  For each test pair: y_hat = LiteISPNet(x) saved as 8 bits, and
    * 'original': y_hat vs the unaligned GT;
    * 'align_raw': m y_hat vs y_w, the GT warped onto the GCM output
      (the paper's "Align GT with raw", the warp the reference computes in
      `forward()`; not in its metrics.py);
    * 'align_result': m y_hat vs y_w, the GT warped onto y_hat (the
      reference's metrics.py);
    * 'true_aligned' (simulated data only): y_hat vs the GT before the
      simulated misalignment; 'true_aligned_interior' the same without a
      border of `eval.crop_border` pixels (where training with a validity
      mask never supervised the output).
  Masked-out pixels are zero in both images and count in the means, as the
  reference. With `config.eval.lpips_weights` (converted LPIPS-alex v0.1
  weights) every setting also gets 'lpips', on the same 8-bit images (as
  [0, 1], normalize=True; not for images smaller than AlexNet's 31 px, e.g.
  a small interior crop); without it LPIPS is omitted. The aligner is `config.eval.aligner` ('' = the training one, or
  'pyramid' for the 'none' ablation). Writes results.json, results.md and
  grid.png (input demosaic, GCM output, y_hat, GT, true GT if any).
  Returns flat scalars '<setting>/<metric>'.
  """
  _check_config(config)
  workdir = pathlib.Path(workdir)
  root = dataset_root(config)
  dataset = zrr.ZRRDataset(root, split=config.eval.split, coords=True)
  keys = list(dataset.keys)
  if config.eval.max_images:
    keys = keys[:config.eval.max_images]
  forward, align = _eval_functions(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  pwc = state.get('frozen', {}).get('pwc')
  lpips_path = _lpips_weights(config)
  lpips_params = _load_lpips(lpips_path) if lpips_path else None
  lpips_min_size = models.lpips.MIN_SIZE
  folder = 'test' if config.eval.split in ('test', 'val') else 'train'
  scores: dict[str, dict[str, list[float]]] = {}
  grid = []
  for key in keys:
    sample = dataset.load(key)
    raw = jnp.asarray(sample['raw'])[None]
    rgb = jnp.asarray(sample['rgb'])[None]
    coord = jnp.asarray(sample['coord'])[None]
    out, gcm_out = forward(params, raw, rgb, coord)
    out8, gt8 = _to8(out), _to8(rgb)
    pairs = {'original': (out8, gt8)}
    warped, mask = align(gcm_out, rgb, pwc)
    pairs['align_raw'] = (out8 * mask, _to8(warped) * mask)
    warped_r, mask_r = align(jnp.clip(out, 0, 1), rgb, pwc)
    pairs['align_result'] = (out8 * mask_r, _to8(warped_r) * mask_r)
    true_path = root / folder / 'canon_aligned' / f'{key}.png'
    true = None
    if true_path.is_file():
      from rawjax.io import read_image  # pylint: disable=g-import-not-at-top
      true = jnp.asarray(read_image(true_path), jnp.float32)[None]
      pairs['true_aligned'] = (out8, _to8(true))
      b = config.eval.crop_border
      if b:
        pairs['true_aligned_interior'] = (out8[:, b:-b, b:-b],
                                          _to8(true)[:, b:-b, b:-b])
    for setting, (a, b) in pairs.items():
      values = dict(_scores(a, b))
      if lpips_params is not None and min(a.shape[1:3]) >= lpips_min_size:
        values['lpips'] = _lpips_scores(lpips_params, a, b)
      for metric, value in values.items():
        scores.setdefault(setting, {}).setdefault(metric, []).append(
            float(value[0]))
    if len(grid) < config.eval.num_grid_images:
      row = [demosaic_raw(raw)[0] ** (1 / 2.2), gcm_out[0], out[0], rgb[0]]
      if true is not None:
        row.append(true[0])
      grid.append([np.clip(np.asarray(x), 0, 1) for x in row])
  results = {'dataset': str(root), 'split': config.eval.split,
             'step': int(np.asarray(state['step'])), 'num_images': len(keys),
             'train_aligner': config.align.method,
             'eval_aligner': _eval_aligner(config),
             'lpips_weights': lpips_path or None, 'settings': {}}
  flat = {}
  for setting, values in scores.items():
    row = {m: float(np.mean(v)) for m, v in values.items()}
    results['settings'][setting] = row
    for m, v in row.items():
      flat[f'{setting}/{m}'] = v
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
    if lpips_params is not None:
      note = 'LPIPS: AlexNet v0.1 (lower is better).'
      header = ['| GT | PSNR | SSIM | LPIPS |', '|---|---|---|---|']
    else:
      note = ('LPIPS not computed: convert the weights with '
              f'`{_CONVERT_LPIPS}` and set `config.eval.lpips_weights`.')
      header = ['| GT | PSNR | SSIM |', '|---|---|---|']
    lines = [f'# LiteISPNet on {root.name} ({config.eval.split}, '
             f'{len(keys)} images, step {results["step"]})', '',
             f'Trained with aligner `{config.align.method}`; evaluation '
             f'aligner `{results["eval_aligner"]}`. 8-bit outputs. {note}',
             '', *header]
    for setting, row in results['settings'].items():
      cells = (f'| {_SETTINGS[setting]} | {row["psnr"]:.2f} | '
               f'{row["ssim"]:.4f} |')
      if lpips_params is not None:
        cells += (f' {row["lpips"]:.4f} |' if 'lpips' in row else
                  f' – (< {lpips_min_size} px) |')
      lines.append(cells)
    (workdir / 'results.md').write_text('\n'.join(lines) + '\n')
    if grid:
      loop_lib.write_image_rows(workdir / 'grid.png', grid)
  return flat


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """{'demosaic', 'gcm', 'output', 'target'}: (N <= 4, H, W, 3) in [0, 1]."""
  forward, _ = _eval_functions(config)
  params = jax.tree.map(jnp.asarray, state['params'])
  take = lambda k: jnp.asarray(np.asarray(batch[k]).reshape(  # noqa: E731
      -1, *np.shape(batch[k])[-3:])[:4])
  raw, rgb, coord = take('raw'), take('rgb'), take('coord')
  out, gcm_out = forward(params, raw, rgb, coord)
  show = lambda x: np.clip(np.asarray(x), 0.0, 1.0)  # noqa: E731
  return {'demosaic': show(demosaic_raw(raw) ** (1 / 2.2)),
          'gcm': show(gcm_out), 'output': show(out), 'target': show(rgb)}


@method_lib.register_method('liteisp')
def _method() -> method_lib.Method:
  return method_lib.Method(name='liteisp', init=init, steps=make_steps,
                           make_data=make_data, evaluate=evaluate,
                           sample_images=sample_images)
