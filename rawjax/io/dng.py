"""Writing minimal, valid Bayer DNG files (with tifffile).

Used to make test fixtures in every CFA phase and benchmark inputs of any
size that LibRaw (rawpy) reads back exactly. The file is one uncompressed
16-bit CFA image in IFD0 with the tags a raw converter needs: DNGVersion,
UniqueCameraModel, the CFA pattern, BlackLevel (per CFA site), WhiteLevel,
ColorMatrix1 + CalibrationIlluminant1 and AsShotNeutral; optionally the
lens/colour shading correction as GainMap opcodes in OpcodeList2.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tifffile

from rawjax.isp import cfa, shading

_OPCODE_LIST_2 = 51009
_UNDEFINED = 7  # TIFF type of the OpcodeList tags

_COLOUR_CODE = {'R': 0, 'G': 1, 'B': 2}
_DENOMINATOR = 1_000_000


def _rationals(values: Sequence[float]) -> list[int]:
  out = []
  for v in np.asarray(values, np.float64).ravel():
    out += [int(round(v * _DENOMINATOR)), _DENOMINATOR]
  return out


def write_dng(path: str | os.PathLike[str], mosaic: np.ndarray, *,
              pattern: str, black_level: float | Sequence[float] = 0,
              white_level: int = 65535,
              color_matrix: Sequence[Sequence[float]] | None = None,
              calibration_illuminant: int = 21,
              as_shot_neutral: Sequence[float] = (1.0, 1.0, 1.0),
              camera_model: str = 'rawjax synthetic',
              gain_maps: Sequence[shading.GainMap] | None = None) -> None:
  """Writes a Bayer mosaic as an uncompressed DNG.

  Args:
    path: output file, usually '*.dng'.
    mosaic: (H, W) integer sensor values in [0, 65535] (H, W even; LibRaw
      refuses images under 22 pixels on a side, as dcraw did).
    pattern: CFA pattern of the mosaic ('RGGB', 'BGGR', 'GRBG', 'GBRG').
    black_level: scalar, or 4 values for the 2x2 CFA cell read row by row;
      finite, >= 0 and below `white_level`.
    white_level: saturation level, an integer in [1, 65535].
    color_matrix: 3x3 XYZ -> camera ColorMatrix1 (identity if None).
    calibration_illuminant: EXIF LightSource code of `color_matrix`.
    as_shot_neutral: camera RGB of a neutral (1 / white-balance gains).
    camera_model: UniqueCameraModel.
    gain_maps: GainMap opcodes (e.g. `rawjax.isp.gain_maps_from_falloff`)
      written as OpcodeList2 (tag 51009, UNDEFINED) in the raw IFD, so that a
      DNG reader corrects the shading of `mosaic`; their rectangles must lie
      inside the mosaic. None or empty writes no OpcodeList2.

  Raises:
    ValueError: odd or non-2-D mosaic, values outside [0, 65535], white
      level not an integer in [1, 65535], a black level < 0 or not below
      the white level, or a gain map outside the mosaic.
  """
  pattern = cfa.validate_pattern(pattern)
  mosaic = np.asarray(mosaic)
  if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
    raise ValueError(f'write_dng: mosaic must be (H, W) with even sides, got '
                     f'shape {mosaic.shape}.')
  if np.issubdtype(mosaic.dtype, np.floating) or mosaic.min() < 0 or (
      mosaic.max() > 65535):
    raise ValueError('write_dng: mosaic must hold integer sensor values in '
                     '[0, 65535].')
  black = np.broadcast_to(np.asarray(black_level, np.float64), (4,))
  if not np.all(np.isfinite(black)) or np.any(black < 0):
    raise ValueError(f'write_dng: black_level must be finite and >= 0, got '
                     f'{black.tolist()}.')
  if not 0 < white_level <= 65535 or int(white_level) != white_level:
    raise ValueError(f'write_dng: white_level must be an integer in [1, '
                     f'65535], got {white_level!r}.')
  if np.max(black) >= white_level:
    raise ValueError(f'write_dng: white_level must be above black_level, got '
                     f'white_level {white_level} and black_level '
                     f'{black.tolist()}.')
  if color_matrix is None:
    color_matrix = np.eye(3)
  extratags = [
      (50706, 'B', 4, (1, 4, 0, 0), True),  # DNGVersion
      (50707, 'B', 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
      (50708, 's', 0, camera_model, True),  # UniqueCameraModel
      (33421, 'H', 2, (2, 2), True),  # CFARepeatPatternDim
      (33422, 'B', 4, tuple(_COLOUR_CODE[c] for c in pattern), True),
      (50710, 'B', 3, (0, 1, 2), True),  # CFAPlaneColor
      (50711, 'H', 1, 1, True),  # CFALayout: rectangular
      (50713, 'H', 2, (2, 2), True),  # BlackLevelRepeatDim
      (50714, '2I', 4, _rationals(black), True),  # BlackLevel
      (50717, 'I', 1, int(white_level), True),  # WhiteLevel
      (50721, '2i', 9, _rationals(color_matrix), True),  # ColorMatrix1
      (50778, 'H', 1, int(calibration_illuminant), True),
      (50728, '2I', 3, _rationals(as_shot_neutral), True),  # AsShotNeutral
  ]
  if gain_maps:
    for k, gm in enumerate(gain_maps):
      if not isinstance(gm, shading.GainMap):
        raise TypeError(f'write_dng: gain_maps[{k}] must be a GainMap, got '
                        f'{type(gm).__name__}.')
      if gm.Bottom > mosaic.shape[0] or gm.Right > mosaic.shape[1]:
        raise ValueError(
            f'write_dng: gain_maps[{k}] covers rows < {gm.Bottom} and columns '
            f'< {gm.Right}, outside the {mosaic.shape[0]}x{mosaic.shape[1]} '
            'mosaic.')
    opcodes = shading.encode_opcode_list(list(gain_maps))
    extratags.append((_OPCODE_LIST_2, _UNDEFINED, len(opcodes), opcodes, True))
  tifffile.imwrite(os.fspath(path), mosaic.astype(np.uint16),
                   photometric=32803, subfiletype=0, extratags=extratags)
