"""Camera raw reader: rawpy (LibRaw) for the pixels, tifffile for DNG tags.

`read_raw(path)` returns a `RawImage`: the visible Bayer mosaic plus the
metadata the classic pipeline needs, with every value's provenance recorded
(`wb_source`, `color_matrix_source`). Bad input stops here: anything that is
not a readable 2x2 RGB Bayer raw raises `RawReadError` naming the path and the
reason, instead of crashing later or returning garbage.

Truncated and corrupt files are caught in three layers (LibRaw alone is not
enough: for a DNG cut to 1 KiB it opens the file, unpacks without an error and
returns an all-zero mosaic):

1. TIFF-based raws (DNG, NEF, CR2, ARW, ...) are parsed with tifffile
   (`rawjax.io.tiff`) before LibRaw sees them. Every IFD (the IFD chain and
   its SubIFDs) must have its strip/tile data inside the file: `offset +
   byte count <= file size`. For DNGs, where the TIFF structure is fully
   specified, a tag whose value lies outside the file (tifffile logs it and
   drops the tag) or a raw IFD without readable strip/tile offsets is also
   an error.
2. LibRaw errors at open and unpack (I/O error, data error, unsupported
   format, too big, out of memory) become `RawReadError`.
3. The decoded mosaic is checked: an all-zero mosaic is rejected, and so is a
   mosaic whose last row ends in a long run of exact zeros although the black
   level is positive (LibRaw zero-fills data it could not read).

LibRaw's metadata is then cross-checked against the TIFF tags and the data
(see `read_raw`): a non-Bayer layout, or levels that cannot be right, raise
`RawReadError`; repairs (odd size, white level, white balance) are recorded
in `RawImage.warnings` and in the provenance fields.

DNG opcode lists (OpcodeList1/2/3) are decoded from the raw IFD; a malformed
list is an error naming the tag. The GainMap opcodes of OpcodeList2 (lens and
colour shading correction, applied to the normalised raw) are reported in
`RawImage.gain_maps`, evaluated per packed pixel by `RawImage.gain_map()`, and
passed to the pipeline by `RawImage.metadata()`. LibRaw itself applies no
opcodes; GainMaps of OpcodeList1/3 (before linearisation / after demosaic)
and all other opcodes are named in `gain_map_source` but not applied.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import rawpy

from rawjax.io import tiff
from rawjax.isp import cfa, color, shading

if TYPE_CHECKING:
  from rawjax.isp.metadata import RawMetadata

__all__ = [
    'DngTags', 'RawImage', 'RawReadError',
    'camera_to_srgb_from_xyz_to_camera', 'read_raw',
]

# EXIF LightSource codes used by DNG CalibrationIlluminant1/2.
_ILLUMINANTS = {
    0: 'unknown', 1: 'Daylight', 2: 'Fluorescent', 3: 'Tungsten', 4: 'Flash',
    9: 'Fine weather', 10: 'Cloudy', 11: 'Shade',
    12: 'Daylight fluorescent', 13: 'Day white fluorescent',
    14: 'Cool white fluorescent', 15: 'White fluorescent',
    16: 'Warm white fluorescent', 17: 'A', 18: 'B', 19: 'C', 20: 'D55',
    21: 'D65', 22: 'D75', 23: 'D50', 24: 'ISO studio tungsten', 255: 'other',
}

# Daylight-type illuminants (EXIF codes) LibRaw prefers after D65.
_DAYLIGHT_ILLUMINANTS = (1, 20, 22, 23, 4)

# LibRaw `sizes.flip` -> EXIF Orientation (inverse of dcraw's "50132467").
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

# TIFF / DNG tag codes.
_MAKE, _MODEL, _ORIENTATION = 271, 272, 274
_EXPOSURE_TIME, _ISO = 33434, 34855
_IMAGE_WIDTH, _IMAGE_LENGTH, _SAMPLES_PER_PIXEL = 256, 257, 277
_CFA_REPEAT_PATTERN_DIM, _CFA_PATTERN = 33421, 33422
_CFA_PLANE_COLOR = 50710
_UNIQUE_CAMERA_MODEL, _BLACK_LEVEL, _WHITE_LEVEL = 50708, 50714, 50717
_COLOR_MATRIX = {1: 50721, 2: 50722}
_CAMERA_CALIBRATION = {1: 50723, 2: 50724}
_ANALOG_BALANCE, _AS_SHOT_NEUTRAL, _BASELINE_EXPOSURE = 50727, 50728, 50730
_CALIBRATION_ILLUMINANT = {1: 50778, 2: 50779}
_FORWARD_MATRIX = {1: 50964, 2: 50965}
_OPCODE_LISTS = {1: 51008, 2: 51009, 3: 51022}

# The TIFF structure check, a module attribute so that tests can disable it.
_inspect_tiff = tiff.inspect_tiff

# An image whose last row ends in this many exact zeros while the black level
# is positive is treated as zero-filled missing data.
_ZERO_TAIL_PIXELS = 64

# TIFF/EP CFAPattern colour codes (DNG: the values of CFAPlaneColor).
_CFA_COLOURS = 'RGBCMYW'

# Level plausibility (see `read_raw`). A black level above this fraction of a
# channel's pixels is refused: even a dark frame has only about half of its
# pixels below black (the read noise).
_MAX_FRACTION_BELOW_BLACK = 0.9
# Per-channel black levels spread wider than this fraction of the white range
# get a warning: read-out channels differ by a few DN, not by a percent.
_BLACK_SPREAD_WARNING = 1 / 128


class RawReadError(Exception):
  """A file could not be read as a 2x2 RGB Bayer camera raw.

  Attributes:
    path: the file.
    reason: why it was rejected.
  """

  def __init__(self, path: str | os.PathLike[str], reason: str):
    super().__init__(str(path), reason)
    self.path = str(path)
    self.reason = reason

  def __str__(self) -> str:
    return f'cannot read raw file {self.path}: {self.reason}'


@dataclasses.dataclass(frozen=True, eq=False)
class DngTags:
  """The DNG colour tags (IFD0, falling back to the other IFDs).

  Matrices keep the DNG shapes for n colour planes: ColorMatrix (n, 3)
  (XYZ -> camera), ForwardMatrix (3, n) (white-balanced camera -> XYZ D50),
  CameraCalibration (n, n). Rationals are converted to float64. A tag that is
  absent (or has a zero denominator) is None.
  """
  dng_version: tuple[int, ...] | None = None
  unique_camera_model: str | None = None
  color_matrix_1: np.ndarray | None = None
  color_matrix_2: np.ndarray | None = None
  forward_matrix_1: np.ndarray | None = None
  forward_matrix_2: np.ndarray | None = None
  calibration_illuminant_1: int | None = None
  calibration_illuminant_2: int | None = None
  camera_calibration_1: np.ndarray | None = None
  camera_calibration_2: np.ndarray | None = None
  analog_balance: np.ndarray | None = None
  as_shot_neutral: np.ndarray | None = None
  baseline_exposure: float | None = None

  def color_matrix(self, k: int) -> np.ndarray | None:
    return (self.color_matrix_1, self.color_matrix_2)[k - 1]

  def camera_calibration(self, k: int) -> np.ndarray | None:
    return (self.camera_calibration_1, self.camera_calibration_2)[k - 1]

  def calibration_illuminant(self, k: int) -> int | None:
    return (self.calibration_illuminant_1, self.calibration_illuminant_2)[k - 1]


@dataclasses.dataclass(frozen=True, eq=False)
class RawImage:
  """A decoded Bayer raw and its metadata.

  Attributes:
    path: the file read.
    mosaic: (H, W) uint16 (or float32 for floating-point raws) sensor values
      of the visible area (rawpy `raw_image_visible`, copied), not
      black-subtracted, not flipped (see `orientation`). H and W are even: an
      odd visible size loses its last row and/or column (`even_crop`).
    pattern: CFA pattern of `mosaic` ('RGGB', 'BGGR', 'GRBG' or 'GBRG'), i.e.
      of its top-left 2x2 cell.
    black_level: (4,) float32 black level per canonical channel
      (R, Gr, Gb, B), sensor units.
    white_level: saturation level, sensor units (LibRaw `maximum`, unless
      it is far below the data: see `white_level_source`).
    white_level_source: where `white_level` came from: 'libraw:white_level'
      or, when the data maximum exceeds black + 2 (white - black) (a white
      level that cannot be the saturation point), 'data bit depth (...)':
      2^ceil(log2(max + 1)) - 1 of the mosaic, with a warning.
    above_white: how many mosaic pixels are above `white_level` (reported,
      with a warning, not clipped).
    wb_gains: (3,) float64 white-balance gains (R, G, B) normalised to G = 1,
      or None when the file has none (see `wb_source`).
    wb_source: where `wb_gains` came from: 'libraw:camera_whitebalance
      (as shot)', 'libraw:daylight_whitebalance (colour-matrix white; ...)'
      (LibRaw's white from the colour matrix, used when the as-shot value is
      missing or unusable, and always when a DNG's AsShotNeutral tag is
      zero, negative or not finite) or 'missing: ...'. Never 'as shot'
      unless the file's as-shot value is valid.
    xyz_to_camera: (3, 3) float64 XYZ -> camera matrix used for colour
      (dcraw/Adobe convention, rows = camera channels R, G, B), or None.
      Choice (LibRaw's, so that `camera_to_srgb()` reproduces LibRaw's
      `libraw_rgb_cam`, tested to 1e-5): for a DNG with both ColorMatrix1/2
      and both CalibrationIlluminant1/2, the matrix calibrated under D65, else
      the one under a daylight-type illuminant (Daylight, D55, D75, D50,
      Flash); otherwise, as dcraw, the last ColorMatrix tag (ColorMatrix2 when
      present, else ColorMatrix1). For both sample DNGs (A/D65 and
      Tungsten/D50) this is ColorMatrix2. As the DNG spec says, the chosen
      matrix is multiplied by its own CameraCalibration and by AnalogBalance
      when those are present and not the identity (diagonal factors cancel in
      the camera -> sRGB derivation anyway; LibRaw's dcraw fallback pairs
      CameraCalibration1 with ColorMatrix2, a quirk not copied here).
      Non-DNG files use rawpy `rgb_xyz_matrix[:3]` (LibRaw's per-camera
      table) when it is not all zero; LibRaw 0.22 leaves it zero for DNGs.
      When neither exists this is None: reading still works, and only the
      methods that need colour (`camera_to_srgb`, `metadata`) raise.
    color_matrix_source: where `xyz_to_camera` came from, e.g.
      'dng:ColorMatrix2 (D65)', 'libraw:rgb_xyz_matrix', or 'missing: ...'.
    libraw_rgb_cam: (3, 3) float64 LibRaw's camera -> linear sRGB matrix
      (rawpy `color_matrix[:, :3]`), for reference.
    dng: the DNG colour tags, or None when the file is not a DNG.
    make, model: TIFF Make/Model tags (None when absent or not TIFF-based).
    iso: ISO speed (EXIF/TIFF-EP tag, else LibRaw), None when unknown.
    exposure_time: seconds (EXIF/TIFF-EP tag, else LibRaw), None when unknown.
    orientation: EXIF Orientation code 1..8 (the file's tag, else derived from
      LibRaw's flip).
    flip: rawpy `sizes.flip`, LibRaw's code for the same transform (EXIF
      1..8 <-> flip 0, 1, 3, 2, 4, 6, 7, 5; e.g. EXIF 2, mirror horizontal,
      is flip 1). `mosaic` is never flipped.
    raw_type: rawpy raw type name ('Flat').
    default_crop: LibRaw's crop of the mosaic as (top, left, height, width)
      (DNG DefaultCrop), or None.
    gain_maps: the GainMap opcodes of the DNG's OpcodeList2, in file order
      (`rawjax.isp.GainMap`, rectangles in `mosaic` coordinates: the DNG
      active area, which is LibRaw's visible area); () when there are none.
    gain_map_source: where `gain_maps` came from, e.g. 'dng:OpcodeList2 (4
      GainMap opcodes)', or 'missing: ...'; opcodes that are present but not
      applied are named after a '; '.
    even_crop: (rows, columns) dropped at the bottom and right of LibRaw's
      visible area to make its size even (the CFA phase is kept); (0, 0) for
      an even size.
    warnings: the metadata a reader should not trust blindly, one sentence
      each (odd size cropped, white level replaced, pixels above white,
      black levels spread across channels, white balance fallback); () for a
      clean file.
  """
  path: str
  mosaic: np.ndarray
  pattern: str
  black_level: np.ndarray
  white_level: float
  wb_gains: np.ndarray | None
  wb_source: str
  xyz_to_camera: np.ndarray | None
  color_matrix_source: str
  libraw_rgb_cam: np.ndarray
  dng: DngTags | None
  make: str | None
  model: str | None
  iso: float | None
  exposure_time: float | None
  orientation: int
  flip: int
  raw_type: str
  default_crop: tuple[int, int, int, int] | None = None
  gain_maps: tuple[shading.GainMap, ...] = ()
  gain_map_source: str = 'missing: no OpcodeList2 tag'
  white_level_source: str = 'libraw:white_level'
  above_white: int = 0
  even_crop: tuple[int, int] = (0, 0)
  warnings: tuple[str, ...] = ()

  def camera_to_srgb(self) -> np.ndarray:
    """(3, 3) white-balanced camera RGB -> linear sRGB, from `xyz_to_camera`.

    Raises:
      RawReadError: the file has no colour matrix.
    """
    if self.xyz_to_camera is None:
      raise RawReadError(self.path,
                         f'missing colour matrix ({self.color_matrix_source})')
    try:
      return camera_to_srgb_from_xyz_to_camera(self.xyz_to_camera)
    except ValueError as e:
      raise RawReadError(self.path, f'unusable colour matrix from '
                         f'{self.color_matrix_source}: {e}') from e

  def gain_map(self) -> np.ndarray | None:
    """(H/2, W/2, 4) float32 shading correction gain, or None.

    The product of `gain_maps` evaluated at every pixel of `mosaic` as the
    DNG SDK does (`rawjax.isp.gain_from_gain_maps`), packed in canonical
    (R, Gr, Gb, B) order; the factor for the black-subtracted, normalised
    raw. None when the file has no GainMap in OpcodeList2.
    """
    if not self.gain_maps:
      return None
    height, width = self.mosaic.shape
    return shading.gain_from_gain_maps(self.gain_maps, height=height,
                                       width=width, pattern=self.pattern)

  def metadata(self) -> RawMetadata:
    """The `rawjax.isp.RawMetadata` pytree for the classic pipeline.

    `cam_to_srgb` is derived from `xyz_to_camera` the dcraw/LibRaw way
    (`camera_to_srgb_from_xyz_to_camera`); `gain_map` is `self.gain_map()`
    (None without GainMap opcodes).

    Raises:
      RawReadError: the file has no colour matrix or no white balance.
    """
    from rawjax.isp.metadata import RawMetadata  # pylint: disable=g-import-not-at-top
    cam_to_srgb = self.camera_to_srgb()
    if self.wb_gains is None:
      raise RawReadError(self.path, f'missing white balance ({self.wb_source})')
    return RawMetadata.create(
        pattern=self.pattern, black_level=self.black_level,
        white_level=self.white_level, wb_gains=self.wb_gains,
        cam_to_srgb=cam_to_srgb, gain_map=self.gain_map())


def camera_to_srgb_from_xyz_to_camera(xyz_to_camera: Any) -> np.ndarray:
  """Validated host-side `rawjax.isp.camera_to_srgb_from_xyz_to_camera`.

  The dcraw/LibRaw camera -> sRGB matrix (rawpy `color_matrix[:, :3]`) of a
  file's XYZ -> camera matrix, after checking that it can be computed.

  Raises:
    ValueError: not a finite 3x3 matrix, a row of
      xyz_to_camera @ LIBRAW_SRGB_TO_XYZ sums to zero, or it is singular.
  """
  m = np.asarray(xyz_to_camera, np.float64)
  if m.shape != (3, 3) or not np.all(np.isfinite(m)):
    raise ValueError(f'xyz_to_camera must be a finite 3x3 matrix, got shape '
                     f'{m.shape}.')
  cam_rgb = m @ color.LIBRAW_SRGB_TO_XYZ
  sums = cam_rgb.sum(axis=1, keepdims=True)
  if np.any(np.abs(sums) < 1e-12):
    raise ValueError('a row of xyz_to_camera @ LIBRAW_SRGB_TO_XYZ sums to zero.')
  if abs(np.linalg.det(cam_rgb / sums)) < 1e-12:
    raise ValueError('xyz_to_camera @ LIBRAW_SRGB_TO_XYZ is singular.')
  return np.asarray(color.camera_to_srgb_from_xyz_to_camera(m), np.float64)


def _dng_tags(info: tiff.TiffInfo) -> DngTags:
  version = info.ifd0[tiff.DNG_VERSION].value
  try:
    version = tuple(int(v) for v in version)
  except TypeError:
    version = None
  kw = {}
  for k in (1, 2):
    kw[f'color_matrix_{k}'] = tiff.matrix(info.find(_COLOR_MATRIX[k]),
                                          cols=3)
    kw[f'forward_matrix_{k}'] = tiff.matrix(info.find(_FORWARD_MATRIX[k]),
                                            rows=3)
    kw[f'calibration_illuminant_{k}'] = tiff.integer(
        info.find(_CALIBRATION_ILLUMINANT[k]))
    kw[f'camera_calibration_{k}'] = tiff.matrix(
        info.find(_CAMERA_CALIBRATION[k]))
  baseline = tiff.numbers(info.find(_BASELINE_EXPOSURE))
  return DngTags(
      dng_version=version,
      unique_camera_model=tiff.text(info.find(_UNIQUE_CAMERA_MODEL)),
      analog_balance=tiff.numbers(info.find(_ANALOG_BALANCE)),
      as_shot_neutral=tiff.numbers(info.find(_AS_SHOT_NEUTRAL)),
      baseline_exposure=None if baseline is None else float(baseline[0]),
      **kw)


# --- DNG opcode lists ---------------------------------------------------------


def _opcode_bytes(path: str, k: int, tag: tiff.TagValue) -> bytes:
  value = tag.value
  if isinstance(value, (bytes, bytearray)):
    return bytes(value)
  try:
    return bytes(bytearray(np.asarray(value).ravel().tolist()))
  except (TypeError, ValueError) as e:
    raise RawReadError(path, f'malformed OpcodeList{k} tag '
                       f'({_OPCODE_LISTS[k]}): its value is not a byte '
                       'string') from e


def _describe(ops: list[Any]) -> str:
  names = ['GainMap' if isinstance(op, shading.GainMap) else
           f'opcode {op.opcode_id}' for op in ops]
  return ', '.join(names)


def _gain_maps(path: str, info: tiff.TiffInfo | None
               ) -> tuple[tuple[shading.GainMap, ...], str]:
  """The OpcodeList2 GainMaps of a DNG and their provenance text.

  All three opcode lists are decoded (so a corrupt one is an error); only
  the GainMaps of OpcodeList2 are returned, the rest is named.
  """
  if info is None or not info.is_dng:
    return (), 'missing: not a DNG (no OpcodeList2)'
  ifd = info.raw_ifd if info.raw_ifd is not None else info.ifd0
  lists = {}
  for k, code in _OPCODE_LISTS.items():
    tag = ifd.get(code)
    if tag is None:
      continue
    try:
      lists[k] = shading.decode_opcode_list(_opcode_bytes(path, k, tag))
    except ValueError as e:
      raise RawReadError(path, f'malformed OpcodeList{k} tag ({code}): '
                         f'{e}') from e
  gain_maps = tuple(op for op in lists.get(2, ())
                    if isinstance(op, shading.GainMap))
  if gain_maps:
    source = f'dng:OpcodeList2 ({len(gain_maps)} GainMap opcodes)'
  elif 2 in lists:
    source = 'missing: OpcodeList2 has no GainMap opcode'
  else:
    source = 'missing: no OpcodeList2 tag'
  unused = []
  for k, ops in lists.items():
    rest = [op for op in ops
            if k != 2 or not isinstance(op, shading.GainMap)]
    if rest:
      unused.append(f'OpcodeList{k}: {_describe(rest)}')
  if unused:
    source += f'; not applied: {"; ".join(unused)}'
  return gain_maps, source


# --- colour and white balance -------------------------------------------------


def _usable_matrix(m: np.ndarray | None) -> bool:
  return (m is not None and m.shape == (3, 3) and bool(np.all(np.isfinite(m)))
          and bool(np.any(m != 0)))


def _select_color_matrix(dng: DngTags) -> int | None:
  """Which ColorMatrix (1 or 2) LibRaw uses; None when there is none.

  LibRaw 0.22 (`identify_process_dng_fields`): when both matrices and both
  illuminants are present, the first one calibrated under D65, else the first
  under a daylight-type illuminant (Daylight, D55, D75, D50, Flash);
  otherwise, as dcraw, the last ColorMatrix tag read (ColorMatrix2 when
  present).
  """
  available = [k for k in (1, 2) if _usable_matrix(dng.color_matrix(k))]
  if not available:
    return None
  illuminants = {k: dng.calibration_illuminant(k) or 0 for k in (1, 2)}
  if len(available) == 2 and all(illuminants.values()):
    for k in (1, 2):
      if illuminants[k] == 21:
        return k
    for k in (1, 2):
      if illuminants[k] in _DAYLIGHT_ILLUMINANTS:
        return k
  return available[-1]


def _choose_xyz_to_camera(dng: DngTags | None, rgb_xyz_matrix: np.ndarray
                          ) -> tuple[np.ndarray | None, str]:
  k = _select_color_matrix(dng) if dng is not None else None
  if k is not None:
    illuminant = dng.calibration_illuminant(k)
    if illuminant is None:
      name = 'no CalibrationIlluminant'
    else:
      name = _ILLUMINANTS.get(illuminant, f'illuminant {illuminant}')
    source = f'dng:ColorMatrix{k} ({name})'
    m = dng.color_matrix(k)
    cc = dng.camera_calibration(k)
    if cc is not None and cc.shape == (3, 3) and not np.allclose(cc,
                                                                np.eye(3)):
      m = cc @ m
      source += f' x CameraCalibration{k}'
    ab = dng.analog_balance
    if ab is not None and ab.shape == (3,) and not np.allclose(ab, 1):
      m = np.diag(ab) @ m
      source += ' x AnalogBalance'
    return m, source
  libraw = np.asarray(rgb_xyz_matrix, np.float64)[:3]
  if _usable_matrix(libraw):
    return libraw, 'libraw:rgb_xyz_matrix'
  where = 'no DNG ColorMatrix1/2 tag and ' if dng is not None else ''
  return None, f'missing: {where}LibRaw rgb_xyz_matrix is all zeros'


def _wb_gains(coeffs: Any, color_desc: str) -> np.ndarray | None:
  coeffs = np.asarray(coeffs, np.float64).ravel()
  try:
    r, g, b = (coeffs[color_desc.index(c)] for c in 'RGB')
  except (ValueError, IndexError):
    return None
  gains = np.array([r, g, b], np.float64)
  if not np.all(np.isfinite(gains)) or np.any(gains <= 0):
    return None
  return gains / g


def _as_shot_neutral_problem(info: tiff.TiffInfo | None) -> str | None:
  """Why a DNG's AsShotNeutral tag is unusable; None when valid or absent."""
  if info is None or not info.is_dng:
    return None
  tag = info.find(_AS_SHOT_NEUTRAL)
  if tag is None:
    return None
  values = tiff.numbers(tag)
  if values is None:
    return ('the DNG AsShotNeutral tag (50728) is not finite (a zero '
            'denominator or no numbers)')
  if values.size != 3 or np.any(values <= 0):
    return (f'the DNG AsShotNeutral tag (50728) is {values.tolist()}, not 3 '
            'positive values')
  return None


