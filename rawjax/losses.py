"""Training losses: keyword-only pure functions, one per paper equation.

Semi-supervised raw-to-raw mapping (Afifi & Abuolaim, BMVC 2021), with two
encoder-decoders (E_A, D_A) and (E_B, D_B):

  * `reconstruction_loss`, eq. 3: L_r = 1/N sum_n ||I_n - D(E(I_n))||_F^2 on
    the unpaired images of each camera;
  * `anchor_loss`, eq. 4: L_a = 1/N sum_e sum_n ||X^e_A,n - X^e_B,n||_F^2
    between the outputs of *every* encoder block e for the two captures of
    an anchor pair;
  * `mapping_loss`, eq. 5: L_m = 1/(2N) sum_n ||I_A,n - D_A(E_B(I_B,n))||_F^2
    + ||I_B,n - D_B(E_A(I_A,n))||_F^2 on the anchor pairs (decoder swap);
  * `semi_supervised_raw2raw_loss`, eq. 6: L = L_r + L_a + L_m, with weights
    (0 switches a term off: the ablation rows of Table 1).

Norm and normalisation. The paper writes squared Frobenius norms of whole
images (and feature maps) averaged over the mini-batch: the squared error is
*summed* over pixels and channels of a sample, then averaged over samples.
That is `reduction='sum'` (the default, the paper's equations as written).
Its consequence: the terms' relative weights depend on the patch size and on
the feature-map sizes (a 64x64x24 first block counts 64 times more elements
than an 8x8x192 one). `reduction='mean'` divides each norm by its number of
elements (per-element mean squared error; for eq. 4 each block's mean, summed
over blocks), which makes the weights independent of the patch size. Both are
mean-over-batch, so under data parallelism the per-device loss averaged with
`lax.pmean` equals the loss of the whole batch (equal shares per device).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    'REDUCTIONS', 'anchor_loss', 'mapping_loss', 'reconstruction_loss',
    'semi_supervised_raw2raw_loss', 'squared_frobenius',
]

REDUCTIONS = ('sum', 'mean')


def squared_frobenius(x: ArrayLike, y: ArrayLike, *,
                      reduction: str = 'sum') -> jax.Array:
  """Batch mean of the per-sample squared Frobenius norm ||x_n - y_n||_F^2.

  Args:
    x, y: (N, ...) arrays of the same shape (N samples).
    reduction: 'sum' (sum over each sample's elements) or 'mean' (their mean).

  Returns:
    float32 scalar: 1/N sum_n ||x_n - y_n||^2 ('sum') or its per-element
    mean ('mean').
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.shape != y.shape:
    raise ValueError(f'squared_frobenius: shapes differ, {x.shape} and '
                     f'{y.shape}.')
  if x.ndim < 1 or x.shape[0] == 0:
    raise ValueError(f'squared_frobenius: need (N, ...) with N >= 1, got '
                     f'shape {x.shape}.')
  if reduction not in REDUCTIONS:
    raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                     f'{reduction!r}.')
  per_sample = jnp.sum(jnp.square(x - y).reshape(x.shape[0], -1), axis=1)
  if reduction == 'mean':
    per_sample = per_sample / max(1, x[0].size)
  return jnp.mean(per_sample)


def reconstruction_loss(*, images: ArrayLike, reconstructions: ArrayLike,
                        reduction: str = 'sum') -> jax.Array:
  """Eq. 3: autoencoding error on unpaired images.

  Args:
    images: (N, H, W, C) inputs I_n (either camera, or both concatenated).
    reconstructions: (N, H, W, C) D(E(I_n)) by the same camera's network.
    reduction: see the module docstring ('sum' = the paper's equation).

  Returns:
    float32 scalar L_r.
  """
  return squared_frobenius(images, reconstructions, reduction=reduction)


def anchor_loss(*, features_a: Sequence[ArrayLike],
                features_b: Sequence[ArrayLike],
                reduction: str = 'sum') -> jax.Array:
  """Eq. 4: latent distance between the cameras over all encoder blocks.

  Args:
    features_a: E outputs of E_A's blocks for the anchor images of camera A,
      each (N, h_e, w_e, c_e).
    features_b: the same blocks of E_B for the paired images of camera B.
    reduction: 'sum' (the paper) or 'mean' (each block's per-element mean).

  Returns:
    float32 scalar L_a = sum_e 1/N sum_n ||X^e_A,n - X^e_B,n||^2.
  """
  features_a, features_b = list(features_a), list(features_b)
  if not features_a or len(features_a) != len(features_b):
    raise ValueError(f'anchor_loss: need the same non-zero number of encoder '
                     f'blocks for both cameras, got {len(features_a)} and '
                     f'{len(features_b)}.')
  return sum(squared_frobenius(a, b, reduction=reduction)
             for a, b in zip(features_a, features_b))


