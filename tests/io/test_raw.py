"""Tests for rawjax.io.raw: the two sample DNGs, synthetic DNGs, bad input."""

import json
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from rawjax.io import raw as raw_module
from rawjax.io import (RawImage, RawReadError,
                       camera_to_srgb_from_xyz_to_camera, read_raw)
from rawjax import isp
from rawjax.isp import cfa

BLACKMAGIC = 'blackmagic_pocket_cinema_4k_12bit.dng'
GOPRO = 'gopro_hero6_black_crop1536x1152.dng'
NIKON_SCAN = 'nikon_coolscan_iv_ed_rgb_scan.nef'
REPO = pathlib.Path(__file__).resolve().parents[2]


def _m(text):
  return np.array([float(v) for v in text.split()]).reshape(3, 3)


# --- the sample DNGs (values from ../shared/data/raw/SOURCES.md) -------------

@pytest.fixture(scope='module')
def raw_dir(shared_data):
  return shared_data / 'raw'


@pytest.fixture(scope='module')
def blackmagic(raw_dir):
  return read_raw(raw_dir / BLACKMAGIC)


@pytest.fixture(scope='module')
def gopro(raw_dir):
  return read_raw(raw_dir / GOPRO)


def test_blackmagic_reads(blackmagic, raw_dir):
  im = blackmagic
  assert isinstance(im, RawImage)
  assert im.path == str(raw_dir / BLACKMAGIC)
  assert im.mosaic.shape == (2176, 4128) and im.mosaic.dtype == np.uint16
  assert im.mosaic.flags.owndata and im.mosaic.flags.writeable
  assert im.mosaic.min() == 0 and im.mosaic.max() == 65472  # linearized
  assert im.pattern == 'RGGB'
  assert im.black_level.dtype == np.float32
  np.testing.assert_array_equal(im.black_level, [512, 512, 512, 512])
  assert im.white_level == 65535.0
  np.testing.assert_allclose(im.wb_gains, [2.206045, 1.0, 1.886793],
                             rtol=0, atol=1e-6)
  assert im.wb_source == 'libraw:camera_whitebalance (as shot)'
  assert im.orientation == 1 and im.flip == 0
  assert im.make is None and im.model is None  # no Make/Model tag
  assert im.iso is None and im.exposure_time is None
  assert im.raw_type == 'Flat'
  assert im.default_crop == (8, 16, 2160, 4096)
  assert im.color_matrix_source == 'dng:ColorMatrix2 (D65)'
  np.testing.assert_array_equal(im.xyz_to_camera, im.dng.color_matrix_2)


def test_gopro_reads(gopro, raw_dir):
  im = gopro
  assert im.path == str(raw_dir / GOPRO)
  assert im.mosaic.shape == (1152, 1536) and im.mosaic.dtype == np.uint16
  assert im.mosaic.min() == 29 and im.mosaic.max() == 16175
  assert im.pattern == 'RGGB'
  np.testing.assert_array_equal(im.black_level, [0, 0, 0, 0])
  assert im.white_level == 16383.0
  np.testing.assert_allclose(im.wb_gains, [1.914062, 1.0, 1.749999],
                             rtol=0, atol=1e-6)
  assert im.wb_source == 'libraw:camera_whitebalance (as shot)'
  assert im.orientation == 2 and im.flip == 1  # mirror horizontal
  assert im.make == 'GoPro' and im.model == 'HERO6 Black'
  assert im.iso == 100
  assert im.exposure_time == pytest.approx(1 / 455, rel=1e-12)
  assert im.default_crop is None
  assert im.color_matrix_source == 'dng:ColorMatrix2 (D50)'
  np.testing.assert_array_equal(im.xyz_to_camera, im.dng.color_matrix_2)


def test_mosaic_is_the_rawpy_visible_area(gopro):
  import rawpy  # pylint: disable=g-import-not-at-top
  with rawpy.imread(gopro.path) as raw:
    np.testing.assert_array_equal(gopro.mosaic, raw.raw_image_visible)