def _white_balance(raw: Any, color_desc: str, info: tiff.TiffInfo | None
                   ) -> tuple[np.ndarray | None, str]:
  """The white-balance gains and their provenance.

  LibRaw turns an invalid AsShotNeutral (e.g. zero denominators) into
  plausible-looking "camera" gains, so for DNGs the tag itself decides
  whether the as-shot value can be used.
  """
  problem = _as_shot_neutral_problem(info)
  wb = None if problem else _wb_gains(raw.camera_whitebalance, color_desc)
  if wb is not None:
    return wb, 'libraw:camera_whitebalance (as shot)'
  why = problem or 'the file has no usable as-shot white balance'
  wb = _wb_gains(raw.daylight_whitebalance, color_desc)
  if wb is not None:
    return wb, f'libraw:daylight_whitebalance (colour-matrix white; {why})'
  return None, ('missing: neither as-shot nor colour-matrix (daylight) white '
                f'balance is available ({why})')


# --- reading ------------------------------------------------------------------


def _libraw_message(e: BaseException) -> str:
  msg = e.args[0] if e.args else ''
  if isinstance(msg, bytes):
    msg = msg.decode('utf-8', 'replace')
  return f'{type(e).__name__}: {msg}' if msg else type(e).__name__


def _open_libraw(path: str) -> Any:
  """Opens and unpacks a file with LibRaw; the caller closes the handle."""
  raw = rawpy.imread(path)
  try:
    raw.unpack()
  except BaseException:
    raw.close()
    raise
  return raw


