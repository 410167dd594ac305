"""The camera registry, its CSV reader and the lens shading of the simulator."""

import dataclasses
import pathlib

import numpy as np
import pytest

from rawjax import isp
from rawjax import io as rawio
from rawjax.data import _spectra, synthetic
from rawjax.data.synthetic import cameras

SSF = pathlib.Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'ssf'
needs_ssf = pytest.mark.skipif(not SSF.is_dir(),
                               reason=f'{SSF} (measured cameras) is absent')
SIZE = 64


def _write_csv(path, rows, header='#Camera:Test Cam\n#License:CC0\n'):
  path.write_text(header + ''.join(','.join(map(str, r)) + '\n'
                                   for r in rows))
  return path


def _good_rows(rng):
  wavelengths = np.arange(400, 721, 10)
  peaks = np.array([600.0, 540.0, 460.0])
  values = np.exp(-0.5 * ((wavelengths[:, None] - peaks) / 40.0)**2)
  values *= rng.uniform(0.8, 1.2, 3)
  return [[w, *v] for w, v in zip(wavelengths, values)]


@needs_ssf
def test_registry_of_the_shared_folder():
  registry = cameras.load_cameras(SSF)
  assert len(registry) == 28  # 27 cameras, the Nikon D50 measured twice
  phone = registry['nokia-n900']
  assert phone.name == 'Nokia N900' and phone.kind == 'phone'
  assert phone.bit_depth == 10 and phone.noise_scale > 2
  assert 'BY-NC-SA' in phone.source
  assert registry['point-grey-grasshopper2-14s5c'].kind == 'industrial'
  assert {c.pattern for c in registry.values()} == {'RGGB', 'BGGR', 'GRBG',
                                                    'GBRG'}
  d65 = _spectra.named_illuminants(('D65',))[0]
  for camera in registry.values():
    assert camera.sensitivities.shape == (31, 3)
    np.testing.assert_allclose(np.max(d65 @ camera.sensitivities), 1.0,
                               rtol=1e-9)
    falloff = np.asarray(camera.shading.corner_falloff)
    if camera.kind == 'phone':
      assert 0.4 <= falloff[1] <= 0.7 and abs(falloff[0] - falloff[3]) > 0.05
    else:
      assert falloff.max() < 0.4
  # Names, slugs and file stems all find a camera; the default folder too.
  assert cameras.camera_profile('Nokia N900', ssf_dir=SSF) is phone
  assert cameras.camera_profile('Nikon_D700', ssf_dir=SSF).slug == 'nikon-d700'


def test_user_csv_in_the_ssf_format(tmp_path):
  rng = np.random.default_rng(0)
  path = _write_csv(tmp_path / 'My_Cam_camspec.csv', _good_rows(rng))
  registry = cameras.load_cameras(path)
  assert list(registry) == ['my-cam']
  camera = registry['my-cam']
  assert camera.name == 'Test Cam' and camera.kind == 'dslr'
  assert camera.shading is not None and str(path) in camera.source
  phone = cameras.camera_from_file(path, kind='phone')
  assert phone.bit_depth == 10 and phone.shading.corner_falloff[1] > 0.4
  # A folder of user files, found through the environment variable.
  folder = tmp_path / 'ssf'
  folder.mkdir()
  _write_csv(folder / 'Other_Cam.csv', _good_rows(rng))
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv(cameras.SSF_ENV, str(folder))
    assert cameras.camera_profile('other-cam').name == 'Test Cam'
    with pytest.raises(ValueError, match='Unknown camera.*other-cam'):
      cameras.camera_profile('no-such-camera')


@pytest.mark.parametrize('kind,expected', [
    ('columns', 'expected 4 columns'),
    ('text', 'non-numeric value'),
    ('order', 'strictly increase'),
    ('negative', 'negative sensitivity .* green'),
    ('zero', 'blue channel is zero'),
    ('narrow', 'do not cover 420-680 nm'),
    ('nan', 'non-finite'),
])
def test_malformed_csv_is_named(tmp_path, kind, expected):
  rng = np.random.default_rng(1)
  rows = _good_rows(rng)
  if kind == 'columns':
    rows[5] = rows[5][:3]
  elif kind == 'text':
    rows[7][2] = 'n/a'
  elif kind == 'order':
    rows[4][0], rows[5][0] = rows[5][0], rows[4][0]
  elif kind == 'negative':
    rows[6][2] = -0.1
  elif kind == 'zero':
    for r in rows:
      r[3] = 0.0
  elif kind == 'narrow':
    rows = [r for r in rows if r[0] <= 600]
  elif kind == 'nan':
    rows[3][1] = float('nan')
  path = _write_csv(tmp_path / 'bad.csv', rows)
  with pytest.raises(ValueError, match=expected) as error:
    cameras.camera_from_file(path)
  assert 'bad.csv' in str(error.value)