DNG_TAGS = {
    BLACKMAGIC: dict(
        dng_version=(1, 2, 0, 0),
        unique_camera_model='Blackmagic Pocket Cinema Camera 4K',
        calibration_illuminant_1=17, calibration_illuminant_2=21,
        color_matrix_1=_m('0.94953 -0.45496 0.02829 -0.35699 1.32274 0.19503 '
                          '-0.04625 0.15492 0.73498'),
        color_matrix_2=_m('0.68795 -0.24747 -0.04866 -0.39256 1.20114 0.15793 '
                          '-0.08916 0.20063 0.58148'),
        forward_matrix_1=_m('0.40018 0.46878 0.09517 0.03209 0.99278 -0.02487 '
                            '-0.00228 -0.45168 1.2794'),
        forward_matrix_2=_m('0.61439 0.34862 0.00112 0.20367 0.95223 -0.1559 '
                            '0.01959 -0.22077 1.02661'),
        camera_calibration_1=np.eye(3), camera_calibration_2=np.eye(3),
        analog_balance=np.ones(3), as_shot_neutral=np.array([0.4533, 1, 0.53]),
        baseline_exposure=2.65412),
    GOPRO: dict(
        dng_version=(1, 4, 0, 0), unique_camera_model='GoPro HERO6 Black',
        calibration_illuminant_1=3, calibration_illuminant_2=23,
        color_matrix_1=_m('1.8331 -0.8166 -0.2478 0.1391 0.8961 -0.0367 '
                          '0.0822 0.0662 0.2597'),
        color_matrix_2=_m('1.0344 -0.421 -0.062 -0.2315 1.0625 0.1948 '
                          '0.0093 0.1058 0.5541'),
        forward_matrix_1=None, forward_matrix_2=None,
        camera_calibration_1=None, camera_calibration_2=None,
        analog_balance=np.ones(3),
        as_shot_neutral=np.array([0.522449, 1, 0.571429])),
}


@pytest.mark.parametrize('name', [BLACKMAGIC, GOPRO])
def test_dng_tags_match_sources(name, blackmagic, gopro):
  dng = {BLACKMAGIC: blackmagic, GOPRO: gopro}[name].dng
  assert isinstance(dng, raw_module.DngTags)
  for field, expected in DNG_TAGS[name].items():
    value = getattr(dng, field)
    if expected is None or isinstance(expected, (str, tuple, int)):
      assert value == expected, field
    elif isinstance(expected, float):
      assert value == pytest.approx(expected, abs=1e-12), field
    else:
      assert value.shape == expected.shape, field
      np.testing.assert_allclose(value, expected, rtol=0, atol=1e-12,
                                 err_msg=field)


LIBRAW_RGB_CAM = {
    BLACKMAGIC: [[1.58851, -0.28631, -0.30220], [-0.21265, 1.50250, -0.28985],
                 [0.02042, -0.48443, 1.46401]],
    GOPRO: [[1.53303, -0.17885, -0.35418], [-0.28480, 1.67910, -0.39429],
            [-0.02891, -0.44207, 1.47098]],
}


@pytest.mark.parametrize('name', [BLACKMAGIC, GOPRO])
def test_camera_to_srgb_equals_libraw(name, blackmagic, gopro):
  im = {BLACKMAGIC: blackmagic, GOPRO: gopro}[name]
  assert np.all(im.dng.color_matrix_2 != 0)
  # rawpy's rgb_xyz_matrix is all zeros for DNGs (LibRaw 0.22).
  np.testing.assert_allclose(im.libraw_rgb_cam, LIBRAW_RGB_CAM[name],
                             rtol=0, atol=5e-6)
  derived = camera_to_srgb_from_xyz_to_camera(im.dng.color_matrix_2)
  np.testing.assert_allclose(derived, im.libraw_rgb_cam, rtol=0, atol=1e-5)
  np.testing.assert_allclose(im.camera_to_srgb(), derived, rtol=0, atol=0)
  np.testing.assert_allclose(derived.sum(axis=1), 1.0, atol=1e-6)  # float32
  # The other matrix gives visibly different colour: the choice matters.
  other = camera_to_srgb_from_xyz_to_camera(im.dng.color_matrix_1)
  assert np.abs(other - im.libraw_rgb_cam).max() > 1e-2


@pytest.mark.parametrize('name', [BLACKMAGIC, GOPRO])
def test_metadata(name, blackmagic, gopro):
  im = {BLACKMAGIC: blackmagic, GOPRO: gopro}[name]
  meta = im.metadata()
  assert meta.pattern == 'RGGB'
  np.testing.assert_array_equal(meta.black_level, im.black_level)
  assert float(meta.white_level) == im.white_level
  np.testing.assert_allclose(meta.wb_gains, im.wb_gains, rtol=1e-6)
  np.testing.assert_allclose(meta.cam_to_srgb, im.libraw_rgb_cam, atol=1e-5)


def test_camera_to_srgb_function_rejects_bad_matrices():
  with pytest.raises(ValueError, match='3x3'):
    camera_to_srgb_from_xyz_to_camera(np.eye(4))
  with pytest.raises(ValueError, match='finite'):
    camera_to_srgb_from_xyz_to_camera(np.full((3, 3), np.nan))
  with pytest.raises(ValueError, match='sums to zero'):
    camera_to_srgb_from_xyz_to_camera(np.zeros((3, 3)))
  singular = np.linalg.inv(isp.color.LIBRAW_SRGB_TO_XYZ)
  singular[2] = singular[1]
  with pytest.raises(ValueError, match='singular'):
    camera_to_srgb_from_xyz_to_camera(singular)


def test_identity_camera_is_srgb():
  xyz_to_srgb = np.linalg.inv(isp.color.LIBRAW_SRGB_TO_XYZ)
  np.testing.assert_allclose(camera_to_srgb_from_xyz_to_camera(xyz_to_srgb),
                             np.eye(3), atol=1e-6)


