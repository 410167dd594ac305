"""Bayer demosaicing (bilinear, Malvar-He-Cutler 2004) and its inverse.

Both demosaics are linear filters whose kernel depends only on the colour of
the output channel and the position inside the 2x2 CFA cell. They are computed
in the packed domain: every output channel at each of the four cell positions
is a short weighted sum of stride-2 slices of the padded mosaic, and the twelve
resulting half-resolution planes are interleaved by one reshape. XLA fuses
this into a couple of passes over memory, where generic convolutions of
masked full-resolution planes (the textbook form, and colour-demosaicing's)
would make several.

Borders follow colour-demosaicing exactly (scipy.ndimage.convolve, mode
'reflect', i.e. half-sample symmetric). Malvar filters the mosaic itself, so
a symmetric pad of the mosaic is all it needs. Bilinear filters each
colour's *masked* plane, and reflecting a masked plane also reflects its mask:
at the outer one-pixel ring the colour phase seen by the kernel differs from
the interior one. That ring is recomputed from thin strips with the reflected
masks (see `demosaic_bilinear`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import cfa

_RGB = 'RGB'

# Losson et al. 2010, as in colour-demosaicing.
_BILINEAR_G = np.array([[0, 1, 0],
                        [1, 4, 1],
                        [0, 1, 0]]) / 4
_BILINEAR_RB = np.array([[1, 2, 1],
                         [2, 4, 2],
                         [1, 2, 1]]) / 4

# Malvar, He & Cutler 2004, figure 2 (alpha = 1/2, beta = 5/8, gamma = 3/4).
_MALVAR_G_AT_RB = np.array([[0, 0, -1, 0, 0],
                            [0, 0, 2, 0, 0],
                            [-1, 2, 4, 2, -1],
                            [0, 0, 2, 0, 0],
                            [0, 0, -1, 0, 0]]) / 8
# R at a green site of a red row (or B at a green site of a blue row): the
# wanted colour lies to the left and right.
_MALVAR_RB_AT_G_ROW = np.array([[0, 0, 0.5, 0, 0],
                                [0, -1, 0, -1, 0],
                                [-1, 4, 5, 4, -1],
                                [0, -1, 0, -1, 0],
                                [0, 0, 0.5, 0, 0]]) / 8
_MALVAR_RB_AT_G_COL = _MALVAR_RB_AT_G_ROW.T
_MALVAR_RB_AT_BR = np.array([[0, 0, -1.5, 0, 0],
                             [0, 2, 0, 2, 0],
                             [-1.5, 0, 6, 0, -1.5],
                             [0, 2, 0, 2, 0],
                             [0, 0, -1.5, 0, 0]]) / 8

# (weight, dy, dx) terms of one output plane, grouped by weight.
Terms = tuple[tuple[float, tuple[tuple[int, int], ...]], ...]


def _colour_index(pattern: str, row, col):
  """Index into 'RGB' of the CFA colour at (row, col); numpy broadcasting."""
  cell = np.array([_RGB.index(letter) for letter in pattern]).reshape(2, 2)
  return cell[np.asarray(row) % 2, np.asarray(col) % 2]


def _terms(kernel: np.ndarray, keep=lambda dy, dx: True) -> Terms:
  """Groups the non-zero taps of a scipy-style convolution kernel by weight.

  scipy.ndimage.convolve flips the kernel; the taps are returned as offsets
  (dy, dx) of a correlation so that out[y, x] = sum w * in[y + dy, x + dx].
  """
  flipped = kernel[::-1, ::-1]
  centre = flipped.shape[0] // 2
  groups: dict[float, list[tuple[int, int]]] = {}
  for (i, j), w in np.ndenumerate(flipped):
    dy, dx = i - centre, j - centre
    if w != 0 and keep(dy, dx):
      groups.setdefault(float(w), []).append((dy, dx))
  return tuple((w, tuple(offsets)) for w, offsets in sorted(groups.items()))


@functools.lru_cache(maxsize=None)
def _bilinear_terms(pattern: str) -> dict[tuple[int, int, int], Terms]:
  """Interior taps per (cell row, cell col, output channel)."""
  plan = {}
  for a in (0, 1):
    for b in (0, 1):
      for k in range(3):
        kernel = _BILINEAR_G if k == 1 else _BILINEAR_RB
        plan[a, b, k] = _terms(
            kernel, lambda dy, dx: _colour_index(pattern, a + dy, b + dx) == k)
  return plan


@functools.lru_cache(maxsize=None)
def _malvar_terms(pattern: str) -> dict[tuple[int, int, int], Terms]:
  """Taps per (cell row, cell col, output channel), on the unmasked mosaic."""
  (red_row, _), *_ = cfa.channel_offsets(pattern)
  plan = {}
  for a in (0, 1):
    for b in (0, 1):
      site = _colour_index(pattern, a, b)
      for k in range(3):
        if k == site:
          kernel = np.array([[1.0]])
        elif k == 1:
          kernel = _MALVAR_G_AT_RB
        elif site != 1:
          kernel = _MALVAR_RB_AT_BR
        else:
          # A green site: the wanted colour is in its row when the row is the
          # one that colour lives on.
          wanted_row = red_row if k == 0 else 1 - red_row
          kernel = _MALVAR_RB_AT_G_ROW if a == wanted_row else (
              _MALVAR_RB_AT_G_COL)
        plan[a, b, k] = _terms(kernel)
  return plan


def _validate_mosaic(mosaic: ArrayLike, fn: str) -> jnp.ndarray:
  x = _checks.as_float(mosaic, name='mosaic', fn=fn)
  _checks.check_min_rank(x, 2, name='mosaic', fn=fn, layout='(..., H, W)')
  _checks.check_even_hw(x, name='mosaic', fn=fn)
  if 0 in x.shape[-2:]:
    raise ValueError(f'{fn}: mosaic must not be empty, got shape '
                     f'{tuple(x.shape)}.')
  return x


def _pad(x: jnp.ndarray, width: int) -> jnp.ndarray:
  lead = [(0, 0)] * (x.ndim - 2)
  return jnp.pad(x, lead + [(width, width)] * 2, mode='symmetric')


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
  """scipy's 'reflect' (half-sample symmetric) index, up to n of overhang."""
  return np.where(i < 0, -1 - i, np.where(i >= n, 2 * n - 1 - i, i))


