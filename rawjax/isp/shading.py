"""Lens and colour shading of packed raw, and the DNG GainMap opcode.

Shading model (`radial_falloff`): the relative illumination that channel c
of the packed raw records at packed pixel (i, j) is

    s_c(i, j) = 1 - f_c * (r(i, j) / r_max) ** p,
    r^2 = (y - y0)^2 + ((x - x0) / a)^2,

with (y, x) the pixel centre in packed-pixel units, (y0, x0) the optical
centre, a the anisotropy, r_max the value of r at the image corner farthest
from the optical centre and f_c the fraction of signal lost there. p = 2 is
the first-order expansion of the cos^4 law of natural vignetting (cos^4 t ~
1 - 2 t^2); larger p keeps the centre flatter, as in phone modules whose
falloff is concentrated in the corners. Pixel centres lie strictly inside the
corners, so s_c is in (1 - f_c, 1] and never zero for f_c < 1.

`apply_shading` multiplies by s (what the sensor records), `correct_shading`
divides by it (the inverse).

The DNG way to store the correction is the GainMap opcode (DNG specification
1.4.0.0, chapter 7 "Opcode List Processing", opcode ID 9, usually in
OpcodeList2 so that it applies to the linearised, black-subtracted raw
normalised to [0, 1]). `GainMap` holds one opcode's parameters,
`encode_opcode_list` / `decode_opcode_list` the OpcodeList tag format, and
`gain_maps_from_falloff` / `gain_from_gain_maps` convert between a packed
falloff and four per-CFA-phase GainMaps. The layout and the coordinate
conventions follow the Adobe DNG SDK (`dng_gain_map.cpp`:
`dng_gain_map::GetStream/PutStream`, `dng_gain_map_interpolator`,
`dng_opcode_GainMap::ProcessArea`; `dng_opcodes.cpp`:
`dng_opcode_list::Parse`), cross-checked with RawTherapee's
`rtengine/dnggainmap.h`:

- every value is big-endian whatever the TIFF byte order;
- list = uint32 count, then per opcode uint32 ID, 4 bytes DNG version,
  uint32 flags (bit 0 optional, bit 1 skip for previews), uint32 byte count
  of the parameters, the parameters; the list must end exactly at the tag's
  end;
- GainMap parameters = uint32 Top, Left, Bottom, Right, Plane, Planes,
  RowPitch, ColPitch, MapPointsV, MapPointsH; float64 MapSpacingV,
  MapSpacingH, MapOriginV, MapOriginH; uint32 MapPlanes; then
  MapPointsV * MapPointsH * MapPlanes float32 gains, row by row, column by
  column, plane by plane (76 + 4 n bytes);
- the opcode touches rows Top, Top + RowPitch, ... < Bottom and columns
  Left, Left + ColPitch, ... < Right of planes Plane .. Plane + Planes - 1,
  using map plane min(plane - Plane, MapPlanes - 1) (the SDK uses
  min(plane, MapPlanes - 1); identical for the single-plane CFA image);
- pixel (row, col) sits at the relative coordinates v = (row + 0.5) / H,
  u = (col + 0.5) / W of the whole image (H x W), NOT of the opcode's
  rectangle; map sample (m, n) sits at (MapOriginV + m MapSpacingV,
  MapOriginH + n MapSpacingH); the gain is the bilinear interpolation of the
  samples, clamped to the nearest sample outside the map;
- a map with one point in a direction has spacing 1 and origin 0 there.

The DNG SDK also clips the corrected value at 1 (white); `process` clips
after white balance instead, which is the same for white-balance gains >= 1.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import _math, cfa

__all__ = [
    'GAIN_MAP_OPCODE_ID', 'GainMap', 'OpaqueOpcode', 'apply_shading',
    'correct_shading', 'decode_opcode_list', 'encode_opcode_list',
    'gain_from_gain_maps', 'gain_maps_from_falloff', 'radial_falloff',
]

GAIN_MAP_OPCODE_ID = 9
# The DNG version GainMap first appeared in (the SDK writes it).
_GAIN_MAP_VERSION = (1, 3, 0, 0)
_AREA = struct.Struct('>10I4dI')  # the 76-byte fixed part of the parameters
_HEADER = struct.Struct('>I4BII')  # ID, DNG version, flags, byte count
_UINT32_MAX = 2**32 - 1
# Shading below this is treated as no light when correcting (guarded division).
_MIN_FALLOFF = 1e-6


def _concrete(x: Any) -> np.ndarray | None:
  """`x` as a float64 numpy array when it is not traced, else None."""
  try:
    return np.asarray(x, np.float64)
  except (TypeError, jax.errors.ConcretizationTypeError,
          jax.errors.TracerArrayConversionError):
    return None


def radial_falloff(height: int, width: int, *, corner_falloff: ArrayLike,
                   center: ArrayLike = (0.0, 0.0),
                   anisotropy: ArrayLike = 1.0,
                   exponent: ArrayLike = 2.0) -> jax.Array:
  """Relative illumination of each packed channel: radial lens/colour shading.

  s_c = 1 - f_c (r / r_max)^p with r^2 = (y - y0)^2 + ((x - x0) / a)^2 in
  packed-pixel units (see the module docstring). Every channel is evaluated
  at the packed pixel's centre (the half-pixel offsets between the CFA sites
  change s by less than one part in 1e3 of the image's falloff).

  Args:
    height: packed raw height H/2 (static).
    width: packed raw width W/2 (static).
    corner_falloff: scalar or (4,) fraction f in [0, 1) of the signal lost
      at the image corner farthest from the optical centre, per canonical
      channel (R, Gr, Gb, B).
    center: (dy, dx) offset of the optical centre from the image centre, in
      units of the half-height and half-width (0 = centre, +-1 = an edge).
    anisotropy: a > 0, the ratio of the horizontal to the vertical scale of
      the falloff (1 = circular in pixels; 2 = falls off half as fast
      horizontally).
    exponent: p > 0 (2 = the cos^4 law's leading term).

  Returns:
    (height, width, 4) float32 in (1 - max f, 1]: 1 at the optical centre,
    decreasing with r, exactly 1 - f_c at the farthest corner (which lies
    half a pixel beyond the last pixel centre). Differentiable in every
    array argument.
  """
  fn = 'radial_falloff'
  if (not isinstance(height, (int, np.integer)) or
      not isinstance(width, (int, np.integer)) or height < 1 or width < 1):
    raise ValueError(f'{fn}: height and width must be positive integers (the '
                     f'packed size H/2, W/2), got {height!r} and {width!r}.')
  f = jnp.asarray(corner_falloff, jnp.float32)
  if f.shape not in ((), (4,)):
    raise ValueError(f'{fn}: corner_falloff must be a scalar or 4 values (R, '
                     f'Gr, Gb, B), got shape {tuple(f.shape)}.')
  c = jnp.asarray(center, jnp.float32)
  if c.shape != (2,):
    raise ValueError(f'{fn}: center must be (dy, dx), got shape '
                     f'{tuple(c.shape)}.')
  checks = ((corner_falloff, 'corner_falloff', lambda v: (v >= 0) & (v < 1),
             'in [0, 1)'),
            (anisotropy, 'anisotropy', lambda v: v > 0, 'positive'),
            (exponent, 'exponent', lambda v: v > 0, 'positive'),
            (center, 'center', np.isfinite, 'finite'))
  for value, name, ok, what in checks:
    v = _concrete(value)
    if v is not None and not np.all(ok(v) & np.isfinite(v)):
      raise ValueError(f'{fn}: {name} must be {what}, got {v.tolist()}.')
  a = jnp.maximum(jnp.asarray(anisotropy, jnp.float32), _math.EPS)
  p = jnp.asarray(exponent, jnp.float32)
  y0 = 0.5 * height * (1.0 + c[0])
  x0 = 0.5 * width * (1.0 + c[1])
  y = jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5
  x = jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5
  r2 = (y - y0)**2 + ((x - x0) / a)**2
  corner_y = jnp.array([0.0, 0.0, height, height], jnp.float32)
  corner_x = jnp.array([0.0, width, 0.0, width], jnp.float32)
  r2_max = jnp.max((corner_y - y0)**2 + ((corner_x - x0) / a)**2)
  rho2 = _math.safe_divide(r2, r2_max)
  # (r / r_max)^p as (r^2 / r_max^2)^(p / 2): no square root, and the safe
  # power keeps the gradient finite at the optical centre (rho = 0).
  falloff = 1.0 - f * _math.safe_power(rho2, 0.5 * p)[..., None]
  return jnp.broadcast_to(falloff, (height, width, 4)).astype(jnp.float32)


def _check_shading_args(packed: ArrayLike, falloff: ArrayLike, fn: str):
  packed = _checks.as_float(packed, name='packed', fn=fn)
  falloff = _checks.as_float(falloff, name='falloff', fn=fn)
  _checks.check_channels(packed, 4, name='packed', fn=fn)
  try:
    jnp.broadcast_shapes(packed.shape, falloff.shape)
  except ValueError:
    raise ValueError(f'{fn}: falloff of shape {tuple(falloff.shape)} does not '
                     f'broadcast to packed of shape {tuple(packed.shape)} '
                     '(expected (H/2, W/2, 4)).') from None
  return packed, falloff


def apply_shading(packed: ArrayLike, falloff: ArrayLike) -> jax.Array:
  """Shades packed raw: `packed * falloff` (what the sensor records).

  Args:
    packed: (..., H/2, W/2, 4) linear raw in canonical (R, Gr, Gb, B) order,
      black-subtracted (e.g. normalised to [0, 1]).
    falloff: relative illumination broadcastable to `packed`, usually
      (H/2, W/2, 4) from `radial_falloff`, in (0, 1].

  Returns:
    float32 array of `packed`'s shape.
  """
  packed, falloff = _check_shading_args(packed, falloff, 'apply_shading')
  return packed * falloff


def correct_shading(packed: ArrayLike, falloff: ArrayLike) -> jax.Array:
  """Inverse of `apply_shading`: `packed / falloff`.

  Falloff values below 1e-6 (no light reached the pixel) divide by 1e-6, so
  value and gradient stay finite.

  Args:
    packed: (..., H/2, W/2, 4) shaded linear raw, canonical order.
    falloff: broadcastable to `packed`, in (0, 1].

  Returns:
    float32 array of `packed`'s shape.
  """
  packed, falloff = _check_shading_args(packed, falloff, 'correct_shading')
  return packed / jnp.maximum(falloff, _MIN_FALLOFF)


# --- the DNG GainMap opcode ---------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class GainMap:  # pylint: disable=invalid-name
  """One DNG GainMap opcode (ID 9), fields named as in the DNG spec.

  Attributes:
    Top, Left, Bottom, Right: the rectangle the opcode applies to, pixels of
      the (active-area) image, Bottom/Right exclusive.
    Plane, Planes: the first image plane and the number of planes (a CFA
      image has one plane, 0).
    RowPitch, ColPitch: the row/column step inside the rectangle (2 and 2
      with Top/Left in {0, 1} selects one Bayer phase).
    MapPointsV, MapPointsH: number of map samples vertically/horizontally.
    MapSpacingV, MapSpacingH: distance between samples, relative coordinates
      of the image (1 = its height/width).
    MapOriginV, MapOriginH: position of sample (0, 0), relative coordinates.
    MapPlanes: planes of the map.
    gains: (MapPointsV, MapPointsH, MapPlanes) float32 gains (the spec's
      MapGain), the factors a reader multiplies the normalised raw by.
    dng_version: the opcode header's DNG version (4 bytes).
    flags: the opcode header's flags (bit 0: optional, bit 1: skip for
      previews).
  """
  Top: int
  Left: int
  Bottom: int
  Right: int
  Plane: int
  Planes: int
  RowPitch: int
  ColPitch: int
  MapPointsV: int
  MapPointsH: int
  MapSpacingV: float
  MapSpacingH: float
  MapOriginV: float
  MapOriginH: float
  MapPlanes: int
  gains: np.ndarray
  dng_version: tuple[int, int, int, int] = _GAIN_MAP_VERSION
  flags: int = 0

  def __post_init__(self):
    ints = ('Top', 'Left', 'Bottom', 'Right', 'Plane', 'Planes', 'RowPitch',
            'ColPitch', 'MapPointsV', 'MapPointsH', 'MapPlanes', 'flags')
    for name in ints:
      value = getattr(self, name)
      if isinstance(value, (bool, np.bool_)) or not isinstance(
          value, (int, np.integer)) or not 0 <= value <= _UINT32_MAX:
        raise ValueError(f'GainMap: {name} must be an integer in [0, 2^32), '
                         f'got {value!r}.')
      object.__setattr__(self, name, int(value))
    for name in ('MapSpacingV', 'MapSpacingH', 'MapOriginV', 'MapOriginH'):
      value = float(getattr(self, name))
      if not np.isfinite(value):
        raise ValueError(f'GainMap: {name} must be finite, got {value}.')
      object.__setattr__(self, name, value)
    version = tuple(int(v) for v in self.dng_version)
    if len(version) != 4 or not all(0 <= v <= 255 for v in version):
      raise ValueError(f'GainMap: dng_version must be 4 bytes, got '
                       f'{self.dng_version!r}.')
    object.__setattr__(self, 'dng_version', version)
    if self.Bottom <= self.Top or self.Right <= self.Left:
      raise ValueError(f'GainMap: empty rectangle Top={self.Top}, '
                       f'Left={self.Left}, Bottom={self.Bottom}, '
                       f'Right={self.Right}.')
    for name in ('Planes', 'RowPitch', 'ColPitch', 'MapPointsV', 'MapPointsH',
                 'MapPlanes'):
      if getattr(self, name) < 1:
        raise ValueError(f'GainMap: {name} must be at least 1, got '
                         f'{getattr(self, name)}.')
    for axis in 'VH':
      if getattr(self, f'MapPoints{axis}') > 1 and not getattr(
          self, f'MapSpacing{axis}') > 0:
        raise ValueError(f'GainMap: MapSpacing{axis} must be positive, got '
                         f'{getattr(self, f"MapSpacing{axis}")}.')
    gains = np.array(self.gains, np.float32)
    shape = (self.MapPointsV, self.MapPointsH, self.MapPlanes)
    if gains.shape != shape:
      raise ValueError(f'GainMap: gains must have shape (MapPointsV, '
                       f'MapPointsH, MapPlanes) = {shape}, got {gains.shape}.')
    if not np.all(np.isfinite(gains)):
      raise ValueError('GainMap: gains must be finite.')
    gains.flags.writeable = False
    object.__setattr__(self, 'gains', gains)

  def to_bytes(self) -> bytes:
    """The opcode's big-endian parameter area (76 + 4 * gains.size bytes)."""
    head = _AREA.pack(
        self.Top, self.Left, self.Bottom, self.Right, self.Plane, self.Planes,
        self.RowPitch, self.ColPitch, self.MapPointsV, self.MapPointsH,
        self.MapSpacingV, self.MapSpacingH, self.MapOriginV, self.MapOriginH,
        self.MapPlanes)
    return head + self.gains.astype('>f4').tobytes()

  @classmethod
  def from_bytes(cls, data: bytes, *,
                 dng_version: Sequence[int] = _GAIN_MAP_VERSION,
                 flags: int = 0) -> GainMap:
    """Parses a GainMap parameter area (see `to_bytes`).

    Raises:
      ValueError: too short, a byte count that does not match MapPointsV *
        MapPointsH * MapPlanes, or invalid values.
    """
    data = bytes(data)
    if len(data) < _AREA.size:
      raise ValueError(f'GainMap parameters are truncated: {len(data)} bytes, '
                       f'the fixed part alone has {_AREA.size}.')
    (top, left, bottom, right, plane, planes, row_pitch, col_pitch, points_v,
     points_h, spacing_v, spacing_h, origin_v, origin_h,
     map_planes) = _AREA.unpack_from(data)
    n = points_v * points_h * map_planes
    if len(data) != _AREA.size + 4 * n:
      raise ValueError(
          f'GainMap parameters have {len(data)} bytes but MapPointsV x '
          f'MapPointsH x MapPlanes = {points_v} x {points_h} x {map_planes} '
          f'needs {_AREA.size + 4 * n}.')
    # As the DNG SDK: a single sample in a direction has spacing 1, origin 0.
    if points_v == 1:
      spacing_v, origin_v = 1.0, 0.0
    if points_h == 1:
      spacing_h, origin_h = 1.0, 0.0
    gains = np.frombuffer(data, '>f4', n, _AREA.size).astype(np.float32)
    return cls(
        Top=top, Left=left, Bottom=bottom, Right=right, Plane=plane,
        Planes=planes, RowPitch=row_pitch, ColPitch=col_pitch,
        MapPointsV=points_v, MapPointsH=points_h, MapSpacingV=spacing_v,
        MapSpacingH=spacing_h, MapOriginV=origin_v, MapOriginH=origin_h,
        MapPlanes=map_planes,
        gains=gains.reshape(points_v, points_h, map_planes),
        dng_version=tuple(dng_version), flags=flags)