def test_nikon_scanner_is_not_a_bayer_mosaic(raw_dir):
  path = raw_dir / NIKON_SCAN
  with pytest.raises(RawReadError, match='not a Bayer mosaic') as info:
    read_raw(path)
  assert str(path) in str(info.value)
  assert info.value.path == str(path)


# --- synthetic DNGs (written with tifffile, decoded by LibRaw) ---------------

_CM1 = [0.9, -0.3, -0.1, -0.4, 1.2, 0.2, -0.1, 0.2, 0.6]
_CM2 = [0.7, -0.2, -0.05, -0.4, 1.2, 0.15, -0.09, 0.2, 0.58]
_XTRANS = (1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
           1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1)


def _rationals(values):
  return [v for x in np.ravel(values) for v in (int(round(x * 10000)), 10000)]


def _write_dng(path, mosaic=None, *, cfa_dim=(2, 2), cfa_pattern=(0, 1, 1, 2),
               plane_color=None, white=1023, black=(64,), black_repeat=(1, 1),
               cm1=_CM1, illuminant1=21, cm2=None, illuminant2=None,
               neutral=(0.5, 1.0, 0.6), orientation=1, make='TestMake',
               extra=()):
  """A minimal uncompressed DNG 1.4 that LibRaw decodes."""
  if mosaic is None:
    mosaic = np.random.default_rng(0).integers(64, 1000, (48, 72),
                                               dtype=np.uint16)
  tags = [(33421, 'H', 2, cfa_dim, True),
          (33422, 'B', len(cfa_pattern), bytes(cfa_pattern), True),
          (50706, 'B', 4, (1, 4, 0, 0), True),
          (50707, 'B', 4, (1, 1, 0, 0), True),
          (50708, 's', 0, 'Synthetic Camera', True),
          (274, 'H', 1, orientation, True)]
  if make is not None:
    tags += [(271, 's', 0, make, True), (272, 's', 0, 'TestModel', True)]
  if plane_color is not None:
    tags.append((50710, 'B', len(plane_color), bytes(plane_color), True))
  if white is not None:
    tags.append((50717, 'I', 1, white, True))
  if black is not None:
    tags += [(50713, 'H', 2, black_repeat, True),
             (50714, 'I', len(black), black, True)]
  for k, (cm, ill) in enumerate(((cm1, illuminant1), (cm2, illuminant2))):
    if cm is not None:
      tags.append((50721 + k, '2i', 9, _rationals(cm), True))
    if ill is not None:
      tags.append((50778 + k, 'H', 1, ill, True))
  if neutral is not None:
    tags.append((50728, '2I', 3, _rationals(neutral), True))
  tags += list(extra)
  tifffile.imwrite(path, mosaic, photometric=32803, extratags=tags)
  return mosaic


def _gain_map_list(rng, shape=(48, 72)):
  falloff = isp.radial_falloff(shape[0] // 2, shape[1] // 2,
                               corner_falloff=rng.uniform(0.1, 0.6, 4))
  return isp.encode_opcode_list(
      list(isp.gain_maps_from_falloff(falloff, pattern='RGGB',
                                      map_points=(5, 7))))


def _opcode_tag(code, data):
  return (code, 7, len(data), data, True)


def test_sample_dngs_have_no_gain_map(blackmagic, gopro):
  for im in (blackmagic, gopro):
    assert im.gain_maps == () and im.gain_map() is None
    assert im.gain_map_source == 'missing: no OpcodeList2 tag'
    assert im.metadata().gain_map is None


def test_opcode_list_2_gain_maps_are_read(tmp_path):
  rng = np.random.default_rng(31)
  data = _gain_map_list(rng)
  path = tmp_path / 'gm.dng'
  _write_dng(path, extra=[_opcode_tag(51009, data)])
  im = read_raw(path)
  assert im.gain_map_source == 'dng:OpcodeList2 (4 GainMap opcodes)'
  assert [(m.Top, m.Left) for m in im.gain_maps] == [(0, 0), (0, 1), (1, 0),
                                                     (1, 1)]
  expected = isp.gain_from_gain_maps(isp.decode_opcode_list(data), height=48,
                                     width=72, pattern='RGGB')
  np.testing.assert_array_equal(im.gain_map(), expected)
  assert im.metadata().gain_map.shape == (24, 36, 4)


