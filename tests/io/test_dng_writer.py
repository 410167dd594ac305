"""`write_dng` writes files that LibRaw and `read_raw` read back exactly."""

import numpy as np
import pytest

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