def _check_file(path: str) -> int:
  if not os.path.exists(path):
    raise RawReadError(path, 'file not found')
  if os.path.isdir(path):
    raise RawReadError(path, 'is a directory, not a raw file')
  if not os.path.isfile(path):
    raise RawReadError(path, 'not a regular file')
  try:
    size = os.path.getsize(path)
    with open(path, 'rb'):
      pass
  except OSError as e:
    raise RawReadError(path, f'cannot open the file ({e.strerror or e})') from e
  if size == 0:
    raise RawReadError(path, 'empty file (0 bytes)')
  return size


def _check_mosaic(path: str, mosaic: np.ndarray, black: np.ndarray) -> None:
  if mosaic.size == 0:
    raise RawReadError(path, 'LibRaw decoded an empty image')
  if not np.any(mosaic):
    raise RawReadError(path, 'the decoded mosaic is entirely zero (truncated '
                       'or corrupt file: no image data was read)')
  if np.issubdtype(mosaic.dtype, np.floating) and not np.all(
      np.isfinite(mosaic)):
    raise RawReadError(path, 'the decoded mosaic has NaN or infinite values')
  if float(np.min(black)) > 0:
    nonzero = np.flatnonzero(mosaic[-1])
    tail = mosaic.shape[1] - (int(nonzero[-1]) + 1 if nonzero.size else 0)
    if tail >= min(_ZERO_TAIL_PIXELS, mosaic.shape[1]):
      raise RawReadError(
          path, f'the decoded mosaic ends in {tail} pixels of exact zeros '
          f'although the black level is {float(np.min(black)):g} (missing '
          'data: truncated or corrupt file)')


