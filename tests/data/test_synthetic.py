"""The two-camera spectral simulator: physics figures, outputs, files."""

import json

import numpy as np
import pytest
from scipy import io as scipy_io

from rawjax import baselines, isp, metrics
from rawjax import io as rawio
from rawjax.data import _spectra, synthetic

NIKON, SIGMA = synthetic.NIKON_5100, synthetic.SIGMA_SDMERRILL
SIZE = 64
CLEAN = synthetic.SceneConfig(height=SIZE, width=SIZE, noise=False,
                              natural_fraction=0.0, chart_fraction=1.0,
                              multi_illuminant_fraction=0.0)


def _relative_residual(source, target):
  """mean |residual| / mean |target| of the least-squares 3x3 fit."""
  matrix = isp.fit_polynomial(source, target, kernel='linear', ridge=0.0)
  residual = np.asarray(isp.apply_polynomial(source, matrix,
                                             kernel='linear')) - target
  return np.abs(residual).mean() / np.abs(target).mean()


@pytest.mark.parametrize('illuminant,expected', [('D65', 0.008), ('A', 0.011),
                                                 ('FL2', 0.009)])
def test_colorchecker_3x3_residual_reproduces_the_spec(illuminant, expected):
  """synthetic-data.md: Nikon 5100 -> Sigma SDMerill on the 24 Ohta patches."""
  _, library = _spectra.reflectance_library()
  light = _spectra.named_illuminants((illuminant,))[0]
  patches = library[:24] * light
  residual = _relative_residual((patches @ NIKON.sensitivities).astype(
      np.float32), (patches @ SIGMA.sensitivities).astype(np.float32))
  assert abs(residual - expected) < 5e-4, residual


@pytest.fixture(scope='module')
def d65_chart_scene():
  config = CLEAN.replace(illuminant_weights=(('D65', 1.0),),
                         exposure=(0.6, 0.6))
  return synthetic.generate_scene(7, 0, config=config)


def test_rendered_chart_keeps_the_cross_camera_nonlinearity(d65_chart_scene):
  """The generator's own chart: a 3x3 leaves about the spectral figure."""
  scene = d65_chart_scene
  means = {slug: np.asarray(baselines.chart_patch_means(
      capture.packed, scene.chart_boxes)) for slug, capture in
           scene.captures.items()}
  residual = _relative_residual(isp.packed_to_rgb(means[NIKON.slug]),
                                isp.packed_to_rgb(means[SIGMA.slug]))
  # Shading over the chart reweights the patches; the order of magnitude
  # (not a 3-D basis, where it would be ~1e-7) is the point.
  assert 0.003 < residual < 0.02, residual
  white, black = means[NIKON.slug][18], means[NIKON.slug][23]
  assert np.all(white > 5 * black)


def test_noise_free_patches_are_flat_and_aligned(d65_chart_scene):
  """The optical low-pass model makes both cameras' packed images aligned."""
  scene = d65_chart_scene
  top, left, bottom, right = scene.chart_boxes[0] // 2
  for capture in scene.captures.values():
    patch = capture.packed[top:bottom, left:right]
    shading = np.ptp(patch, axis=(0, 1)) / patch.mean(axis=(0, 1))
    assert np.all(shading < 0.05), shading


def test_outputs_are_consistent(d65_chart_scene):
  for slug, capture in d65_chart_scene.captures.items():
    camera = capture.camera
    assert slug == camera.slug
    assert capture.mosaic.dtype == np.uint16
    assert capture.mosaic.shape == (SIZE, SIZE)
    assert capture.mosaic.max() <= camera.white_level
    assert capture.metadata.pattern == camera.pattern
    expected = isp.normalize(isp.pack(capture.mosaic.astype(np.float32),
                                      pattern=camera.pattern),
                             black_level=camera.black_level,
                             white_level=camera.white_level)
    np.testing.assert_allclose(capture.packed, expected, atol=1e-6)
    assert capture.srgb.shape == (SIZE, SIZE, 3)
    assert 0.0 <= capture.srgb.min() and capture.srgb.max() <= 1.0
    assert capture.shot_noise == 0.0
    np.testing.assert_allclose(np.asarray(capture.metadata.wb_gains)[1], 1.0)


def test_white_balance_neutralises_the_illuminant(d65_chart_scene):
  """The as-shot gains make a neutral patch grey in the sRGB rendering."""
  scene = d65_chart_scene
  top, left, bottom, right = scene.chart_boxes[21]  # neutral 5 (.70 D)
  for capture in scene.captures.values():
    grey = capture.srgb[top:bottom, left:right].mean((0, 1))
    assert np.ptp(grey) < 0.03 * grey.mean(), grey


