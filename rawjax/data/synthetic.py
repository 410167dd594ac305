"""A physically based two-camera raw simulator: the embedded default data.

Every scene is a field of measured reflectance spectra lit by measured
illuminant spectra and seen through the measured spectral sensitivities of
real cameras (eq. 1 of the semi-supervised raw-to-raw paper):

    raw_c(x) = k * sum_lambda E(x, lambda) R(x, lambda) S_c(lambda)

(400-700 nm at 10 nm), then CFA sampling, heteroscedastic shot + read noise,
black level, quantisation and clipping. The same scene rendered through two
cameras gives pixel-aligned raw-to-raw pairs, which no captured dataset has.

Reflectances are convex (barycentric) mixtures of measured spectra from
colour-science (ColorChecker N Ohta, PMC memory colours, CIE 1995 test
colours, NIST CQS samples, black), never a 3-D linear basis (with which the
cross-camera map would be exactly a 3x3 matrix):
  * 'natural' scenes take a crop of a scikit-image photograph and give each
    pixel the mixture of the four library spectra at the corners of the
    Delaunay tetrahedron (in D65 linear sRGB) that contains its colour, with
    the barycentric weights: under D65 the scene looks like the photograph;
  * 'dead_leaves' scenes stack occluding discs and rectangles with power-law
    radii (the dead-leaves model of natural image statistics), each a mixture
    of three library spectra and black whose weights vary over the leaf with
    a gradient or a texture (scikit-image's brick/grass/gravel or fractal
    noise).
A ColorChecker (the 24 Ohta spectra in a black frame) is placed in a fraction
of the scenes, with the patch boxes returned for chart-based calibration.

Illumination is one illuminant, or two or three blended by smooth spatial
maps (point lights at random positions and heights over a Lambertian floor,
plus ambient: the LSMI multi-illuminant setting). Illuminants: the CIE D
series over a CCT range, Planckian radiators (tungsten, A), CIE FL1-FL12 and
the CIE LED illuminants.

Each capture has its camera's CFA phase, black and white level; its
metadata holds the as-shot white balance (the camera's response to white
under the image-mean illuminant) and an XYZ -> camera matrix fitted from the
sensitivities (white-preserving least squares over the reflectance library
under D65). Its sRGB rendering uses the colour stages of the reference
pipeline (`rawjax.isp.process` without demosaicing) on the clean camera RGB.

Generation is deterministic from (seed, scene index): each scene draws from
its own numpy Generator and JAX key, so a scene does not depend on the
number of scenes, their order, or which cameras render it.

    python -m rawjax.data.synthetic --out DIR --preset raw2raw --num 300

writes the Afifi & Abuolaim raw2raw layout (see `write_dataset`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import time
import zlib
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.data import _spectra
from rawjax.isp import cfa, color, levels, noise as noise_lib
from rawjax.isp import demosaic as demosaic_lib
from rawjax.isp.metadata import RawMetadata

__all__ = [
    'CameraProfile', 'Capture', 'DEFAULT_CAMERAS', 'PRESETS', 'Scene',
    'SceneConfig', 'camera_profile', 'fit_xyz_to_camera', 'generate_scene',
    'generate_scenes', 'main', 'write_dataset'
]

HIGHEST = jax.lax.Precision.HIGHEST
NATURAL_IMAGES = ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle')
TEXTURE_IMAGES = ('brick', 'grass', 'gravel')
_D65_WHITE_XYZ = color.xy_to_xyz_np(color.D65_XY)
# The ColorChecker N Ohta patch used for the chart's frame ('black 2 (1.5 D)').
_CHART_FRAME = 23
_CHART_ROWS, _CHART_COLS = 4, 6
_MAX_LIGHTS = 3


# ----------------------------------------------------------------- cameras --

def fit_xyz_to_camera(sensitivities: np.ndarray) -> np.ndarray:
  """A camera's XYZ -> camera matrix fitted from its sensitivities.

  White-preserving least squares (Finlayson & Drew 1996): over the measured
  reflectance library under D65, the camera -> XYZ matrix M minimising
  ||M rgb - XYZ||^2 subject to M rgb_white = XYZ_white, inverted. Scaled so
  that D65 white (Y = 1) maps to a camera white whose largest channel is 1
  (the DNG ColorMatrix convention).

  Args:
    sensitivities: (31, 3) camera sensitivities on `_spectra.WAVELENGTHS`.

  Returns:
    (3, 3) float64 XYZ -> camera matrix, calibration illuminant D65.
  """
  _, library = _spectra.reflectance_library()
  d65 = _spectra.named_illuminants(('D65',))[0]
  surfaces = library[:-1]
  rgb = (surfaces * d65) @ sensitivities
  xyz = _spectra.xyz_of_reflectances(surfaces, d65)
  rgb_white = d65 @ sensitivities
  xyz_white = d65 @ _spectra.cmfs()
  gram_inv = np.linalg.inv(rgb.T @ rgb)
  unconstrained = (xyz.T @ rgb) @ gram_inv
  correction = np.outer(xyz_white - unconstrained @ rgb_white,
                        gram_inv @ rgb_white) / (rgb_white @ gram_inv @
                                                 rgb_white)
  camera_to_xyz = unconstrained + correction
  xyz_to_camera = np.linalg.inv(camera_to_xyz)
  return xyz_to_camera / np.max(xyz_to_camera @ (xyz_white / xyz_white[1]))


@dataclasses.dataclass(frozen=True, eq=False)
class CameraProfile:
  """A simulated camera: measured sensitivities and its raw format.

  Attributes:
    name: display name, e.g. 'Nikon 5100 (NPL)'.
    slug: folder name in the written dataset, e.g. 'nikon-5100'.
    sensitivities: (31, 3) R, G, B sensitivities on 400-700 nm at 10 nm,
      scaled so that a perfect white under D65 (luminance 1) gives a largest
      channel of 1 (so exposures are comparable between cameras).
    pattern: CFA pattern of the mosaic.
    black_level: black level, sensor units.
    white_level: saturation level, sensor units.
  """
  name: str
  slug: str
  sensitivities: np.ndarray
  pattern: str
  black_level: int
  white_level: int

  def __post_init__(self):
    cfa.validate_pattern(self.pattern)
    s = np.asarray(self.sensitivities, np.float64)
    if s.shape != (len(_spectra.WAVELENGTHS), 3) or not np.all(np.isfinite(s)):
      raise ValueError(f'CameraProfile {self.name!r}: sensitivities must be a '
                       f'finite ({len(_spectra.WAVELENGTHS)}, 3) array, got '
                       f'shape {s.shape}.')
    if not 0 <= self.black_level < self.white_level <= 65535:
      raise ValueError(f'CameraProfile {self.name!r}: need 0 <= black_level '
                       f'< white_level <= 65535, got {self.black_level} and '
                       f'{self.white_level}.')
    d65 = _spectra.named_illuminants(('D65',))[0]
    object.__setattr__(self, 'sensitivities', s / np.max(d65 @ s))

  @classmethod
  def from_colour(cls, name: str, *, slug: str, pattern: str,
                  black_level: int, white_level: int) -> 'CameraProfile':
    """A camera whose sensitivities colour-science ships (by its name)."""
    return cls(name=name, slug=slug,
               sensitivities=_spectra.camera_sensitivities(name),
               pattern=pattern, black_level=black_level,
               white_level=white_level)

  @classmethod
  def from_csv(cls, path: str | os.PathLike[str], *, name: str, slug: str,
               pattern: str, black_level: int,
               white_level: int) -> 'CameraProfile':
    """A camera from a CSV of 'wavelength, red, green, blue' rows (nm)."""
    return cls(name=name, slug=slug,
               sensitivities=_spectra.read_sensitivities_csv(path),
               pattern=pattern, black_level=black_level,
               white_level=white_level)

  @functools.cached_property
  def xyz_to_camera(self) -> np.ndarray:
    """(3, 3) XYZ -> camera (DNG ColorMatrix, calibrated under D65)."""
    return fit_xyz_to_camera(self.sensitivities)

  @functools.cached_property
  def cam_to_srgb(self) -> np.ndarray:
    """(3, 3) white-balanced camera -> linear sRGB, the LibRaw way."""
    from rawjax.io import raw as raw_io  # pylint: disable=g-import-not-at-top
    return raw_io.camera_to_srgb_from_xyz_to_camera(self.xyz_to_camera)


# The raw formats are choices (see docs/data.md): two CFA phases, a zero and
# a non-zero black, 14- and 12-bit, so every loader path is exercised. The
# Sigma SD Merrill is a Foveon camera; here its measured sensitivities sit
# behind a Bayer CFA.
NIKON_5100 = CameraProfile.from_colour(
    'Nikon 5100 (NPL)', slug='nikon-5100', pattern='RGGB', black_level=600,
    white_level=16383)
SIGMA_SDMERRILL = CameraProfile.from_colour(
    'Sigma SDMerill (NPL)', slug='sigma-sdmerill', pattern='GRBG',
    black_level=0, white_level=4095)
DEFAULT_CAMERAS = (NIKON_5100, SIGMA_SDMERRILL)


def camera_profile(camera: CameraProfile | str) -> CameraProfile:
  """A built-in profile by name or slug (a profile is returned as is)."""
  if isinstance(camera, CameraProfile):
    return camera
  for profile in DEFAULT_CAMERAS:
    if camera in (profile.name, profile.slug):
      return profile
  raise ValueError(f'Unknown camera {camera!r}: built-in cameras are '
                   f'{[p.slug for p in DEFAULT_CAMERAS]}; build a '
                   'CameraProfile (from_colour / from_csv) for others.')


# ------------------------------------------------------------- illuminants --

def _daylight(rng, config):
  cct = 1e6 / rng.uniform(1e6 / config.daylight_cct[1],
                          1e6 / config.daylight_cct[0])
  return f'D-series {cct:.0f} K', _spectra.daylight(cct)


def _planckian(rng, config):
  cct = rng.uniform(*config.planckian_cct)
  return f'Planckian {cct:.0f} K', _spectra.planckian(cct)


def _named(names):
  def sample(rng, config):
    del config
    i = int(rng.integers(len(names)))
    return names[i], _spectra.named_illuminants(names)[i]
  return sample


_FAMILIES = {'daylight': _daylight, 'planckian': _planckian,
             'fluorescent': _named(_spectra.FLUORESCENT),
             'led': _named(_spectra.LED)}


def _sample_illuminants(rng, config, count):
  families = [f for f, _ in config.illuminant_weights]
  p = np.array([w for _, w in config.illuminant_weights], np.float64)
  # Distinct families first (an LSMI scene mixes e.g. daylight and an LED),
  # repeating only when there are more lights than families.
  chosen = list(rng.choice(len(families), size=min(count, len(families)),
                           replace=False, p=p / p.sum()))
  while len(chosen) < count:
    chosen.append(rng.choice(len(families), p=p / p.sum()))
  names, spectra = zip(*[_family(families[i])(rng, config) for i in chosen])
  return tuple(names), np.stack(spectra)


def _family(name: str):
  """A family sampler, or a fixed colour-science illuminant by its name."""
  return _FAMILIES.get(name) or _named((name,))


# ------------------------------------------------------------------ config --

@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """What a scene may contain; the presets fix these per experiment.

  Attributes:
    height, width: mosaic size (even).
    multi_illuminant_fraction: probability of a 2- or 3-illuminant scene.
    three_illuminant_fraction: among those, probability of three lights.
    chart_fraction: probability of a ColorChecker in the scene.
    natural_fraction: probability of a photograph-driven scene (else dead
      leaves).
    illuminant_weights: relative probabilities of the families 'daylight',
      'planckian', 'fluorescent', 'led', or of fixed colour-science
      illuminants by name (e.g. (('D65', 1.0),)).
    daylight_cct, planckian_cct: CCT ranges (K) of those families.
    exposure: range of the 99th percentile of the scene's white-normalised
      XYZ after exposure (so a little of some scenes clips).
    optical_low_pass: every CFA site integrates its whole 2x2 cell (an
      optical low-pass filter), so packed images of cameras with different
      CFA phases are pixel-aligned; False samples the scene at each site,
      which shifts the packed channels of two phases by one pixel.
    noise: whether to add shot + read noise.
    shot_range: range of the shot-noise variance per unit signal (read noise
      follows UPI's log-linear relation, `rawjax.isp.noise`).
  """
  height: int = 256
  width: int = 256
  multi_illuminant_fraction: float = 0.3
  three_illuminant_fraction: float = 0.4
  chart_fraction: float = 0.5
  natural_fraction: float = 0.35
  illuminant_weights: tuple[tuple[str, float], ...] = (
      ('daylight', 0.4), ('planckian', 0.2), ('fluorescent', 0.2),
      ('led', 0.2))
  daylight_cct: tuple[float, float] = (4000.0, 12000.0)
  planckian_cct: tuple[float, float] = (2300.0, 3500.0)
  exposure: tuple[float, float] = (0.45, 0.9)
  optical_low_pass: bool = True
  noise: bool = True
  shot_range: tuple[float, float] = (2e-5, 5e-4)

  def __post_init__(self):
    if self.height % 2 or self.width % 2 or min(self.height, self.width) < 16:
      raise ValueError(f'SceneConfig: height and width must be even and >= '
                       f'16, got {self.height}x{self.width}.')
    for name in ('multi_illuminant_fraction', 'three_illuminant_fraction',
                 'chart_fraction', 'natural_fraction'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'SceneConfig: {name} must be in [0, 1].')
    if not self.illuminant_weights or any(
        w < 0 for _, w in self.illuminant_weights) or sum(
            w for _, w in self.illuminant_weights) <= 0:
      raise ValueError('SceneConfig: illuminant_weights needs non-negative '
                       'weights with a positive sum.')
    for family, _ in self.illuminant_weights:
      if family not in _FAMILIES:
        _spectra.named_illuminants((family,))  # raises for unknown names

  def replace(self, **changes) -> 'SceneConfig':
    return dataclasses.replace(self, **changes)


PRESETS = {
    # Afifi's raw2raw setting: mostly one light, low noise, charts in half.
    'raw2raw': SceneConfig(),
    # LSMI-like: every scene has two or three lights, most have a chart.
    'multi_illum': SceneConfig(multi_illuminant_fraction=1.0,
                               chart_fraction=0.7),
    # RAW-to-sRGB: one light, the full UPI noise range, few charts.
    'raw2srgb': SceneConfig(multi_illuminant_fraction=0.0, chart_fraction=0.2,
                            shot_range=(1e-4, 0.012)),
}


def _config(config: SceneConfig | str) -> SceneConfig:
  if isinstance(config, SceneConfig):
    return config
  if config not in PRESETS:
    raise ValueError(f'Unknown preset {config!r}; choose one of '
                     f'{", ".join(PRESETS)}.')
  return PRESETS[config]


def _light_maps(rng, h, w, count, *, multi):
  """(h, w, count) irradiance of point lights over a Lambertian floor."""
  size = max(h, w)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
  maps = []
  for _ in range(count):
    angle = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.2, 1.2) * size
    px = w / 2 + distance * np.cos(angle)
    py = h / 2 + distance * np.sin(angle)
    height = rng.uniform(0.3, 1.2) * size
    irradiance = height / ((xx - px)**2 + (yy - py)**2 + height**2)**1.5
    irradiance /= irradiance.mean()
    ambient = rng.uniform(0.0, 0.3) if multi else rng.uniform(0.3, 0.8)
    strength = rng.uniform(0.3, 1.0) if multi else 1.0
    maps.append(strength * (ambient + (1 - ambient) * irradiance))
  maps = np.stack(maps, axis=-1)
  return (maps / maps.sum(-1).mean()).astype(np.float32)


# ------------------------------------------------------------ reflectances --

class _Upsampler:
  """Colour -> barycentric mixture of 4 library spectra (Delaunay in RGB)."""

  def __init__(self):
    from scipy import spatial  # pylint: disable=g-import-not-at-top
    _, library = _spectra.reflectance_library()
    d65 = _spectra.named_illuminants(('D65',))[0]
    xyz = _spectra.xyz_of_reflectances(library, d65)
    self.vertices = xyz @ color.XYZ_TO_SRGB.T
    self.tri = spatial.Delaunay(self.vertices)
    # Out-of-hull colours are pulled towards the library's mean colour at
    # their own luminance; that axis is inside the hull up to `top`.
    self.centre = self.vertices.mean(0)
    low, high = 0.0, 10.0
    for _ in range(40):
      mid = 0.5 * (low + high)
      inside = self.tri.find_simplex(mid * self.centre[None])[0] >= 0
      low, high = (mid, high) if inside else (low, mid)
    self.top = low

  def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) linear sRGB -> (P, 4) library indices and convex weights."""
    luminance = rgb @ color.SRGB_TO_XYZ[1]
    scale = np.clip(luminance / (self.centre @ color.SRGB_TO_XYZ[1]),
                    1e-3 * self.top, 0.98 * self.top)
    anchor = scale[:, None] * self.centre
    simplex = np.full(len(rgb), -1)
    point = rgb.copy()
    for t in np.linspace(1.0, 0.0, 11):
      todo = np.flatnonzero(simplex < 0)
      if not todo.size:
        break
      candidate = anchor[todo] + t * (rgb[todo] - anchor[todo])
      found = self.tri.find_simplex(candidate)
      hit = found >= 0
      simplex[todo[hit]] = found[hit]
      point[todo[hit]] = candidate[hit]
    transform = self.tri.transform[simplex]
    b = np.einsum('pij,pj->pi', transform[:, :3], point - transform[:, 3])
    weights = np.clip(np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1),
                      0, None)
    weights /= weights.sum(1, keepdims=True)
    return (self.tri.simplices[simplex].astype(np.int32),
            weights.astype(np.float32))