def _exif_number(value: Any, *, rational: bool = False) -> float | None:
  """A positive number from a tag value; `rational` reads (num, den)."""
  if value is None:
    return None
  try:
    arr = np.asarray(value, np.float64).ravel()
  except (TypeError, ValueError):
    return None
  if rational and arr.size >= 2:
    if arr[1] == 0:
      return None
    arr = arr[:1] / arr[1]
  if arr.size == 0 or not np.isfinite(arr[0]) or arr[0] <= 0:
    return None
  return float(arr[0])


def _shot_settings(info: tiff.TiffInfo | None, other: Any
                   ) -> tuple[float | None, float | None]:
  iso = exposure = None
  if info is not None:
    iso_tag = info.ifd0.get(_ISO)
    if iso_tag is not None:
      iso = _exif_number(iso_tag.value)
    exp_tag = info.ifd0.get(_EXPOSURE_TIME)
    if exp_tag is not None:
      values = tiff.numbers(exp_tag)
      exposure = float(values[0]) if values is not None else None
    if iso is None:
      iso = _exif_number(info.exif.get('ISOSpeedRatings',
                                       info.exif.get('PhotographicSensitivity')))
    if exposure is None:
      exposure = _exif_number(info.exif.get('ExposureTime'), rational=True)
  if iso is None:
    iso = _exif_number(getattr(other, 'iso_speed', None))
  if exposure is None:
    exposure = _exif_number(getattr(other, 'shutter_speed', None))
  return iso, exposure


