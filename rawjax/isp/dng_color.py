"""Camera -> CIE XYZ (D50) from DNG colour metadata, as the DNG SDK does.

DNG specification 1.6, "Mapping Camera Color Space to CIE XYZ Space":
  * XYZtoCamera(T) = AB . CC(T) . CM(T), with CM and CC interpolated between
    the two calibration illuminants linearly in inverse colour temperature;
  * the white point xy is the fixed point of xy = xy(XYZtoCamera(T(xy))^-1 .
    AsShotNeutral), T(xy) by Robertson's (1968) method (as the SDK);
  * with ForwardMatrix: CameraToXYZ_D50 = FM . D . (AB . CC)^-1 with
    D = diag(1 / ReferenceNeutral), FM normalised so FM . 1 = XYZ(D50);
  * without: CameraToXYZ_D50 = (XYZtoCamera . Bradford(D50 -> white))^-1,
    scaled so the largest camera channel of D50 white is 1.

The result maps *raw* (not white-balanced) camera RGB to XYZ relative to D50;
the as-shot neutral maps to D50 white. `camera_to_srgb_dng` adds the Bradford
D50 -> D65 step and the sRGB primaries. This is Adobe's rendering colour; the
dcraw/LibRaw matrix is `color.camera_to_srgb_from_xyz_to_camera`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax.isp import color

HIGHEST = jax.lax.Precision.HIGHEST

# EXIF LightSource code -> temperature (K), the DNG SDK's nominal values.
ILLUMINANT_TEMPERATURE = {
    1: 5500.0,   # daylight
    2: 4150.0,   # fluorescent
    3: 2850.0,   # tungsten
    4: 5500.0,   # flash
    9: 5500.0,   # fine weather
    10: 6500.0,  # cloudy
    11: 7500.0,  # shade
    12: 6400.0,  # daylight fluorescent (5700-7100 K)
    13: 5050.0,  # day white fluorescent (4600-5500 K)
    14: 4150.0,  # cool white fluorescent (3800-4500 K)
    15: 3525.0,  # white fluorescent (3250-3800 K)
    16: 2925.0,  # warm white fluorescent (2600-3250 K)
    17: 2850.0,  # standard light A
    18: 5500.0,  # standard light B
    19: 6500.0,  # standard light C
    20: 5500.0,  # D55
    21: 6500.0,  # D65
    22: 7500.0,  # D75
    23: 5000.0,  # D50
    24: 3200.0,  # ISO studio tungsten
}

# Robertson (1968) isotemperature lines: mired, u, v, slope (Wyszecki &
# Stiles; 325 mired u corrected to 0.24792 as Lindbloom and the DNG SDK).
_ROBERTSON = np.array([
    (0, 0.18006, 0.26352, -0.24341), (10, 0.18066, 0.26589, -0.25479),
    (20, 0.18133, 0.26846, -0.26876), (30, 0.18208, 0.27119, -0.28539),
    (40, 0.18293, 0.27407, -0.30470), (50, 0.18388, 0.27709, -0.32675),
    (60, 0.18494, 0.28021, -0.35156), (70, 0.18611, 0.28342, -0.37915),
    (80, 0.18740, 0.28668, -0.40955), (90, 0.18880, 0.28997, -0.44278),
    (100, 0.19032, 0.29326, -0.47888), (125, 0.19462, 0.30141, -0.58204),
    (150, 0.19962, 0.30921, -0.70471), (175, 0.20525, 0.31647, -0.84901),
    (200, 0.21142, 0.32312, -1.0182), (225, 0.21807, 0.32909, -1.2168),
    (250, 0.22511, 0.33439, -1.4512), (275, 0.23247, 0.33904, -1.7298),
    (300, 0.24010, 0.34308, -2.0637), (325, 0.24792, 0.34655, -2.4681),
    (350, 0.25591, 0.34951, -2.9641), (375, 0.26400, 0.35200, -3.5814),
    (400, 0.27218, 0.35407, -4.3633), (425, 0.28039, 0.35577, -5.3762),
    (450, 0.28863, 0.35714, -6.7262), (475, 0.29685, 0.35823, -8.5955),
    (500, 0.30505, 0.35907, -11.324), (525, 0.31320, 0.35968, -15.628),
    (550, 0.32129, 0.36011, -23.325), (575, 0.32931, 0.36038, -40.770),
    (600, 0.33724, 0.36051, -116.45)])


def xy_to_cct(xy: ArrayLike) -> jax.Array:
  """Correlated colour temperature (K) of chromaticities by Robertson 1968.

  Args:
    xy: (..., 2) CIE 1931 chromaticities.

  Returns:
    (...) temperature in kelvin; equal to colour-science's
    `uv_to_CCT_Robertson1968` on the CIE 1960 uv of `xy`.
  """
  xy = jnp.asarray(xy, jnp.float32)
  x, y = xy[..., 0], xy[..., 1]
  denominator = -2.0 * x + 12.0 * y + 3.0
  u = (4.0 * x / denominator)[..., None]
  v = (6.0 * y / denominator)[..., None]
  mired, u_line, v_line, slope = (jnp.asarray(c, jnp.float32)
                                  for c in _ROBERTSON.T)
  length = jnp.hypot(1.0, slope)
  # Signed distance to each line (first line excluded, as the search starts
  # between lines 0 and 1).
  distance = (-(u - u_line[1:]) * (slope[1:] / length[1:]) +
              (v - v_line[1:]) / length[1:])
  crossed = distance <= 0
  index = jnp.where(crossed.any(-1), jnp.argmax(crossed, axis=-1) + 1, 30)
  d_here = -jnp.minimum(jnp.take_along_axis(distance, index[..., None] - 1,
                                            -1)[..., 0], 0.0)
  d_before = jnp.take_along_axis(distance,
                                 jnp.maximum(index - 2, 0)[..., None], -1)[..., 0]
  f = jnp.where(index == 1, 0.0, d_here / jnp.where(
      index == 1, 1.0, d_before + d_here))
  return 1e6 / (mired[index - 1] * f + mired[index] * (1.0 - f))


def _xyz_to_xy(xyz: jnp.ndarray) -> jnp.ndarray:
  return xyz[..., :2] / jnp.sum(xyz, axis=-1, keepdims=True)


def _interpolation_weight(temperature, t1: float, t2: float):
  """Weight of the first calibration, linear in 1/T, clamped to [0, 1]."""
  if t1 == t2:
    return jnp.ones_like(temperature)
  g = (1.0 / temperature - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)
  return jnp.clip(g, 0.0, 1.0)


def _mix(m1, m2, g):
  if m2 is None:
    return m1
  return g[..., None, None] * m1 + (1.0 - g[..., None, None]) * m2


def _as_matrix(m, default=None):
  if m is None:
    return default
  m = jnp.asarray(m, jnp.float32)
  if m.shape[-2:] != (3, 3):
    raise ValueError(f'DNG colour matrices must be 3x3, got {tuple(m.shape)}.')
  return m


def dng_camera_to_xyz_d50(
    *, as_shot_neutral: ArrayLike, color_matrix_1: ArrayLike,
    illuminant_1: int, color_matrix_2: ArrayLike | None = None,
    illuminant_2: int | None = None, forward_matrix_1: ArrayLike | None = None,
    forward_matrix_2: ArrayLike | None = None,
    camera_calibration_1: ArrayLike | None = None,
    camera_calibration_2: ArrayLike | None = None,
    analog_balance: ArrayLike | None = None,
    iterations: int = 30) -> tuple[jax.Array, jax.Array]:
  """Raw camera RGB -> XYZ (D50) and the scene white, from DNG tags.

  Args:
    as_shot_neutral: (3,) AsShotNeutral, the camera values of a neutral.
    color_matrix_1, color_matrix_2: (3, 3) ColorMatrix1/2 (XYZ -> camera).
    illuminant_1, illuminant_2: CalibrationIlluminant1/2 EXIF codes (static).
    forward_matrix_1, forward_matrix_2: optional (3, 3) ForwardMatrix1/2.
    camera_calibration_1, camera_calibration_2: optional CameraCalibration.
    analog_balance: optional (3,) AnalogBalance.
    iterations: fixed-point iterations for the white point (static).

  Returns:
    (camera_to_xyz_d50 (3, 3), white_xy (2,)).
  """
  neutral = jnp.asarray(as_shot_neutral, jnp.float32)
  eye = jnp.eye(3, dtype=jnp.float32)
  cm1 = _as_matrix(color_matrix_1)
  cm2 = _as_matrix(color_matrix_2)
  fm1, fm2 = _as_matrix(forward_matrix_1), _as_matrix(forward_matrix_2)
  cc1 = _as_matrix(camera_calibration_1, eye)
  cc2 = _as_matrix(camera_calibration_2, eye if cm2 is not None else None)
  ab = (jnp.diag(jnp.asarray(analog_balance, jnp.float32))
        if analog_balance is not None else eye)
  for code in (illuminant_1,) + ((illuminant_2,) if cm2 is not None else ()):
    if code not in ILLUMINANT_TEMPERATURE:
      raise ValueError(f'Unknown DNG CalibrationIlluminant {code}.')
  t1 = ILLUMINANT_TEMPERATURE[illuminant_1]
  t2 = ILLUMINANT_TEMPERATURE[illuminant_2] if cm2 is not None else t1

  def weight(xy):
    return _interpolation_weight(xy_to_cct(xy), t1, t2)

  def xyz_to_camera(g):
    return jnp.matmul(ab, jnp.matmul(_mix(cc1, cc2, g), _mix(cm1, cm2, g),
                                     precision=HIGHEST), precision=HIGHEST)

  xy = jnp.asarray(color.D50_XY, jnp.float32)
  for _ in range(iterations):
    xyz = jnp.linalg.solve(xyz_to_camera(weight(xy)), neutral)
    xy = _xyz_to_xy(xyz)
  g = weight(xy)
  d50 = jnp.asarray(color.xy_to_xyz_np(color.D50_XY), jnp.float32)
  if fm1 is not None:
    fm = _mix(fm1, fm2, g) if fm2 is not None else fm1
    fm = fm * (d50 / jnp.sum(fm, axis=-1))[:, None]
    ab_cc = jnp.matmul(ab, _mix(cc1, cc2, g), precision=HIGHEST)
    reference_neutral = jnp.linalg.solve(ab_cc, neutral)
    camera_to_xyz = jnp.matmul(fm / reference_neutral[None, :],
                               jnp.linalg.inv(ab_cc), precision=HIGHEST)
  else:
    pcs_to_camera = jnp.matmul(xyz_to_camera(g),
                               color.bradford_adaptation(color.D50_XY, xy),
                               precision=HIGHEST)
    pcs_to_camera = pcs_to_camera / jnp.max(pcs_to_camera @ d50)
    camera_to_xyz = jnp.linalg.inv(pcs_to_camera)
  return camera_to_xyz, xy


def camera_to_srgb_dng(camera_to_xyz_d50: ArrayLike) -> jax.Array:
  """Raw camera RGB -> linear sRGB (D65) from `dng_camera_to_xyz_d50`."""
  adapt = color.bradford_adaptation(color.D50_XY, color.D65_XY)
  return jnp.matmul(jnp.asarray(color.XYZ_TO_SRGB, jnp.float32),
                    jnp.matmul(adapt, jnp.asarray(camera_to_xyz_d50),
                               precision=HIGHEST), precision=HIGHEST)