@functools.lru_cache(maxsize=None)
def _upsampler() -> _Upsampler:
  return _Upsampler()


def _load_skimage(name: str) -> np.ndarray:
  from skimage import data  # pylint: disable=g-import-not-at-top
  if name == 'motorcycle':
    return data.stereo_motorcycle()[0]
  return getattr(data, name)()


@functools.lru_cache(maxsize=None)
def _natural_source(name: str) -> tuple[np.ndarray, np.ndarray]:
  """(H, W, 4) indices and weights of a photograph, computed once."""
  image = _load_skimage(name)[..., :3]
  codes = (image[..., 0].astype(np.int32) << 16 |
           image[..., 1].astype(np.int32) << 8 | image[..., 2])
  unique, inverse = np.unique(codes.ravel(), return_inverse=True)
  levels_8bit = np.asarray(color.srgb_decode(
      np.arange(256, dtype=np.float32) / 255), np.float64)
  linear = levels_8bit[np.stack([unique >> 16, (unique >> 8) & 255,
                                 unique & 255], -1)]
  # 0.85: the photograph's white becomes a surface a little less reflective
  # than the library's brightest white patches.
  indices, weights = _upsampler()(0.85 * linear)
  shape = image.shape[:2] + (4,)
  return (indices[inverse].reshape(shape).astype(np.int16),
          weights[inverse].reshape(shape))


