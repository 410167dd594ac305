"""Aligning the DSLR target with the raw: eqs. 3, 4 and 6 (and x_hat).

The GCM output y_tilde has the raw's geometry and the target's colours, so
the flow Psi = F(y_tilde, y) (eq. 3) from it to the DSLR image y is what
aligns y with the raw: y_w = W(y, Psi) (eq. 4), valid where the flow stays
inside y (the mask m of eq. 6). The flow carries no gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from rawjax.isp import cfa, demosaic
from rawjax.isp.warp import backward_warp

__all__ = ['align_target', 'demosaic_raw']


def demosaic_raw(raw: jax.Array) -> jax.Array:
  """x_hat: RGGB bilinear demosaic, packed (..., h, w, 4) -> (..., 2h, 2w, 3).

  The GCM's input. The reference demosaics the normalised mosaic with
  colour-demosaicing's bilinear (RGGB); `rawjax.isp.demosaic_bilinear` is
  that filter.
  """
  return demosaic.demosaic_bilinear(cfa.unpack(raw, pattern='RGGB'),
                                    pattern='RGGB')


def align_target(source: jax.Array, target: jax.Array, *, method: str,
                 pwc_params: Any = None,
                 options: Mapping[str, Any] | None = None,
                 eps: float = 1e-3, padding: str = 'zeros',
                 reference_scaling: bool = True
                 ) -> tuple[jax.Array, jax.Array]:
  """(y_w, m): the target warped onto `source` and its validity mask.

  Args:
    source: (N, H, W, 3) the image whose geometry the target takes (the GCM
      output in training, eq. 3).
    target: (N, H, W, 3) the DSLR image y in [0, 1].
    method: 'pyramid' / 'pwcnet' estimate the flow source -> target
      without gradient (`rawjax.models.flow.estimate_flow`) and warp;
      'none' returns (target, ones) (the no-alignment ablation).
    pwc_params: PWC-Net parameters for 'pwcnet'.
    options: keyword options of the flow estimator.
    eps: the mask threshold of eq. 6.
    padding: 'zeros' is the reference (eqs. 4, 6): zero padding, y_w
      masked, m = 0 where the flow leaves the target. 'border' (ours)
      clamps the sampling position and returns m = 1 everywhere, so the
      border strip is supervised too (with the target's edge pixels).
    reference_scaling: sample at (x + u W/(W-1), y + v H/(H-1)), as the
      reference's `backwarp` does (its flow normalisation quirk,
      `rawjax.isp.warp`); with padding 'zeros' this is the reference's warp
      and mask exactly. False samples at (x + u, y + v), the displacement
      the flow estimator measured. The same scaling is used for both
      paddings, so 'border' departs from the reference in its padding only.

  Returns:
    y_w (N, H, W, 3) and m (N, H, W, 1) in {0, 1}.
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
                              apply_mask=False,
                              reference_scaling=reference_scaling)
    return warped, jnp.ones(target.shape[:-1] + (1,), target.dtype)
  return backward_warp(target, flow, eps=eps,
                       reference_scaling=reference_scaling)
