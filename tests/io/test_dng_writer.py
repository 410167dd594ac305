"""`write_dng` writes files that LibRaw and `read_raw` read back exactly."""

import numpy as np
import pytest
import tifffile

from rawjax import io as rawio
from rawjax import isp


@pytest.mark.parametrize('pattern', isp.PATTERNS)
def test_write_dng_round_trips_through_libraw(tmp_path, pattern):
  rng = np.random.default_rng(0)
  mosaic = rng.integers(0, 4096, (32, 48)).astype(np.uint16)
  cell_black = [60, 61, 62, 63]  # per site of the 2x2 cell, row-major
  path = tmp_path / 'x.dng'
  rawio.write_dng(path, mosaic, pattern=pattern, black_level=cell_black,
                  white_level=4095, as_shot_neutral=[0.5, 1.0, 0.8])
  raw = rawio.read_raw(path)
  np.testing.assert_array_equal(raw.mosaic, mosaic)
  assert raw.pattern == pattern
  assert raw.white_level == 4095
  # Canonical (R, Gr, Gb, B) black levels follow the sites of the pattern.
  offsets = isp.channel_offsets(pattern)
  expected = [cell_black[2 * r + c] for r, c in offsets]
  np.testing.assert_array_equal(raw.black_level, expected)
  np.testing.assert_allclose(raw.wb_gains, [2.0, 1.0, 1.25], rtol=1e-5)


def test_write_dng_rejects_bad_mosaics(tmp_path):
  with pytest.raises(ValueError, match='even'):
    rawio.write_dng(tmp_path / 'x.dng', np.zeros((31, 48), np.uint16),
                    pattern='RGGB')
  with pytest.raises(ValueError, match='integer'):
    rawio.write_dng(tmp_path / 'x.dng', np.zeros((32, 48), np.float32),
                    pattern='RGGB')
  with pytest.raises(ValueError, match='Unsupported CFA'):
    rawio.write_dng(tmp_path / 'x.dng', np.zeros((32, 48), np.uint16),
                    pattern='RGBW')


def _shaded_dng(tmp_path, pattern, rng, *, map_points=(17, 17)):
  """An unshaded flat-ish mosaic, shaded as a phone lens would, as a DNG."""
  h, w = 24, 32
  black, white = 64.0, 4095.0
  clean = rng.uniform(0.2, 0.9, (h, w, 4)).astype(np.float32)
  falloff = np.asarray(isp.radial_falloff(
      h, w, corner_falloff=[0.5, 0.6, 0.6, 0.7], center=(0.05, -0.1),
      anisotropy=1.15))
  shaded = np.asarray(isp.apply_shading(clean, falloff))
  mosaic = np.asarray(isp.unpack(isp.denormalize(
      shaded, black_level=black, white_level=white), pattern=pattern))
  mosaic = np.round(mosaic).astype(np.uint16)
  maps = isp.gain_maps_from_falloff(falloff, pattern=pattern,
                                    map_points=map_points)
  path = tmp_path / f'shaded_{pattern}.dng'
  rawio.write_dng(path, mosaic, pattern=pattern, black_level=black,
                  white_level=int(white), gain_maps=maps)
  return path, clean, falloff, maps


@pytest.mark.parametrize('pattern', isp.PATTERNS)
def test_gain_maps_round_trip_and_undo_the_shading(tmp_path, pattern):
  rng = np.random.default_rng(20 + isp.PATTERNS.index(pattern))
  path, clean, falloff, maps = _shaded_dng(tmp_path, pattern, rng)
  # The tag is OpcodeList2, type UNDEFINED, in the raw IFD (IFD0 here).
  with tifffile.TiffFile(path) as tif:
    tag = tif.pages[0].tags[51009]
    assert int(tag.dtype) == 7
    assert tag.value == isp.encode_opcode_list(list(maps))
  raw = rawio.read_raw(path)
  assert raw.gain_map_source == 'dng:OpcodeList2 (4 GainMap opcodes)'
  assert len(raw.gain_maps) == 4
  for got, sent in zip(raw.gain_maps, maps):
    assert got.to_bytes() == sent.to_bytes()
  gain = raw.gain_map()
  assert gain.shape == (24, 32, 4) and gain.dtype == np.float32
  packed = np.asarray(isp.normalize(isp.pack(raw.mosaic, pattern=raw.pattern),
                                    black_level=raw.black_level,
                                    white_level=raw.white_level, clip='none'))
  corrected = packed * gain
  # Tolerance: the 16-bit rounding (0.5 / (white - black), amplified by the
  # gain) plus the map's interpolation error (bounded as in
  # tests/isp/test_shading.py), times the clean value (< 0.9).
  g = 1.0 / falloff
  gyy = np.abs(g[2:] - 2 * g[1:-1] + g[:-2]).max()
  gxx = np.abs(g[:, 2:] - 2 * g[:, 1:-1] + g[:, :-2]).max()
  interp = ((24 / 16)**2 + 1) / 8 * gyy + ((32 / 16)**2 + 1) / 8 * gxx
  tol = 0.5 / (4095 - 64) * g + 0.9 * interp * falloff
  err = np.abs(corrected - clean)
  assert np.all(err <= tol), float((err - tol).max())
  # Away from the corners the falloff curves less: within 0.5 %.
  np.testing.assert_allclose(corrected[6:-6, 8:-8], clean[6:-6, 8:-8],
                             rtol=5e-3, atol=1e-4)
  md = raw.metadata()
  np.testing.assert_array_equal(np.asarray(md.gain_map), gain)


def test_write_dng_without_gain_maps_writes_no_opcode_list(tmp_path):
  path = tmp_path / 'plain.dng'
  rawio.write_dng(path, np.full((32, 48), 100, np.uint16), pattern='RGGB',
                  gain_maps=[])
  with tifffile.TiffFile(path) as tif:
    assert 51009 not in tif.pages[0].tags
  raw = rawio.read_raw(path)
  assert raw.gain_maps == () and raw.gain_map() is None
  assert raw.gain_map_source == 'missing: no OpcodeList2 tag'
  assert raw.metadata().gain_map is None


def test_write_dng_rejects_bad_gain_maps(tmp_path):
  mosaic = np.zeros((32, 48), np.uint16)
  with pytest.raises(TypeError, match=r'gain_maps\[0\]'):
    rawio.write_dng(tmp_path / 'x.dng', mosaic, pattern='RGGB',
                    gain_maps=[object()])
  maps = isp.gain_maps_from_falloff(np.ones((20, 24, 4)), pattern='RGGB')
  with pytest.raises(ValueError, match='outside'):
    rawio.write_dng(tmp_path / 'x.dng', mosaic, pattern='RGGB',
                    gain_maps=maps)


@pytest.mark.parametrize('kw, match', [
    ({'black_level': 1023, 'white_level': 1023}, 'above black_level'),
    ({'black_level': [64, 64, 2000, 64], 'white_level': 1023},
     'above black_level'),
    ({'black_level': -1}, 'finite and >= 0'),
    ({'black_level': float('nan')}, 'finite and >= 0'),
    ({'white_level': 0}, r'integer in \[1, 65535\]'),
    ({'white_level': 70000}, r'integer in \[1, 65535\]'),
])
def test_write_dng_refuses_bad_levels(tmp_path, kw, match):
  mosaic = np.random.default_rng(51).integers(0, 1000, (24, 24),
                                              dtype=np.uint16)
  with pytest.raises(ValueError, match=f'write_dng: .*{match}'):
    rawio.write_dng(tmp_path / 'x.dng', mosaic, pattern='RGGB', **kw)
  assert not (tmp_path / 'x.dng').exists()
