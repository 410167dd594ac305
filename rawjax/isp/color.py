"""Colour stages: white balance, colour matrices, XYZ, sRGB, CIELAB.

Every stage comes with its inverse. Colour matrix products run at HIGHEST
precision (TPU's default bf16 passes visibly shift colours). Fractional powers
and divisions are guarded so gradients stay finite at 0 and 1.

Conventions:
  * images are (..., H, W, C) float32; linear values are scene-referred and
    may exceed 1, encoded sRGB is nominally in [0, 1]. Integer (and bool)
    images are refused with a TypeError by every colour function (an 8-bit
    image is 0..255, not [0, 1]: convert it explicitly); only the generic
    linear `apply_matrix` and the layout function `packed_to_rgb` take
    integers as the numbers they are;
  * per-image parameters (gains, matrices) carry the same leading batch dims
    as the image, or none;
  * sRGB is IEC 61966-2-1 with its published (4-decimal) RGB -> XYZ matrix,
    as colour-science, and the exact inverse of it;
  * CIELAB is CIE 1976 relative to a white point given by its xy chromaticity
    (default D65, the sRGB white).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import _math

HIGHEST = jax.lax.Precision.HIGHEST

D65_XY = (0.3127, 0.3290)
D50_XY = (0.3457, 0.3585)
_SRGB_PRIMARIES_XY = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])


def xy_to_xyz_np(xy) -> np.ndarray:
  """xy chromaticity -> XYZ with Y = 1 (host-side constant helper)."""
  x, y = np.asarray(xy, np.float64)
  return np.array([x / y, 1.0, (1.0 - x - y) / y])


def _rgb_to_xyz_matrix(primaries_xy: np.ndarray, white_xy) -> np.ndarray:
  """Normalised primary matrix (SMPTE RP 177)."""
  primaries = np.stack([xy_to_xyz_np(p) for p in primaries_xy], axis=1)
  scale = np.linalg.solve(primaries, xy_to_xyz_np(white_xy))
  return primaries * scale


# IEC 61966-2-1 publishes the matrix rounded to 4 decimals (colour-science
# uses it too); its exact inverse keeps XYZ <-> sRGB a true round trip.
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805],
                        [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)
# The unrounded primaries matrix (SMPTE RP 177), for reference.
SRGB_TO_XYZ_DERIVED = _rgb_to_xyz_matrix(_SRGB_PRIMARIES_XY, D65_XY)

# LibRaw's own sRGB -> XYZ constant (Lindbloom's 7-digit values, which
# replaced dcraw's 6-digit ones), used for its `rgb_cam`.
LIBRAW_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                               [0.2126729, 0.7151522, 0.0721750],
                               [0.0193339, 0.1191920, 0.9503041]])

BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                     [-0.7502, 1.7135, 0.0367],
                     [0.0389, -0.0685, 1.0296]])


# --- matrices and gains ---------------------------------------------------

def _expand_per_image(param: jnp.ndarray, image: jnp.ndarray,
                      param_rank: int) -> jnp.ndarray:
  """Inserts H, W axes so (..., *p) parameters broadcast over (..., H, W, C)."""
  lead = param.shape[:param.ndim - param_rank]
  if not lead:
    return param
  return param.reshape(lead + (1, 1) + param.shape[len(lead):])


def apply_matrix(image: ArrayLike, matrix: ArrayLike) -> jax.Array:
  """out[..., i] = sum_j matrix[..., i, j] * image[..., j] at HIGHEST precision.

  Args:
    image: (..., H, W, C).
    matrix: (..., C_out, C) or (C_out, C).

  Returns:
    (..., H, W, C_out).
  """
  fn = 'apply_matrix'
  image = _checks.as_float(image, name='image', fn=fn)
  matrix = _checks.as_float(matrix, name='matrix', fn=fn)
  if matrix.ndim < 2 or matrix.shape[-1] != image.shape[-1]:
    raise ValueError(f'{fn}: matrix of shape {tuple(matrix.shape)} does not '
                     f'apply to {image.shape[-1]} channels.')
  if matrix.ndim > 2:
    _checks.check_min_rank(image, 3, name='image', fn=fn,
                           layout='(..., H, W, C)')
    matrix = _expand_per_image(matrix, image, 2)
  # A sum of per-channel products: for a 3x3 colour matrix XLA's dot is ~5x
  # slower on CPU than this fused elementwise form, which is exact float32
  # arithmetic on every backend (what HIGHEST precision asks of a matmul).
  return sum(image[..., j:j + 1] * matrix[..., :, j]
             for j in range(image.shape[-1]))


def _ccm_args(rgb: ArrayLike, ccm: ArrayLike, fn: str):
  rgb = _checks.as_float(rgb, name='rgb', fn=fn, integers=False)
  _checks.check_channels(rgb, 3, name='rgb', fn=fn)
  ccm = _checks.as_float(ccm, name='ccm', fn=fn)
  if ccm.shape[-2:] != (3, 3):
    raise ValueError(f'{fn}: ccm must be a 3x3 matrix (or (..., 3, 3)), got '
                     f'shape {tuple(ccm.shape)}.')
  return rgb, ccm


def apply_ccm(rgb: ArrayLike, ccm: ArrayLike) -> jax.Array:
  """Colour correction: (..., H, W, 3) camera RGB -> (..., H, W, 3) by a 3x3.

  Raises:
    ValueError: `rgb` has not 3 channels or `ccm` is not (..., 3, 3).
    TypeError: `rgb` is an integer image.
  """
  rgb, ccm = _ccm_args(rgb, ccm, 'apply_ccm')
  return apply_matrix(rgb, ccm)


def inverse_ccm(rgb: ArrayLike, ccm: ArrayLike) -> jax.Array:
  """Inverse of `apply_ccm` (the matrix must be invertible)."""
  rgb, ccm = _ccm_args(rgb, ccm, 'inverse_ccm')
  return apply_matrix(rgb, jnp.linalg.inv(ccm))


def _gains_for(image: jnp.ndarray, gains: jnp.ndarray, fn: str) -> jnp.ndarray:
  _checks.check_positive(gains, name='gains', fn=fn)
  # Traced gains cannot be checked: a gain <= 0 (or NaN) makes its channel
  # NaN rather than a plausible-looking wrong image.
  gains = jnp.where(gains > 0, gains, jnp.nan)
  if gains.shape[-1:] != (3,):
    raise ValueError(f'{fn}: gains must have 3 values (R, G, B) on the last '
                     f'axis, got shape {tuple(gains.shape)}.')
  if image.shape[-1] == 4:  # packed (R, Gr, Gb, B)
    gains = gains[..., (0, 1, 1, 2)]
  elif image.shape[-1] != 3:
    raise ValueError(f'{fn}: image must have 3 (RGB) or 4 (packed R, Gr, Gb, '
                     f'B) channels, got shape {tuple(image.shape)}.')
  return _expand_per_image(gains, image, 1)


def white_balance(image: ArrayLike, gains: ArrayLike) -> jax.Array:
  """Multiplies each colour by its gain.

  Args:
    image: (..., H, W, 3) RGB or (..., H, W, 4) packed (R, Gr, Gb, B), float.
    gains: (3,) or (..., 3) per-image (R, G, B) gains, finite and > 0.

  Raises:
    ValueError: a concrete gain is <= 0 or not finite (traced gains are not
      checked: a channel with such a gain comes out NaN).
    TypeError: `image` is an integer image.
  """
  image = _checks.as_float(image, name='image', fn='white_balance',
                           integers=False)
  gains = _checks.as_float(gains, name='gains', fn='white_balance')
  return image * _gains_for(image, gains, 'white_balance')


def inverse_white_balance(image: ArrayLike, gains: ArrayLike) -> jax.Array:
  """Inverse of `white_balance` (same rules for the gains)."""
  image = _checks.as_float(image, name='image', fn='inverse_white_balance',
                           integers=False)
  gains = _checks.as_float(gains, name='gains', fn='inverse_white_balance')
  return _math.safe_divide(image,
                           _gains_for(image, gains, 'inverse_white_balance'))


# --- transfer functions ---------------------------------------------------

def srgb_encode(linear: ArrayLike) -> jax.Array:
  """sRGB OETF (IEC 61966-2-1): linear [0, 1] -> encoded [0, 1].

  Negative inputs follow the linear segment; the power is guarded so the
  gradient is finite at 0.
  """
  x = _checks.as_float(linear, name='linear', fn='srgb_encode', integers=False)
  power = 1.055 * _math.safe_power(x, 1.0 / 2.4) - 0.055
  return jnp.where(x <= 0.0031308, 12.92 * x, power)


def srgb_decode(encoded: ArrayLike) -> jax.Array:
  """Inverse sRGB OETF (the EOTF): encoded [0, 1] -> linear [0, 1]."""
  v = _checks.as_float(encoded, name='encoded', fn='srgb_decode',
                       integers=False)
  power = _math.safe_power((v + 0.055) / 1.055, 2.4)
  return jnp.where(v <= 0.04045, v / 12.92, power)


# --- XYZ, sRGB, Lab --------------------------------------------------------

def xyz_to_linear_srgb(xyz: ArrayLike) -> jax.Array:
  """CIE XYZ (D65, Y of white = 1) -> linear sRGB, (..., 3)."""
  xyz = _checks.as_float(xyz, name='xyz', fn='xyz_to_linear_srgb',
                         integers=False)
  return apply_matrix(xyz, XYZ_TO_SRGB)


def linear_srgb_to_xyz(rgb: ArrayLike) -> jax.Array:
  """Linear sRGB -> CIE XYZ (D65, Y of white = 1), (..., 3)."""
  rgb = _checks.as_float(rgb, name='rgb', fn='linear_srgb_to_xyz',
                         integers=False)
  return apply_matrix(rgb, SRGB_TO_XYZ)


_LAB_EPSILON = 216.0 / 24389.0
_LAB_KAPPA = 24389.0 / 27.0


def xyz_to_lab(xyz: ArrayLike, *, white_xy=D65_XY) -> jax.Array:
  """CIE XYZ -> CIE 1976 L*a*b* relative to the white `white_xy`.

  Args:
    xyz: (..., 3), Y of the white = 1.
    white_xy: static white-point chromaticity.

  Returns:
    (..., 3) with L in [0, 100] for Y in [0, 1].
  """
  xyz = _checks.as_float(xyz, name='xyz', fn='xyz_to_lab', integers=False)
  _checks.check_channels(xyz, 3, name='xyz', fn='xyz_to_lab')
  t = xyz / jnp.asarray(xy_to_xyz_np(white_xy), xyz.dtype)
  f = jnp.where(t > _LAB_EPSILON, jnp.cbrt(jnp.maximum(t, _LAB_EPSILON)),
                (_LAB_KAPPA * t + 16.0) / 116.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)],
                   axis=-1)


def lab_to_xyz(lab: ArrayLike, *, white_xy=D65_XY) -> jax.Array:
  """Inverse of `xyz_to_lab`."""
  lab = _checks.as_float(lab, name='lab', fn='lab_to_xyz', integers=False)
  _checks.check_channels(lab, 3, name='lab', fn='lab_to_xyz')
  fy = (lab[..., 0] + 16.0) / 116.0
  f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], -1)
  t = jnp.where(f ** 3 > _LAB_EPSILON, f ** 3, (116.0 * f - 16.0) / _LAB_KAPPA)
  # L itself, not f_y^3, decides the Y branch (CIE 15:2004).
  y_linear = lab[..., 0] / _LAB_KAPPA
  t = t.at[..., 1].set(jnp.where(lab[..., 0] > _LAB_KAPPA * _LAB_EPSILON,
                                 fy ** 3, y_linear))
  return t * jnp.asarray(xy_to_xyz_np(white_xy), lab.dtype)


def srgb_to_lab(encoded: ArrayLike) -> jax.Array:
  """Encoded sRGB (..., 3) in [0, 1] -> CIELAB (D65), like skimage's rgb2lab."""
  return xyz_to_lab(linear_srgb_to_xyz(srgb_decode(encoded)))