def test_other_opcode_lists_are_tolerated_and_named(tmp_path):
  rng = np.random.default_rng(32)
  warp = isp.OpaqueOpcode(opcode_id=1, dng_version=(1, 3, 0, 0), flags=1,
                          parameters=bytes(44))
  list3 = isp.encode_opcode_list([warp])
  list1 = _gain_map_list(rng)
  list2 = isp.encode_opcode_list(
      [isp.OpaqueOpcode(opcode_id=4, dng_version=(1, 3, 0, 0), flags=0,
                        parameters=bytes(12))])
  path = tmp_path / 'ops.dng'
  _write_dng(path, extra=[_opcode_tag(51008, list1), _opcode_tag(51009, list2),
                          _opcode_tag(51022, list3)])
  im = read_raw(path)
  assert im.gain_maps == () and im.gain_map() is None
  assert im.gain_map_source == (
      'missing: OpcodeList2 has no GainMap opcode; not applied: OpcodeList1: '
      'GainMap, GainMap, GainMap, GainMap; OpcodeList2: opcode 4; '
      'OpcodeList3: opcode 1')
  # Only OpcodeList3 present: no gain map, the reader still works.
  path = tmp_path / 'ops3.dng'
  _write_dng(path, extra=[_opcode_tag(51022, list3)])
  im = read_raw(path)
  assert im.gain_map_source == ('missing: no OpcodeList2 tag; not applied: '
                                'OpcodeList3: opcode 1')


@pytest.mark.parametrize('corrupt, match', [
    (lambda d: d[:-3], 'truncated'),
    (lambda d: d + b'\0\0', 'end at byte'),
    (lambda d: b'\0\0\0\x09' + d[4:], 'header'),
    (lambda d: d[:2], 'count alone'),
])
@pytest.mark.parametrize('code, k', [(51009, 2), (51008, 1), (51022, 3)])
def test_malformed_opcode_list_is_rejected(tmp_path, corrupt, match, code, k):
  rng = np.random.default_rng(33)
  path = tmp_path / 'bad_ops.dng'
  _write_dng(path, extra=[_opcode_tag(code, corrupt(_gain_map_list(rng)))])
  with pytest.raises(RawReadError,
                     match=rf'malformed OpcodeList{k} tag \({code}\).*'
                     + match) as e:
    read_raw(path)
  assert e.value.path == str(path)


def test_malformed_gain_map_in_opcode_list_2_is_rejected(tmp_path):
  rng = np.random.default_rng(34)
  data = bytearray(_gain_map_list(rng))
  # The first opcode's MapPointsV (parameter bytes 32..35) grows by one, so
  # its byte count no longer matches its map.
  offset = 4 + 16 + 32
  points = int.from_bytes(data[offset:offset + 4], 'big')
  data[offset:offset + 4] = (points + 1).to_bytes(4, 'big')
  path = tmp_path / 'bad_gm.dng'
  _write_dng(path, extra=[_opcode_tag(51009, bytes(data))])
  with pytest.raises(RawReadError, match=r'OpcodeList2 tag \(51009\): opcode '
                     r'#0 \(GainMap\)'):
    read_raw(path)


@pytest.mark.parametrize('cfa_pattern, name', [((0, 1, 1, 2), 'RGGB'),
                                               ((1, 0, 2, 1), 'GRBG'),
                                               ((1, 2, 0, 1), 'GBRG'),
                                               ((2, 1, 1, 0), 'BGGR')])
def test_synthetic_pattern_and_black_level_order(tmp_path, cfa_pattern, name):
  path = tmp_path / 'synthetic.dng'
  blacks = (60, 61, 62, 63)  # per position of the 2x2 cell, row-major
  mosaic = _write_dng(path, cfa_pattern=cfa_pattern, black=blacks,
                      black_repeat=(2, 2))
  im = read_raw(path)
  assert im.pattern == name
  np.testing.assert_array_equal(im.mosaic, mosaic)
  expected = [blacks[2 * r + c] for r, c in cfa.channel_offsets(name)]
  np.testing.assert_array_equal(im.black_level, expected)
  assert im.white_level == 1023
  np.testing.assert_allclose(im.wb_gains, [2.0, 1.0, 1 / 0.6], rtol=1e-6)
  assert im.make == 'TestMake' and im.model == 'TestModel'
  assert im.color_matrix_source == 'dng:ColorMatrix1 (D65)'
  np.testing.assert_allclose(im.camera_to_srgb(), im.libraw_rgb_cam,
                             atol=1e-5)


@pytest.mark.parametrize('ill1, ill2, chosen', [
    (17, 21, 2),   # A / D65 (like the Blackmagic): D65
    (21, 17, 1),   # D65 first
    (3, 23, 2),    # Tungsten / D50 (like the GoPro): daylight-type
    (23, 17, 1),   # D50 first
    (21, 23, 1),   # D65 beats D50
    (17, 3, 2),    # no daylight: the last one
])
def test_colour_matrix_choice_follows_libraw(tmp_path, ill1, ill2, chosen):
  path = tmp_path / 'two_matrices.dng'
  _write_dng(path, cm1=_CM1, illuminant1=ill1, cm2=_CM2, illuminant2=ill2)
  im = read_raw(path)
  assert im.color_matrix_source.startswith(f'dng:ColorMatrix{chosen} (')
  np.testing.assert_allclose(im.xyz_to_camera,
                             np.reshape((_CM1, _CM2)[chosen - 1], (3, 3)))
  np.testing.assert_allclose(im.camera_to_srgb(), im.libraw_rgb_cam,
                             atol=1e-5)