@dataclasses.dataclass(frozen=True)
class OpaqueOpcode:
  """An opcode other than GainMap, kept as its header and raw parameters."""
  opcode_id: int
  dng_version: tuple[int, int, int, int]
  flags: int
  parameters: bytes

  def to_bytes(self) -> bytes:
    """The opcode's parameter area, unchanged."""
    return self.parameters


def encode_opcode_list(opcodes: Sequence[GainMap | OpaqueOpcode]) -> bytes:
  """The value of an OpcodeList1/2/3 tag (TIFF type UNDEFINED), big-endian.

  uint32 count, then per opcode: uint32 ID, 4 bytes DNG version, uint32
  flags, uint32 parameter byte count, the parameters.
  """
  out = [struct.pack('>I', len(opcodes))]
  for op in opcodes:
    if isinstance(op, GainMap):
      opcode_id = GAIN_MAP_OPCODE_ID
    elif isinstance(op, OpaqueOpcode):
      opcode_id = op.opcode_id
    else:
      raise TypeError(f'encode_opcode_list: expected GainMap or OpaqueOpcode, '
                      f'got {type(op).__name__}.')
    params = op.to_bytes()
    out.append(_HEADER.pack(opcode_id, *op.dng_version, op.flags,
                            len(params)))
    out.append(params)
  return b''.join(out)