def lab_to_srgb(lab: ArrayLike) -> jax.Array:
  """CIELAB (D65) -> encoded sRGB (unclipped); inverse of `srgb_to_lab`."""
  return srgb_encode(xyz_to_linear_srgb(lab_to_xyz(lab)))


# --- raw visualisation -----------------------------------------------------

def packed_to_rgb(packed: ArrayLike) -> jax.Array:
  """(..., h, w, 4) packed (R, Gr, Gb, B) -> (..., h, w, 3), greens averaged."""
  packed = _checks.as_float(packed, name='packed', fn='packed_to_rgb')
  _checks.check_channels(packed, 4, name='packed', fn='packed_to_rgb')
  green = 0.5 * (packed[..., 1] + packed[..., 2])
  return jnp.stack([packed[..., 0], green, packed[..., 3]], axis=-1)


def visualize_raw(packed: ArrayLike, *, scale: float = 0.9,
                  gamma: float = 1.0 / 1.6) -> jax.Array:
  """The raw-to-raw papers' display of packed raw: (scale * x) ** gamma.

  Greens are averaged (R, (Gr+Gb)/2, B), values clipped to [0, 1], then
  `(0.9 x)^(1/1.6)` (semi-supervised raw-to-raw paper, Fig. 1 caption).

  Returns:
    (..., h, w, 3) in [0, 1].
  """
  packed = _checks.as_float(packed, name='packed', fn='visualize_raw',
                            integers=False)
  rgb = jnp.clip(packed_to_rgb(packed), 0.0, 1.0)
  return _math.safe_power(scale * rgb, gamma)


