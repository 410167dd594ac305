"""UPI: unprocessing sRGB images into realistic raw data, and back.

T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet, J. T. Barron,
"Unprocessing Images for Learned Raw Denoising", CVPR 2019, as written in
the official code (google-research `unprocessing/unprocess.py`
and `process.py`). `unprocess` inverts a simplified camera pipeline with
random parameters drawn once per image:

    sRGB --inverse smoothstep--> --gamma 2.2 expansion--> linear sRGB
         --random sRGB->camera CCM--> --safe inverse WB and brightening-->
         --clip [0, 1]--> Bayer sampling --> raw (R, Gr, Gb, B)

and `upi_process` runs the pipeline forwards: white balance (and, by default,
the brightening gain), clip, demosaic, camera->sRGB CCM, clip, gamma 1/2.2
compression and (by default) smoothstep.

Where the official code differs from what one may expect:
  * its `process.py` re-applies neither the brightening gain (`rgb_gain`) nor
    the smoothstep tone curve, so it is not the inverse of its `unprocess`:
    it renders raw to a darker, flatter sRGB. `upi_process` re-applies both by
    default (then it inverts `unprocess` up to clipping); pass
    `apply_rgb_gain=False, apply_tone_curve=False` for the official rendering.
  * the tone curve and gamma are not the sRGB OETF: a pure 2.2 power with a
    1e-8 floor (so a linear 0 renders as 1e-8 ** (1/2.2) = 2.3e-4 before
    smoothstep) and the smoothstep 3x^2 - 2x^3.
  * its bilinear demosaic upsamples each Bayer plane with TensorFlow's
    legacy `resize_bilinear` (plus flips to align the phases). Inside the
    image this is the textbook bilinear demosaic (`demosaic_bilinear`); at
    the borders each plane is extended by edge replication, whereas
    colour-demosaicing and `demosaic_bilinear` reflect the masked mosaic (a
    flat field stays flat with UPI's, not with theirs). `demosaic_upi`
    reproduces UPI's exactly; 'bilinear' and 'malvar' are options.
  * highlights are not inverted: the inverse gains fade to 1 where the linear
    camera gray exceeds 0.9 ("safe" gains), and the raw is clipped to
    [0, 1]; the forward pass clips too.
  * the CCM is dcraw's construction (sRGB->XYZ with Lindbloom's 7-digit
    matrix, rows normalised to 1), from a random convex combination of four
    cameras' XYZ->camera matrices whose weights are U(1e-8, 1e8) normalised
    (not a Dirichlet(1) draw).
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import _math, cfa, color
from rawjax.isp import demosaic as demosaic_lib

Layout = Literal['packed', 'mosaic', 'rgb']
Demosaic = Literal['upi', 'bilinear', 'malvar']
LAYOUTS = ('packed', 'mosaic', 'rgb')

HIGHEST = jax.lax.Precision.HIGHEST

# XYZ -> camera matrices of the four cameras in UPI's official code.
UPI_XYZ_TO_CAMERAS = np.array([
    [[1.0234, -0.2969, -0.2266],
     [-0.5625, 1.6328, -0.0469],
     [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202],
     [-0.613, 1.3513, 0.2906],
     [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639],
     [-0.2887, 1.0725, 0.2496],
     [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562],
     [-0.4782, 1.3016, 0.1933],
     [-0.097, 0.1581, 0.5181]]], np.float32)

GAMMA = 2.2
SAFE_GAIN_INFLECTION = 0.9
# Lower bound of x(1 - x) in the derivative of the inverse smoothstep, whose
# true slope 1 / (6 x (1 - x)) is infinite at 0 and 1.
_MIN_SMOOTHSTEP_SLOPE = 6e-6


class UPIGains(NamedTuple):
  """UPI's random gains (a pytree), each of the batch shape.

  Attributes:
    rgb_gain: brightening, 1 / N(0.8, 0.1^2); the raw is divided by it.
    red_gain: white-balance gain of red, U(1.9, 2.4).
    blue_gain: white-balance gain of blue, U(1.5, 1.9).
  """
  rgb_gain: jax.Array
  red_gain: jax.Array
  blue_gain: jax.Array


@flax.struct.dataclass
class UPIMetadata:
  """What `unprocess` drew for an image and `upi_process` needs; a pytree.

  Attributes:
    srgb_to_cam: (..., 3, 3) linear sRGB -> camera RGB, rows summing to 1
      (UPI's `rgb2cam`).
    cam_to_srgb: (..., 3, 3) its inverse (UPI's `cam2rgb`); its rows sum
      to 1 too.
    rgb_gain, red_gain, blue_gain: (...) the `UPIGains`.
    layout: static; 'packed' (..., H/2, W/2, 4) canonical (R, Gr, Gb, B),
      'mosaic' (..., H, W) or 'rgb' (..., H, W, 3) full-resolution camera RGB.
    pattern: static CFA pattern of the Bayer sampling ('RGGB' in UPI).
  """
  srgb_to_cam: jax.Array
  cam_to_srgb: jax.Array
  rgb_gain: jax.Array
  red_gain: jax.Array
  blue_gain: jax.Array
  layout: str = flax.struct.field(pytree_node=False, default='packed')
  pattern: str = flax.struct.field(pytree_node=False, default='RGGB')

  @classmethod
  def create(cls, *, srgb_to_cam: ArrayLike, rgb_gain: ArrayLike,
             red_gain: ArrayLike, blue_gain: ArrayLike,
             layout: Layout = 'packed',
             pattern: str = 'RGGB') -> 'UPIMetadata':
    """Validates the parameters and computes `cam_to_srgb` by inversion."""
    fn = 'UPIMetadata'
    srgb_to_cam = _checks.as_float(srgb_to_cam, name='srgb_to_cam', fn=fn)
    if srgb_to_cam.shape[-2:] != (3, 3):
      raise ValueError(f'{fn}: srgb_to_cam must be (..., 3, 3), got shape '
                       f'{tuple(srgb_to_cam.shape)}.')
    gains = [_checks.as_float(g, name=n, fn=fn) for g, n in (
        (rgb_gain, 'rgb_gain'), (red_gain, 'red_gain'),
        (blue_gain, 'blue_gain'))]
    batch_shape = srgb_to_cam.shape[:-2]
    for gain, name in zip(gains, ('rgb_gain', 'red_gain', 'blue_gain')):
      if gain.shape != batch_shape:
        raise ValueError(f'{fn}: {name} must have the batch shape '
                         f'{batch_shape} of srgb_to_cam, got '
                         f'{tuple(gain.shape)}.')
    return cls(srgb_to_cam=srgb_to_cam,
               cam_to_srgb=_inverse_3x3(srgb_to_cam),
               rgb_gain=gains[0], red_gain=gains[1], blue_gain=gains[2],
               layout=_validate_layout(layout, fn),
               pattern=cfa.validate_pattern(pattern))


def _inverse_3x3(matrix: jnp.ndarray) -> jnp.ndarray:
  """(..., 3, 3) inverse by cofactors: exact like LU for these well-
  conditioned matrices, and it compiles in a fraction of the time of
  `jnp.linalg.inv` (which every jitted `unprocess` would contain)."""
  a, b, c = matrix[..., 0, :], matrix[..., 1, :], matrix[..., 2, :]
  cofactors = jnp.stack([jnp.cross(b, c), jnp.cross(c, a), jnp.cross(a, b)],
                        axis=-1)
  determinant = jnp.sum(a * cofactors[..., 0], axis=-1)
  return cofactors / determinant[..., None, None]


def _validate_layout(layout: str, fn: str) -> str:
  if layout not in LAYOUTS:
    raise ValueError(f'{fn}: layout must be one of {LAYOUTS}, got '
                     f'{layout!r}.')
  return layout


# --- random parameters -------------------------------------------------------

def random_ccm(key: jax.Array, *, shape: tuple[int, ...] = (),
               xyz_to_cameras: ArrayLike = UPI_XYZ_TO_CAMERAS) -> jax.Array:
  """UPI's random linear sRGB -> camera colour matrix.

  xyz_to_cam = sum_i w_i M_i / sum_i w_i with w_i ~ U(1e-8, 1e8) i.i.d. (one
  weight per camera matrix M_i, drawn as `uniform(key, shape + (n,))`);
  srgb_to_cam = xyz_to_cam @ sRGB->XYZ (Lindbloom's D65 matrix, as UPI and
  LibRaw), then each row divided by its sum so that white stays white.

  Args:
    key: PRNG key.
    shape: batch shape (one matrix per image).
    xyz_to_cameras: (n, 3, 3) XYZ -> camera matrices to mix; UPI's four
      cameras by default.

  Returns:
    (*shape, 3, 3) float32 matrix with rows summing to 1; apply it with
    `apply_ccm`. Its inverse is UPI's `cam2rgb` and equals
    `camera_to_srgb_from_xyz_to_camera(xyz_to_cam)`.
  """
  fn = 'random_ccm'
  cameras = _checks.as_float(xyz_to_cameras, name='xyz_to_cameras', fn=fn)
  if cameras.ndim != 3 or cameras.shape[1:] != (3, 3) or not cameras.shape[0]:
    raise ValueError(f'{fn}: xyz_to_cameras must be (n, 3, 3) with n >= 1, '
                     f'got shape {tuple(cameras.shape)}.')
  weights = jax.random.uniform(key, tuple(shape) + cameras.shape[:1],
                               minval=1e-8, maxval=1e8)
  weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
  xyz_to_cam = jnp.einsum('...n,nij->...ij', weights, cameras,
                          precision=HIGHEST)
  srgb_to_cam = jnp.matmul(
      xyz_to_cam, jnp.asarray(color.LIBRAW_SRGB_TO_XYZ, jnp.float32),
      precision=HIGHEST)
  return srgb_to_cam / jnp.sum(srgb_to_cam, axis=-1, keepdims=True)


def random_gains(key: jax.Array, *, shape: tuple[int, ...] = (),
                 inverse_rgb_gain_mean: float = 0.8,
                 inverse_rgb_gain_std: float = 0.1,
                 red_range: tuple[float, float] = (1.9, 2.4),
                 blue_range: tuple[float, float] = (1.5, 1.9)) -> UPIGains:
  """UPI's random brightening and white-balance gains.

  rgb_gain = 1 / N(0.8, 0.1^2), red_gain ~ U(1.9, 2.4),
  blue_gain ~ U(1.5, 1.9) (the official `random_gains`). The normal has no
  truncation, as in UPI: float32 normals from JAX stay within about 5.4
  sigma, so 1 / rgb_gain > 0.25 with the defaults.

  Args:
    key: PRNG key (split into three).
    shape: batch shape (one set per image).
    inverse_rgb_gain_mean, inverse_rgb_gain_std: the normal of 1 / rgb_gain.
    red_range, blue_range: bounds of the uniform white-balance gains.

  Returns:
    `UPIGains` of float32 arrays of shape `shape`.
  """
  rgb_key, red_key, blue_key = jax.random.split(key, 3)
  shape = tuple(shape)
  inverse_rgb_gain = (inverse_rgb_gain_mean + inverse_rgb_gain_std *
                      jax.random.normal(rgb_key, shape))
  return UPIGains(
      rgb_gain=1.0 / inverse_rgb_gain,
      red_gain=jax.random.uniform(red_key, shape, minval=red_range[0],
                                  maxval=red_range[1]),
      blue_gain=jax.random.uniform(blue_key, shape, minval=blue_range[0],
                                   maxval=blue_range[1]))


def random_upi_metadata(key: jax.Array, *, shape: tuple[int, ...] = (),
                        layout: Layout = 'packed',
                        pattern: str = 'RGGB') -> UPIMetadata:
  """Draws UPI's per-image parameters: `random_ccm` and `random_gains`.

  Args:
    key: PRNG key, split into (ccm key, gains key).
    shape: batch shape (one parameter set per image).
    layout: raw layout that `unprocess` produces with this metadata.
    pattern: CFA pattern of its Bayer sampling.

  Returns:
    `UPIMetadata` with leaves of leading shape `shape`.
  """
  ccm_key, gains_key = jax.random.split(key)
  gains = random_gains(gains_key, shape=shape)
  return UPIMetadata.create(srgb_to_cam=random_ccm(ccm_key, shape=shape),
                            rgb_gain=gains.rgb_gain,
                            red_gain=gains.red_gain,
                            blue_gain=gains.blue_gain,
                            layout=layout, pattern=pattern)


# --- tone curve and gamma ----------------------------------------------------

def smoothstep(x: ArrayLike) -> jax.Array:
  """UPI's global tone curve, the smoothstep 3x^2 - 2x^3.

  Args:
    x: any shape; clipped to [0, 1] first (the curve is monotone only there).

  Returns:
    Same shape, in [0, 1].
  """
  x = jnp.clip(_checks.as_float(x, name='x', fn='smoothstep'), 0.0, 1.0)
  return x * x * (3.0 - 2.0 * x)


@jax.custom_jvp
def _inverse_smoothstep(y: jnp.ndarray) -> jnp.ndarray:
  # UPI's 0.5 - sin(asin(1 - 2y) / 3), rewritten with
  # asin(1 - 2y) = pi/2 - 2 asin(sqrt(y)) and mirrored about y = 1/2 so that
  # no 1 - small cancels in float32: for y <= 1/2 and d = 2/3 asin(sqrt(y)),
  # x = sqrt(3)/2 sin(d) + sin(d/2)^2, and x(1 - y) = 1 - x(y).
  lower = jnp.minimum(y, 1.0 - y)
  d = (2.0 / 3.0) * jnp.arcsin(jnp.sqrt(lower))
  x_lower = (np.sqrt(3.0) / 2.0) * jnp.sin(d) + jnp.square(jnp.sin(0.5 * d))
  return jnp.where(y <= 0.5, x_lower, 1.0 - x_lower)


@_inverse_smoothstep.defjvp
def _inverse_smoothstep_jvp(primals, tangents):
  (y,), (y_dot,) = primals, tangents
  x = _inverse_smoothstep(y)
  slope = jnp.maximum(6.0 * x * (1.0 - x), _MIN_SMOOTHSTEP_SLOPE)
  return x, y_dot / slope


def inverse_smoothstep(y: ArrayLike) -> jax.Array:
  """Inverse of `smoothstep`: UPI's 0.5 - sin(asin(1 - 2y) / 3).

  Evaluated in a cancellation-free form (equal to UPI's formula, tested
  against it in float64). The true derivative 1 / (6 x (1 - x)) is infinite
  at y = 0 and 1; its denominator is kept >= 6e-6, so gradients are finite
  everywhere (exact for y in about [3e-12, 1 - 3e-12]).

  Args:
    y: any shape; clipped to [0, 1] first, as UPI does.

  Returns:
    Same shape, in [0, 1].
  """
  y = jnp.clip(_checks.as_float(y, name='y', fn='inverse_smoothstep'),
               0.0, 1.0)
  return _inverse_smoothstep(y)


def gamma_expansion(x: ArrayLike, *, gamma: float = GAMMA) -> jax.Array:
  """UPI's gamma to linear: max(x, 1e-8) ** 2.2 (not the sRGB EOTF).

  Args:
    x: any shape, nominally [0, 1]; values below 1e-8 count as 1e-8.
    gamma: the exponent.
  """
  x = _checks.as_float(x, name='x', fn='gamma_expansion')
  return _math.safe_power(x, gamma)


def gamma_compression(x: ArrayLike, *, gamma: float = GAMMA) -> jax.Array:
  """UPI's linear to gamma: max(x, 1e-8) ** (1 / 2.2) (not the sRGB OETF).

  The inverse of `gamma_expansion` for x >= 1e-8 ** (1 / gamma) (2.3e-4 at
  2.2); a linear 0 maps to 2.3e-4. The gradient is finite (<= 1e4) at 0.
  """
  x = _checks.as_float(x, name='x', fn='gamma_compression')
  return _math.safe_power(x, 1.0 / gamma)


# --- gains -------------------------------------------------------------------

def _wb_gains(red_gain: jnp.ndarray, blue_gain: jnp.ndarray) -> jnp.ndarray:
  """(...) red and blue gains -> (..., 3) (R, G, B) gains with G = 1."""
  return jnp.stack([red_gain, jnp.ones_like(red_gain), blue_gain], axis=-1)


def safe_invert_gains(camera_rgb: ArrayLike, rgb_gain: ArrayLike,
                      red_gain: ArrayLike, blue_gain: ArrayLike) -> jax.Array:
  """Inverts white balance and brightening, sparing highlights (UPI).

  g = (1 / red_gain, 1, 1 / blue_gain) / rgb_gain; with the pixel's gray
  m = mean(RGB) and mask = (max(m - 0.9, 0) / 0.1)^2, the applied gain is
  max(mask + (1 - mask) g, g), so near-white pixels are not dimmed below
  white (saturated pixels stay saturated). `white_balance` with
  (red_gain, 1, blue_gain) * rgb_gain inverts it where m <= 0.9.

  Args:
    camera_rgb: (..., H, W, 3) linear camera RGB.
    rgb_gain, red_gain, blue_gain: scalars or with camera_rgb's leading dims.

  Returns:
    (..., H, W, 3), not clipped.
  """
  fn = 'safe_invert_gains'
  image = _checks.as_float(camera_rgb, name='camera_rgb', fn=fn)
  _checks.check_min_rank(image, 3, name='camera_rgb', fn=fn,
                         layout='(..., H, W, 3)')
  _checks.check_channels(image, 3, name='camera_rgb', fn=fn)
  rgb_gain, red_gain, blue_gain = (
      _checks.as_float(g, name=name, fn=fn) for g, name in (
          (rgb_gain, 'rgb_gain'), (red_gain, 'red_gain'),
          (blue_gain, 'blue_gain')))
  gains = _math.safe_divide(1.0, _wb_gains(red_gain, blue_gain))
  gains = _math.safe_divide(gains, rgb_gain[..., None])
  gains = gains[..., None, None, :]
  gray = jnp.mean(image, axis=-1, keepdims=True)
  mask = jnp.square(jnp.maximum(gray - SAFE_GAIN_INFLECTION, 0.0) /
                    (1.0 - SAFE_GAIN_INFLECTION))
  return image * jnp.maximum(mask + (1.0 - mask) * gains, gains)


# --- demosaic ----------------------------------------------------------------

def _half_sample(plane: jnp.ndarray, axis: int, step: int) -> jnp.ndarray:
  """Mean of each sample and its neighbour `step` (+-1) away along `axis`.

  The neighbour beyond the last (first) sample is the sample itself: edge
  replication, as TensorFlow's legacy resize_bilinear clamps its index.
  """
  n = plane.shape[axis]
  slice_ = functools.partial(jax.lax.slice_in_dim, plane, axis=axis)
  if step > 0:
    neighbour = jnp.concatenate([slice_(1, n), slice_(n - 1, n)], axis=axis)
  else:
    neighbour = jnp.concatenate([slice_(0, 1), slice_(0, n - 1)], axis=axis)
  return 0.5 * (plane + neighbour)


def _resample(plane: jnp.ndarray, source: tuple[int, int],
              target: tuple[int, int]) -> jnp.ndarray:
  """A Bayer plane sampled at cell offset `source`, interpolated bilinearly
  at cell offset `target` (both (row, col) inside the 2x2 cell)."""
  if target[0] != source[0]:
    plane = _half_sample(plane, -2, target[0] - source[0])
  if target[1] != source[1]:
    plane = _half_sample(plane, -1, target[1] - source[1])
  return plane


def demosaic_upi(packed: ArrayLike, *, pattern: str) -> jax.Array:
  """UPI's bilinear demosaic (official `process.demosaic`), any Bayer phase.

  Red and blue: each plane is upsampled x2 by bilinear interpolation between
  its own sample positions. Green at a red or blue site: the mean of the Gr
  plane interpolated there (between its left and right neighbours) and the
  Gb plane interpolated there (above and below), i.e. the 4-neighbour mean;
  at green sites the sample itself. Beyond the border each plane repeats its
  edge sample (TensorFlow's resize_bilinear with half_pixel_centers=False,
  and UPI's flips for the planes not at the cell origin). Inside the image
  this equals `demosaic_bilinear`; on the outer one-pixel ring it differs
  (that one reflects the masked mosaic, so a flat field does not stay flat).
  For 'RGGB' it is UPI's code exactly; other phases use the same
  construction at their own offsets.

  Args:
    packed: (..., h, w, 4) canonical (R, Gr, Gb, B), any range.
    pattern: CFA pattern whose sample positions the planes came from.

  Returns:
    (..., 2h, 2w, 3) camera RGB; within the input range (convex weights).
  """
  fn = 'demosaic_upi'
  x = _checks.as_float(packed, name='packed', fn=fn)
  _checks.check_min_rank(x, 3, name='packed', fn=fn,
                         layout='(..., H/2, W/2, 4)')
  _checks.check_channels(x, 4, name='packed', fn=fn)
  if 0 in x.shape[-3:-1]:
    raise ValueError(f'{fn}: packed must not be empty, got shape '
                     f'{tuple(x.shape)}.')
  offsets = cfa.channel_offsets(pattern)
  red_site, gr_site, gb_site, blue_site = offsets
  planes = [x[..., c] for c in range(4)]

  def green_between(site):
    return 0.5 * (_resample(planes[1], gr_site, site) +
                  _resample(planes[2], gb_site, site))

  # Values of each colour at the four sites, in canonical site order.
  red = [_resample(planes[0], red_site, site) for site in offsets]
  green = [green_between(red_site), planes[1], planes[2],
           green_between(blue_site)]
  blue = [_resample(planes[3], blue_site, site) for site in offsets]
  return jnp.stack([cfa.unpack(jnp.stack(colour, axis=-1), pattern=pattern)
                    for colour in (red, green, blue)], axis=-1)


# --- the two pipelines -------------------------------------------------------

def _check_metadata(metadata: UPIMetadata, fn: str) -> None:
  if not isinstance(metadata, UPIMetadata):
    raise TypeError(f'{fn}: metadata must be a UPIMetadata (from unprocess '
                    f'or random_upi_metadata), got {type(metadata).__name__}.')


def _check_batch(metadata: UPIMetadata, batch_shape: tuple[int, ...],
                 fn: str) -> None:
  md_shape = tuple(metadata.rgb_gain.shape)
  if md_shape not in ((), batch_shape):
    raise ValueError(
        f'{fn}: metadata batch shape {md_shape} does not match the image '
        f'batch shape {batch_shape} (use one parameter set per image, or '
        'unbatched metadata shared by all).')


def unprocess_with_metadata(srgb: ArrayLike,
                            metadata: UPIMetadata) -> jax.Array:
  """Unprocesses sRGB to raw with given UPI parameters (no randomness).

  inverse smoothstep -> gamma expansion -> srgb_to_cam -> safe inverse
  gains -> clip [0, 1] -> Bayer sampling in `metadata.layout`
  (Brooks et al. 2019; the official `unprocess`).

  Args:
    srgb: (..., H, W, 3) sRGB in [0, 1] (clipped to it); H, W even unless
      the layout is 'rgb'.
    metadata: `UPIMetadata`, unbatched or with srgb's leading dims.

  Returns:
    Raw in [0, 1]: (..., H/2, W/2, 4) canonical (R, Gr, Gb, B) for
    'packed', (..., H, W) for 'mosaic', (..., H, W, 3) camera RGB for 'rgb'.
  """
  fn = 'unprocess'
  _check_metadata(metadata, fn)
  x = _checks.as_float(srgb, name='srgb', fn=fn)
  _checks.check_min_rank(x, 3, name='srgb', fn=fn, layout='(..., H, W, 3)')
  _checks.check_channels(x, 3, name='srgb', fn=fn)
  if metadata.layout != 'rgb':
    _checks.check_even_hw(x, name='srgb', fn=fn, hw_axes=(-3, -2))
  _check_batch(metadata, x.shape[:-3], fn)
  x = gamma_expansion(inverse_smoothstep(x))
  x = color.apply_ccm(x, metadata.srgb_to_cam)
  x = safe_invert_gains(x, metadata.rgb_gain, metadata.red_gain,
                        metadata.blue_gain)
  x = jnp.clip(x, 0.0, 1.0)
  if metadata.layout == 'rgb':
    return x
  mosaic = demosaic_lib.mosaic(x, pattern=metadata.pattern)
  if metadata.layout == 'mosaic':
    return mosaic
  return cfa.pack(mosaic, pattern=metadata.pattern)


def unprocess(key: jax.Array, srgb: ArrayLike, *, layout: Layout = 'packed',
              pattern: str = 'RGGB') -> tuple[jax.Array, UPIMetadata]:
  """UPI: sRGB images to realistic raw with random camera parameters.

  Draws one parameter set per image (`random_upi_metadata(key,
  shape=batch_shape)`) and applies `unprocess_with_metadata`. No noise: add
  it with `rawjax.isp.add_noise` / `add_random_noise` (UPI's recipe is
  `random_noise_levels` then `add_noise` on the packed raw).

  Args:
    key: PRNG key.
    srgb: (..., H, W, 3) sRGB in [0, 1] (e.g. 8-bit / 255); H, W even unless
      layout is 'rgb'.
    layout: 'packed' (UPI's output), 'mosaic' or 'rgb' (no Bayer sampling).
    pattern: CFA pattern of the Bayer sampling ('RGGB' in UPI).

  Returns:
    (raw, metadata): raw as in `unprocess_with_metadata`, in [0, 1], and the
    sampled `UPIMetadata` with srgb's leading (batch) dims.
  """
  srgb = _checks.as_float(srgb, name='srgb', fn='unprocess')
  _checks.check_min_rank(srgb, 3, name='srgb', fn='unprocess',
                         layout='(..., H, W, 3)')
  metadata = random_upi_metadata(key, shape=srgb.shape[:-3], layout=layout,
                                 pattern=pattern)
  return unprocess_with_metadata(srgb, metadata), metadata


def upi_process(raw: ArrayLike, metadata: UPIMetadata, *,
                demosaic: Demosaic = 'upi', apply_rgb_gain: bool = True,
                apply_tone_curve: bool = True) -> jax.Array:
  """UPI's forward pipeline: raw from `unprocess` back to sRGB.

  white balance (red_gain, 1, blue_gain) [x rgb_gain] -> clip [0, 1] ->
  demosaic -> cam_to_srgb -> clip [0, 1] -> gamma compression
  [-> smoothstep]. With `apply_rgb_gain=False, apply_tone_curve=False` this
  is the official `process.py` (UPI's rendering of network outputs); the
  defaults make it the inverse of `unprocess_with_metadata` wherever no stage
  clips (linear camera gray <= 0.9, camera values in [0, 1]) and up to the
  demosaic's interpolation of the missing samples.

  Args:
    raw: in `metadata.layout`: (..., h, w, 4) packed canonical, (..., H, W)
      mosaic, or (..., H, W, 3) camera RGB; normalised, nominally [0, 1]
      (noisy raw may leave it: it is clipped after white balance).
    metadata: the `UPIMetadata` from `unprocess`, unbatched or with raw's
      leading dims.
    demosaic: 'upi' (`demosaic_upi`, the official code), 'bilinear'
      (`demosaic_bilinear`) or 'malvar' (`demosaic_malvar`); unused for
      'rgb'.
    apply_rgb_gain: re-apply the brightening that `unprocess` removed.
    apply_tone_curve: apply smoothstep after the gamma.

  Returns:
    (..., H, W, 3) sRGB in [0, 1].
  """
  fn = 'upi_process'
  _check_metadata(metadata, fn)
  if demosaic not in ('upi', 'bilinear', 'malvar'):
    raise ValueError(f"{fn}: demosaic must be 'upi', 'bilinear' or "
                     f"'malvar', got {demosaic!r}.")
  x = _checks.as_float(raw, name='raw', fn=fn)
  layout, pattern = metadata.layout, metadata.pattern
  if layout == 'mosaic':
    _checks.check_min_rank(x, 2, name='raw', fn=fn, layout='(..., H, W)')
    x = cfa.pack(x, pattern=pattern)
  elif layout in ('packed', 'rgb'):
    channels = 4 if layout == 'packed' else 3
    _checks.check_min_rank(x, 3, name='raw', fn=fn,
                           layout=f'(..., h, w, {channels})')
    if x.shape[-1] != channels:
      raise ValueError(f'{fn}: metadata.layout is {layout!r}, so raw must '
                       f'have {channels} channels on the last axis, got '
                       f'shape {tuple(x.shape)}.')
  else:
    _validate_layout(layout, fn)
  _check_batch(metadata, x.shape[:-3], fn)
  gains = _wb_gains(metadata.red_gain, metadata.blue_gain)
  if apply_rgb_gain:
    gains = gains * metadata.rgb_gain[..., None]
  x = jnp.clip(color.white_balance(x, gains), 0.0, 1.0)
  if layout != 'rgb':
    if demosaic == 'upi':
      x = demosaic_upi(x, pattern=pattern)
    else:
      demosaic_fn = (demosaic_lib.demosaic_bilinear if demosaic == 'bilinear'
                     else demosaic_lib.demosaic_malvar)
      x = demosaic_fn(cfa.unpack(x, pattern=pattern), pattern=pattern)
  x = jnp.clip(color.apply_ccm(x, metadata.cam_to_srgb), 0.0, 1.0)
  x = gamma_compression(x)
  return smoothstep(x) if apply_tone_curve else x