def decode_opcode_list(data: bytes) -> list[GainMap | OpaqueOpcode]:
  """Parses an OpcodeList tag value (see `encode_opcode_list`).

  GainMap opcodes become `GainMap`; every other opcode is kept as an
  `OpaqueOpcode`, skipped by its byte count.

  Raises:
    ValueError: truncated list, an opcode running past the end, bytes left
      after the last opcode, or a malformed GainMap (the message names the
      opcode's index and ID).
  """
  data = bytes(data)
  if len(data) < 4:
    raise ValueError(f'opcode list is truncated: {len(data)} bytes, the '
                     'opcode count alone needs 4.')
  (count,) = struct.unpack_from('>I', data)
  pos, ops = 4, []
  for index in range(count):
    if pos + _HEADER.size > len(data):
      raise ValueError(f'opcode list is truncated: it declares {count} '
                       f'opcodes but opcode #{index} header would end at byte '
                       f'{pos + _HEADER.size} of {len(data)}.')
    opcode_id, v0, v1, v2, v3, flags, size = _HEADER.unpack_from(data, pos)
    pos += _HEADER.size
    if pos + size > len(data):
      raise ValueError(f'opcode list is truncated: opcode #{index} (ID '
                       f'{opcode_id}) declares {size} parameter bytes but only '
                       f'{len(data) - pos} remain.')
    params = data[pos:pos + size]
    pos += size
    version = (v0, v1, v2, v3)
    if opcode_id == GAIN_MAP_OPCODE_ID:
      try:
        ops.append(GainMap.from_bytes(params, dng_version=version,
                                      flags=flags))
      except ValueError as e:
        raise ValueError(f'opcode #{index} (GainMap): {e}') from None
    else:
      ops.append(OpaqueOpcode(opcode_id, version, flags, params))
  if pos != len(data):
    raise ValueError(f'opcode list is inconsistent: its {count} opcodes end at '
                     f'byte {pos} but the list has {len(data)} bytes.')
  return ops


