"""8/16-bit PNG and TIFF writing and reading for rendered images.

`write_image` quantises float images in [0, 1] to the integer grid
k / (2**bits - 1) (values are clipped, then `floor(v * (2**bits - 1) + 0.5)`);
`read_image` maps the integers back to float32 [0, 1] without losing 16-bit
precision, so a quantised image survives a write/read round trip exactly.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import png
import tifffile
from PIL import Image

__all__ = ['read_image', 'write_image']

_PNG = ('.png',)
_TIFF = ('.tif', '.tiff')
_DTYPES = {8: np.uint8, 16: np.uint16}


def _extension(path: str | os.PathLike[str], fn: str) -> str:
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f'{fn}: path must be a str or os.PathLike, got '
                    f'{type(path).__name__}.')
  ext = pathlib.Path(path).suffix.lower()
  if ext not in _PNG + _TIFF:
    raise ValueError(f'{fn}: unsupported file extension {ext or "(none)"!r} '
                     f'in {os.fspath(path)!r}; use .png, .tif or .tiff.')
  return ext


def _quantise(image: Any, bit_depth: int) -> np.ndarray:
  fn = 'write_image'
  image = np.asarray(image)
  if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
    raise ValueError(f'{fn}: image must have shape (H, W) or (H, W, 3), got '
                     f'{image.shape}.')
  if image.shape[0] == 0 or image.shape[1] == 0:
    raise ValueError(f'{fn}: image is empty (shape {image.shape}).')
  dtype = _DTYPES[bit_depth]
  if np.issubdtype(image.dtype, np.floating):
    if not np.all(np.isfinite(image)):
      raise ValueError(f'{fn}: image has NaN or infinite values.')
    scale = float(2**bit_depth - 1)
    q = np.floor(np.clip(image.astype(np.float64), 0.0, 1.0) * scale + 0.5)
    return q.astype(dtype)
  if image.dtype == dtype:
    return np.ascontiguousarray(image)
  if np.issubdtype(image.dtype, np.integer):
    raise ValueError(f'{fn}: integer images are written as is, so their dtype '
                     f'must match bit_depth={bit_depth} ({np.dtype(dtype)}), '
                     f'got {image.dtype}; pass a float image in [0, 1] to '
                     'rescale.')
  raise ValueError(f'{fn}: image must be float in [0, 1] or {np.dtype(dtype)},'
                   f' got dtype {image.dtype}.')


def write_image(path: str | os.PathLike[str], image: Any, *,
                bit_depth: int = 8) -> None:
  """Writes an image as an 8- or 16-bit PNG or TIFF.

  Args:
    path: output file; the extension (.png, .tif, .tiff) picks the format.
    image: (H, W, 3) RGB or (H, W) greyscale. Float images are taken as
      [0, 1]: clipped, then quantised to floor(v * (2**bit_depth - 1) + 0.5).
      Integer images are written as is when their dtype matches bit_depth
      (uint8 for 8, uint16 for 16).
    bit_depth: 8 or 16.

  Raises:
    ValueError: unsupported extension or bit depth, bad shape, non-finite
      values, or an integer dtype that does not match bit_depth.
  """
  ext = _extension(path, 'write_image')
  if bit_depth not in _DTYPES:
    raise ValueError(f'write_image: bit_depth must be 8 or 16, got '
                     f'{bit_depth!r}.')
  data = _quantise(image, bit_depth)
  path = os.fspath(path)
  if ext in _TIFF:
    tifffile.imwrite(path, data,
                     photometric='rgb' if data.ndim == 3 else 'minisblack')
  elif bit_depth == 8:
    Image.fromarray(data).save(path)
  else:
    h, w = data.shape[:2]
    greyscale = data.ndim == 2
    writer = png.Writer(width=w, height=h, greyscale=greyscale,
                        bitdepth=16)
    with open(path, 'wb') as f:
      writer.write(f, data.reshape(h, -1))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads a PNG or TIFF written by `write_image` (or any 8/16-bit one).

  Returns:
    float32 in [0, 1]: integers k of a b-bit file become
    float32(k) / float32(2**b - 1) (16-bit precision is kept). Shape (H, W)
    for greyscale, (H, W, 3) for colour; an alpha channel is dropped.
    Floating-point TIFFs are returned as float32 unchanged.

  Raises:
    ValueError: unsupported extension, bit depth or layout.
    FileNotFoundError: the file does not exist.
  """
  ext = _extension(path, 'read_image')
  path = os.fspath(path)
  if ext in _TIFF:
    data = tifffile.imread(path)
    bits = None if np.issubdtype(data.dtype, np.floating) else {
        np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(data.dtype)
    if bits is None and not np.issubdtype(data.dtype, np.floating):
      raise ValueError(f'read_image: unsupported TIFF dtype {data.dtype} in '
                       f'{path!r}; expected uint8, uint16 or float.')
  else:
    width, height, rows, meta = png.Reader(filename=path).asDirect()
    bits = int(meta['bitdepth'])
    planes = int(meta['planes'])
    dtype = np.uint16 if bits > 8 else np.uint8
    data = np.vstack([np.asarray(row, dtype) for row in rows])
    data = data.reshape(height, width, planes)
    if bits not in (8, 16):
      # Low bit depths (1, 2, 4) or sBIT-rescaled data: scale by their max.
      data = data.astype(np.float32) / np.float32(2**bits - 1)
      bits = None
  if data.ndim == 3 and data.shape[-1] in (2, 4):  # drop alpha
    data = data[..., :-1]
  if data.ndim == 3 and data.shape[-1] == 1:
    data = data[..., 0]
  if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] != 3):
    raise ValueError(f'read_image: unsupported image layout {data.shape} in '
                     f'{path!r}.')
  if bits is None:
    return data.astype(np.float32)
  return data.astype(np.float32) / np.float32(2**bits - 1)