@functools.lru_cache(maxsize=None)
def _texture_source(name: str) -> np.ndarray:
  image = _load_skimage(name).astype(np.float32)
  if image.ndim == 3:
    image = image[..., :3].mean(-1)
  low, high = np.percentile(image, (1, 99))
  return np.clip((image - low) / (high - low), 0, 1)


def _crop_indices(rng, source_hw, h, w):
  """Row/column indices of a random nearest-neighbour crop-and-zoom."""
  zoom_max = min(source_hw[0] / h, source_hw[1] / w)
  zoom = rng.uniform(min(0.7, zoom_max), min(1.4, zoom_max))
  top = rng.uniform(0, source_hw[0] - h * zoom)
  left = rng.uniform(0, source_hw[1] - w * zoom)
  rows = np.minimum((top + (np.arange(h) + 0.5) * zoom).astype(int),
                    source_hw[0] - 1)
  cols = np.minimum((left + (np.arange(w) + 0.5) * zoom).astype(int),
                    source_hw[1] - 1)
  return rows, cols


def _upsample_linear(grid: np.ndarray, n: int, axis: int) -> np.ndarray:
  """Linear interpolation of a grid to n cell-centred samples along an axis."""
  cells = grid.shape[axis] - 1
  position = (np.arange(n) + 0.5) / n * cells
  lower = np.minimum(position.astype(int), cells - 1)
  frac = position - lower
  shape = [1, 1]
  shape[axis] = n
  frac = frac.reshape(shape)
  return (np.take(grid, lower, axis) * (1 - frac) +
          np.take(grid, lower + 1, axis) * frac)