@pytest.mark.parametrize('camera', [NIKON, SIGMA], ids=lambda c: c.slug)
def test_fitted_colour_matrix_is_white_preserving(camera):
  d65 = _spectra.named_illuminants(('D65',))[0]
  camera_white = d65 @ camera.sensitivities
  xyz_white = d65 @ _spectra.cmfs()
  np.testing.assert_allclose(camera.xyz_to_camera @ xyz_white, camera_white,
                             rtol=1e-9)
  _, library = _spectra.reflectance_library()
  xyz = _spectra.xyz_of_reflectances(library[:24], d65)
  estimate = np.linalg.solve(camera.xyz_to_camera,
                             (library[:24] * d65 @ camera.sensitivities).T).T
  lab = isp.xyz_to_lab(xyz.astype(np.float32))
  lab_estimate = isp.xyz_to_lab(estimate.astype(np.float32))
  delta_e = np.asarray(metrics.delta_e2000(lab, lab_estimate))
  assert delta_e.mean() < 3.0, delta_e.mean()


def test_deterministic_and_independent_of_the_camera_list():
  config = CLEAN.replace(noise=True, natural_fraction=1.0,
                         multi_illuminant_fraction=1.0)
  both = synthetic.generate_scene(3, 5, config=config)
  again = synthetic.generate_scene(3, 5, config=config)
  alone = synthetic.generate_scene(3, 5, config=config, cameras=[SIGMA.slug])
  other = synthetic.generate_scene(4, 5, config=config)
  for a, b in ((both, again), (both, alone)):
    np.testing.assert_array_equal(a.captures[SIGMA.slug].mosaic,
                                  b.captures[SIGMA.slug].mosaic)
  assert both.content.startswith('natural: ')
  assert not np.array_equal(both.captures[SIGMA.slug].mosaic,
                            other.captures[SIGMA.slug].mosaic)
  assert both.captures[SIGMA.slug].shot_noise > 0


def test_multi_illuminant_scene_has_spatially_varying_mixture():
  config = CLEAN.replace(multi_illuminant_fraction=1.0,
                         three_illuminant_fraction=0.0)
  scene = synthetic.generate_scene(0, 2, config=config)
  assert scene.multi_illuminant and scene.illumination_map.shape == (SIZE,
                                                                     SIZE, 2)
  mixture = scene.illumination_map[..., 0] / scene.illumination_map.sum(-1)
  assert np.ptp(mixture) > 0.1
  np.testing.assert_allclose(scene.illumination_map.sum(-1).mean(), 1.0,
                             rtol=1e-5)
  image = scene.illuminant_image(NIKON.slug)
  chroma = image[..., 0] / image[..., 1]
  assert np.ptp(chroma) > 0.01  # the illuminant colour changes over the image


def test_cross_camera_map_is_not_linear_on_a_scene():
  """With real spectra (not a 3-D basis) no 3x3 maps one camera exactly."""
  scene = synthetic.generate_scene(1, 9, config=CLEAN.replace(
      chart_fraction=0.0, exposure=(0.4, 0.4)))
  source = isp.packed_to_rgb(scene.captures[NIKON.slug].packed).reshape(-1, 3)
  target = isp.packed_to_rgb(scene.captures[SIGMA.slug].packed).reshape(-1, 3)
  assert _relative_residual(source, target) > 2e-3


def test_dng_round_trip_through_read_raw(tmp_path, d65_chart_scene):
  for capture in d65_chart_scene.captures.values():
    camera = capture.camera
    path = tmp_path / f'{camera.slug}.dng'
    rawio.write_dng(path, capture.mosaic, pattern=camera.pattern,
                    black_level=camera.black_level,
                    white_level=camera.white_level,
                    color_matrix=capture.xyz_to_camera,
                    as_shot_neutral=1 / np.asarray(capture.metadata.wb_gains))
    raw = rawio.read_raw(path)
    np.testing.assert_array_equal(raw.mosaic, capture.mosaic)
    assert raw.pattern == camera.pattern
    np.testing.assert_array_equal(raw.black_level, [camera.black_level] * 4)
    assert raw.white_level == camera.white_level
    np.testing.assert_allclose(raw.xyz_to_camera, capture.xyz_to_camera,
                               atol=1e-6)
    metadata = raw.metadata()
    np.testing.assert_allclose(metadata.wb_gains, capture.metadata.wb_gains,
                               rtol=1e-5)
    # DNG rationals keep 6 decimals of xyz_to_camera; the inversion to
    # camera -> sRGB amplifies that to ~1e-5 relative.
    np.testing.assert_allclose(metadata.cam_to_srgb,
                               capture.metadata.cam_to_srgb, rtol=1e-4,
                               atol=1e-5)


