"""A classic, differentiable camera pipeline from mosaic to sRGB.

    mosaic --pack--> levels --> [gain map] --> white balance --> clip
           --> demosaic --> camera RGB -> linear sRGB (3x3) --> clip
           --> sRGB OETF

It follows LibRaw's `dcraw_process` with highlight clipping and no
auto-brightness, so `process` on a camera file agrees with
`rawpy.postprocess(use_camera_wb=True, demosaic_algorithm=LINEAR,
gamma=(2.4, 12.92), no_auto_bright=True, user_flip=0)`; LibRaw normalises the
white-balance gains to a minimum of 1 (so no channel clips below white), and
so do we.

The optional gain map (`RawMetadata.gain_map`, from the DNG GainMap opcodes
of OpcodeList2) multiplies the normalised raw, where the DNG specification
applies OpcodeList2: after linearisation and black/white mapping. The DNG SDK
clips at 1 right after the gain; here the clip after white balance does it,
which gives the same values because the white-balance gains are >= 1.
LibRaw does not apply DNG opcodes, so with a gain map `process` no longer
matches `rawpy.postprocess`.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import cfa, color, demosaic as demosaic_lib, levels
from rawjax.isp.metadata import RawMetadata

Demosaic = Literal['bilinear', 'malvar']


def raw_to_linear_camera(mosaic: ArrayLike, metadata: RawMetadata, *,
                         demosaic: Demosaic = 'bilinear',
                         apply_gain_map: bool = True) -> jax.Array:
  """Mosaic in sensor units -> white-balanced, demosaicked camera RGB.

  Args:
    mosaic: (..., H, W) sensor values (any numeric dtype).
    metadata: the image's `RawMetadata` (leading dims matching the mosaic's).
    demosaic: 'bilinear' or 'malvar'.
    apply_gain_map: multiply the normalised raw by `metadata.gain_map`
      (lens/colour shading correction) when there is one.

  Returns:
    (..., H, W, 3) float32 in [0, 1] (bilinear) or about [0, 1] (Malvar
    overshoots at edges).
  """
  fn = 'raw_to_linear_camera'
  mosaic = _checks.as_float(mosaic, name='mosaic', fn=fn)
  _checks.check_min_rank(mosaic, 2, name='mosaic', fn=fn, layout='(..., H, W)')
  packed = cfa.pack(mosaic, pattern=metadata.pattern)
  packed = levels.normalize(packed, black_level=metadata.black_level,
                            white_level=metadata.white_level, clip='lower')
  if apply_gain_map and metadata.gain_map is not None:
    gain_map = jnp.asarray(metadata.gain_map)
    if gain_map.shape[-3:] != packed.shape[-3:]:
      raise ValueError(
          f'{fn}: metadata.gain_map has shape {tuple(gain_map.shape)} but the '
          f'packed mosaic is {tuple(packed.shape)}; the gain map must be '
          '(..., H/2, W/2, 4) for the same H x W mosaic.')
    packed = packed * gain_map
  gains = metadata.wb_gains / jnp.min(metadata.wb_gains, axis=-1,
                                      keepdims=True)
  packed = jnp.minimum(color.white_balance(packed, gains), 1.0)
  flat = cfa.unpack(packed, pattern=metadata.pattern)
  if demosaic == 'bilinear':
    return demosaic_lib.demosaic_bilinear(flat, pattern=metadata.pattern)
  if demosaic == 'malvar':
    return demosaic_lib.demosaic_malvar(flat, pattern=metadata.pattern)
  raise ValueError(f"{fn}: demosaic must be 'bilinear' or 'malvar', got "
                   f'{demosaic!r}.')


def process(mosaic: ArrayLike, metadata: RawMetadata, *,
            demosaic: Demosaic = 'bilinear',
            apply_gain_map: bool = True) -> jax.Array:
  """Renders a raw mosaic to display sRGB with the classic pipeline.

  Args:
    mosaic: (..., H, W) sensor values (H, W even).
    metadata: `RawMetadata` with the CFA pattern, levels, as-shot white
      balance and camera -> sRGB matrix (e.g. `rawjax.io.read_raw(p).metadata()`).
    demosaic: 'bilinear' (LibRaw's linear) or 'malvar'.
    apply_gain_map: correct lens/colour shading with `metadata.gain_map`
      when there is one (files without a gain map render the same either
      way).

  Returns:
    (..., H, W, 3) float32 sRGB in [0, 1].
  """
  camera = raw_to_linear_camera(mosaic, metadata, demosaic=demosaic,
                                apply_gain_map=apply_gain_map)
  linear = jnp.clip(color.apply_ccm(camera, metadata.cam_to_srgb), 0.0, 1.0)
  return color.srgb_encode(linear)
