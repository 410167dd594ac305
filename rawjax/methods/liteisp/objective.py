"""LiteISPNet's objective (Zhang et al., ICCV 2021, RAW-to-sRGB misaligned).

The LiteISPNet/GCM losses as the released code computes them
(`zrrjoint_model.py`, `models/losses.py`). The validity mask m (eq. 6)
multiplies the network outputs before every term, the warped target y_w is
already masked, and each term is a plain mean over *all* elements, masked
zeros included (no division by the mask area). The paper writes eq. 7 with
the mask inside the VGG norm; the code masks the images before VGG, which
is what is done here.

  * eq. 5, L_GCM: `masked_l1_loss` of the masked GCM output;
  * eq. 7, LiteISPNet's reconstruction terms: `masked_terms` (L1, VGG
    (`vgg_perceptual_loss` at x0.5, `half_scale`) and 1 - SSIM
    (`ssim_loss`, the training SSIM `ssim_zero_padded`));
  * eqs. 8-9, LiteISPGAN's LSGAN terms: `rawjax.losses`
    (`lsgan_generator_loss`, `lsgan_discriminator_loss`);
  * eq. 11, the total: `liteisp_total_loss`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import metrics

__all__ = [
    'half_scale', 'liteisp_total_loss', 'masked_l1_loss', 'masked_terms',
    'ssim_loss', 'ssim_zero_padded', 'vgg_perceptual_loss',
]


def masked_l1_loss(*, prediction: ArrayLike, target: ArrayLike,
                   mask: ArrayLike | None = None) -> jax.Array:
  """Eq. 5 / the L1 term of eq. 7: mean |m * prediction - m * target|.

  Args:
    prediction: (N, H, W, C) network output (GCM or LiteISPNet).
    target: (N, H, W, C) warped target y_w (masked or not: it is multiplied
      by the binary mask again, which changes nothing for a masked one).
    mask: (N, H, W, 1) or (N, H, W, C) validity mask in {0, 1}; None = all
      valid.

  Returns:
    float32 scalar, the mean over all N*H*W*C elements (torch's L1Loss).
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  if prediction.shape != target.shape:
    raise ValueError(f'masked_l1_loss: shapes differ, {prediction.shape} and '
                     f'{target.shape}.')
  if mask is not None:
    mask = jnp.asarray(mask, prediction.dtype)
    prediction, target = prediction * mask, target * mask
  return jnp.mean(jnp.abs(prediction - target))


def ssim_zero_padded(x: ArrayLike, y: ArrayLike, *, sigma: float = 1.5,
                     k1: float = 0.01, k2: float = 0.03,
                     data_range: float = 1.0) -> jax.Array:
  """The reference's training SSIM: mean over N, H, W, C of the SSIM map.

  An 11x11 Gaussian window (sigma 1.5) applied per channel with *zero*
  padding of 5 pixels ('same' size, borders included), population moments,
  C1 = (0.01 L)^2, C2 = (0.03 L)^2. Unlike `rawjax.metrics.ssim` (skimage's
  evaluation semantics: valid window, optional sample covariance), which is
  reused here for the window and its fast filter.

  Args:
    x, y: (N, H, W, C) images in [0, data_range].

  Returns:
    float32 scalar mean SSIM.
  """
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f'ssim_zero_padded: need two (N, H, W, C) images of one '
                     f'shape, got {x.shape} and {y.shape}.')
  taps = metrics.gaussian_taps(sigma)
  r = len(taps) // 2
  c = x.shape[-1]
  z = jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1)
  z = jnp.pad(z, ((0, 0), (r, r), (r, r), (0, 0)))
  filt = metrics.filter_valid
  z = filt(filt(z, taps, -2), taps, -3)
  mx, my, mxx, myy, mxy = (z[..., i * c:(i + 1) * c] for i in range(5))
  c1, c2 = (k1 * data_range)**2, (k2 * data_range)**2
  vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
  s = ((2 * mx * my + c1) * (2 * vxy + c2) /
       ((mx * mx + my * my + c1) * (vx + vy + c2)))
  return jnp.mean(s)


def ssim_loss(*, prediction: ArrayLike, target: ArrayLike) -> jax.Array:
  """1 - `ssim_zero_padded(prediction, target)` (weight 0.15 in the total)."""
  return 1.0 - ssim_zero_padded(prediction, target)


