"""The kernel-prediction ISP's objective: L1 (+ optional SSIM) to the target.

The poster (Xing, Li, Zhang, Chen, SIGGRAPH 2022) gives no loss; ours
follows the KPCN template it builds on (Bako et al. 2017 compared L1, L2,
relative L2 and SSIM and chose L1), with an optional SSIM term:

    L = w_1 mean |f(x) - y| + w_s (1 - SSIM(f(x), y))

f(x) the KPN's sRGB (eqs. 1-2, `rawjax.models.KPN`), SSIM the Gaussian
11 x 11 window of `rawjax.metrics.ssim` averaged over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import metrics

__all__ = ['kpn_loss']


def kpn_loss(*, prediction: ArrayLike, target: ArrayLike,
             l1_weight: float = 1.0, ssim_weight: float = 0.0
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L = l1_weight L1 + ssim_weight (1 - SSIM) (module docstring).

  Args:
    prediction: (N, H, W, 3) network sRGB (not clipped).
    target: (N, H, W, 3) aligned target sRGB in [0, 1].
    l1_weight: weight of the mean absolute error.
    ssim_weight: weight of 1 - SSIM; 0 skips the SSIM (needs H, W >= 11).

  Returns:
    (L, terms): float32 scalar L and {'l1': mean |prediction - target|,
    'ssim': the mean SSIM itself (only with ssim_weight)}.
  """
  prediction, target = jnp.asarray(prediction), jnp.asarray(target)
  terms = {'l1': jnp.mean(jnp.abs(prediction - target))}
  total = l1_weight * terms['l1']
  if ssim_weight:
    terms['ssim'] = jnp.mean(metrics.ssim(prediction, target))
    total = total + ssim_weight * (1.0 - terms['ssim'])
  return total, terms
