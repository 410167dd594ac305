"""Rendering whole images: the KPN, and the classic pipeline beside it."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import models
from rawjax.isp import cfa, color
from rawjax.isp import pipeline as isp_pipeline
from rawjax.isp.metadata import RawMetadata

__all__ = ['apply_clipped', 'classic_render', 'render', 'show_raw']


@functools.partial(jax.jit, static_argnames=('model',))
def apply_clipped(model: models.KPN, params: Any,
                  images: jax.Array) -> jax.Array:
  """The KPN on packed raw (N, h, w, 4) -> sRGB (N, 2h, 2w, 3) in [0, 1]."""
  return jnp.clip(model.apply({'params': params}, images), 0.0, 1.0)


def render(model: models.KPN, params: Any, raw: Any) -> np.ndarray:
  """One packed raw image (h, w, 4) -> sRGB (2h, 2w, 3) in [0, 1].

  Any size: the input is reflect-padded to a multiple of 2**levels (at
  least the kernel radius + 1) and the output cropped back.
  """
  raw = jnp.asarray(raw, jnp.float32)
  if raw.ndim != 3 or raw.shape[-1] != 4:
    raise ValueError(f'render: expected (h, w, 4) packed raw, got shape '
                     f'{raw.shape}.')
  h, w = raw.shape[:2]
  multiple = 2**model.levels
  pad_h, pad_w = (-h) % multiple, (-w) % multiple
  # Reflection needs fewer pads than pixels.
  mode = 'edge' if pad_h >= h or pad_w >= w else 'reflect'
  padded = jnp.pad(raw, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
  return np.asarray(apply_clipped(model, params, padded[None])[0, :2 * h,
                                                               :2 * w])


@functools.partial(jax.jit, static_argnames=('pattern',))
def _classic(raw, wb_gains, cam_to_srgb, *, pattern):
  metadata = RawMetadata.create(pattern=pattern, black_level=0.0,
                                white_level=1.0, wb_gains=wb_gains,
                                cam_to_srgb=cam_to_srgb)
  return isp_pipeline.process(cfa.unpack(raw, pattern=pattern), metadata)


def classic_render(raw: Any, metadata: RawMetadata) -> np.ndarray:
  """`rawjax.isp.process` on the normalised packed raw: (2h, 2w, 3) sRGB.

  The packed raw is already black-subtracted and in [0, 1], so the mosaic
  is its unpacking with black level 0 and white level 1 (equal to `process`
  on the sensor values with the camera's levels).
  """
  return np.asarray(_classic(jnp.asarray(raw, jnp.float32),
                             metadata.wb_gains, metadata.cam_to_srgb,
                             pattern=metadata.pattern))


def show_raw(raw: np.ndarray) -> np.ndarray:
  """Packed raw (..., h, w, 4) as a (..., 2h, 2w, 3) picture (nearest x2)."""
  vis = np.asarray(color.visualize_raw(raw))
  return np.repeat(np.repeat(vis, 2, axis=-3), 2, axis=-2)
