"""Measured spectra for the simulator, on one wavelength grid (host numpy).

Everything comes from colour-science's datasets and is resampled once with
colour-science's own `align` (its default interpolator and constant
extrapolator), so the figures match what colour-science computes:

  * camera sensitivities: `colour.characterisation.MSDS_CAMERA_SENSITIVITIES`
    (NPL measurements of a Nikon D5100 and a Sigma SD Merrill), or a user CSV
    (e.g. the ssf-data files of `../shared/data/ssf`, see
    `rawjax.data.synthetic.cameras`);
  * illuminants: the CIE D series over a range of CCT (from the S0, S1, S2
    basis), Planckian radiators (A is the one at 2856 K), the CIE FL1-FL12
    fluorescent lamps and the CIE LED illuminants;
  * reflectances: four sets of *measured* surface spectra (ColorChecker N
    Ohta, the 30 PMC memory colours, the CIE 1995 colour rendering test
    samples, the NIST CQS 9.0 samples) plus a perfect black.
"""

from __future__ import annotations

import csv
import functools
import os
import warnings

import numpy as np

WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
_SHAPE = (400.0, 700.0, 10.0)
OBSERVER = 'CIE 1931 2 Degree Standard Observer'

# Names of the sets of the reflectance library, in library order.
REFLECTANCE_SETS = ('ColorChecker N Ohta', 'PMC', 'TCS CIE 1995',
                    'NIST CQS 9.0')

FLUORESCENT = tuple(f'FL{i}' for i in range(1, 13))
LED = ('LED-B1', 'LED-B2', 'LED-B3', 'LED-B4', 'LED-B5', 'LED-BH1',
       'LED-RGB1', 'LED-V1', 'LED-V2')


@functools.lru_cache(maxsize=None)
def _colour():
  # colour-science warns at import that matplotlib is absent; plotting is
  # not used here, so the warning is noise in every command's output.
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import colour  # pylint: disable=g-import-not-at-top
  return colour


def _align(distribution) -> np.ndarray:
  colour = _colour()
  aligned = distribution.copy().align(colour.SpectralShape(*_SHAPE))
  return np.asarray(aligned.values, np.float64)


@functools.lru_cache(maxsize=None)
def cmfs() -> np.ndarray:
  """(31, 3) CIE 1931 2-degree colour matching functions on WAVELENGTHS."""
  return _align(_colour().MSDS_CMFS[OBSERVER])


def camera_names() -> tuple[str, ...]:
  """Names of the cameras whose sensitivities colour-science ships."""
  return tuple(_colour().characterisation.MSDS_CAMERA_SENSITIVITIES.keys())


@functools.lru_cache(maxsize=None)
def camera_sensitivities(name: str) -> np.ndarray:
  """(31, 3) measured R, G, B sensitivities of a camera shipped by colour."""
  table = _colour().characterisation.MSDS_CAMERA_SENSITIVITIES
  if name not in table:
    raise ValueError(f'Unknown camera {name!r}: colour-science ships '
                     f'{", ".join(map(repr, table.keys()))}; pass a CSV of '
                     'sensitivities for another camera.')
  return _align(table[name])


# A file must cover at least this range (nm): beyond its ends the samples are
# extended as constants, which is harmless a few nm past the data but not
# over a whole band (e.g. a file that stops at 600 nm has no red tail).
CSV_MIN_RANGE = (420.0, 680.0)


def sensitivities_csv_header(path: str | os.PathLike[str]) -> dict[str, str]:
  """The '#Key:value' header lines of a sensitivity CSV (ssf-data style).

  Returns:
    e.g. {'Camera': 'Nokia N900', 'License': 'Creative Commons ...'}; empty
    when the file has no such lines.
  """
  header = {}
  with open(os.fspath(path), newline='', encoding='utf-8') as f:
    for line in f:
      line = line.strip()
      if not line.startswith('#'):
        if line:
          break
        continue
      key, sep, value = line[1:].partition(':')
      if sep:
        header[key.strip()] = value.strip()
  return header