def read_raw(path: str | os.PathLike[str]) -> RawImage:
  """Reads a Bayer camera raw file.

  Args:
    path: a camera raw file LibRaw can decode (DNG, NEF, CR2, ARW, ...).

  Returns:
    The visible mosaic and its metadata (see `RawImage`).

  Metadata sanity (each repair is recorded in `RawImage.warnings`):
    * layout: LibRaw must decode a Flat 2x2 mosaic of R, G, B (so no
      scanner, Foveon, linear, X-Trans, CMY or CMYG raw), the TIFF IFD of
      the raw's size must not be an RGB/linear image, and a 2x2 CFAPattern
      tag (through CFAPlaneColor) must be R, G, G, B and agree with LibRaw;
    * an odd visible size is cropped to even at the bottom/right
      (`even_crop`);
    * levels: white must be above black; black must be below the data
      maximum and below at most 90% of any channel's pixels; a white level
      with data above black + 2 (white - black) is replaced by the data's
      bit depth (`white_level_source`); pixels above white are counted
      (`above_white`); per-channel blacks spread by more than 1/128 of the
      white range are kept with a warning;
    * white balance: a DNG AsShotNeutral that is zero, negative or not
      finite is not used; the colour-matrix (LibRaw daylight) white is, and
      `wb_source` says why.

  Raises:
    RawReadError: missing, unreadable, empty, truncated or corrupt file;
      unsupported format; not a 2x2 RGB Bayer mosaic (scanner/Foveon/linear
      raw, X-Trans, CMY, CMYG, a CFA tag that contradicts LibRaw); missing
      or zero white level; white <= black, or a black level above the data
      (the message names the level tags); invalid black level; malformed
      DNG OpcodeList1/2/3 tag.
    TypeError: `path` is not a str or path-like.
  """
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f'read_raw: path must be a str or os.PathLike, got '
                    f'{type(path).__name__}.')
  path = os.fspath(path)
  size = _check_file(path)

  info = _inspect_tiff(path, size)
  if info is not None:
    if info.problems:
      raise RawReadError(path, '; '.join(info.problems))
    if (info.parse_error is None and not info.is_dng and
        info.find(_MAKE) is None):
      raise RawReadError(
          path, 'unsupported format: a plain TIFF image, not a camera raw (no '
          'DNGVersion or Make tag; LibRaw would only guess a Bayer layout)')
    if info.is_dng:
      white_tag = tiff.numbers(info.find(_WHITE_LEVEL))
      if white_tag is not None and np.any(white_tag <= 0):
        raise RawReadError(path, 'zero white level (DNG WhiteLevel (50717) '
                           f'tag is {white_tag.tolist()})')
  dng = _dng_tags(info) if info is not None and info.is_dng else None
  gain_maps = _gain_maps(path, info)

  try:
    raw = _open_libraw(path)
  except rawpy.LibRawFileUnsupportedError as e:
    raise RawReadError(path, 'unsupported or unrecognised file format '
                       f'({_libraw_message(e)})') from e
  except (rawpy.LibRawError, OSError, MemoryError, RuntimeError) as e:
    raise RawReadError(path, 'LibRaw could not decode the file, it is '
                       f'truncated or corrupt ({_libraw_message(e)})') from e
  try:
    return _image_from_libraw(path, raw, info, dng, gain_maps)
  except (rawpy.LibRawError, MemoryError, RuntimeError,
          NotImplementedError) as e:
    raise RawReadError(path, 'LibRaw failed while decoding the file '
                       f'({_libraw_message(e)})') from e
  finally:
    raw.close()