def _weighted_sum(tap, terms: Terms) -> jnp.ndarray:
  """sum_w w * sum(tap(dy, dx)); an exact copy for a single unit tap."""
  total = None
  for w, offsets in terms:
    group = functools.reduce(jnp.add, [tap(dy, dx) for dy, dx in offsets])
    group = group if w == 1.0 else group * np.float32(w)
    total = group if total is None else total + group
  return total


def _interleave(planes) -> jnp.ndarray:
  """planes[a][b][k]: (..., h, w) -> (..., 2h, 2w, 3)."""
  *lead, h, w = planes[0][0][0].shape
  cell = jnp.stack([jnp.stack([jnp.stack(planes[a][b], axis=-1)
                               for b in (0, 1)], axis=-2)
                    for a in (0, 1)], axis=-4)
  return cell.reshape(*lead, 2 * h, 2 * w, 3)


def _reference(x: jnp.ndarray, pattern: str, method: str) -> jnp.ndarray:
  """Textbook full-resolution form of both demosaics: (..., H, W, 3).

  A transcription of colour-demosaicing's scipy code (masks, 'reflect'
  borders) used on small inputs and on the border strips of large ones.
  """
  height, width = x.shape[-2:]
  xp = _pad(x, 2)
  ys = _reflect(np.arange(-2, height + 2), height)
  xs = _reflect(np.arange(-2, width + 2), width)
  # Colour of every padded pixel: scipy pads `CFA * mask`, so the masks are
  # reflected along with the data.
  colour = _colour_index(pattern, ys[:, None], xs[None, :])

  def conv(src, kernel):
    def tap(dy, dx):
      return src[..., 2 + dy:2 + dy + height, 2 + dx:2 + dx + width]
    return _weighted_sum(tap, _terms(kernel))

  if method == 'bilinear':
    return jnp.stack([
        conv(xp * (colour == k).astype(np.float32),
             _BILINEAR_G if k == 1 else _BILINEAR_RB) for k in range(3)],
                     axis=-1)
  site = colour[2:-2, 2:-2]
  (red_row, _), *_ = cfa.channel_offsets(pattern)
  red_rows = (np.arange(height) % 2 == red_row)[:, None]
  g_at_rb = conv(xp, _MALVAR_G_AT_RB)
  at_g_row = conv(xp, _MALVAR_RB_AT_G_ROW)
  at_g_col = conv(xp, _MALVAR_RB_AT_G_COL)
  at_br = conv(xp, _MALVAR_RB_AT_BR)
  out = []
  for k in range(3):
    if k == 1:
      out.append(jnp.where(site == 1, x, g_at_rb))
      continue
    # Green sites on the rows where colour k lives interpolate along the row.
    k_rows = red_rows if k == 0 else ~red_rows
    at_g = jnp.where(k_rows, at_g_row, at_g_col)
    out.append(jnp.where(site == k, x, jnp.where(site == 1, at_g, at_br)))
  return jnp.stack(out, axis=-1)