def test_camera_calibration_is_applied(tmp_path):
  path = tmp_path / 'calibrated.dng'
  cc = np.array([[1.0, 0.05, 0.0], [0.0, 1.0, 0.02], [0.0, -0.03, 1.0]])
  _write_dng(path, cm1=_CM1, illuminant1=17, cm2=_CM2, illuminant2=21,
             extra=[(50724, '2i', 9, _rationals(cc), True)])
  im = read_raw(path)
  assert im.color_matrix_source == 'dng:ColorMatrix2 (D65) x CameraCalibration2'
  np.testing.assert_allclose(im.xyz_to_camera, cc @ np.reshape(_CM2, (3, 3)))
  np.testing.assert_allclose(im.camera_to_srgb(), im.libraw_rgb_cam,
                             atol=1e-5)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_orientation_and_libraw_flip(tmp_path, orientation):
  path = tmp_path / 'oriented.dng'
  _write_dng(path, orientation=orientation)
  im = read_raw(path)
  assert im.orientation == orientation
  assert raw_module._FLIP_TO_EXIF[im.flip] == orientation


def test_xtrans_is_rejected(tmp_path):
  path = tmp_path / 'xtrans.dng'
  _write_dng(path, cfa_dim=(6, 6), cfa_pattern=_XTRANS)
  with pytest.raises(RawReadError, match='X-Trans'):
    read_raw(path)


def test_cmyg_is_rejected(tmp_path):
  path = tmp_path / 'cmyg.dng'
  _write_dng(path, cfa_pattern=(0, 1, 2, 3), plane_color=(3, 4, 5, 1))
  with pytest.raises(RawReadError, match='non-RGB CFA colours'):
    read_raw(path)


def test_zero_white_level_tag_is_rejected(tmp_path):
  path = tmp_path / 'white0.dng'
  _write_dng(path, white=0)
  with pytest.raises(RawReadError, match='zero white level'):
    read_raw(path)


def test_missing_colour_matrix_reads_but_metadata_raises(tmp_path):
  path = tmp_path / 'nocolour.dng'
  _write_dng(path, cm1=None, illuminant1=None)
  im = read_raw(path)
  assert im.xyz_to_camera is None
  assert im.color_matrix_source.startswith('missing:')
  np.testing.assert_array_equal(im.libraw_rgb_cam, np.zeros((3, 3)))
  with pytest.raises(RawReadError, match='missing colour matrix'):
    im.metadata()
  with pytest.raises(RawReadError, match='missing colour matrix'):
    im.camera_to_srgb()


def test_no_as_shot_white_balance_falls_back_to_daylight(tmp_path):
  path = tmp_path / 'nowb.dng'
  _write_dng(path, neutral=None)
  im = read_raw(path)
  assert im.wb_source.startswith('libraw:daylight_whitebalance')
  import rawpy  # pylint: disable=g-import-not-at-top
  with rawpy.imread(str(path)) as raw:
    day = np.asarray(raw.daylight_whitebalance[:3], np.float64)
  np.testing.assert_allclose(im.wb_gains, day / day[1])
  im.metadata()  # usable