# --- packed falloff <-> per-phase GainMaps ------------------------------------


def _linear_sample(values: np.ndarray, index: np.ndarray) -> np.ndarray:
  """Linear interpolation of values[k] at fractional k, extrapolated linearly
  beyond the ends (map samples sit up to 1.25 packed pixels outside the
  outermost pixel centres)."""
  if values.shape[0] == 1:
    return np.repeat(values, index.size, axis=0)
  k0 = np.clip(np.floor(index), 0, values.shape[0] - 2).astype(np.int64)
  t = (index - k0).reshape((-1,) + (1,) * (values.ndim - 1))
  return values[k0] * (1 - t) + values[k0 + 1] * t


def _map_positions(points: int) -> np.ndarray:
  """Relative coordinates of `points` samples from one image edge to the
  other (a single sample sits at the origin 0, as the SDK normalises it)."""
  if points == 1:
    return np.zeros(1)
  return np.arange(points) / (points - 1)


def gain_maps_from_falloff(falloff: ArrayLike, *, pattern: str,
                           map_points: tuple[int, int] = (17, 17)
                           ) -> tuple[GainMap, ...]:
  """The four DNG GainMap opcodes that correct a packed falloff.

  One opcode per Bayer phase of the 2x2 cell, in row-major order of the
  cell: Top, Left = the phase's (row, col), Bottom, Right = the mosaic size
  (H, W) = (2 h, 2 w), RowPitch = ColPitch = 2, Plane = 0, Planes = 1,
  MapPlanes = 1. The map samples span the whole image edge to edge:
  MapOrigin = 0, MapSpacing = 1 / (points - 1). The gain of a sample is
  1 / falloff of the phase's channel at the sample's position, the falloff
  being interpolated linearly between the channel's pixel centres (mosaic
  row 2 i + Top <-> relative v = (2 i + Top + 0.5) / H, as the DNG SDK) and
  extrapolated linearly past the outermost ones.

  Args:
    falloff: (h, w, 4) relative illumination in (0, 1], canonical
      (R, Gr, Gb, B) order (e.g. `radial_falloff(h, w, ...)`); h, w >= 1.
    pattern: CFA pattern of the mosaic ('RGGB', 'BGGR', 'GRBG', 'GBRG').
    map_points: (MapPointsV, MapPointsH), each >= 1.

  Returns:
    4 `GainMap`s (host numpy, float32 gains).
  """
  fn = 'gain_maps_from_falloff'
  pattern = cfa.validate_pattern(pattern)
  s = np.asarray(falloff, np.float64)
  if s.ndim != 3 or s.shape[-1] != 4 or s.shape[0] < 1 or s.shape[1] < 1:
    raise ValueError(f'{fn}: falloff must be (H/2, W/2, 4), got shape '
                     f'{s.shape}.')
  if not np.all(np.isfinite(s)) or np.any(s <= 0):
    raise ValueError(f'{fn}: falloff must be finite and positive.')
  points = tuple(int(p) for p in map_points)
  if len(points) != 2 or min(points) < 1:
    raise ValueError(f'{fn}: map_points must be two integers >= 1, got '
                     f'{map_points!r}.')
  h, w, _ = s.shape
  height, width = 2 * h, 2 * w
  v, u = _map_positions(points[0]), _map_positions(points[1])
  phase_channel = {rc: k for k, rc in enumerate(cfa.channel_offsets(pattern))}
  maps = []
  for top, left in ((0, 0), (0, 1), (1, 0), (1, 1)):
    channel = s[..., phase_channel[(top, left)]]
    # Packed index of a relative coordinate for this phase's sites.
    rows = _linear_sample(channel, (v * height - 0.5 - top) / 2)
    grid = _linear_sample(rows.T, (u * width - 0.5 - left) / 2).T
    gains = 1.0 / np.maximum(grid, _MIN_FALLOFF)
    maps.append(GainMap(
        Top=top, Left=left, Bottom=height, Right=width, Plane=0, Planes=1,
        RowPitch=2, ColPitch=2, MapPointsV=points[0], MapPointsH=points[1],
        MapSpacingV=1.0 / max(points[0] - 1, 1),
        MapSpacingH=1.0 / max(points[1] - 1, 1), MapOriginV=0.0,
        MapOriginH=0.0, MapPlanes=1, gains=gains[..., None]))
  return tuple(maps)