def test_missing_and_empty_registries_are_named(tmp_path):
  with pytest.raises(ValueError, match='neither a folder nor a file'):
    cameras.load_cameras(tmp_path / 'nowhere')
  with pytest.raises(ValueError, match=r'no \*\.csv'):
    cameras.load_cameras(tmp_path)
  with pytest.raises(ValueError, match='not found'):
    _spectra.read_sensitivities_csv(tmp_path / 'nowhere.csv')


SHADED = synthetic.SceneConfig(
    height=SIZE, width=SIZE, noise=False, chart_fraction=0.0,
    natural_fraction=0.0, multi_illuminant_fraction=0.0, shading=True,
    exposure=(0.4, 0.4))


@pytest.fixture(scope='module')
def shaded_scenes():
  phone = dataclasses.replace(synthetic.NIKON_5100, slug='phone-like',
                            shading=cameras._shading_for('phone-like',
                                                         'phone'))
  flat = synthetic.generate_scene(3, 1, config=SHADED.replace(shading=False),
                                  cameras=[phone])
  shaded = synthetic.generate_scene(3, 1, config=SHADED, cameras=[phone])
  corrected = synthetic.generate_scene(
      3, 1, config=SHADED.replace(shading_corrected=True), cameras=[phone])
  return phone, flat, shaded, corrected


def test_shading_is_recorded_and_round_trips_through_the_dng(tmp_path,
                                                             shaded_scenes):
  phone, flat, shaded, _ = shaded_scenes
  capture = shaded.captures[phone.slug]
  falloff = capture.falloff
  assert falloff.shape == (SIZE // 2, SIZE // 2, 4)
  assert flat.captures[phone.slug].falloff is None
  # Below the clipping level, the sensor records scene * falloff.
  ratio = capture.packed / np.maximum(flat.captures[phone.slug].packed, 1e-3)
  lit = flat.captures[phone.slug].packed > 0.02
  np.testing.assert_allclose(ratio[lit], np.broadcast_to(falloff, ratio.shape)
                             [lit], rtol=0.03, atol=2e-3)
  # DNG write -> read_raw -> the gain map corrects the falloff.
  path = tmp_path / 'shaded.dng'
  rawio.write_dng(path, capture.mosaic, pattern=phone.pattern,
                  black_level=phone.black_level,
                  white_level=phone.white_level,
                  color_matrix=capture.xyz_to_camera,
                  gain_maps=capture.gain_maps())
  raw = rawio.read_raw(path)
  assert len(raw.gain_maps) == 4
  gain = np.asarray(raw.gain_map())
  # 17 x 17 map points interpolate the falloff (coarse on a 32 x 32 image).
  np.testing.assert_allclose(gain, 1.0 / falloff, rtol=0.03)
  packed = isp.normalize(isp.pack(raw.mosaic, pattern=raw.pattern),
                         black_level=raw.black_level,
                         white_level=raw.white_level)
  corrected = np.asarray(isp.correct_shading(packed, 1.0 / gain))
  np.testing.assert_allclose(corrected[lit],
                             flat.captures[phone.slug].packed[lit],
                             rtol=0.03, atol=3e-3)
  np.testing.assert_allclose(np.asarray(capture.metadata.gain_map),
                             1.0 / falloff, rtol=1e-6)


def test_shading_corrected_raw(shaded_scenes):
  phone, flat, _, corrected = shaded_scenes
  capture = corrected.captures[phone.slug]
  assert capture.shading_corrected and capture.gain_maps() == ()
  assert capture.metadata.gain_map is None
  reference = flat.captures[phone.slug].packed
  lit = (reference > 0.02) & (reference < 0.9)
  np.testing.assert_allclose(capture.packed[lit], reference[lit], rtol=0.03,
                             atol=3e-3)