def test_plain_tiff_is_not_a_raw(tmp_path):
  # LibRaw would "decode" a grey 16-bit TIFF as an RGGB mosaic.
  path = tmp_path / 'grey.tif'
  tifffile.imwrite(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
  with pytest.raises(RawReadError, match='plain TIFF'):
    read_raw(path)


# --- values LibRaw can report but a DNG cannot express: patched handles ------

class _Patched:
  """A LibRaw handle with some attributes replaced."""

  def __init__(self, raw, overrides):
    self._raw = raw
    self._overrides = overrides

  def __getattr__(self, name):
    if name in self._overrides:
      value = self._overrides[name]
      return value(self._raw) if callable(value) else value
    return getattr(self._raw, name)


@pytest.fixture
def patched_read(tmp_path, monkeypatch):
  path = tmp_path / 'base.dng'
  _write_dng(path)
  original = raw_module._open_libraw

  def read(**overrides):
    monkeypatch.setattr(raw_module, '_open_libraw',
                        lambda p: _Patched(original(p), overrides))
    return read_raw(path)
  return read


@pytest.mark.parametrize('white', [0, None, -5, float('nan')])
def test_missing_or_zero_white_level(patched_read, white):
  with pytest.raises(RawReadError, match='missing or zero white level'):
    patched_read(white_level=white)


def test_white_not_above_black(patched_read):
  with pytest.raises(RawReadError, match='not above the black level'):
    patched_read(white_level=64)


def test_invalid_black_level(patched_read):
  with pytest.raises(RawReadError, match='invalid black level'):
    patched_read(black_level_per_channel=[64, -1, 64, 64])


def test_all_zero_mosaic(patched_read):
  with pytest.raises(RawReadError, match='entirely zero'):
    patched_read(raw_image_visible=lambda raw: np.zeros_like(
        raw.raw_image_visible))


def test_zero_filled_tail_with_positive_black(patched_read):
  def cut(raw):
    mosaic = raw.raw_image_visible.copy()
    mosaic[-1, 8:] = 0
    return mosaic
  # 72 - 8 = 64 zeros at the end of the last row, black level 64.
  with pytest.raises(RawReadError, match='ends in 64 pixels of exact zeros'):
    patched_read(raw_image_visible=cut)


def test_a_few_zeros_are_fine(patched_read):
  def dead_pixels(raw):
    mosaic = raw.raw_image_visible.copy()
    mosaic[-1, -8:] = 0
    mosaic[3, :] = 0
    return mosaic
  im = patched_read(raw_image_visible=dead_pixels)
  assert im.mosaic[-1, -1] == 0


def test_no_white_balance_at_all(patched_read):
  im = patched_read(camera_whitebalance=[0, 1, 0, 0],
                    daylight_whitebalance=[0, 0, 0, 0])
  assert im.wb_gains is None and im.wb_source.startswith('missing:')
  with pytest.raises(RawReadError, match='missing white balance'):
    im.metadata()


def test_libraw_non_dng_matrix(patched_read):
  table = np.array([[0.6, -0.1, -0.05], [-0.4, 1.3, 0.1], [-0.1, 0.2, 0.6],
                    [0, 0, 0]], np.float32)
  im = patched_read(rgb_xyz_matrix=table)
  # The DNG tag still wins; without DNG tags the LibRaw table is used.
  assert im.color_matrix_source.startswith('dng:ColorMatrix1')
  m, source = raw_module._choose_xyz_to_camera(None, table)
  assert source == 'libraw:rgb_xyz_matrix'
  np.testing.assert_array_equal(m, table[:3].astype(np.float64))


def test_libraw_errors_at_unpack_become_raw_read_errors(patched_read):
  import rawpy  # pylint: disable=g-import-not-at-top

  def fail(raw):
    raise rawpy.LibRawDataError('Data error or unsupported file format')
  with pytest.raises(RawReadError, match='LibRawDataError'):
    patched_read(raw_image_visible=fail)


# --- bad files -----------------------------------------------------------------

def test_missing_file(tmp_path):
  path = tmp_path / 'nope.dng'
  with pytest.raises(RawReadError, match='file not found') as info:
    read_raw(path)
  assert str(path) in str(info.value)


def test_directory(tmp_path):
  with pytest.raises(RawReadError, match='is a directory'):
    read_raw(tmp_path)


def test_empty_file(tmp_path):
  path = tmp_path / 'empty.dng'
  path.write_bytes(b'')
  with pytest.raises(RawReadError, match='empty file'):
    read_raw(path)


def test_path_type():
  with pytest.raises(TypeError):
    read_raw(123)


@pytest.mark.parametrize('kind', ['png', 'jpeg', 'rgb_tiff', 'text'])
def test_unsupported_formats(tmp_path, kind):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rgb = np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)
  path = tmp_path / f'image.{kind}'
  if kind == 'png':
    Image.fromarray(rgb).save(path, format='PNG')
  elif kind == 'jpeg':
    Image.fromarray(rgb).save(path, format='JPEG')
  elif kind == 'rgb_tiff':
    tifffile.imwrite(path, rgb.astype(np.uint16) * 257)
  else:
    path.write_text('not a raw file\n' * 100)
  with pytest.raises(RawReadError, match='unsupported') as info:
    read_raw(path)
  assert str(path) in str(info.value)


def test_error_pickles():
  err = RawReadError('/x/y.dng', 'file not found')
  again = pickle.loads(pickle.dumps(err))
  assert str(again) == str(err) == 'cannot read raw file /x/y.dng: file not found'
  assert again.path == '/x/y.dng' and again.reason == 'file not found'


# --- truncated and random files, read in a subprocess with a timeout ---------

# Cut points: absolute bytes, fractions of the file, or bytes short of the end.
CUTS = {'1KiB': 1024, '10%': 0.1, '50%': 0.5, '90%': 0.9, 'end-100': -100}
TRUNCATION_CASES = [(f, c) for f in (BLACKMAGIC, GOPRO) for c in CUTS]
RANDOM_CASES = ['random_0', 'random_1', 'random_2', 'tiff_header_random']

_GUARD_SCRIPT = r'''
import json, sys
from rawjax.io import raw as R
original = R._inspect_tiff
results = {}
for name, path, tiff_check in json.loads(sys.argv[1]):
  R._inspect_tiff = original if tiff_check else (lambda path, size: None)
  try:
    R.read_raw(path)
    results[name] = 'READ'
  except R.RawReadError as e:
    results[name] = 'RawReadError: ' + e.reason
  except BaseException as e:  # a crash, reported to the test
    results[name] = 'CRASH %s: %s' % (type(e).__name__, e)
print(json.dumps(results))
'''


def _cut_length(size, cut):
  if isinstance(cut, float):
    return int(size * cut)
  return size + cut if cut < 0 else cut