# --- camera colour from metadata -------------------------------------------

def camera_to_srgb_from_xyz_to_camera(xyz_to_camera: ArrayLike) -> jax.Array:
  """dcraw/LibRaw's camera -> linear sRGB matrix from an XYZ -> camera matrix.

  cam_rgb = xyz_to_camera @ LIBRAW_SRGB_TO_XYZ, each row scaled to sum to 1 (so
  that white-balanced camera white maps to sRGB white), then inverted. For DNGs
  this reproduces rawpy's `color_matrix[:, :3]` (LibRaw's `rgb_cam`) from the
  last ColorMatrix tag.

  Args:
    xyz_to_camera: (..., 3, 3), e.g. a DNG ColorMatrix.

  Returns:
    (..., 3, 3) applied to white-balanced camera RGB.
  """
  fn = 'camera_to_srgb_from_xyz_to_camera'
  m = _checks.as_float(xyz_to_camera, name='xyz_to_camera', fn=fn)
  if m.shape[-2:] != (3, 3):
    raise ValueError(f'{fn}: expected (..., 3, 3), got {tuple(m.shape)}.')
  cam_rgb = jnp.matmul(m, jnp.asarray(LIBRAW_SRGB_TO_XYZ, m.dtype),
                       precision=HIGHEST)
  cam_rgb = _math.safe_divide(cam_rgb, cam_rgb.sum(-1, keepdims=True))
  return jnp.linalg.inv(cam_rgb)


def bradford_adaptation(source_xy: ArrayLike, target_xy: ArrayLike) -> jax.Array:
  """von Kries adaptation matrix in the Bradford cone space, XYZ -> XYZ."""
  def xyz(xy):
    xy = jnp.asarray(xy, jnp.float32)
    return jnp.stack([xy[..., 0] / xy[..., 1], jnp.ones_like(xy[..., 0]),
                      (1 - xy[..., 0] - xy[..., 1]) / xy[..., 1]], -1)
  bradford = jnp.asarray(BRADFORD, jnp.float32)
  cone_source = jnp.einsum('ij,...j->...i', bradford, xyz(source_xy),
                           precision=HIGHEST)
  cone_target = jnp.einsum('ij,...j->...i', bradford, xyz(target_xy),
                           precision=HIGHEST)
  scale = cone_target / cone_source
  return jnp.matmul(jnp.linalg.inv(bradford) * scale[..., None, :], bradford,
                    precision=HIGHEST)