def _axis_weights(coords: np.ndarray, origin: float, spacing: float,
                  points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Bilinear indices and weight along one axis, clamped as the DNG SDK."""
  index = np.clip((coords - origin) / spacing, 0.0, points - 1.0)
  k0 = np.minimum(np.floor(index).astype(np.int64), max(points - 2, 0))
  k1 = np.minimum(k0 + 1, points - 1)
  return k0, k1, index - k0


def gain_from_gain_maps(gain_maps: Sequence[GainMap], *, height: int,
                        width: int, pattern: str) -> np.ndarray:
  """The correction gain of every packed pixel, from GainMap opcodes.

  Evaluates the opcodes as a DNG reader applies them to a one-plane CFA
  image of height x width (see the module docstring for the conventions):
  each opcode multiplies the gain of the pixels of its rectangle and pitch
  by its bilinearly interpolated map; several opcodes compose by
  multiplication; opcodes for planes other than 0 do not touch a CFA image.

  Args:
    gain_maps: GainMap opcodes, in the order they are applied.
    height, width: the mosaic size H, W (even), e.g. the visible area.
    pattern: CFA pattern of the mosaic.

  Returns:
    (H/2, W/2, 4) float32 gains in canonical (R, Gr, Gb, B) order, 1 where
    no opcode applies.
  """
  fn = 'gain_from_gain_maps'
  pattern = cfa.validate_pattern(pattern)
  if (not isinstance(height, (int, np.integer)) or
      not isinstance(width, (int, np.integer)) or height < 2 or width < 2 or
      height % 2 or width % 2):
    raise ValueError(f'{fn}: height and width must be positive even integers '
                     f'(the mosaic size), got {height!r} and {width!r}.')
  gain = np.ones((height, width), np.float64)
  for gm in gain_maps:
    if not isinstance(gm, GainMap):
      raise TypeError(f'{fn}: expected GainMap opcodes, got '
                      f'{type(gm).__name__}.')
    if not gm.Plane <= 0 < gm.Plane + gm.Planes:
      continue
    rows = np.arange(gm.Top, min(gm.Bottom, height), gm.RowPitch)
    cols = np.arange(gm.Left, min(gm.Right, width), gm.ColPitch)
    if rows.size == 0 or cols.size == 0:
      continue
    r0, r1, tr = _axis_weights((rows + 0.5) / height, gm.MapOriginV,
                               gm.MapSpacingV, gm.MapPointsV)
    c0, c1, tc = _axis_weights((cols + 0.5) / width, gm.MapOriginH,
                               gm.MapSpacingH, gm.MapPointsH)
    g = gm.gains[..., 0].astype(np.float64)
    tr, tc = tr[:, None], tc[None, :]
    value = ((g[r0][:, c0] * (1 - tc) + g[r0][:, c1] * tc) * (1 - tr) +
             (g[r1][:, c0] * (1 - tc) + g[r1][:, c1] * tc) * tr)
    gain[np.ix_(rows, cols)] *= value
  return np.stack([gain[r::2, c::2] for r, c in cfa.channel_offsets(pattern)],
                  axis=-1).astype(np.float32)