# --- sanity of the decoded layout and levels ---------------------------------


def _level_tags(info: tiff.TiffInfo | None) -> tuple[str, str]:
  """How the black and white levels are named in messages."""
  if info is not None and info.is_dng:
    return 'DNG BlackLevel (50714)', 'DNG WhiteLevel (50717)'
  return 'LibRaw black_level_per_channel', 'LibRaw white_level'


def _check_not_an_rgb_image(path: str, info: tiff.TiffInfo | None,
                            sizes: Any) -> None:
  """Refuses a file whose TIFF IFD of the raw's size is not a CFA image.

  A corrupt Make tag or IFD entry can make LibRaw take a scanner's RGB image
  for a Bayer mosaic (raw type Flat, RGGB); the IFD itself still says RGB.
  """
  if info is None:
    return
  width, height = int(sizes.raw_width), int(sizes.raw_height)
  for ifd in [info.ifd0, *info.ifds]:
    if (tiff.integer(ifd.get(_IMAGE_WIDTH)) != width or
        tiff.integer(ifd.get(_IMAGE_LENGTH)) != height):
      continue
    photometric = tiff.integer(ifd.get(tiff.PHOTOMETRIC))
    samples = tiff.integer(ifd.get(_SAMPLES_PER_PIXEL)) or 1
    if photometric != 32803 and (samples > 1 or photometric in (2, 6, 34892)):
      raise RawReadError(
          path, f'not a Bayer mosaic: the TIFF image of the raw\'s size '
          f'{width}x{height} has PhotometricInterpretation {photometric} and '
          f'{samples} samples per pixel (an RGB or linear image, e.g. a film '
          'scanner), although LibRaw decodes it as a mosaic')
  if info.is_dng and info.raw_ifd is None:
    raise RawReadError(path, 'not a Bayer mosaic: the DNG has no raw IFD with '
                       'PhotometricInterpretation CFA (32803)')