@pytest.fixture(scope='module')
def guarded_reads(raw_dir, tmp_path_factory):
  """Reads every bad file in one subprocess that must finish in 120 s.

  LibRaw runs in C, so only a separate process can turn a hang into a test
  failure. Each truncated file is read twice: with the TIFF structure check
  and with it disabled (LibRaw errors and the mosaic checks alone).
  """
  work = tmp_path_factory.mktemp('bad_raws')
  cases = []
  for name, cut in TRUNCATION_CASES:
    data = (raw_dir / name).read_bytes()
    path = work / f'{cut}_{name}'.replace('%', 'pct')
    path.write_bytes(data[:_cut_length(len(data), CUTS[cut])])
    cases += [(f'{name}:{cut}:checked', str(path), True),
              (f'{name}:{cut}:libraw_only', str(path), False)]
  rng = np.random.default_rng(2024)
  for kind in RANDOM_CASES:
    path = work / f'{kind}.dng'
    head = b'II*\x00\x08\x00\x00\x00' if kind.startswith('tiff') else b''
    path.write_bytes(head + rng.bytes(200_000))
    cases.append((kind, str(path), True))
  try:
    proc = subprocess.run(
        [sys.executable, '-c', _GUARD_SCRIPT, json.dumps(cases)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, 'JAX_PLATFORMS': 'cpu'}, check=False)
  except subprocess.TimeoutExpired:
    pytest.fail('reading truncated/random raw files hung (> 120 s)')
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('name, cut', TRUNCATION_CASES)
@pytest.mark.parametrize('mode', ['checked', 'libraw_only'])
def test_truncated_dng_is_rejected(guarded_reads, name, cut, mode):
  result = guarded_reads[f'{name}:{cut}:{mode}']
  assert result.startswith('RawReadError: '), result
  if mode == 'checked':
    assert 'truncated' in result


@pytest.mark.parametrize('kind', RANDOM_CASES)
def test_random_bytes_are_rejected(guarded_reads, kind):
  result = guarded_reads[kind]
  assert result.startswith('RawReadError: '), result


def test_truncated_message_names_path(raw_dir, tmp_path):
  data = (raw_dir / GOPRO).read_bytes()
  path = tmp_path / 'cut.dng'
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(RawReadError) as info:
    read_raw(path)
  message = str(info.value)
  assert str(path) in message and 'truncated' in message
  assert f'only {len(data) // 2} bytes' in message


@pytest.mark.parametrize('fraction', [0.3, 0.7, 0.99])
def test_truncated_multi_strip_dng(tmp_path, fraction):
  path = tmp_path / 'strips.dng'
  mosaic = np.random.default_rng(3).integers(64, 1000, (200, 64),
                                             dtype=np.uint16)
  tifffile.imwrite(path, mosaic, photometric=32803, rowsperstrip=4,
                   extratags=[(33421, 'H', 2, (2, 2), True),
                              (33422, 'B', 4, bytes((0, 1, 1, 2)), True),
                              (50706, 'B', 4, (1, 4, 0, 0), True),
                              (50717, 'I', 1, 1023, True),
                              (271, 's', 0, 'TestMake', True)])
  np.testing.assert_array_equal(read_raw(path).mosaic, mosaic)
  data = path.read_bytes()
  path.write_bytes(data[:int(len(data) * fraction)])
  with pytest.raises(RawReadError, match='truncated'):
    read_raw(path)


def test_tifffile_complaints_are_not_logged(raw_dir, tmp_path, caplog):
  path = tmp_path / 'cut.dng'
  path.write_bytes((raw_dir / BLACKMAGIC).read_bytes()[:1024])
  with caplog.at_level('DEBUG', logger='tifffile'):
    with pytest.raises(RawReadError,
                       match='corrupt or truncated TIFF structure'):
      read_raw(path)
  assert not [r for r in caplog.records if r.name.startswith('tifffile')]


# --- metadata sanity (issue 17) ---------------------------------------------

def test_sample_dngs_have_clean_metadata(blackmagic, gopro):
  for im in (blackmagic, gopro):
    assert im.warnings == () and im.above_white == 0
    assert im.even_crop == (0, 0)
    assert im.white_level_source == 'libraw:white_level'


def test_odd_visible_size_is_cropped_to_even(tmp_path):
  path = tmp_path / 'odd.dng'
  mosaic = np.random.default_rng(11).integers(64, 1000, (47, 71),
                                              dtype=np.uint16)
  _write_dng(path, mosaic)
  im = read_raw(path)
  assert im.mosaic.shape == (46, 70) and im.even_crop == (1, 1)
  assert im.pattern == 'RGGB'
  np.testing.assert_array_equal(im.mosaic, mosaic[:46, :70])
  assert any('odd' in w for w in im.warnings)