def half_scale(x: ArrayLike) -> jax.Array:
  """x0.5 bilinear downsampling (align_corners=False) = 2x2 mean pooling.

  (N, H, W, C) -> (N, H // 2, W // 2, C); torch's `F.interpolate(x,
  scale_factor=0.5, mode='bilinear')` samples exactly between the pixels of
  each 2x2 block, so it is their mean (odd last rows/columns are dropped,
  as torch's floor does).
  """
  x = jnp.asarray(x)
  *lead, h, w, c = x.shape
  x = x[..., :h - h % 2, :w - w % 2, :]
  return x.reshape(*lead, h // 2, 2, w // 2, 2, c).mean(axis=(-4, -2))


def vgg_perceptual_loss(*, prediction: ArrayLike, target: ArrayLike,
                        vgg_params: Any, layer: str = 'relu5_4',
                        downsample: bool = True) -> jax.Array:
  """The VGG term of eq. 7 as the code computes it.

  Both images are downsampled x0.5 (`half_scale`), ImageNet-normalised and
  passed through VGG-19 up to `layer` (relu5_4, the reference's 'relu_16');
  the loss is the mean absolute difference of the features (weight 1).

  Args:
    prediction, target: (N, H, W, 3) in [0, 1] (masked already).
    vgg_params: Flax params of `rawjax.models.vgg.VGG19` (converted from
      torchvision's vgg19 by `python -m rawjax.convert vgg19 ...`).
    layer: the feature layer.
    downsample: the x0.5 resize of the reference.

  Returns:
    float32 scalar.
  """
  from rawjax.models.vgg import VGG19  # pylint: disable=g-import-not-at-top
  x, y = jnp.asarray(prediction), jnp.asarray(target)
  if x.shape != y.shape:
    raise ValueError(f'vgg_perceptual_loss: shapes differ, {x.shape} and '
                     f'{y.shape}.')
  if downsample:
    x, y = half_scale(x), half_scale(y)
  net = VGG19(layer=layer)
  features = net.apply({'params': vgg_params}, jnp.concatenate([x, y]))
  fx, fy = jnp.split(features, 2)
  # The target's features carry no gradient (they are constants to the
  # generator); stopping them saves the backward pass through that half.
  return jnp.mean(jnp.abs(fx - jax.lax.stop_gradient(fy)))


def liteisp_total_loss(*, gcm: ArrayLike, l1: ArrayLike,
                       vgg: ArrayLike = 0.0, ssim: ArrayLike = 0.0,
                       adversarial: ArrayLike = 0.0, gcm_weight: float = 1.0,
                       l1_weight: float = 1.0, vgg_weight: float = 1.0,
                       ssim_weight: float = 0.15,
                       adversarial_weight: float = 0.0) -> jax.Array:
  """Eq. 11 as coded: L_GCM + L_1 + L_VGG + 0.15 (1 - SSIM) [+ 0.01 L_adv].

  `ssim` is the loss 1 - SSIM. A 0 weight drops its term exactly (even a
  non-finite value). LiteISPGAN uses adversarial_weight = 0.01.
  """
  total = jnp.zeros((), jnp.float32)
  for value, weight in ((gcm, gcm_weight), (l1, l1_weight),
                        (vgg, vgg_weight), (ssim, ssim_weight),
                        (adversarial, adversarial_weight)):
    if weight:
      total = total + weight * jnp.asarray(value, jnp.float32)
  return total


def masked_terms(*, output: ArrayLike, target: ArrayLike, mask: ArrayLike,
                 ssim: bool = True, vgg_params: Any = None,
                 vgg_layer: str = 'relu5_4') -> dict[str, jax.Array]:
  """LiteISPNet's terms of eq. 7 on m * y_hat against y_w, unweighted.

  Args:
    output: (N, H, W, 3) LiteISPNet output y_hat (linear, not clamped).
    target: (N, H, W, 3) warped target y_w (masked by the aligner).
    mask: (N, H, W, 1) validity mask m in {0, 1} (eq. 6).
    ssim: compute the SSIM term (its weight is > 0).
    vgg_params: VGG-19 parameters for the perceptual term; None = no term.
    vgg_layer: its feature layer.

  Returns:
    {'l1': `masked_l1_loss`, 'ssim': `ssim_loss` (1 - SSIM), 'vgg':
    `vgg_perceptual_loss`}, float32 scalars, the terms switched off absent;
    `liteisp_total_loss` weights them (eq. 11).
  """
  output = jnp.asarray(output) * mask
  terms = {'l1': masked_l1_loss(prediction=output, target=target)}
  if ssim:
    terms['ssim'] = ssim_loss(prediction=output, target=target)
  if vgg_params is not None:
    terms['vgg'] = vgg_perceptual_loss(prediction=output, target=target,
                                       vgg_params=vgg_params, layer=vgg_layer)
  return terms