def _fast(x: jnp.ndarray, pattern: str, method: str) -> jnp.ndarray:
  """Packed-domain form: interior taps on the phase planes, exact ring.

  The cells of the outer ring (two pixels wide) are taken from `_reference`
  on four strips of four rows or columns, which see the true borders; every
  other cell only reads real pixels, so its taps need no padding at all.
  """
  height, width = x.shape[-2:]
  h, w = height // 2, width // 2
  plan = (_bilinear_terms if method == 'bilinear' else _malvar_terms)(pattern)
  phases = [[x[..., p::2, q::2] for q in (0, 1)] for p in (0, 1)]

  def interior(a, b, k):
    def tap(dy, dx):
      r, c = a + dy, b + dx
      src = phases[r % 2][c % 2]
      return src[..., 1 + r // 2:h - 1 + r // 2, 1 + c // 2:w - 1 + c // 2]
    return _weighted_sum(tap, plan[a, b, k])

  top = _reference(x[..., :4, :], pattern, method)[..., :2, :, :]
  bottom = _reference(x[..., -4:, :], pattern, method)[..., -2:, :, :]
  left = _reference(x[..., :, :4], pattern, method)[..., 2:-2, :2, :]
  right = _reference(x[..., :, -4:], pattern, method)[..., 2:-2, -2:, :]
  # Selects rather than concatenates: XLA fuses a concatenate nested inside
  # the interleaving one into a separate pass, but fuses selects.
  first_row, last_row = np.arange(h)[:, None] == 0, np.arange(h)[:, None] == h - 1
  first_col, last_col = np.arange(w) == 0, np.arange(w) == w - 1
  lead = [(0, 0, 0)] * (x.ndim - 2)
  planes = [[[None] * 3 for _ in (0, 1)] for _ in (0, 1)]
  for a in (0, 1):
    for b in (0, 1):
      for k in range(3):
        zero = np.zeros((), x.dtype)
        plane = jax.lax.pad(interior(a, b, k), zero, lead + [(1, 1, 0)] * 2)
        side = lambda col: jax.lax.pad(col, zero, lead + [(1, 1, 0)])[..., None]
        plane = jnp.where(first_col, side(left[..., a::2, b, k]), plane)
        plane = jnp.where(last_col, side(right[..., a::2, b, k]), plane)
        plane = jnp.where(first_row, top[..., a, None, b::2, k], plane)
        plane = jnp.where(last_row, bottom[..., a, None, b::2, k], plane)
        planes[a][b][k] = plane
  return _interleave(planes)


def _demosaic(x: jnp.ndarray, pattern: str, method: str) -> jnp.ndarray:
  if min(x.shape[-2:]) < 6:
    return _reference(x, pattern, method)
  return _fast(x, pattern, method)


def demosaic_bilinear(mosaic: ArrayLike, *, pattern: str) -> jax.Array:
  """Bilinear Bayer demosaicing (Losson, Macaire & Yang 2010, section 2).

  Each colour plane, zero except at its own sites, is convolved with
  [[0,1,0],[1,4,1],[0,1,0]]/4 (green) or [[1,2,1],[2,4,2],[1,2,1]]/4 (red,
  blue). Matches `colour_demosaicing.demosaicing_CFA_Bayer_bilinear` (1e-6 for
  data in [0, 1]) including its borders: scipy reflects the masked planes
  (mode 'reflect'), so on the outer one-pixel ring a sample can be counted
  twice; e.g. a flat field of ones becomes 2.25 in the corner of the red
  channel of an RGGB mosaic. In the interior each site keeps its own value,
  so `mosaic(demosaic_bilinear(m))` equals `m` there exactly, but not on that
  ring. No clipping.

  Args:
    mosaic: (..., H, W), H and W even and positive, any range (typically
      [0, 1]); integer input is cast to float32.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W, 3) RGB in the camera's colour space, float32 for float32 or
    integer input.
  """
  fn = 'demosaic_bilinear'
  pattern = cfa.validate_pattern(pattern)
  x = _validate_mosaic(mosaic, fn)
  return _demosaic(x, pattern, 'bilinear')


def demosaic_malvar(mosaic: ArrayLike, *, pattern: str) -> jax.Array:
  """Malvar-He-Cutler gradient-corrected linear demosaicing.

  H. S. Malvar, L.-W. He and R. Cutler, "High-quality linear interpolation
  for demosaicing of Bayer-patterned color images", ICASSP 2004: bilinear
  interpolation corrected by the Laplacian of the colour sampled at the site,
  with the paper's 5x5 kernels. Matches
  `colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004` (1e-6 for data in
  [0, 1]), borders included (half-sample symmetric extension of the mosaic).
  No clipping: the output can leave the input range near edges. Each site
  keeps its own value exactly, so `mosaic(demosaic_malvar(m)) == m`.

  Args:
    mosaic: (..., H, W), H and W even and positive, any range (typically
      [0, 1]); integer input is cast to float32.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W, 3) RGB in the camera's colour space, float32 for float32 or
    integer input.
  """
  fn = 'demosaic_malvar'
  pattern = cfa.validate_pattern(pattern)
  x = _validate_mosaic(mosaic, fn)
  return _demosaic(x, pattern, 'malvar')


def mosaic(rgb: ArrayLike, *, pattern: str) -> jax.Array:
  """Bayer sampling: keeps, at each pixel, the channel its CFA site records.

  The inverse projection of the demosaics (as
  `colour_demosaicing.mosaicing_CFA_Bayer`): a pure selection, so values and
  their gradients pass through unchanged.

  Args:
    rgb: (..., H, W, 3), H and W even, any range.
    pattern: CFA pattern, one of 'RGGB', 'BGGR', 'GRBG', 'GBRG'.

  Returns:
    (..., H, W) mosaic, same float dtype as `rgb` (float32 for integers).
  """
  fn = 'mosaic'
  pattern = cfa.validate_pattern(pattern)
  x = _checks.as_float(rgb, name='rgb', fn=fn)
  _checks.check_min_rank(x, 3, name='rgb', fn=fn, layout='(..., H, W, 3)')
  _checks.check_channels(x, 3, name='rgb', fn=fn)
  _checks.check_even_hw(x, name='rgb', fn=fn, hw_axes=(-3, -2))
  planes = [x[..., r::2, c::2, _colour_index(pattern, r, c)]
            for r, c in cfa.channel_offsets(pattern)]
  return cfa.unpack(jnp.stack(planes, axis=-1), pattern=pattern)