@pytest.mark.parametrize('cfa_pattern, plane_color, match', [
    ((3, 4, 4, 5), None, 'CMMY'),
    ((0, 1, 1, 2), (3, 4, 5), 'CMMY'),
    ((0, 1, 1, 2), (0, 1, 0), 'cell'),
])
def test_non_rgb_cfa_tags_are_rejected(tmp_path, cfa_pattern, plane_color,
                                       match):
  # LibRaw decodes all of these as an RGGB mosaic.
  path = tmp_path / 'cmy.dng'
  _write_dng(path, cfa_pattern=cfa_pattern, plane_color=plane_color)
  with pytest.raises(RawReadError, match=f'non-RGB.*{match}'):
    read_raw(path)


def test_plane_colours_reorder_the_pattern(tmp_path):
  path = tmp_path / 'bgr_planes.dng'
  _write_dng(path, cfa_pattern=(0, 1, 1, 2), plane_color=(2, 1, 0))
  assert read_raw(path).pattern == 'BGGR'


def test_cfa_repeat_dim_that_contradicts_libraw_is_rejected(tmp_path):
  path = tmp_path / 'dim.dng'
  _write_dng(path, cfa_dim=(1, 1))
  with pytest.raises(RawReadError, match='not a 2x2 Bayer CFA'):
    read_raw(path)


def test_pattern_that_does_not_match_the_tags_is_rejected(patched_read):
  with pytest.raises(RawReadError, match='does not match the colour'):
    patched_read(raw_pattern=np.array([[1, 0], [2, 3]]))


def test_white_not_above_black_names_the_tags(tmp_path):
  path = tmp_path / 'levels.dng'
  _write_dng(path, white=50)
  with pytest.raises(RawReadError,
                     match=r'WhiteLevel \(50717\).*BlackLevel \(50714\)'):
    read_raw(path)


@pytest.mark.parametrize('black, match', [(1010, 'at or above every pixel'),
                                          (990, 'above 9')])
def test_black_above_the_data_is_rejected(tmp_path, black, match):
  with pytest.raises(RawReadError, match=f'BlackLevel.*{match}'):
    _read_levels(tmp_path, 12, black=(black,))


def _read_levels(tmp_path, seed, **levels):
  """A random 64..999 mosaic written with the given levels, and its read."""
  path = tmp_path / 'levels.dng'
  mosaic = np.random.default_rng(seed).integers(64, 1000, (48, 72),
                                                dtype=np.uint16)
  _write_dng(path, mosaic, **levels)
  return mosaic, read_raw(path)


def test_white_far_below_the_data_uses_the_bit_depth(tmp_path):
  _, im = _read_levels(tmp_path, 13, white=300)
  assert im.white_level == 1023.0
  assert im.white_level_source.startswith('data bit depth (10 bits')
  assert any('far below the data maximum' in w for w in im.warnings)
  assert im.above_white == 0


def test_pixels_above_white_are_counted(tmp_path):
  mosaic, im = _read_levels(tmp_path, 14, white=900)
  assert im.white_level == 900.0
  assert im.above_white == int(np.count_nonzero(mosaic > 900)) > 0
  assert any(f'{im.above_white} pixels are above' in w for w in im.warnings)


def test_black_levels_spread_across_channels_warn(tmp_path):
  path = tmp_path / 'spread.dng'
  _write_dng(path, black=(0, 161, 0, 0), black_repeat=(2, 2))
  im = read_raw(path)
  np.testing.assert_array_equal(im.black_level, [0, 161, 0, 0])
  assert any('differ by 161' in w for w in im.warnings)


@pytest.mark.parametrize('neutral', [(1, 0, 1, 0, 1, 0), (0, 1, 1, 1, 0, 1)])
def test_invalid_as_shot_neutral_uses_the_colour_matrix_white(tmp_path,
                                                              neutral):
  path = tmp_path / 'neutral.dng'
  _write_dng(path, neutral=None,
             extra=[(50728, '2I', 3, neutral, True)])
  im = read_raw(path)
  assert 'as shot' not in im.wb_source
  assert im.wb_source.startswith('libraw:daylight_whitebalance (colour-matrix '
                                 'white; the DNG AsShotNeutral tag (50728)')
  import rawpy  # pylint: disable=g-import-not-at-top
  with rawpy.imread(str(path)) as raw:
    day = np.asarray(raw.daylight_whitebalance[:3], np.float64)
  np.testing.assert_allclose(im.wb_gains, day / day[1])
  assert any(w.startswith('white balance:') for w in im.warnings)


@pytest.mark.parametrize('offset', [83, 296, 9196])
def test_flipped_scanner_nef_is_never_bayer(raw_dir, tmp_path, offset):
  # Each of these single flipped bytes makes LibRaw decode the RGB scan as a
  # flat RGGB (or 1x1) mosaic.
  data = bytearray((raw_dir / NIKON_SCAN).read_bytes())
  data[offset] ^= 0xFF
  path = tmp_path / 'scan.nef'
  path.write_bytes(bytes(data))
  with pytest.raises(RawReadError):
    read_raw(path)