def read_sensitivities_csv(path: str | os.PathLike[str]) -> np.ndarray:
  """(31, 3) sensitivities from a CSV of 'wavelength, red, green, blue' rows.

  Lines starting with '#' (the ssf-data headers: camera, source, license)
  and one non-numeric header row are skipped. The samples are resampled to
  WAVELENGTHS as colour-science resamples its own datasets.

  Raises:
    ValueError, naming the file, the line and the problem, when the file is
      missing, a row has not 4 columns or a non-numeric or non-finite value,
      the wavelengths do not strictly increase, a value is negative (below
      -1e-3 of its channel's peak), a
      channel is all zero, or the wavelengths do not cover CSV_MIN_RANGE.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f'camera sensitivity CSV not found: {path}')
  rows, lines = [], []
  with open(path, newline='', encoding='utf-8') as f:
    for line_number, row in enumerate(csv.reader(f), start=1):
      if not row or not ''.join(row).strip() or row[0].lstrip().startswith(
          '#'):
        continue
      try:
        values = [float(v) for v in row]
      except ValueError:
        if rows:
          raise ValueError(f'{path}:{line_number}: non-numeric value in row '
                           f'{row}') from None
        if lines:
          raise ValueError(f'{path}:{line_number}: a second header row '
                           f'{row}; expected numbers') from None
        lines.append(line_number)
        continue  # header
      if len(values) != 4:
        raise ValueError(f'{path}:{line_number}: expected 4 columns '
                         f'(wavelength, red, green, blue), got {len(values)}')
      if not np.all(np.isfinite(values)):
        raise ValueError(f'{path}:{line_number}: non-finite value in {row}')
      rows.append(values)
      lines.append(line_number)
  if len(rows) < 3:
    raise ValueError(f'{path}: needs at least 3 wavelengths, got {len(rows)}')
  data = np.asarray(rows)
  lines = lines[-len(rows):]
  steps = np.diff(data[:, 0])
  if np.any(steps <= 0):
    bad = int(np.argmax(steps <= 0)) + 1
    raise ValueError(f'{path}:{lines[bad]}: wavelengths must strictly '
                     f'increase, got {data[bad - 1, 0]:g} then '
                     f'{data[bad, 0]:g} nm')
  # Tolerance: resampled or noisy measurements dip a hair below zero (the
  # colour-science Nikon data reach -2e-19); a real negative is a bad file.
  floor = -1e-3 * np.maximum(data[:, 1:].max(0), 0)
  negative = np.argwhere(data[:, 1:] < floor)
  if negative.size:
    row, channel = negative[0]
    raise ValueError(f'{path}:{lines[row]}: negative sensitivity '
                     f'{data[row, channel + 1]:g} in the '
                     f'{("red", "green", "blue")[channel]} channel')
  for channel, name in enumerate(('red', 'green', 'blue')):
    if not np.any(data[:, channel + 1] > 0):
      raise ValueError(f'{path}: the {name} channel is zero at every '
                       'wavelength')
  if data[0, 0] > CSV_MIN_RANGE[0] or data[-1, 0] < CSV_MIN_RANGE[1]:
    raise ValueError(f'{path}: wavelengths {data[0, 0]:g}-{data[-1, 0]:g} nm '
                     f'do not cover {CSV_MIN_RANGE[0]:g}-'
                     f'{CSV_MIN_RANGE[1]:g} nm (the simulator works on '
                     '400-700 nm)')
  colour = _colour()
  msds = colour.MultiSpectralDistributions(
      data[:, 1:], data[:, 0], labels=('red', 'green', 'blue'))
  return _align(msds)


@functools.lru_cache(maxsize=None)
def reflectance_library() -> tuple[tuple[str, ...], np.ndarray]:
  """Names and (K, 31) measured reflectances in [0, 1]; the last is black.

  The first 24 are the ColorChecker N Ohta patches in chart order (row by
  row), which the simulated chart uses.
  """
  colour = _colour()
  from colour.quality import datasets as quality  # pylint: disable=g-import-not-at-top
  sets = (colour.characterisation.SDS_COLOURCHECKERS['ColorChecker N Ohta'],
          colour.characterisation.SDS_COLOURCHECKERS['PMC'],
          quality.SDS_TCS['CIE 1995'], quality.SDS_VS['NIST CQS 9.0'])
  names, spectra = [], []
  for set_name, sds in zip(REFLECTANCE_SETS, sets):
    for name, sd in sds.items():
      names.append(f'{set_name}: {name}')
      spectra.append(_align(sd))
  names.append('black')
  spectra.append(np.zeros_like(WAVELENGTHS))
  return tuple(names), np.clip(np.stack(spectra), 0.0, 1.0)


def _normalise_to_luminance(spectra: np.ndarray) -> np.ndarray:
  """Scales each (..., 31) spectrum so that its luminance Y is 1."""
  luminance = spectra @ cmfs()[:, 1]
  return spectra / luminance[..., None]


@functools.lru_cache(maxsize=None)
def _d_series_basis() -> np.ndarray:
  colour = _colour()
  basis = colour.colorimetry.SDS_BASIS_FUNCTIONS_CIE_ILLUMINANT_D_SERIES
  return np.stack([_align(basis[k]) for k in ('S0', 'S1', 'S2')])


def daylight(cct: np.ndarray) -> np.ndarray:
  """(..., 31) CIE D-series illuminants at correlated colour temperatures.

  CIE 015:2018 eqs. 4.3-4.5 (the chromaticity from the CCT, then the
  S0 + M1 S1 + M2 S2 combination), vectorised; 4000 K <= CCT <= 25000 K.
  Normalised to luminance Y = 1.
  """
  cct = np.asarray(cct, np.float64)
  # CIE 015 applies the 1.4388/1.4380 c2 correction to the nominal CCT.
  t = cct * 1.4388 / 1.4380
  x = np.where(
      t <= 7000,
      -4.607e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063,
      -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.23704)
  y = -3.0 * x**2 + 2.87 * x - 0.275
  denominator = 0.0241 + 0.2562 * x - 0.7341 * y
  m1 = (-1.3515 - 1.7703 * x + 5.9114 * y) / denominator
  m2 = (0.03 - 31.4424 * x + 30.0717 * y) / denominator
  s0, s1, s2 = _d_series_basis()
  spectra = s0 + m1[..., None] * s1 + m2[..., None] * s2
  return _normalise_to_luminance(spectra)


def planckian(temperature: np.ndarray) -> np.ndarray:
  """(..., 31) blackbody radiators (Planck's law), luminance Y = 1."""
  t = np.asarray(temperature, np.float64)[..., None]
  wavelength = WAVELENGTHS * 1e-9
  c2 = 1.4388e-2  # CIE 015 second radiation constant, m K
  spectra = wavelength**-5 / np.expm1(c2 / (wavelength * t))
  return _normalise_to_luminance(spectra)


@functools.lru_cache(maxsize=None)
def named_illuminants(names: tuple[str, ...]) -> np.ndarray:
  """(n, 31) colour-science illuminants by name, luminance Y = 1."""
  table = _colour().SDS_ILLUMINANTS
  missing = [n for n in names if n not in table]
  if missing:
    raise ValueError(f'Unknown illuminants {missing}; colour-science ships '
                     f'{", ".join(table.keys())}.')
  return _normalise_to_luminance(np.stack([_align(table[n]) for n in names]))


def xyz_of_reflectances(reflectances: np.ndarray,
                        illuminant: np.ndarray) -> np.ndarray:
  """(..., 3) CIE XYZ of reflectances under an illuminant of luminance 1."""
  return (reflectances * illuminant) @ cmfs()