def _tiff_cfa_letters(info: tiff.TiffInfo | None) -> str | None:
  """The 2x2 CFA colours of the raw IFD's CFAPattern tag, row by row.

  DNG CFAPattern values index CFAPlaneColor; its colour codes, like TIFF/EP
  CFAPattern values, are 0..6 = R G B C M Y W ('?' for anything else). None
  when there are no CFA tags to compare with; 'a <dims> repeat of <n>
  values' when they do not describe a 2x2 cell.
  """
  if info is None or info.raw_ifd is None:
    return None
  ifd = info.raw_ifd
  dim = tiff.numbers(ifd.get(_CFA_REPEAT_PATTERN_DIM))
  codes = ifd.get(_CFA_PATTERN)
  if dim is None or codes is None:
    return None
  values = codes.value
  values = list(bytes(values)) if isinstance(values, (bytes, bytearray)) else (
      np.ravel(values).astype(int).tolist())
  if dim.tolist() != [2, 2] or len(values) != 4:
    # LibRaw decoded a 2x2 cell, so the tags contradict it.
    return (f'a {"x".join(str(int(d)) for d in dim)} repeat of '
            f'{len(values)} values')
  # Without CFAPlaneColor (its DNG default is R, G, B) the values are read as
  # TIFF/EP colour codes, which agree on 0..2 and name the others.
  planes = list(range(len(_CFA_COLOURS)))
  if info.is_dng and ifd.get(_CFA_PLANE_COLOR) is not None:
    plane_value = ifd[_CFA_PLANE_COLOR].value
    planes = (list(bytes(plane_value)) if isinstance(plane_value,
                                                     (bytes, bytearray))
              else np.ravel(plane_value).astype(int).tolist())
  letters = ''
  for v in values:
    code = planes[v] if 0 <= v < len(planes) else -1
    letters += _CFA_COLOURS[code] if 0 <= code < len(_CFA_COLOURS) else '?'
  return letters


def _check_cfa_colours(path: str, info: tiff.TiffInfo | None,
                       raw_pattern: np.ndarray, color_desc: str,
                       sizes: Any) -> None:
  """LibRaw's 2x2 colours must be R, G, B and agree with the CFA tags."""
  letters = ''.join(color_desc[i] if 0 <= i < len(color_desc) else '?'
                    for i in raw_pattern.ravel().tolist())
  if sorted(set(letters)) != ['B', 'G', 'R']:
    raise RawReadError(
        path, f'non-RGB CFA colours: the 2x2 cell has {letters} (LibRaw '
        f'color_desc {color_desc!r}, e.g. a CMYG sensor); rawjax reads R, G, '
        'B Bayer mosaics')
  tagged = _tiff_cfa_letters(info)
  if tagged is None:
    return
  if tagged.startswith('a '):
    raise RawReadError(
        path, f'not a 2x2 Bayer CFA: CFARepeatPatternDim (33421) and '
        f'CFAPattern (33422) describe {tagged}, but LibRaw decodes a 2x2 '
        'cell; rawjax reads 2x2 Bayer mosaics')
  if sorted(set(tagged)) != ['B', 'G', 'R'] or tagged.count('G') != 2:
    raise RawReadError(
        path, f'non-RGB or non-Bayer CFA colours: the CFAPattern tag (33422, '
        f'with CFAPlaneColor) describes the 2x2 cell {tagged}; rawjax reads '
        'R, G, B Bayer mosaics')
  # The tag's phase is that of the raw IFD; LibRaw's raw_pattern too, but
  # the margins of an active area may shift it.
  shifted = np.roll(np.array(list(letters)).reshape(2, 2),
                    (-int(sizes.top_margin), -int(sizes.left_margin)), (0, 1))
  if tagged not in (letters, ''.join(shifted.ravel())):
    raise RawReadError(
        path, f'the CFA pattern does not match the colour description: the '
        f'CFAPattern tag (33422) gives {tagged} but LibRaw decodes '
        f'{letters} (color_desc {color_desc!r})')