def _fractal_noise(rng, h, w):
  """1/f value noise in [0, 1] (octaves of bilinearly zoomed random grids).

  Elementwise on purpose: OpenBLAS threads make tiny matrix products 15x
  slower next to XLA's thread pool.
  """
  field = np.zeros((h, w), np.float64)
  for octave in range(2, 7):
    cells = 2**octave
    grid = rng.random((cells + 1, cells + 1))
    field += _upsample_linear(_upsample_linear(grid, h, 0), w, 1) / cells**0.8
  field -= field.min()
  return field / max(field.max(), 1e-12)


def _texture_field(rng, h, w):
  if rng.random() < 0.5:
    source = _texture_source(TEXTURE_IMAGES[rng.integers(len(TEXTURE_IMAGES))])
    rows, cols = _crop_indices(rng, source.shape, h, w)
    return source[np.ix_(rows, cols)]
  return _fractal_noise(rng, h, w)


def _random_orientation(rng, *arrays):
  k, flip = int(rng.integers(4)), bool(rng.integers(2))
  out = []
  for a in arrays:
    a = np.rot90(a, k, axes=(0, 1))
    out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
  return out


def _natural_content(rng, h, w):
  name = NATURAL_IMAGES[rng.integers(len(NATURAL_IMAGES))]
  indices, weights = _natural_source(name)
  side = max(h, w)
  rows, cols = _crop_indices(rng, indices.shape[:2], side, side)
  indices, weights = _random_orientation(
      rng, indices[np.ix_(rows, cols)], weights[np.ix_(rows, cols)])
  return f'natural: {name}', indices[:h, :w].astype(np.int32), weights[:h, :w]


def _dead_leaves(rng, h, w, num_surfaces):
  """Occluding leaves, each a textured mixture of 3 spectra and black."""
  # Large leaves (log-uniform radii) cover the background first, then
  # power-law leaves (p(r) ~ r^-3, scale invariant) fall on top.
  large = int(rng.integers(15, 40))
  small = int(rng.integers(100, 250))
  leaves = large + small
  size = max(h, w)
  r_min, r_max = 2.0, 0.15 * size
  u = rng.random(small)
  radii = np.concatenate([
      np.exp(rng.uniform(np.log(0.1 * size), np.log(0.5 * size), large)),
      (r_min**-2 - u * (r_min**-2 - r_max**-2))**-0.5])
  cy, cx = rng.uniform(-0.1, 1.1, leaves) * h, rng.uniform(-0.1, 1.1, leaves) * w
  labels = np.zeros((h, w), np.int32)
  square = rng.random(leaves) < 0.4
  for i in range(leaves):
    r = radii[i]
    t, b = max(int(cy[i] - r), 0), min(int(cy[i] + r) + 1, h)
    l, rt = max(int(cx[i] - r), 0), min(int(cx[i] + r) + 1, w)
    if t >= b or l >= rt:
      continue
    if square[i]:
      labels[t:b, l:rt] = i + 1
    else:
      yy = np.arange(t, b)[:, None] + 0.5 - cy[i]
      xx = np.arange(l, rt)[None, :] + 0.5 - cx[i]
      region = labels[t:b, l:rt]
      region[yy * yy + xx * xx <= r * r] = i + 1
  n = leaves + 1
  cy = np.concatenate([[h / 2], cy])
  cx = np.concatenate([[w / 2], cx])
  radii = np.concatenate([[max(h, w)], radii])
  surfaces = rng.integers(0, num_surfaces, (n, 3))
  albedo = rng.uniform(0.1, 1.0, n)
  third = rng.uniform(0.0, 0.3, n)
  mode = rng.integers(0, 4, n)
  offset = rng.uniform(0, 1, n)
  contrast = rng.uniform(0.5, 2.0, n)
  angle = rng.uniform(0, 2 * np.pi, n)
  slope = rng.uniform(0.2, 1.0, n) / radii
  fields = [_texture_field(rng, h, w), _fractal_noise(rng, h, w)]

  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
  m = mode[labels]
  gradient = ((xx - cx[labels]) * np.cos(angle[labels]) +
              (yy - cy[labels]) * np.sin(angle[labels])) * slope[labels]
  t = offset[labels] + np.where(m == 1, gradient, 0.0)
  t += np.where(m == 2, contrast[labels] * (fields[0] - 0.5), 0.0)
  t += np.where(m == 3, contrast[labels] * (fields[1] - 0.5), 0.0)
  t = np.clip(t, 0, 1)
  a, third_w = albedo[labels], third[labels]
  weights = np.stack([a * (1 - third_w) * (1 - t), a * (1 - third_w) * t,
                      a * third_w, 1 - a], -1).astype(np.float32)
  black = num_surfaces  # the library's last spectrum
  indices = np.concatenate(
      [surfaces[labels], np.full((h, w, 1), black)], -1).astype(np.int32)
  return 'dead_leaves', indices, weights


