"""Image figures of an evaluation: titled comparison grids and error maps.

Every grid a method writes is a table of images: a row per test image (its
label on the left), a column per output (its title on top), so a reader can
tell input, output, target and error map apart without the code.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rawjax import io as rawio

__all__ = ['error_map', 'image_grid', 'labelled_grid', 'write_image_rows']

FONT_SIZE = 11  # pixels: grid titles, row labels and chart text
_TEXT_MARGIN = 3


def _finite(images: np.ndarray) -> np.ndarray:
  # A diverging model still writes a grid that shows it.
  return np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0)


def image_grid(images: Any, *, columns: int | None = None,
               padding: int = 2) -> np.ndarray:
  """Tiles (N, H, W, C) or (N, H, W) images in [0, 1] into one image.

  Columns default to ceil(sqrt(N)); tiles are separated by `padding`
  white pixels. Non-finite values become 0.
  """
  images = np.asarray(images, np.float32)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4:
    raise ValueError(f'image_grid needs (N, H, W[, C]) images, got shape '
                     f'{images.shape}.')
  images = _finite(images)
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.ones((rows * (h + padding) + padding,
                  columns * (w + padding) + padding, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    grid[top:top + h, left:left + w] = image
  return grid[..., 0] if c == 1 else grid


def text_font() -> ImageFont.ImageFont:
  """The font of grid titles and chart text (`plotting` shares it)."""
  return ImageFont.load_default(size=FONT_SIZE)


def fit_text(draw: ImageDraw.ImageDraw, text: str, width: float, font) -> str:
  """`text`, shortened with an ellipsis until it fits in `width` pixels."""
  if draw.textlength(text, font=font) <= width:
    return text
  while text and draw.textlength(text + '...', font=font) > width:
    text = text[:-1]
  return text + '...'


def labelled_grid(rows: Sequence[Sequence[np.ndarray]], *,
                  column_titles: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None,
                  padding: int = 2) -> np.ndarray:
  """Rows of (H, W, 3) images in [0, 1] as one (H', W', 3) grid image.

  Row r, column c holds rows[r][c] at the top-left of its cell; cells are as
  large as the largest image (packed raw beside sRGB share one grid),
  separated by `padding` white pixels. `column_titles` (one per column) are
  written above the columns, `row_labels` (one per row) left of the rows,
  in black on white. Non-finite values become 0.
  """
  if not rows or not any(len(r) for r in rows):
    raise ValueError('labelled_grid needs at least one image.')
  columns = max(len(row) for row in rows)
  if column_titles is not None and len(column_titles) != columns:
    raise ValueError(f'{len(column_titles)} column titles for {columns} '
                     'columns.')
  if row_labels is not None and len(row_labels) != len(rows):
    raise ValueError(f'{len(row_labels)} row labels for {len(rows)} rows.')
  for row in rows:
    for img in row:
      if np.ndim(img) != 3 or np.shape(img)[-1] != 3:
        raise ValueError(f'grid images must be (H, W, 3), got shape '
                         f'{np.shape(img)}.')
  h = max(img.shape[0] for row in rows for img in row)
  w = max(img.shape[1] for row in rows for img in row)
  font = text_font()
  probe = ImageDraw.Draw(Image.new('L', (1, 1)))
  line = FONT_SIZE + 2 * _TEXT_MARGIN
  top_band = line if column_titles is not None else 0
  left_band = 0
  if row_labels is not None:
    left_band = min(int(max(probe.textlength(str(t), font=font)
                            for t in row_labels)) + 2 * _TEXT_MARGIN,
                    max(w, 64))
  grid = np.ones((top_band + len(rows) * (h + padding) + padding,
                  left_band + columns * (w + padding) + padding, 3),
                 np.float32)
  for r, row in enumerate(rows):
    for c, img in enumerate(row):
      top = top_band + padding + r * (h + padding)
      left = left_band + padding + c * (w + padding)
      grid[top:top + img.shape[0], left:left + img.shape[1]] = _finite(
          np.asarray(img, np.float32))
  if column_titles is None and row_labels is None:
    return grid
  canvas = Image.fromarray(np.round(np.clip(grid, 0, 1) * 255).astype(
      np.uint8))
  draw = ImageDraw.Draw(canvas)
  for c, title in enumerate(column_titles or ()):
    text = fit_text(draw, str(title), w - 2 * _TEXT_MARGIN, font)
    left = left_band + padding + c * (w + padding)
    offset = max(0, (w - draw.textlength(text, font=font)) / 2)
    draw.text((left + offset, _TEXT_MARGIN), text, fill=(0, 0, 0), font=font)
  for r, label in enumerate(row_labels or ()):
    text = fit_text(draw, str(label), left_band - 2 * _TEXT_MARGIN, font)
    top = top_band + padding + r * (h + padding) + (h - FONT_SIZE) // 2
    draw.text((_TEXT_MARGIN, top), text, fill=(0, 0, 0), font=font)
  return np.asarray(canvas, np.float32) / 255.0


def write_image_rows(path: str | os.PathLike[str],
                     rows: Sequence[Sequence[np.ndarray]], *,
                     column_titles: Sequence[str] | None = None,
                     row_labels: Sequence[str] | None = None,
                     padding: int = 2) -> None:
  """`labelled_grid(rows, ...)` written as an 8-bit PNG at `path`."""
  rawio.write_image(path, labelled_grid(
      rows, column_titles=column_titles, row_labels=row_labels,
      padding=padding))


def error_map(prediction: Any, target: Any, *, gain: float) -> np.ndarray:
  """|prediction - target| averaged over channels, x gain, as gray RGB.

  Args:
    prediction, target: (..., H, W, C) images in the same units.
    gain: display gain (an error of 1/gain shows white).

  Returns:
    (..., H, W, 3) float32 in [0, 1].
  """
  error = np.abs(np.asarray(prediction, np.float32) -
                 np.asarray(target, np.float32)).mean(-1)
  return np.repeat(np.clip(gain * error, 0.0, 1.0)[..., None], 3, axis=-1)