def test_user_csv_camera(tmp_path):
  csv = tmp_path / 'nikon.csv'
  with open(csv, 'w', encoding='utf-8') as f:
    f.write('wavelength,red,green,blue\n')
    for wavelength, row in zip(_spectra.WAVELENGTHS, NIKON.sensitivities):
      f.write(f'{wavelength},{row[0]},{row[1]},{row[2]}\n')
  camera = synthetic.CameraProfile.from_csv(
      csv, name='my nikon', slug='mine', pattern='BGGR', black_level=64,
      white_level=1023)
  np.testing.assert_allclose(camera.sensitivities, NIKON.sensitivities,
                             rtol=1e-6, atol=1e-9)
  (tmp_path / 'bad.csv').write_text('400,1,2\n410,1,2\n420,1,2\n')
  with pytest.raises(ValueError, match='expected 4 columns'):
    synthetic.CameraProfile.from_csv(tmp_path / 'bad.csv', name='x',
                                     slug='x', pattern='RGGB', black_level=0,
                                     white_level=255)


def test_bad_configuration_is_named():
  with pytest.raises(ValueError, match='even'):
    synthetic.SceneConfig(height=63)
  with pytest.raises(ValueError, match='Unknown preset'):
    synthetic.generate_scene(0, 0, config='raw2everything')
  with pytest.raises(ValueError, match='Unknown illuminants'):
    synthetic.SceneConfig(illuminant_weights=(('D66', 1.0),))
  with pytest.raises(ValueError, match='Unknown camera'):
    synthetic.camera_profile('canon')