def _crop_even(mosaic: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
  drop = (mosaic.shape[0] % 2, mosaic.shape[1] % 2)
  if drop == (0, 0):
    return mosaic, drop
  # Dropping the last row/column keeps the top-left cell, i.e. the phase.
  return (np.ascontiguousarray(mosaic[:mosaic.shape[0] - drop[0],
                                      :mosaic.shape[1] - drop[1]]), drop)


def _check_levels(path: str, info: tiff.TiffInfo | None, mosaic: np.ndarray,
                  black: np.ndarray, white: float, pattern: str
                  ) -> tuple[float, str, list[str]]:
  """Validates black against white and the data; the white level to use.

  Returns the white level, its source and the warnings.
  """
  black_name, white_name = _level_tags(info)
  if white <= float(np.max(black)):
    raise RawReadError(
        path, f'white level {white:g} ({white_name}) is not above the black '
        f'level {float(np.max(black)):g} ({black_name})')
  packed = np.stack([mosaic[dy::2, dx::2] for dy, dx in
                     cfa.channel_offsets(pattern)], axis=-1).reshape(-1, 4)
  data_max = float(np.max(mosaic))
  if data_max <= float(np.min(black)):
    raise RawReadError(
        path, f'black level {black.tolist()} ({black_name}) is at or above '
        f'every pixel (data maximum {data_max:g}): implausible levels')
  below = np.mean(packed < black, axis=0)
  worst = int(np.argmax(below))
  if below[worst] > _MAX_FRACTION_BELOW_BLACK:
    raise RawReadError(
        path, f'black level {black.tolist()} ({black_name}) is above '
        f'{100 * below[worst]:.1f}% of the {cfa.CHANNELS[worst]} pixels '
        f'(data maximum {data_max:g}): implausible levels')
  warnings = []
  source = 'libraw:white_level'
  low = float(np.min(black))
  if data_max > low + 2 * (white - low):
    if np.issubdtype(mosaic.dtype, np.integer):
      bits = max(int(np.ceil(np.log2(data_max + 1))), 1)
      new_white = float(2**bits - 1)
      source = (f'data bit depth ({bits} bits; {white_name} {white:g} is far '
                f'below the data maximum {data_max:g})')
    else:
      new_white = data_max
      source = (f'data maximum ({white_name} {white:g} is far below the '
                f'data maximum {data_max:g})')
    warnings.append(f'white level {white:g} ({white_name}) is far below the '
                    f'data maximum {data_max:g}; using {new_white:g} '
                    f'({source.split(" (")[0]})')
    white = new_white
  spread = float(np.max(black) - np.min(black))
  if spread > _BLACK_SPREAD_WARNING * (white - low):
    warnings.append(f'the per-channel black levels {black.tolist()} '
                    f'({black_name}) differ by {spread:g}, more than 1/128 of '
                    'the white range: a corrupt black level is likely')
  return white, source, warnings


def _image_from_libraw(path: str, raw: Any, info: tiff.TiffInfo | None,
                       dng: DngTags | None,
                       gain_maps: tuple[tuple[shading.GainMap, ...], str]
                       ) -> RawImage:
  raw_type = getattr(raw.raw_type, 'name', str(raw.raw_type))
  raw_pattern = raw.raw_pattern
  if raw_type != 'Flat' or raw_pattern is None:
    shape = tuple(np.shape(raw.raw_image))
    raise RawReadError(
        path, f'not a Bayer mosaic: LibRaw decodes it as a {raw_type} image '
        f'of shape {shape} with no colour filter pattern (raw_pattern is '
        'None; e.g. a film scanner, Foveon or linear raw)')
  raw_pattern = np.asarray(raw_pattern)
  if raw_pattern.shape == (6, 6):
    raise RawReadError(path, 'X-Trans colour filter array (6x6 repeating '
                       'cell) is not supported: rawjax reads 2x2 Bayer '
                       'mosaics')
  if raw_pattern.shape != (2, 2):
    raise RawReadError(path, 'unsupported colour filter array: repeating '
                       f'cell of shape {raw_pattern.shape}, rawjax reads 2x2 '
                       'Bayer mosaics')
  color_desc = raw.color_desc
  if isinstance(color_desc, bytes):
    color_desc = color_desc.decode('ascii', 'replace')
  sizes = raw.sizes
  _check_not_an_rgb_image(path, info, sizes)
  _check_cfa_colours(path, info, raw_pattern, color_desc, sizes)
  # rawpy's raw_pattern is anchored at the full raw's (0, 0); the mosaic is
  # the visible area, which starts at (top_margin, left_margin).
  visible_pattern = np.roll(raw_pattern,
                            (-int(sizes.top_margin), -int(sizes.left_margin)),
                            axis=(0, 1))
  try:
    pattern = cfa.pattern_from_rawpy(visible_pattern, color_desc)
    index = cfa.colour_index_to_channel(visible_pattern, color_desc)
  except ValueError as e:
    raise RawReadError(path, str(e)) from e

  mosaic = np.array(raw.raw_image_visible, copy=True)
  if mosaic.ndim != 2:
    raise RawReadError(path, f'not a Bayer mosaic: the decoded image has '
                       f'shape {mosaic.shape}')
  if mosaic.dtype not in (np.uint16, np.float32):
    mosaic = mosaic.astype(np.float32)
  if min(mosaic.shape) < 2:
    raise RawReadError(path, f'the decoded image of shape {mosaic.shape} is '
                       'smaller than one 2x2 CFA cell')
  warnings = []
  mosaic, even_crop = _crop_even(mosaic)
  if even_crop != (0, 0):
    warnings.append(f'the visible size is odd; dropped {even_crop[0]} '
                    f'row(s) at the bottom and {even_crop[1]} column(s) at '
                    f'the right, giving {mosaic.shape[0]}x{mosaic.shape[1]}')

  black_name, white_name = _level_tags(info)
  per_colour = np.asarray(raw.black_level_per_channel, np.float64)
  black = np.array([per_colour[i] for i in index], np.float32)
  if not np.all(np.isfinite(black)) or np.any(black < 0):
    raise RawReadError(path, f'invalid black level {black.tolist()} '
                       f'({black_name})')
  white = raw.white_level
  white = float(white) if white is not None else 0.0
  if not np.isfinite(white) or white <= 0:
    raise RawReadError(path, f'missing or zero white level (LibRaw reports '
                       f'{raw.white_level}; {white_name})')
  _check_mosaic(path, mosaic, black)
  white, white_source, level_warnings = _check_levels(
      path, info, mosaic, black, white, pattern)
  warnings += level_warnings
  above_white = int(np.count_nonzero(mosaic > white))
  if above_white:
    warnings.append(f'{above_white} pixels are above the white level '
                    f'{white:g}')

  wb, wb_source = _white_balance(raw, color_desc, info)
  if not wb_source.endswith('(as shot)'):
    warnings.append(f'white balance: {wb_source}')

  xyz_to_camera, matrix_source = _choose_xyz_to_camera(dng, raw.rgb_xyz_matrix)
  rgb_cam = np.asarray(raw.color_matrix, np.float64)[:3, :3].copy()

  flip = int(sizes.flip)
  orientation = None
  make = model = None
  if info is not None:
    orientation = tiff.integer(info.ifd0.get(_ORIENTATION))
    make = tiff.text(info.ifd0.get(_MAKE))
    model = tiff.text(info.ifd0.get(_MODEL))
  if orientation not in range(1, 9):
    orientation = _FLIP_TO_EXIF.get(flip, 1)
  iso, exposure = _shot_settings(info, getattr(raw, 'other', None))

  crop = None
  if getattr(sizes, 'crop_width', 0) > 0 and getattr(sizes, 'crop_height',
                                                     0) > 0:
    crop = (int(sizes.crop_top_margin), int(sizes.crop_left_margin),
            min(int(sizes.crop_height), mosaic.shape[0]),
            min(int(sizes.crop_width), mosaic.shape[1]))

  return RawImage(
      path=path, mosaic=mosaic, pattern=pattern, black_level=black,
      white_level=white, wb_gains=wb, wb_source=wb_source,
      xyz_to_camera=xyz_to_camera, color_matrix_source=matrix_source,
      libraw_rgb_cam=rgb_cam, dng=dng, make=make, model=model, iso=iso,
      exposure_time=exposure, orientation=orientation, flip=flip,
      raw_type=raw_type, default_crop=crop, gain_maps=gain_maps[0],
      gain_map_source=gain_maps[1], white_level_source=white_source,
      above_white=above_white, even_crop=even_crop,
      warnings=tuple(warnings))