def _place_chart(rng, indices, weights):
  """Paints a ColorChecker; returns the (24, 4) patch boxes, even-aligned."""
  h, w = indices.shape[:2]
  pitch = int(rng.uniform(0.45, 0.75) * min(w / _CHART_COLS, h / _CHART_ROWS))
  pitch = max(pitch, 6)
  border = max(pitch // 4, 1)
  chart_h = _CHART_ROWS * pitch + 2 * border
  chart_w = _CHART_COLS * pitch + 2 * border
  top = int(rng.integers(0, h - chart_h + 1))
  left = int(rng.integers(0, w - chart_w + 1))
  indices[top:top + chart_h, left:left + chart_w] = _CHART_FRAME
  weights[top:top + chart_h, left:left + chart_w] = (1, 0, 0, 0)
  gap = max(pitch // 8, 1)
  boxes = []
  for patch in range(_CHART_ROWS * _CHART_COLS):
    row, col = divmod(patch, _CHART_COLS)
    y0 = top + border + row * pitch + gap
    x0 = left + border + col * pitch + gap
    y1, x1 = y0 + pitch - 2 * gap, x0 + pitch - 2 * gap
    indices[y0:y1, x0:x1] = patch
    # The measurement box: inside the patch, on even (packed) coordinates.
    inset = max((y1 - y0) // 6, 0)
    box = [y0 + inset, x0 + inset, y1 - inset, x1 - inset]
    box = [(box[0] + 1) // 2 * 2, (box[1] + 1) // 2 * 2, box[2] // 2 * 2,
           box[3] // 2 * 2]
    boxes.append(box)
  boxes = np.array(boxes, np.int32)
  if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
    raise ValueError(f'The image ({h}x{w}) is too small for a chart with '
                     'measurable patches; use at least 64x64.')
  return boxes


# --------------------------------------------------------------- rendering --

@jax.jit
def _render_radiance(indices, weights, maps, table):
  """Mixes the responses of the library spectra per pixel.

  Args:
    indices, weights: (H, W, 4) library indices and convex weights.
    maps: (H, W, J) irradiance of each illuminant.
    table: (K, J, C) response of library spectrum k under illuminant j in
      each channel (CIE XYZ, then every camera's R, G, B).

  Returns:
    (H, W, C - 3) camera responses before exposure, and the (H, W)
    exposure reference: the largest channel of the D65-white-normalised XYZ.
  """
  # Four gathers of (J, C) rows beat one gather of (4, J, C) blocks and an
  # einsum by about 6x on XLA CPU.
  mixed = 0.0
  for k in range(indices.shape[-1]):
    mixed = mixed + weights[..., k, None, None] * table[indices[..., k]]
  response = jnp.sum(mixed * maps[..., None], axis=-2)
  white = jnp.asarray(_D65_WHITE_XYZ, response.dtype)
  return response[..., 3:], jnp.max(response[..., :3] / white, axis=-1)


def _exposure(reference: np.ndarray, target: float) -> float:
  """k such that the 99th percentile of `reference` becomes `target`."""
  reference = reference.ravel()
  rank = int(0.99 * (reference.size - 1))
  # numpy's partition is ~100x faster than a sort-based quantile on XLA CPU.
  q = np.partition(reference, rank)[rank]
  return float(target / max(q, 1e-6))


@functools.partial(jax.jit, static_argnames=('pattern', 'black', 'white',
                                             'add_noise', 'shot_range',
                                             'low_pass'))
def _capture(key, response, exposure, wb_gains, cam_to_srgb, *, pattern,
             black, white, add_noise, shot_range, low_pass):
  """Camera response -> (mosaic DN, packed, sRGB, vis, shot, read)."""
  rgb = response * exposure
  if low_pass:
    # An optical low-pass filter spreads each point over a 2x2 cell: every
    # site of a cell sees the cell's mean, so the packed images of cameras
    # with different CFA phases sample the same scene points.
    h, w = rgb.shape[:2]
    cell = rgb.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    clean = cfa.unpack(cell[..., (0, 1, 1, 2)], pattern=pattern)
  else:
    clean = demosaic_lib.mosaic(rgb, pattern=pattern)
  if add_noise:
    level_key, noise_key = jax.random.split(key)
    level = noise_lib.random_noise_levels(level_key, shot_range=shot_range)
    shot, read = level.shot, level.read
    noisy = noise_lib.add_noise(noise_key, clean, shot, read)
  else:
    shot = read = jnp.zeros((), rgb.dtype)
    noisy = clean
  dn = jnp.clip(jnp.round(black + noisy * (white - black)), 0, white)
  packed = levels.normalize(cfa.pack(dn, pattern=pattern), black_level=black,
                            white_level=white, clip='both')
  # The reference pipeline's colour stages (as `rawjax.isp.process`), on the
  # clean, saturated camera RGB instead of a demosaicked mosaic.
  gains = wb_gains / jnp.min(wb_gains)
  balanced = jnp.minimum(color.white_balance(jnp.clip(rgb, 0.0, 1.0), gains),
                         1.0)
  linear = jnp.clip(color.apply_ccm(balanced, cam_to_srgb), 0.0, 1.0)
  srgb = color.srgb_encode(linear)
  vis = color.visualize_raw(packed)
  return dn, packed, srgb, vis, shot, read


@dataclasses.dataclass(frozen=True, eq=False)
class Capture:
  """One camera's raw capture of a scene.

  Attributes:
    camera: the `CameraProfile`.
    mosaic: (H, W) uint16 sensor values (black level included).
    packed: (H/2, W/2, 4) float32 (R, Gr, Gb, B), black-subtracted and
      normalised to [0, 1] (clipped), as the raw2raw `.mat` files.
    metadata: `RawMetadata` for `rawjax.isp.process` (CFA, levels, as-shot
      white balance, camera -> sRGB matrix).
    xyz_to_camera: (3, 3) DNG ColorMatrix (D65) fitted from the
      sensitivities.
    illuminant_rgb: (J, 3) normalised camera response to a perfect white
      under each illuminant at unit irradiance, at this capture's exposure.
    srgb: (H, W, 3) float32 sRGB rendering in [0, 1] by the reference
      colour stages.
    vis: (H/2, W/2, 3) uint8 raw2raw visualisation ((0.9 x)^(1/1.6)).
    exposure: the exposure factor k.
    shot_noise, read_noise: the noise variances drawn (0 without noise).
  """
  camera: CameraProfile
  mosaic: np.ndarray
  packed: np.ndarray
  metadata: RawMetadata
  xyz_to_camera: np.ndarray
  illuminant_rgb: np.ndarray
  srgb: np.ndarray
  vis: np.ndarray
  exposure: float
  shot_noise: float
  read_noise: float


@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
  """A simulated scene and its captures by one or more cameras.

  Attributes:
    index, seed: the scene is a pure function of these (and the config).
    content: 'dead_leaves' or 'natural: <scikit-image photograph>'.
    illuminants: names of the J illuminants.
    illuminant_spectra: (J, 31) their spectra (luminance 1) on 400-700 nm.
    illumination_map: (H, W, J) irradiance of each illuminant per pixel
      (mean of the sum over the image is 1); the mixture coefficients of the
      LSMI setting are this divided by its sum over J.
    chart_boxes: (24, 4) int32 (top, left, bottom, right), bottom/right
      exclusive, of the ColorChecker patches in mosaic pixels (even, so
      halve them for packed images), in chart order; None without a chart.
    captures: camera slug -> `Capture`.
  """
  index: int
  seed: int
  content: str
  illuminants: tuple[str, ...]
  illuminant_spectra: np.ndarray
  illumination_map: np.ndarray
  chart_boxes: np.ndarray | None
  captures: dict[str, Capture]

  @property
  def multi_illuminant(self) -> bool:
    return len(self.illuminants) > 1

  def illuminant_image(self, camera: str) -> np.ndarray:
    """(H, W, 3) camera response to a white surface at each pixel.

    Divided by its green channel it is the per-pixel illuminant colour (the
    ground truth of multi-illuminant white balance).
    """
    return self.illumination_map @ self.captures[camera].illuminant_rgb


def generate_scene(seed: int, index: int, *,
                   config: SceneConfig | str = 'raw2raw',
                   cameras: Sequence[CameraProfile | str] = DEFAULT_CAMERAS
                   ) -> Scene:
  """Renders scene `index` of the stream defined by `seed`.

  Args:
    seed: dataset seed.
    index: scene number (>= 0); scenes of one seed are independent.
    config: a `SceneConfig` or a preset name ('raw2raw', 'multi_illum',
      'raw2srgb').
    cameras: the cameras that capture the scene (profiles, names or slugs).
      The scene itself does not depend on this choice.

  Returns:
    The `Scene` with one `Capture` per camera.
  """
  cameras = [camera_profile(c) for c in cameras]
  if not cameras:
    raise ValueError('generate_scene: at least one camera is needed.')
  return _generate_scene(seed, index, _config(config), cameras,
                         [c.slug for c in cameras])


def _generate_scene(seed, index, config, cameras, captured) -> Scene:
  """`generate_scene` rendering all `cameras`, capturing only `captured`.

  Rendering every camera's response (a few more channels in one gather)
  keeps one compiled renderer for a dataset whose scenes are captured by
  different subsets of its cameras.
  """
  rng = np.random.default_rng([int(seed), int(index)])
  h, w = config.height, config.width
  names, library = _spectra.reflectance_library()
  num_surfaces = len(names) - 1

  multi = rng.random() < config.multi_illuminant_fraction
  count = (3 if rng.random() < config.three_illuminant_fraction else 2
          ) if multi else 1
  illuminant_names, spectra = _sample_illuminants(rng, config, count)
  maps = _light_maps(rng, h, w, count, multi=multi)
  if rng.random() < config.natural_fraction:
    content, indices, weights = _natural_content(rng, h, w)
  else:
    content, indices, weights = _dead_leaves(rng, h, w, num_surfaces)
  boxes = (_place_chart(rng, indices, weights)
           if rng.random() < config.chart_fraction else None)
  target = rng.uniform(*config.exposure)
  # Unused lights have zero irradiance: one compiled renderer serves 1-3.
  padded_maps = np.zeros((h, w, _MAX_LIGHTS), np.float32)
  padded_maps[..., :count] = maps
  padded_spectra = np.zeros((_MAX_LIGHTS, spectra.shape[1]))
  padded_spectra[:count] = spectra

  channels = np.concatenate([_spectra.cmfs()] +
                            [c.sensitivities for c in cameras], axis=1)
  table = np.einsum('kl,jl,lc->kjc', library, padded_spectra, channels)
  response, reference = jax.device_get(_render_radiance(
      indices, weights, padded_maps, table.astype(np.float32)))
  exposure = _exposure(reference, target)

  mean_light = maps.reshape(-1, count).mean(0) @ spectra
  captures = {}
  for i, camera in enumerate(cameras):
    if camera.slug not in captured:
      continue
    white = mean_light @ camera.sensitivities
    wb_gains = white[1] / white
    # Raw threefry key data from the scene's seed sequence: the noise of a
    # capture depends only on (seed, index, camera name).
    cam_key = np.random.SeedSequence(
        [int(seed), int(index), zlib.crc32(camera.name.encode())]
    ).generate_state(2, dtype=np.uint32)
    dn, packed, srgb, vis, shot, read = jax.device_get(_capture(
        cam_key, response[..., 3 * i:3 * i + 3], np.float32(exposure),
        wb_gains.astype(np.float32),
        camera.cam_to_srgb.astype(np.float32), pattern=camera.pattern,
        black=camera.black_level, white=camera.white_level,
        add_noise=config.noise, shot_range=tuple(config.shot_range),
        low_pass=config.optical_low_pass))
    metadata = RawMetadata.create(
        pattern=camera.pattern, black_level=camera.black_level,
        white_level=camera.white_level, wb_gains=wb_gains,
        cam_to_srgb=camera.cam_to_srgb)
    captures[camera.slug] = Capture(
        camera=camera, mosaic=dn.astype(np.uint16), packed=packed,
        metadata=metadata, xyz_to_camera=camera.xyz_to_camera,
        illuminant_rgb=exposure * (spectra @ camera.sensitivities),
        srgb=srgb, vis=np.clip(vis * 256, 0, 255).astype(np.uint8),
        exposure=exposure, shot_noise=float(shot), read_noise=float(read))
  return Scene(index=int(index), seed=int(seed), content=content,
               illuminants=illuminant_names, illuminant_spectra=spectra,
               illumination_map=maps, chart_boxes=boxes, captures=captures)


def generate_scenes(seed: int, indices: int | Sequence[int], *,
                    config: SceneConfig | str = 'raw2raw',
                    cameras: Sequence[CameraProfile | str] = DEFAULT_CAMERAS,
                    progress: bool = False) -> Iterator[Scene]:
  """Yields `generate_scene(seed, i)` for i in `indices` (or range(indices))."""
  if isinstance(indices, int):
    indices = range(indices)
  iterator = indices
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(indices, desc='scenes', unit='scene')
  for i in iterator:
    yield generate_scene(seed, i, config=config, cameras=cameras)


# ----------------------------------------------------------------- writing --

def _splits(num, seed, anchor_fraction, test_fraction, num_cameras):
  """Scene-disjoint split of range(num) into anchor, test and unpaired."""
  order = np.random.default_rng([int(seed), 2**31 - 1]).permutation(num)
  anchors = max(int(round(num * anchor_fraction)), 2 if num >= 8 else 1)
  tests = max(int(round(num * test_fraction)), 1)
  if anchors + tests + num_cameras > num:
    raise ValueError(f'write_dataset: {num} scenes are too few for '
                     f'{anchors} anchor, {tests} test and unpaired scenes '
                     f'for {num_cameras} cameras.')
  anchor = sorted(order[:anchors].tolist())
  test = sorted(order[anchors:anchors + tests].tolist())
  rest = sorted(order[anchors + tests:].tolist())
  unpaired = [rest[i::num_cameras] for i in range(num_cameras)]
  return anchor, test, unpaired


def _save_capture(folder: pathlib.Path, name: str, file_name: str,
                  capture: Capture, scene: Scene, *, anchor: bool,
                  write_dng: bool, write_srgb: bool,
                  mapping: np.ndarray | None):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_dng as dng_writer  # pylint: disable=g-import-not-at-top
  from rawjax.io import write_image  # pylint: disable=g-import-not-at-top
  prefix = 'anchor-' if anchor else ''
  camera = capture.camera
  if write_dng:
    (folder / 'dng').mkdir(parents=True, exist_ok=True)
    dng_writer(folder / 'dng' / f'{name}.dng', capture.mosaic,
               pattern=camera.pattern, black_level=camera.black_level,
               white_level=camera.white_level,
               color_matrix=capture.xyz_to_camera, calibration_illuminant=21,
               as_shot_neutral=1.0 / np.asarray(capture.metadata.wb_gains),
               camera_model=camera.name)
  if mapping is not None:
    (folder / 'mapping').mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(folder / 'mapping' / f'{name}.mat',
                     {'mapping_matrix': mapping.astype(np.float64)})
  for sub in (f'{prefix}raw-rggb', f'{prefix}vis', 'meta'):
    (folder / sub).mkdir(parents=True, exist_ok=True)
  scipy_io.savemat(folder / f'{prefix}raw-rggb' / f'{file_name}.mat',
                   {'raw_rggb': capture.packed})
  Image.fromarray(capture.vis).save(folder / f'{prefix}vis' /
                                    f'{file_name}.jpg', quality=95)
  if write_srgb:
    (folder / 'srgb').mkdir(parents=True, exist_ok=True)
    write_image(folder / 'srgb' / f'{file_name}.png', capture.srgb,
                bit_depth=8)
  illumination = scene.illumination_map.reshape(
      scene.illumination_map.shape[0] // 2, 2,
      scene.illumination_map.shape[1] // 2, 2, -1).mean((1, 3))
  metadata = capture.metadata
  np.savez(
      folder / 'meta' / f'{file_name}.npz',
      mosaic=capture.mosaic, pattern=camera.pattern,
      black_level=np.asarray(metadata.black_level),
      white_level=np.asarray(metadata.white_level),
      wb_gains=np.asarray(metadata.wb_gains),
      cam_to_srgb=np.asarray(metadata.cam_to_srgb),
      xyz_to_camera=capture.xyz_to_camera,
      illuminant_rgb=capture.illuminant_rgb,
      illumination_map=illumination.astype(np.float32),
      illuminants=np.array(scene.illuminants),
      illuminant_spectra=scene.illuminant_spectra.astype(np.float32),
      wavelengths=_spectra.WAVELENGTHS,
      chart_boxes=(scene.chart_boxes if scene.chart_boxes is not None else
                   np.zeros((0, 4), np.int32)),
      srgb=np.round(capture.srgb * 255).astype(np.uint8),
      content=scene.content, exposure=capture.exposure,
      shot_noise=capture.shot_noise, read_noise=capture.read_noise,
      scene_index=scene.index)


_MAPPING_FIT = None


def _mapping_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """The per-image 16 x 4 raw2raw polynomial (kernelP) from source to target."""
  global _MAPPING_FIT
  if _MAPPING_FIT is None:
    from rawjax.isp import polynomial  # pylint: disable=g-import-not-at-top
    _MAPPING_FIT = jax.jit(lambda s, t: polynomial.fit_polynomial(
        s.reshape(-1, 4), t.reshape(-1, 4), kernel='raw2raw16'))
  return np.asarray(_MAPPING_FIT(source, target), np.float64)


def write_dataset(out: str | os.PathLike[str], *, preset: str = 'raw2raw',
                  num: int = 300, seed: int = 0,
                  config: SceneConfig | None = None,
                  cameras: Sequence[CameraProfile | str] = DEFAULT_CAMERAS,
                  anchor_fraction: float = 22 / 529,
                  test_fraction: float = 115 / 529,
                  srgb: bool | None = None, progress: bool = True) -> dict:
  """Writes a simulated dataset in the Afifi & Abuolaim raw2raw layout.

  The raw2raw download plus its `raw_extraction.py` outputs, for N cameras
  (the first gets the file postfix `_A`, the second `_B`, ...):

      DIR/dataset.json                     config, cameras, splits
      DIR/paired/<camera>/dng/<name>.dng   scenes of origin <camera>
      DIR/paired/<camera>/mapping/<name>.mat
          'mapping_matrix' (16, 4): this scene's least-squares kernelP
          polynomial from <camera> to the next camera (what Afifi ships)
      DIR/paired/<camera>/anchor-raw-rggb/<name>_<X>.mat   anchor pairs
      DIR/paired/<camera>/raw-rggb/<name>_<X>.mat          test pairs
          'raw_rggb' (H/2, W/2, 4) float32 in [0, 1]; <X> is the postfix of
          the scene's origin camera, and every camera folder holds the same
          names, so `paired/A/raw-rggb/n_A.mat` -> `paired/B/raw-rggb/n_A.mat`
          is an A -> B test pair. Unlike Afifi's pseudo ground truth (the
          origin mapped by the polynomial), the other camera's file is its
          own rendering of the scene.
      DIR/paired/<camera>/{anchor-vis,vis}/<name>_<X>.jpg
      DIR/unpaired/<camera>/{dng,raw-rggb,vis}/...   one camera per scene
      DIR/{paired,unpaired}/<camera>/meta/<file>.npz  everything else:
          mosaic, pattern, levels, wb_gains, cam_to_srgb, xyz_to_camera,
          illumination map (packed resolution), illuminants, chart boxes,
          8-bit sRGB, noise levels
      DIR/{paired,unpaired}/<camera>/srgb/<file>.png  (if `srgb`)

  Anchor, test and unpaired scenes are disjoint; by default their shares
  are the raw2raw dataset's (22 anchor and 115 test pairs among 529 scenes;
  the unpaired rest split evenly between the cameras).

  Args:
    out: output folder (created).
    preset: 'raw2raw', 'multi_illum' or 'raw2srgb' (the `SceneConfig`).
    num: number of scenes.
    seed: dataset seed.
    config: overrides the preset's `SceneConfig` (e.g. another size).
    cameras: two or more cameras.
    anchor_fraction, test_fraction: shares of paired anchor and test scenes.
    srgb: write sRGB PNGs (default: only for the 'raw2srgb' preset).
    progress: show a tqdm progress bar.

  Returns:
    The contents of `dataset.json`.
  """
  config = config or _config(preset)
  cameras = [camera_profile(c) for c in cameras]
  if len(cameras) < 2:
    raise ValueError('write_dataset: the raw2raw layout needs two or more '
                     'cameras.')
  if len({c.slug for c in cameras}) != len(cameras):
    raise ValueError('write_dataset: camera slugs must be distinct.')
  srgb = preset == 'raw2srgb' if srgb is None else srgb
  postfix = {c.slug: chr(ord('A') + i) for i, c in enumerate(cameras)}
  anchor, test, unpaired = _splits(num, seed, anchor_fraction, test_fraction,
                                   len(cameras))
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  name_of = lambda i: f'scene-{i:05d}'  # noqa: E731

  jobs = []  # (index, kind, origin camera position)
  for position, index in enumerate(anchor):
    jobs.append((index, 'anchor', position % len(cameras)))
  for position, index in enumerate(test):
    jobs.append((index, 'test', position % len(cameras)))
  for camera_position, indices in enumerate(unpaired):
    jobs += [(index, 'unpaired', camera_position) for index in indices]
  jobs.sort()

  splits = {'anchor': [], 'test': [],
            'unpaired': {c.slug: [] for c in cameras}}
  iterator = jobs
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(jobs, desc=f'{preset} scenes', unit='scene')
  start = time.perf_counter()
  for index, kind, origin in iterator:
    name = name_of(index)
    if kind == 'unpaired':
      camera = cameras[origin]
      scene = _generate_scene(seed, index, config, cameras, [camera.slug])
      file_name = f'{name}_{postfix[camera.slug]}'
      _save_capture(out / 'unpaired' / camera.slug, name, file_name,
                    scene.captures[camera.slug], scene, anchor=False,
                    write_dng=True, write_srgb=srgb, mapping=None)
      splits['unpaired'][camera.slug].append(file_name)
      continue
    scene = _generate_scene(seed, index, config, cameras,
                            [c.slug for c in cameras])
    origin_camera = cameras[origin]
    file_name = f'{name}_{postfix[origin_camera.slug]}'
    partner = cameras[(origin + 1) % len(cameras)]
    mapping = _mapping_matrix(scene.captures[origin_camera.slug].packed,
                              scene.captures[partner.slug].packed)
    for camera in cameras:
      is_origin = camera is origin_camera
      _save_capture(out / 'paired' / camera.slug, name, file_name,
                    scene.captures[camera.slug], scene,
                    anchor=kind == 'anchor', write_dng=is_origin,
                    write_srgb=srgb, mapping=mapping if is_origin else None)
    splits[kind].append({'name': name, 'file': file_name,
                         'origin': origin_camera.slug,
                         'multi_illuminant': scene.multi_illuminant,
                         'chart': scene.chart_boxes is not None})
  elapsed = time.perf_counter() - start

  summary = {
      'generator': 'rawjax.data.synthetic', 'preset': preset, 'seed': seed,
      'num_scenes': num, 'seconds': elapsed,
      'config': dataclasses.asdict(config),
      'cameras': [{'name': c.name, 'slug': c.slug, 'postfix': postfix[c.slug],
                   'pattern': c.pattern, 'black_level': c.black_level,
                   'white_level': c.white_level,
                   'xyz_to_camera': c.xyz_to_camera.tolist()}
                  for c in cameras],
      'splits': splits,
  }
  (out / 'dataset.json').write_text(json.dumps(summary, indent=1))
  return summary


def main(argv: Sequence[str] | None = None) -> dict:
  """Command line: `python -m rawjax.data.synthetic --out DIR ...`."""
  parser = argparse.ArgumentParser(
      prog='python -m rawjax.data.synthetic',
      description='Writes a simulated two-camera raw dataset in the Afifi '
      'raw2raw layout.')
  parser.add_argument('--out', required=True, help='output folder')
  parser.add_argument('--preset', default='raw2raw', choices=sorted(PRESETS))
  parser.add_argument('--num', type=int, default=300, help='number of scenes')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                      help='mosaic size (default 256 256)')
  parser.add_argument('--srgb', action=argparse.BooleanOptionalAction,
                      default=None, help='write sRGB PNGs (default: only '
                      'for the raw2srgb preset)')
  args = parser.parse_args(argv)
  config = PRESETS[args.preset]
  if args.size:
    config = config.replace(height=args.size[0], width=args.size[1])
  summary = write_dataset(args.out, preset=args.preset, num=args.num,
                          seed=args.seed, config=config, srgb=args.srgb)
  print(f'wrote {args.num} {args.preset} scenes to {args.out} in '
        f'{summary["seconds"]:.1f} s '
        f'({len(summary["splits"]["anchor"])} anchor, '
        f'{len(summary["splits"]["test"])} test, unpaired '
        + ', '.join(f'{k}: {len(v)}'
                    for k, v in summary['splits']['unpaired'].items()) + ')')
  return summary


if __name__ == '__main__':
  main()