def test_cli_writes_the_raw2raw_layout(tmp_path):
  summary = synthetic.main(['--out', str(tmp_path), '--num', '10',
                            '--size', str(SIZE), str(SIZE), '--srgb'])
  info = json.loads((tmp_path / 'dataset.json').read_text())
  assert info == json.loads(json.dumps(summary))
  splits = info['splits']
  names = ([e['name'] for e in splits['anchor'] + splits['test']] +
           [f.rsplit('_', 1)[0] for files in splits['unpaired'].values()
            for f in files])
  assert len(names) == len(set(names)) == 10  # scene-disjoint
  for entry in splits['test']:
    for camera in (NIKON, SIGMA):
      folder = tmp_path / 'paired' / camera.slug
      packed = scipy_io.loadmat(folder / 'raw-rggb' /
                                f'{entry["file"]}.mat')['raw_rggb']
      assert packed.shape == (SIZE // 2, SIZE // 2, 4)
      assert (folder / 'vis' / f'{entry["file"]}.jpg').is_file()
      assert (folder / 'srgb' / f'{entry["file"]}.png').is_file()
    origin = tmp_path / 'paired' / entry['origin']
    mapping = scipy_io.loadmat(origin / 'mapping' / f'{entry["name"]}.mat')
    assert mapping['mapping_matrix'].shape == (16, 4)
    raw = rawio.read_raw(origin / 'dng' / f'{entry["name"]}.dng')
    assert raw.mosaic.shape == (SIZE, SIZE)
  for entry in splits['anchor']:
    assert (tmp_path / 'paired' / NIKON.slug / 'anchor-raw-rggb' /
            f'{entry["file"]}.mat').is_file()
  for slug, files in splits['unpaired'].items():
    for name in files:
      assert (tmp_path / 'unpaired' / slug / 'raw-rggb' /
              f'{name}.mat').is_file()
      assert (tmp_path / 'unpaired' / slug / 'dng' /
              f'{name.rsplit("_", 1)[0]}.dng').is_file()


# ------------------------------------------- second generation (issue 15) --

needs_ssf = pytest.mark.skipif(synthetic.default_ssf_dir() is None,
                               reason='no measured-camera folder '
                               '(../shared/data/ssf or $RAWJAX_SSF_DIR)')
V2 = synthetic.SceneConfig(height=SIZE, width=SIZE, shading=True,
                           content_sources='catalogue', natural_fraction=0.5,
                           procedural_fraction=0.5, chart_fraction=0.3)


def test_first_generation_presets_are_unchanged():
  base = synthetic.SceneConfig()
  assert synthetic.PRESETS['raw2raw'] == base
  assert synthetic.PRESETS['multi_illum'] == base.replace(
      multi_illuminant_fraction=1.0, chart_fraction=0.7)
  assert synthetic.PRESETS['raw2srgb'] == base.replace(
      multi_illuminant_fraction=0.0, chart_fraction=0.2,
      shot_range=(1e-4, 0.012))
  assert (base.cameras, base.shading, base.content_sources,
          base.isp_style) == (None, False, 'legacy', None)


@needs_ssf
def test_second_generation_presets():
  presets = synthetic.PRESETS
  for name in ('raw2raw_v2', 'multi_illum_v2', 'raw2srgb_v2'):
    config = presets[name]
    profiles = synthetic.scene_cameras(config)
    assert sorted(p.kind for p in profiles) == ['dslr', 'phone']
    assert config.shading and config.content_sources == 'catalogue'
  assert presets['raw2raw_v2'].multi_illuminant_fraction == 0.3
  assert presets['multi_illum_v2'].multi_illuminant_fraction == 1.0
  srgb = presets['raw2srgb_v2']
  assert srgb.isp_style is not None and srgb.unlabelled_fraction > 0
  assert srgb.multi_illuminant_fraction == 0.0


def test_content_split_keeps_unlabelled_photographs_apart():
  labelled, unlabelled = synthetic.catalogue_names(0.5)
  assert labelled and unlabelled and not set(labelled) & set(unlabelled)
  config = V2.replace(natural_fraction=1.0, unlabelled_fraction=0.5,
                      noise=False)
  for index in range(4):
    for role, pool in ((False, labelled), (True, unlabelled)):
      scene = synthetic.generate_scene(2, index, config=config,
                                       cameras=[NIKON], unlabelled=role)
      assert scene.content.removeprefix('photo: ') in pool, scene.content


def test_second_generation_scene_is_deterministic_per_seed_and_index():
  first = synthetic.generate_scene(5, 3, config=V2)
  again = synthetic.generate_scene(5, 3, config=V2)
  alone = synthetic.generate_scene(5, 3, config=V2, cameras=[SIGMA])
  other = synthetic.generate_scene(5, 4, config=V2)
  assert first.content == again.content
  for slug, capture in first.captures.items():
    np.testing.assert_array_equal(capture.mosaic, again.captures[slug].mosaic)
    np.testing.assert_array_equal(capture.srgb, again.captures[slug].srgb)
  np.testing.assert_array_equal(alone.captures[SIGMA.slug].mosaic,
                                first.captures[SIGMA.slug].mosaic)
  assert not np.array_equal(other.captures[NIKON.slug].mosaic,
                            first.captures[NIKON.slug].mosaic)
  # Shading darkens the corners relative to the centre of a flat field.
  falloff = first.captures[NIKON.slug].falloff
  assert falloff.shape == (SIZE // 2, SIZE // 2, 4)
  assert falloff.min() < 0.9 < falloff.max() <= 1.0


def test_camera_like_isp_target():
  config = V2.replace(isp_style='phone', noise=False)
  styled = synthetic.generate_scene(1, 0, config=config, cameras=[NIKON])
  plain = synthetic.generate_scene(1, 0, config=config.replace(
      isp_style=None), cameras=[NIKON])
  target = styled.captures[NIKON.slug].srgb
  assert target.shape == (SIZE, SIZE, 3) and np.all(np.isfinite(target))
  assert 0.0 <= target.min() and target.max() <= 1.0
  assert np.abs(target - plain.captures[NIKON.slug].srgb).mean() > 0.01
  # The raw is the same: only the rendering of the target changed.
  np.testing.assert_array_equal(styled.captures[NIKON.slug].mosaic,
                                plain.captures[NIKON.slug].mosaic)


@needs_ssf
def test_cli_writes_a_second_generation_dataset(tmp_path):
  summary = synthetic.main(['--out', str(tmp_path), '--preset', 'raw2raw_v2',
                            '--num', '10', '--size', str(SIZE), str(SIZE),
                            '--samples', '2'])
  assert (tmp_path / 'samples.png').stat().st_size > 1000
  kinds = {c['slug']: c['kind'] for c in summary['cameras']}
  assert kinds == {'nokia-n900': 'phone', 'canon-5dmarkii': 'dslr'}
  entry = summary['splits']['test'][0]
  raw = rawio.read_raw(tmp_path / 'paired' / entry['origin'] / 'dng' /
                       f'{entry["name"]}.dng')
  assert len(raw.gain_maps) == 4
  meta = np.load(tmp_path / 'paired' / entry['origin'] / 'meta' /
                 f'{entry["file"]}.npz')
  np.testing.assert_allclose(raw.gain_map(), 1 / meta['shading_falloff'],
                             rtol=0.03)