def mapping_loss(*, targets_a: ArrayLike, mapped_a: ArrayLike,
                 targets_b: ArrayLike, mapped_b: ArrayLike,
                 reduction: str = 'sum') -> jax.Array:
  """Eq. 5: the decoder-swap error on the anchor pairs.

  Args:
    targets_a: (N, H, W, C) anchor images of camera A.
    mapped_a: (N, H, W, C) D_A(E_B(I_B)), B's images mapped to A.
    targets_b: (N, H, W, C) anchor images of camera B.
    mapped_b: (N, H, W, C) D_B(E_A(I_A)).
    reduction: see the module docstring.

  Returns:
    float32 scalar L_m = 1/(2N) sum_n (||I_A,n - Î_A,n||^2 +
    ||I_B,n - Î_B,n||^2).
  """
  return 0.5 * (squared_frobenius(targets_a, mapped_a, reduction=reduction) +
                squared_frobenius(targets_b, mapped_b, reduction=reduction))


def semi_supervised_raw2raw_loss(*, reconstruction: ArrayLike,
                                 anchor: ArrayLike, mapping: ArrayLike,
                                 reconstruction_weight: float = 1.0,
                                 anchor_weight: float = 1.0,
                                 mapping_weight: float = 1.0) -> jax.Array:
  """Eq. 6: L = L_r + L_a + L_m (paper weights 1); a 0 weight drops a term.

  A dropped term contributes exactly 0 (even if it is not finite), which is
  how the ablations of Table 1 train.
  """
  total = jnp.zeros((), jnp.float32)
  for value, weight in ((reconstruction, reconstruction_weight),
                        (anchor, anchor_weight), (mapping, mapping_weight)):
    if weight:
      total = total + weight * jnp.asarray(value, jnp.float32)
  return total


# --- SemiISP (Yoshimura et al.): eq. 14 and the online filtering, eqs. 10-13 --

__all__ += ['multiscale_l1_loss', 'online_pseudo_filtering_loss']


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
    delta_n = 0 if L(F(~I_R^n), ~I_S^n) > beta L_r else 1            (11)
    L_p    = 1/sum(delta) sum_n delta_n L(F(~I_R^n), ~I_S^n)         (12)
    L_semi = N_r/(N_r + sum delta) L_r + sum delta/(N_r + sum delta) L_p   (13)

  i.e. L_semi = (sum of real losses + sum of kept pseudo losses) / (N_r +
  number kept). The mask is not differentiated (it is computed from
  `stop_gradient` values), so the gradient flows only through the losses it
  keeps. With no pseudo sample kept, L_semi = L_r and L_p is reported as 0
  (the guard of eq. 12's empty sum).

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


# --- RAW-to-sRGB with misaligned supervision (Zhang et al., ICCV 2021) -------
#
# The LiteISPNet/GCM losses as the released code computes them
# (`zrrjoint_model.py`, `models/losses.py`). The validity mask m (eq. 6)
# multiplies the network outputs before every term, the warped target y_w is
# already masked, and each term is a plain mean over *all* elements, masked
# zeros included (no division by the mask area). The paper writes eq. 7 with
# the mask inside the VGG norm; the code masks the images before VGG, which
# is what is done here.

from typing import Any  # noqa: E402

from rawjax import metrics as _metrics  # noqa: E402


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
  taps = _metrics._gaussian_taps(sigma)  # pylint: disable=protected-access
  r = len(taps) // 2
  c = x.shape[-1]
  z = jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1)
  z = jnp.pad(z, ((0, 0), (r, r), (r, r), (0, 0)))
  filt = _metrics._filter_valid  # pylint: disable=protected-access
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


def lsgan_generator_loss(*, fake_logits: ArrayLike) -> jax.Array:
  """LSGAN generator term (eq. 8 as coded): mean (D(G(x)) - 1)^2.

  The paper writes 1/2 E[(D - 1)^2]; the code's `GANLoss('lsgan')` is
  torch's MSELoss against 1 without the 1/2, weighted 0.01 in the total.
  """
  return jnp.mean(jnp.square(jnp.asarray(fake_logits) - 1.0))


def lsgan_discriminator_loss(*, real_logits: ArrayLike,
                             fake_logits: ArrayLike) -> jax.Array:
  """Eq. 9: 1/2 (mean (D(y) - 1)^2 + mean D(G(x))^2)."""
  return 0.5 * (jnp.mean(jnp.square(jnp.asarray(real_logits) - 1.0)) +
                jnp.mean(jnp.square(jnp.asarray(fake_logits))))


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


__all__ += [
    'half_scale', 'liteisp_total_loss', 'lsgan_discriminator_loss',
    'lsgan_generator_loss', 'masked_l1_loss', 'ssim_loss', 'ssim_zero_padded',
    'vgg_perceptual_loss',
]
