"""Tiled inference for any image-to-image function, with overlap blending.

A 12 MP raw does not fit through a U-Net at once on a small machine: the
activations of LiteISPNet alone would take tens of GB. `tiled_apply` cuts the
inputs into equal overlapping tiles, runs the function on a few tiles at a
time (one compiled shape), and blends the outputs with weights that fall
linearly to the tile edges inside the overlap, so seams vanish where the
receptive field sees different contexts. Only the current tiles and the
output accumulator are alive at any time: peak memory is the accumulator
(output size x (channels + 1) float32) plus one batch of tiles through the
function, independent of the frame size otherwise (two batches while
one is computed and the previous one blended).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ['blend_window', 'tile_starts', 'tiled_apply']


def tile_starts(size: int, tile: int, overlap: int, *,
                multiple: int = 1) -> list[int]:
  """Start offsets of tiles of length `tile` covering [0, size).

  Consecutive tiles overlap by at least `overlap`; the last tile ends at
  `size`. Offsets are multiples of `multiple` (e.g. 2 to keep a CFA phase)
  except possibly the last one, which is also rounded down to one when that
  still covers the end (size must then be a multiple too).
  """
  if tile <= 0 or overlap < 0 or overlap >= tile:
    raise ValueError(f'tile_starts: need tile > overlap >= 0, got tile={tile},'
                     f' overlap={overlap}.')
  if size <= tile:
    return [0]
  stride = max(multiple, (tile - overlap) // multiple * multiple)
  starts = list(range(0, size - tile, stride))
  last = (size - tile) // multiple * multiple
  if last + tile < size:
    last = size - tile
  if not starts or starts[-1] != last:
    starts.append(last)
  return starts


def blend_window(length: int, ramp: int) -> np.ndarray:
  """(length,) float32 weights: linear ramps of `ramp` samples at both ends.

  w[i] = min(1, (i + 0.5) / ramp, (length - i - 0.5) / ramp), positive
  everywhere, so a pixel covered by one tile only keeps that tile's value.
  """
  i = np.arange(length, dtype=np.float64) + 0.5
  if ramp <= 0:
    return np.ones(length, np.float32)
  w = np.minimum(1.0, np.minimum(i / ramp, (length - i) / ramp))
  return w.astype(np.float32)


def tiled_apply(fn: Callable[..., Any], inputs: Sequence[Any], *,
                tile: int | Sequence[int], overlap: int, scale: int = 1,
                batch_tiles: int = 1, multiple: int = 1,
                progress: bool = False) -> np.ndarray:
  """fn applied to a large frame tile by tile, overlaps blended.

  Args:
    fn: `fn(*tile_batches) -> (B, th * scale, tw * scale, C)` for inputs
      (B, th, tw, C_i); typically a jitted `model.apply` closure. It sees
      only one shape (B = batch_tiles, (th, tw) = tile).
    inputs: arrays (H, W, C_i) sharing H and W (e.g. the packed raw and its
      frame-wide coordinate map): tile k of every input is cut at the same
      place.
    tile: tile size (th, tw) on the input grid (or an int for squares). A
      frame smaller than the tile is reflect-padded up to it, and the output
      cropped.
    overlap: overlap of neighbouring tiles on the input grid; the blend
      ramps span it (times `scale` on the output grid).
    scale: output pixels per input pixel (2 for LiteISPNet).
    batch_tiles: tiles per call of fn (the last call is padded by
      repeating a tile).
    multiple: tile offsets are multiples of this (e.g. 8 to keep wavelet
      grids aligned, 2 for CFA phase).
    progress: show a tqdm bar over the tiles.

  Returns:
    (H * scale, W * scale, C) float32 numpy array.
  """
  if not inputs:
    raise ValueError('tiled_apply: need at least one input array.')
  arrays = [np.asarray(x) for x in inputs]
  if any(a.ndim != 3 for a in arrays):
    raise ValueError(f'tiled_apply: inputs must be (H, W, C), got shapes '
                     f'{[a.shape for a in arrays]}.')
  h, w = arrays[0].shape[:2]
  if any(a.shape[:2] != (h, w) for a in arrays):
    raise ValueError(f'tiled_apply: inputs must share H and W, got '
                     f'{[a.shape for a in arrays]}.')
  th, tw = (tile, tile) if isinstance(tile, int) else map(int, tile)
  if batch_tiles < 1 or scale < 1:
    raise ValueError('tiled_apply: batch_tiles and scale must be >= 1.')
  pad_h, pad_w = max(0, th - h), max(0, tw - w)
  if pad_h or pad_w:
    arrays = [np.pad(a, ((0, pad_h), (0, pad_w), (0, 0)), mode='reflect')
              for a in arrays]
  fh, fw = h + pad_h, w + pad_w
  positions = [(y, x) for y in tile_starts(fh, th, overlap, multiple=multiple)
               for x in tile_starts(fw, tw, overlap, multiple=multiple)]
  window = np.outer(blend_window(th * scale, overlap * scale),
                    blend_window(tw * scale, overlap * scale))[..., None]
  out = None
  weight = np.zeros((fh * scale, fw * scale, 1), np.float32)
  groups = [positions[i:i + batch_tiles]
            for i in range(0, len(positions), batch_tiles)]
  bar = None
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=len(positions), desc='tiles', unit='tile')

  def accumulate(group, result):
    nonlocal out
    result = np.asarray(jax.device_get(result), np.float32)
    if result.shape[:3] != (batch_tiles, th * scale, tw * scale):
      raise ValueError(f'tiled_apply: fn returned {result.shape}, expected '
                       f'({batch_tiles}, {th * scale}, {tw * scale}, C).')
    if out is None:
      out = np.zeros((fh * scale, fw * scale, result.shape[-1]), np.float32)
    for (y, x), tile_out in zip(group, result):
      ys, xs = y * scale, x * scale
      out[ys:ys + th * scale, xs:xs + tw * scale] += tile_out * window
      weight[ys:ys + th * scale, xs:xs + tw * scale] += window
    if bar is not None:
      bar.update(len(group))

  # One batch in flight while the previous one is blended: JAX dispatches
  # asynchronously, so cutting the next tiles and accumulating the last
  # outputs on the host overlap the device's work instead of adding to it.
  pending = None
  for group in groups:
    padded = group + [group[-1]] * (batch_tiles - len(group))
    batches = [np.stack([a[y:y + th, x:x + tw] for y, x in padded])
               for a in arrays]
    result = fn(*batches)
    if pending is not None:
      accumulate(*pending)
    pending = (group, result)
  accumulate(*pending)
  if bar is not None:
    bar.close()
  out /= weight
  return out[:h * scale, :w * scale]
