"""The SemiISP objective (Yoshimura et al.): eqs. 5, 10-13 (OPF) and 14.

Keyword-only pure loss functions, one per equation of the paper, and the
losses they are applied to: f_ISP's phase-1 loss (`isp_loss`: eq. 5, MSE +
alpha VGG16 perceptual loss, or eq. 14 in the denoising case, Table 5) and
the target model's per-sample loss
(`per_sample_loss`: MSE, MSE + SSIM when denoising, or L1; Table 6), whose
real and pseudo halves eqs. 10-13 combine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import metrics

__all__ = [
    'ISP_LOSSES', 'TARGET_LOSSES', 'VGG_LAYER', 'isp_loss',
    'multiscale_l1_loss', 'online_pseudo_filtering_loss', 'per_sample_loss',
    'perceptual_loss',
]

ISP_LOSSES = ('mse', 'l1_multiscale')
TARGET_LOSSES = ('mse', 'mse_ssim', 'l1')
# Johnson et al.'s feature reconstruction layer, the paper's ref. [28] for
# its perceptual loss; SemiISP does not name the layer (docs/semiisp.md).
VGG_LAYER = 'relu2_2'


def _average_pool(x: jnp.ndarray, k: int) -> jnp.ndarray:
  """k x k average pooling with stride k (PyTorch's AvgPool2d(k)).

  A last partial row/column of windows is dropped (floor mode).
  """
  *lead, h, w, c = x.shape
  x = x[..., :h - h % k, :w - w % k, :]
  return x.reshape(*lead, h // k, k, w // k, k, c).mean(axis=(-4, -2))


def multiscale_l1_loss(*, predictions: ArrayLike, targets: ArrayLike,
                       scales: Sequence[int] = (16, 32, 64),
                       per_sample: bool = False) -> jax.Array:
  """SemiISP eq. 14: L1(X, Y) + sum_{k in scales} L1(A_k X, A_k Y).

  A_k is k x k average pooling with stride k; each L1 is the mean absolute
  difference over pixels and channels. The paper trains f_ISP with it in
  the denoising case (Table 5): the pooled terms compare colours and tones
  at coarse scales, where the noise of the target averages out.

  Scales larger than the image (fewer than one window) are skipped: a patch
  of 48 x 48 gets the 16 and 32 terms only (decided at trace time).

  Args:
    predictions, targets: (N, H, W, C) images.
    scales: pooling sizes k.
    per_sample: return the (N,) per-image losses instead of their mean.

  Returns:
    float32 scalar (or (N,) with `per_sample`).
  """
  x, y = jnp.asarray(predictions), jnp.asarray(targets)
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f'multiscale_l1_loss: need two (N, H, W, C) arrays of '
                     f'one shape, got {x.shape} and {y.shape}.')
  if any(int(k) < 1 for k in scales):
    raise ValueError(f'multiscale_l1_loss: scales must be >= 1, got '
                     f'{tuple(scales)}.')
  per_image = lambda a, b: jnp.mean(jnp.abs(a - b), axis=(1, 2, 3))  # noqa: E731
  total = per_image(x, y)
  for k in scales:
    k = int(k)
    if k <= min(x.shape[1], x.shape[2]):
      total = total + per_image(_average_pool(x, k), _average_pool(y, k))
  return total if per_sample else jnp.mean(total)


def online_pseudo_filtering_loss(
    *, real_losses: ArrayLike, pseudo_losses: ArrayLike, beta: float,
    axis_name: str | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """SemiISP's online pseudo-data filtering (OPF), eqs. 10-13.

    L_r    = 1/N_r sum_n L(F(I_R^n), I_S^n)                          (10)
    L_p    = 1/sum(delta) sum_n delta_n L(F(~I_R^n), ~I_S^n)         (11)
    delta_n = 0 if L(F(~I_R^n), ~I_S^n) > beta L_r else 1            (12)
    L_semi = N_r/(N_r + sum delta) L_r + sum delta/(N_r + sum delta) L_p   (13)

  i.e. L_semi = (sum of real losses + sum of kept pseudo losses) / (N_r +
  number kept). The mask is not differentiated (it is computed from
  `stop_gradient` values), so the gradient flows only through the losses it
  keeps. With no pseudo sample kept, L_semi = L_r and L_p is reported as 0
  (the guard of eq. 11's empty sum).

  Data parallelism: with `axis_name`, each device passes its share of the
  batch (the same number of real and of pseudo samples on every device);
  N_r, L_r and the kept count are reduced over the axis, and the returned
  loss is the device's share scaled so that its `lax.pmean` over the axis
  (and the pmean of its gradients) equals the whole batch's L_semi.

  Args:
    real_losses: (N_r,) per-sample losses on real pairs (N_r >= 1).
    pseudo_losses: (N_p,) per-sample losses on pseudo pairs.
    beta: the threshold factor (Table 6: 1.0 or 1.2).
    axis_name: the mapped axis to reduce over (None: one device).

  Returns:
    (L_semi, aux): aux holds 'real_loss' (L_r), 'pseudo_loss' (L_p),
    'kept' (sum delta over the whole batch) and 'mask' (this device's
    (N_p,) float delta).
  """
  real = jnp.asarray(real_losses, jnp.float32)
  pseudo = jnp.asarray(pseudo_losses, jnp.float32)
  if real.ndim != 1 or pseudo.ndim != 1 or real.shape[0] < 1:
    raise ValueError(f'online_pseudo_filtering_loss: need (N_r,) with N_r >= '
                     f'1 and (N_p,) per-sample losses, got {real.shape} and '
                     f'{pseudo.shape}.')
  if beta <= 0:
    raise ValueError(f'online_pseudo_filtering_loss: beta must be > 0, got '
                     f'{beta}.')
  psum = ((lambda v: jax.lax.psum(v, axis_name)) if axis_name is not None
          else (lambda v: v))
  devices = psum(1.0)
  num_real = psum(jnp.asarray(real.shape[0], jnp.float32))
  real_sum = jnp.sum(real)
  real_mean = psum(jax.lax.stop_gradient(real_sum)) / num_real
  mask = (jax.lax.stop_gradient(pseudo) <= beta * real_mean).astype(
      jnp.float32)
  kept = psum(jnp.sum(mask))
  kept_sum = jnp.sum(mask * pseudo)
  total = devices * (real_sum + kept_sum) / (num_real + kept)
  pseudo_mean = psum(jax.lax.stop_gradient(kept_sum)) / jnp.maximum(kept, 1.0)
  return total, dict(real_loss=real_mean, pseudo_loss=pseudo_mean, kept=kept,
                     mask=mask)


def perceptual_loss(*, predictions: ArrayLike, targets: ArrayLike,
                    vgg_params: Any, layer: str = VGG_LAYER) -> jax.Array:
  """L_vgg of eq. 5: the perceptual loss of Johnson et al. with VGG16.

    L_vgg = mean over (N, h, w, c) of (phi(X) - phi(Y))^2

  phi is VGG16's conv trunk up to ReLU `layer` on ImageNet-normalised
  inputs (`rawjax.models.vgg.VGG16`); the mean squared feature difference
  is the paper's ref. [28] "feature reconstruction loss" (squared Euclidean
  distance normalised by the feature size). The targets' features carry no
  gradient.

  Args:
    predictions, targets: (N, H, W, 3) in [0, 1].
    vgg_params: Flax params of `VGG16(layer)` (`semiisp.perceptual.load_vgg16`).
    layer: the feature layer.

  Returns:
    float32 scalar, the batch mean.
  """
  from rawjax.models.vgg import VGG16  # pylint: disable=g-import-not-at-top
  x, y = jnp.asarray(predictions), jnp.asarray(targets)
  if x.shape != y.shape or x.ndim != 4:
    raise ValueError(f'perceptual_loss: need two (N, H, W, 3) arrays of one '
                     f'shape, got {x.shape} and {y.shape}.')
  features = VGG16(layer=layer).apply({'params': vgg_params},
                                      jnp.concatenate([x, y]))
  fx, fy = jnp.split(features, 2)
  return jnp.mean(jnp.square(fx - jax.lax.stop_gradient(fy)))


def isp_loss(*, predictions: ArrayLike, targets: ArrayLike, kind: str,
             scales: Sequence[int] = (16, 32, 64), vgg_weight: float = 0.0,
             vgg_params: Any = None, vgg_layer: str = VGG_LAYER) -> jax.Array:
  """f_ISP's phase-1 loss (Table 5): eq. 5, or eq. 14 ('l1_multiscale').

    'mse':            L_isp = L_mse + alpha L_vgg           (eq. 5)
    'l1_multiscale':  eq. 14 (+ alpha L_vgg if alpha > 0)

  alpha = `vgg_weight` (Table 5: 0 below 100 labelled pairs, 0.1 above);
  alpha = 0 drops the VGG term exactly and needs no weights.

  Args:
    predictions, targets: (N, H, W, 3) renderings and their targets.
    kind: one of `ISP_LOSSES` (`config.isp.loss`).
    scales: eq. 14's pooling sizes (`config.isp.loss_scales`).
    vgg_weight: alpha (`config.isp.vgg_weight`).
    vgg_params: VGG16 params, needed when alpha > 0.
    vgg_layer: the VGG16 feature layer (`config.isp.vgg_layer`).

  Returns:
    float32 scalar, the batch mean.
  """
  if kind not in ISP_LOSSES:
    raise ValueError(f'isp_loss: kind must be one of {ISP_LOSSES}, got '
                     f'{kind!r}.')
  if vgg_weight < 0:
    raise ValueError(f'isp_loss: vgg_weight must be >= 0, got {vgg_weight}.')
  if kind == 'l1_multiscale':
    loss = multiscale_l1_loss(predictions=predictions, targets=targets,
                              scales=scales)
  else:
    loss = jnp.mean(jnp.square(predictions - targets))
  if vgg_weight:
    if vgg_params is None:
      raise ValueError('isp_loss: vgg_weight > 0 needs vgg_params (VGG16 '
                       'weights, config.isp.vgg_weights).')
    loss = loss + vgg_weight * perceptual_loss(
        predictions=predictions, targets=targets, vgg_params=vgg_params,
        layer=vgg_layer)
  return loss


def per_sample_loss(*, predictions: ArrayLike, targets: ArrayLike, kind: str,
                    ssim_weight: float = 1.0) -> jax.Array:
  """The target model's loss L per image (Table 6), the input of eqs. 10-13.

    'mse':      mean (X - Y)^2
    'mse_ssim': mean (X - Y)^2 + ssim_weight (1 - SSIM(clip(X, 0, 1), Y))
                (the denoising rows)
    'l1':       mean |X - Y|

  Args:
    predictions, targets: (N, H, W, 3) outputs in [0, 1] (outputs
      unclipped) and targets.
    kind: one of `TARGET_LOSSES` (`config.semi.loss`,
      `config.supervised.loss`).
    ssim_weight: the SSIM term's weight.

  Returns:
    (N,) float32.
  """
  if kind not in TARGET_LOSSES:
    raise ValueError(f'per_sample_loss: kind must be one of {TARGET_LOSSES}, '
                     f'got {kind!r}.')
  error = predictions - targets
  if kind == 'l1':
    return jnp.mean(jnp.abs(error), axis=(1, 2, 3))
  loss = jnp.mean(jnp.square(error), axis=(1, 2, 3))
  if kind == 'mse_ssim':
    loss = loss + ssim_weight * (1.0 - metrics.ssim(
        jnp.clip(predictions, 0.0, 1.0), targets))
  return loss
