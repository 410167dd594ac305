"""LiteISPNet on whole frames: tiled inference with bounded memory."""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from rawjax import models
from rawjax.data.datasets import zrr
from rawjax.models import tiling

__all__ = ['apply_fn', 'process_full_frame']


@functools.lru_cache(maxsize=8)
def apply_fn(model: models.LiteISPNet):
  """`(params, raw, coord) -> sRGB` of `model`, jitted once per model."""
  return jax.jit(lambda p, r, c: model.apply({'params': p}, r, c))


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
  apply = apply_fn(model)
  fn = lambda r, c: apply(params, r, c)  # noqa: E731
  tile_hw = (min(th, raw.shape[0]), min(tw, raw.shape[1]))
  out = tiling.tiled_apply(fn, [raw, coord], tile=tile_hw,
                           overlap=min(overlap, min(tile_hw) - 8),
                           scale=2, batch_tiles=batch_tiles, multiple=8,
                           progress=progress)
  return out[:2 * h, :2 * w]
