"""Simulated cameras: measured sensitivities, raw format, noise, shading.

Built in: the two cameras whose sensitivities colour-science ships (Nikon
5100 and Sigma SDMerill, NPL), the default of every preset that names no
cameras. A registry adds any folder of sensitivity CSVs in the ssf-data
format ('#Key:value' header lines, then 'wavelength_nm, R, G, B' rows), such
as the 27 measured cameras of `../shared/data/ssf` (CC BY-NC-SA 4.0: their
data stay in that folder and are read from it, never copied into rawjax).

The folder is, in order: the `ssf_dir` argument (or `SceneConfig.ssf_dir`),
the environment variable RAWJAX_SSF_DIR, then `../shared/data/ssf` beside
the repository. Each registry camera gets the raw format, noise level and
lens shading of its kind (`RAW_FORMATS`, `_KIND_DEFAULTS`; docs/data.md).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import zlib
from collections.abc import Sequence

import numpy as np

from rawjax.data import _spectra
from rawjax.isp import cfa


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


KINDS = ('dslr', 'mirrorless', 'medium_format', 'phone', 'industrial')


@dataclasses.dataclass(frozen=True)
class LensShading:
  """A camera's lens and colour shading (`rawjax.isp.shading.radial_falloff`).

  Attributes:
    corner_falloff: (R, Gr, Gb, B) fraction of the light lost at the corner
      farthest from the optical centre, each in [0, 1).
    center: (dy, dx) optical-centre offset, in half-heights and half-widths.
    anisotropy: horizontal / vertical scale of the falloff (> 0).
    exponent: radial exponent (2 = the cos^4 law's leading term).
  """
  corner_falloff: tuple[float, float, float, float]
  center: tuple[float, float] = (0.0, 0.0)
  anisotropy: float = 1.0
  exponent: float = 2.0

  def __post_init__(self):
    if len(self.corner_falloff) != 4 or not all(
        0.0 <= f < 1.0 for f in self.corner_falloff):
      raise ValueError('LensShading: corner_falloff needs 4 values in [0, 1) '
                       f'(R, Gr, Gb, B), got {self.corner_falloff}.')
    if self.anisotropy <= 0 or self.exponent <= 0:
      raise ValueError('LensShading: anisotropy and exponent must be '
                       f'positive, got {self.anisotropy}, {self.exponent}.')

  def falloff(self, height: int, width: int) -> np.ndarray:
    """(height, width, 4) float32 relative illumination in (0, 1], packed."""
    return _falloff(self, int(height), int(width))


@functools.lru_cache(maxsize=64)
def _falloff(shading: LensShading, height: int, width: int) -> np.ndarray:
  from rawjax.isp import shading as shading_lib  # pylint: disable=g-import-not-at-top
  falloff = np.asarray(shading_lib.radial_falloff(
      height, width, corner_falloff=shading.corner_falloff,
      center=shading.center, anisotropy=shading.anisotropy,
      exponent=shading.exponent), np.float32)
  falloff.setflags(write=False)
  return falloff


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
    kind: one of `KINDS` ('dslr', 'phone', ...): documentation and defaults.
    noise_scale: multiplies the preset's shot-noise range (read noise follows
      UPI's relation to it): about the inverse of the pixel area relative to
      a full-frame DSLR at the same exposure.
    shading: the lens shading applied when `SceneConfig.shading` is on.
    source: where the sensitivities come from (file path, license).
  """
  name: str
  slug: str
  sensitivities: np.ndarray
  pattern: str
  black_level: int
  white_level: int
  kind: str = 'dslr'
  noise_scale: float = 1.0
  shading: LensShading | None = None
  source: str = 'colour-science'

  @property
  def bit_depth(self) -> int:
    """Bits of the raw values (the white level's)."""
    return max(1, math.ceil(math.log2(self.white_level + 1)))

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
    if self.kind not in KINDS:
      raise ValueError(f'CameraProfile {self.name!r}: kind must be one of '
                       f'{KINDS}, got {self.kind!r}.')
    if not self.noise_scale > 0:
      raise ValueError(f'CameraProfile {self.name!r}: noise_scale must be '
                       f'positive, got {self.noise_scale}.')
    d65 = _spectra.named_illuminants(('D65',))[0]
    object.__setattr__(self, 'sensitivities', s / np.max(d65 @ s))

  @classmethod
  def from_colour(cls, name: str, *, slug: str, pattern: str,
                  black_level: int, white_level: int,
                  **options) -> 'CameraProfile':
    """A camera whose sensitivities colour-science ships (by its name).

    `options`: the other fields (kind, noise_scale, shading).
    """
    return cls(name=name, slug=slug,
               sensitivities=_spectra.camera_sensitivities(name),
               pattern=pattern, black_level=black_level,
               white_level=white_level, **options)

  @classmethod
  def from_csv(cls, path: str | os.PathLike[str], *, name: str, slug: str,
               pattern: str, black_level: int, white_level: int,
               **options) -> 'CameraProfile':
    """A camera from a CSV of 'wavelength, red, green, blue' rows (nm).

    `options`: the other fields (kind, noise_scale, shading, source).
    Raises ValueError naming the problem for a malformed file
    (`_spectra.read_sensitivities_csv`).
    """
    options.setdefault('source', os.fspath(path))
    return cls(name=name, slug=slug,
               sensitivities=_spectra.read_sensitivities_csv(path),
               pattern=pattern, black_level=black_level,
               white_level=white_level, **options)

  @functools.cached_property
  def xyz_to_camera(self) -> np.ndarray:
    """(3, 3) XYZ -> camera (DNG ColorMatrix, calibrated under D65)."""
    return fit_xyz_to_camera(self.sensitivities)

  @functools.cached_property
  def cam_to_srgb(self) -> np.ndarray:
    """(3, 3) white-balanced camera -> linear sRGB, the LibRaw way."""
    from rawjax.io import raw as raw_io  # pylint: disable=g-import-not-at-top
    return raw_io.camera_to_srgb_from_xyz_to_camera(self.xyz_to_camera)


# Lens shading per kind: (R, Gr, Gb, B) corner falloff. Phone modules (a
# short lens, a wide chief-ray angle and an IR-cut filter whose cut-off moves
# to shorter wavelengths off axis) lose 40-70 % of the light at the corner,
# red more than green and blue less; interchangeable-lens cameras lose 10-25 %
# with little colour difference. A per-camera jitter (`_shading_for`) adds
# a slight optical-centre offset and anisotropy.
_KIND_SHADING = {
    'dslr': (0.20, 0.17, 0.17, 0.15),
    'mirrorless': (0.27, 0.23, 0.23, 0.20),
    'medium_format': (0.24, 0.21, 0.21, 0.19),
    'phone': (0.66, 0.56, 0.56, 0.47),
    'industrial': (0.36, 0.30, 0.30, 0.27),
}
# Raw format and noise by kind, when `RAW_FORMATS` has no entry:
# (pattern, black level, white level, noise scale).
_KIND_DEFAULTS = {
    'dslr': ('RGGB', 512, 16383, 1.0),
    'mirrorless': ('RGGB', 256, 4095, 1.5),
    'medium_format': ('RGGB', 256, 65535, 0.6),
    'phone': ('BGGR', 64, 1023, 4.0),
    'industrial': ('GBRG', 16, 4095, 2.0),
}
# Registry cameras (file stems without '_camspec'): kind, CFA pattern, black,
# white, noise scale. Choices typical of the make and generation (e.g. Canon
# RGGB with black 1024-2048 at 14 bits, older 12-bit bodies, Nikon BGGR/
# GRBG phases, a 10-bit phone), not the measured bodies' exact formats; they
# cover the four CFA phases, 10- to 16-bit and zero/non-zero black levels.
RAW_FORMATS: dict[str, tuple[str, str, int, int, float]] = {
    'canon-1dmarkiii': ('dslr', 'RGGB', 1024, 15600, 0.9),
    'canon-20d': ('dslr', 'RGGB', 128, 4095, 1.3),
    'canon-300d': ('dslr', 'RGGB', 128, 4095, 1.5),
    'canon-40d': ('dslr', 'RGGB', 1024, 15600, 1.1),
    'canon-500d': ('dslr', 'RGGB', 1024, 15600, 1.3),
    'canon-50d': ('dslr', 'RGGB', 1024, 15600, 1.3),
    'canon-5dmarkii': ('dslr', 'RGGB', 1024, 15600, 0.8),
    'canon-600d': ('dslr', 'RGGB', 2048, 15600, 1.3),
    'canon-60d': ('dslr', 'RGGB', 2048, 15600, 1.3),
    'hasselblad-h2': ('medium_format', 'GRBG', 0, 65535, 0.6),
    'nikon-d200': ('dslr', 'BGGR', 0, 4095, 1.3),
    'nikon-d300s': ('dslr', 'BGGR', 0, 15520, 1.1),
    'nikon-d3500-spectroscope': ('dslr', 'RGGB', 600, 15520, 1.1),
    'nikon-d3x': ('dslr', 'RGGB', 0, 15520, 0.8),
    'nikon-d3': ('dslr', 'RGGB', 0, 15520, 0.8),
    'nikon-d40': ('dslr', 'BGGR', 0, 4095, 1.5),
    'nikon-d50': ('dslr', 'BGGR', 0, 4095, 1.5),
    'nikon-d50-spectroscope': ('dslr', 'BGGR', 0, 4095, 1.5),
    'nikon-d5100': ('dslr', 'RGGB', 600, 15520, 1.1),
    'nikon-d7000-spectroscope': ('dslr', 'RGGB', 600, 15520, 1.1),
    'nikon-d700': ('dslr', 'RGGB', 0, 15520, 0.8),
    'nikon-d80': ('dslr', 'GRBG', 0, 4095, 1.3),
    'nikon-d90': ('dslr', 'GRBG', 0, 4095, 1.3),
    'nokia-n900': ('phone', 'GRBG', 64, 1023, 4.0),
    'olympus-e-pl2': ('mirrorless', 'RGGB', 256, 4095, 1.6),
    'pentax-k-5': ('dslr', 'BGGR', 512, 16383, 1.0),
    'phase-one-unspecified': ('medium_format', 'GBRG', 256, 65535, 0.6),
    'point-grey-grasshopper2-14s5c': ('industrial', 'GBRG', 16, 4095, 2.0),
}


def _shading_for(slug: str, kind: str) -> LensShading:
  """The kind's shading with a slight, reproducible per-camera jitter."""
  rng = np.random.default_rng(zlib.crc32(slug.encode()))
  base = np.asarray(_KIND_SHADING[kind])
  falloff = np.clip(base * rng.uniform(0.92, 1.08, 4), 0.0, 0.9)
  falloff[2] = falloff[1] * rng.uniform(0.99, 1.01)  # Gr ~ Gb
  return LensShading(
      corner_falloff=tuple(round(float(f), 4) for f in falloff),
      center=tuple(round(float(c), 4) for c in rng.uniform(-0.06, 0.06, 2)),
      anisotropy=round(float(rng.uniform(0.94, 1.06)), 4))


# The raw formats are choices (see docs/data.md): two CFA phases, a zero and
# a non-zero black, 14- and 12-bit, so every loader path is exercised. The
# Sigma SD Merrill is a Foveon camera; here its measured sensitivities sit
# behind a Bayer CFA.
NIKON_5100 = CameraProfile.from_colour(
    'Nikon 5100 (NPL)', slug='nikon-5100', pattern='RGGB', black_level=600,
    white_level=16383, shading=_shading_for('nikon-5100', 'dslr'))
SIGMA_SDMERRILL = CameraProfile.from_colour(
    'Sigma SDMerill (NPL)', slug='sigma-sdmerill', pattern='GRBG',
    black_level=0, white_level=4095,
    shading=_shading_for('sigma-sdmerill', 'dslr'))
DEFAULT_CAMERAS = (NIKON_5100, SIGMA_SDMERRILL)

SSF_ENV = 'RAWJAX_SSF_DIR'
# rawjax/data/synthetic/cameras.py -> the repository's parent holds 'shared'.
_SHARED_SSF = (pathlib.Path(__file__).resolve().parents[4] / 'shared' /
               'data' / 'ssf')


def default_ssf_dir() -> pathlib.Path | None:
  """The registry folder: $RAWJAX_SSF_DIR, else ../shared/data/ssf, or None."""
  env = os.environ.get(SSF_ENV)
  if env:
    return pathlib.Path(env)
  return _SHARED_SSF if _SHARED_SSF.is_dir() else None


def _slug_of(path: pathlib.Path) -> str:
  stem = path.stem.lower().replace('_', '-').replace(' ', '-')
  return stem[:-len('-camspec')] if stem.endswith('-camspec') else stem


def camera_from_file(path: str | os.PathLike[str], *,
                     kind: str | None = None) -> CameraProfile:
  """A registry camera from one sensitivity CSV (ssf-data format).

  Name from the '#Camera:' header (else the file name); slug from the file
  name ('Nokia_N900_camspec.csv' -> 'nokia-n900'); raw format, noise and
  shading from `RAW_FORMATS` by slug, else from the defaults of `kind`
  (default 'dslr').

  Raises:
    ValueError: the file is missing or malformed (named by the problem).
  """
  path = pathlib.Path(path)
  slug = _slug_of(path)
  if slug in RAW_FORMATS:
    known_kind, pattern, black, white, noise_scale = RAW_FORMATS[slug]
    kind = kind or known_kind
  else:
    kind = kind or 'dslr'
    if kind not in KINDS:
      raise ValueError(f'camera_from_file: kind must be one of {KINDS}, got '
                       f'{kind!r}.')
    pattern, black, white, noise_scale = _KIND_DEFAULTS[kind]
  sensitivities = _spectra.read_sensitivities_csv(path)
  header = _spectra.sensitivities_csv_header(path)
  name = header.get('Camera') or path.stem
  if slug.endswith('-spectroscope'):
    name += ' (spectroscope)'
  license_ = header.get('License', 'license not stated')
  return CameraProfile(
      name=name, slug=slug, sensitivities=sensitivities, pattern=pattern,
      black_level=black, white_level=white, kind=kind,
      noise_scale=noise_scale, shading=_shading_for(slug, kind),
      source=f'{path} ({license_.split(",")[0]})')


@functools.lru_cache(maxsize=8)
def _load_folder(folder: str) -> tuple[CameraProfile, ...]:
  files = sorted(pathlib.Path(folder).glob('*.csv'))
  if not files:
    raise ValueError(f'load_cameras: no *.csv sensitivity files in {folder}.')
  return tuple(camera_from_file(f) for f in files)


def load_cameras(path: str | os.PathLike[str] | None = None
                 ) -> dict[str, CameraProfile]:
  """The camera registry of a folder of CSVs, or of one CSV.

  Args:
    path: a folder of ssf-data CSVs, one CSV, or None for `default_ssf_dir()`.

  Returns:
    slug -> `CameraProfile`, in file-name order.

  Raises:
    ValueError: no folder found (names RAWJAX_SSF_DIR), an empty folder, or a
      malformed file (named, with the problem).
  """
  if path is None:
    path = default_ssf_dir()
    if path is None:
      raise ValueError(f'load_cameras: no sensitivity folder: set {SSF_ENV} '
                       f'or pass a folder (looked for {_SHARED_SSF}).')
  path = pathlib.Path(path)
  if path.is_dir():
    cameras = _load_folder(str(path.resolve()))
  elif path.is_file():
    cameras = (camera_from_file(path),)
  else:
    raise ValueError(f'load_cameras: {path} is neither a folder nor a file.')
  return {c.slug: c for c in cameras}


def _matches(profile: CameraProfile, name: str) -> bool:
  key = name.lower().replace('_', '-').replace(' ', '-')
  return name in (profile.name, profile.slug) or key in (
      profile.slug, profile.name.lower().replace(' ', '-'))


def camera_profile(camera: CameraProfile | str, *,
                   ssf_dir: str | os.PathLike[str] | None = None
                   ) -> CameraProfile:
  """A profile by name or slug (a profile is returned as is).

  The built-in cameras first, then the registry of `ssf_dir` (default
  `default_ssf_dir()`) when one exists; a path to a CSV loads that file.
  """
  if isinstance(camera, CameraProfile):
    return camera
  for profile in DEFAULT_CAMERAS:
    if camera in (profile.name, profile.slug):
      return profile
  if str(camera).lower().endswith('.csv') and os.path.isfile(camera):
    return camera_from_file(camera)
  folder = ssf_dir if ssf_dir is not None else default_ssf_dir()
  known = [p.slug for p in DEFAULT_CAMERAS]
  if folder is not None:
    registry = load_cameras(folder)
    for profile in registry.values():
      if _matches(profile, camera):
        return profile
    known += list(registry)
  raise ValueError(f'Unknown camera {camera!r}: known cameras are {known}'
                   + ('' if folder is not None else
                      f' (set {SSF_ENV} for the measured registry)') +
                   '; build a CameraProfile (from_colour / from_csv) for '
                   'others.')


def resolve_cameras(cameras: Sequence[CameraProfile | str], *,
                    ssf_dir: str | os.PathLike[str] | None = None
                    ) -> list[CameraProfile]:
  """`camera_profile` of each; distinct slugs required."""
  profiles = [camera_profile(c, ssf_dir=ssf_dir) for c in cameras]
  if len({p.slug for p in profiles}) != len(profiles):
    raise ValueError(f'cameras must be distinct, got '
                     f'{[p.slug for p in profiles]}.')
  return profiles
