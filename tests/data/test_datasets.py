"""Dataset loaders on tiny fixtures written in each dataset's real layout.

Each fixture is built with the tools the datasets were made with (DNGs with
`rawjax.io.write_dng`, .mat files with scipy in the extraction scripts'
variable names, PNG/JPG/TIFF with pypng, Pillow and tifffile) and read back;
values are checked against independent re-statements of the reference
code's arithmetic (raw_extraction.py, RAW-to-sRGB's util.py, LSMI's
mix_chroma). Malformed layouts must raise a DatasetLayoutError naming the
missing piece.
"""

import json
import shutil

import numpy as np
import png
import pytest
import scipy.io
import tifffile
from PIL import Image

from rawjax import io as rawio
from rawjax import isp
from rawjax.data import pipeline
from rawjax.data.datasets import (
    ArrayDataset, DatasetLayoutError, FiveKDataset, LOLDataset, LSMIDataset,
    NUSDataset, Raw2RawPaired, Raw2RawUnpaired, ZRRDataset, coordinate_map,
    load_split, open_dataset, prepare_lol)
from rawjax.data.datasets import arrays as arrays_module
from rawjax.data.datasets import fivek as fivek_module
from rawjax.data.datasets import raw2raw as raw2raw_module

H, W = 32, 48  # LibRaw refuses images under 22 pixels a side.


def _write_png16(path, array):
  array = np.asarray(array, np.uint16)
  planes = 1 if array.ndim == 2 else array.shape[-1]
  writer = png.Writer(array.shape[1], array.shape[0],
                      greyscale=planes == 1, bitdepth=16)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'wb') as f:
    writer.write(f, array.reshape(array.shape[0], -1))


def _layout_error(loader, *args, **kwargs):
  """`loader(*args, **kwargs)`'s DatasetLayoutError: its (reason, path)
  problems and its message."""
  with pytest.raises(DatasetLayoutError) as error:
    loader(*args, **kwargs)
  return [(p.reason, p.path) for p in error.value.problems], str(error.value)


# --- raw2raw (Afifi & Abuolaim) -----------------------------------------------

# Restated from raw_extraction.py: hard-coded levels and CFA codes, the
# remapping trick of pack_rggb, kernelP's column order.
SCRIPT = {'iphone-x': (528, 4095, [0, 1, 1, 2], 'RGGB'),
          'samsung-s9': (0, 1023, [1, 0, 2, 1], 'GRBG')}


def _script_pack(raw, cfa_code):
  code = np.array(cfa_code)
  code[code == 2] += 1
  code[2:][code[2:] == 1] += 1
  idx = [[0, 0], [0, 1], [1, 0], [1, 1]]
  return np.stack([raw[idx[c][0]::2, idx[c][1]::2] for c in code], axis=-1)


def _script_kernel(rggb):
  r, gr, gb, b = np.split(rggb, 4, axis=1)
  return np.concatenate([rggb, rggb**2, r * gr, r * gb, r * b, gr * gb,
                         gr * b, gb * b, r * gr * gb * b, np.ones_like(r)],
                        axis=1)


def _script_extract(dng_path, camera):
  black, white, code, _ = SCRIPT[camera]
  raw = rawio.read_raw(dng_path).mosaic.astype(np.float64)
  norm = np.clip((raw - black) / (white - black), 0, 1)
  return _script_pack(norm, code)


def _script_map(rggb, matrix):
  h, w, c = rggb.shape
  mapped = _script_kernel(rggb.reshape(-1, 4)) @ matrix
  return np.clip(mapped.reshape(h, w, c), 0, 1)


@pytest.fixture(scope='module')
def raw2raw_dng(tmp_path_factory):
  """The download layout: paired DNGs + mapping matrices, unpaired DNGs."""
  root = tmp_path_factory.mktemp('raw2raw_dng')
  rng = np.random.default_rng(1)
  names = {'iphone-x': ['2021-06-03_20-43-09', '2021-06-04_10-00-00'],
           'samsung-s9': ['2021-06-03_20-43-08', '2021-06-05_11-00-00',
                          '2021-06-05_12-00-00']}
  for camera, stems in names.items():
    black, white, _, pattern = SCRIPT[camera]
    for stem in stems:
      mosaic = rng.integers(black // 2, white + 40, (H, W)).astype(np.uint16)
      path = root / 'paired' / camera / 'dng' / f'{stem}.dng'
      path.parent.mkdir(parents=True, exist_ok=True)
      rawio.write_dng(path, mosaic, pattern=pattern, black_level=black,
                      white_level=white)
      matrix = np.zeros((16, 4))
      matrix[:4] = np.eye(4) * 0.9 + rng.normal(0, 0.05, (4, 4))
      matrix[4:15] = rng.normal(0, 0.05, (11, 4))
      matrix[15] = 0.02
      (root / 'paired' / camera / 'mapping').mkdir(parents=True,
                                                  exist_ok=True)
      scipy.io.savemat(root / 'paired' / camera / 'mapping' / f'{stem}.mat',
                       {'mapping_matrix': matrix})
    unpaired = root / 'unpaired' / camera / 'dng'
    unpaired.mkdir(parents=True)
    rawio.write_dng(unpaired / 'u1.dng',
                    rng.integers(black, white, (H, W)).astype(np.uint16),
                    pattern=pattern, black_level=black, white_level=white)
  return root


def _extract_to_mat(dng_root, mat_root):
  """What raw_extraction.py writes, by the restated script arithmetic."""
  suffix = {'iphone-x': '_A', 'samsung-s9': '_B'}
  other = {'iphone-x': 'samsung-s9', 'samsung-s9': 'iphone-x'}
  anchors = raw2raw_module.ANCHOR_FILES
  for camera in SCRIPT:
    for dng in sorted((dng_root / 'paired' / camera / 'dng').glob('*.dng')):
      rggb = _script_extract(dng, camera)
      matrix = scipy.io.loadmat(dng_root / 'paired' / camera / 'mapping' /
                                f'{dng.stem}.mat')['mapping_matrix']
      sub = 'anchor-raw-rggb' if dng.name in anchors[camera] else 'raw-rggb'
      name = dng.stem + suffix[camera] + '.mat'
      for cam, data in ((camera, rggb), (other[camera],
                                         _script_map(rggb, matrix))):
        folder = mat_root / 'paired' / cam / sub
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(folder / name, {'raw_rggb': data})
    for dng in (dng_root / 'unpaired' / camera / 'dng').glob('*.dng'):
      folder = mat_root / 'unpaired' / camera / 'raw-rggb'
      folder.mkdir(parents=True, exist_ok=True)
      scipy.io.savemat(folder / f'{dng.stem}{suffix[camera]}.mat',
                       {'raw_rggb': _script_extract(dng, camera)})


@pytest.fixture(scope='module')
def raw2raw_mat(raw2raw_dng, tmp_path_factory):
  root = tmp_path_factory.mktemp('raw2raw_mat')
  _extract_to_mat(raw2raw_dng, root)
  return root


def test_raw2raw_dng_form_matches_the_extraction_script(raw2raw_dng):
  test = Raw2RawPaired(raw2raw_dng, split='test')
  assert test.source == 'dng'
  # Anchors are the script's hard-coded names; everything else is test.
  assert test.keys == ['2021-06-04_10-00-00_A', '2021-06-05_11-00-00_B',
                       '2021-06-05_12-00-00_B']
  anchor = Raw2RawPaired(raw2raw_dng, split='anchor')
  assert anchor.keys == ['2021-06-03_20-43-08_B', '2021-06-03_20-43-09_A']
  for dataset in (test, anchor):
    for i, key in enumerate(dataset.keys):
      sample = dataset[i]
      camera = 'iphone-x' if key.endswith('_A') else 'samsung-s9'
      stem = key[:-2]
      dng = raw2raw_dng / 'paired' / camera / 'dng' / f'{stem}.dng'
      matrix = scipy.io.loadmat(raw2raw_dng / 'paired' / camera / 'mapping'
                                / f'{stem}.mat')['mapping_matrix']
      real = _script_extract(dng, camera)
      mapped = _script_map(real, matrix)
      if camera == 'iphone-x':
        want_a, want_b, origin = real, mapped, 0
      else:
        want_a, want_b, origin = mapped, real, 1
      assert sample['raw_a'].shape == (H // 2, W // 2, 4)
      assert sample['raw_a'].dtype == np.float32
      np.testing.assert_allclose(sample['raw_a'], want_a, atol=1e-6)
      np.testing.assert_allclose(sample['raw_b'], want_b, atol=1e-6)
      assert sample['origin'] == origin
      assert 0.0 <= sample['raw_a'].min() and sample['raw_b'].max() <= 1.0
  assert test.missing_anchors['iphone-x'][0] == '2021-06-03_20-48-56'


def test_raw2raw_mat_form_reads_the_extracted_files(raw2raw_dng, raw2raw_mat):
  for split in ('test', 'anchor'):
    mat = Raw2RawPaired(raw2raw_mat, split=split)
    dng = Raw2RawPaired(raw2raw_dng, split=split)
    assert mat.source == 'mat' and mat.keys == dng.keys
    for i in range(len(mat)):
      a, b = mat[i], dng[i]
      np.testing.assert_allclose(a['raw_a'], b['raw_a'], atol=1e-6)
      np.testing.assert_allclose(a['raw_b'], b['raw_b'], atol=1e-6)
      assert a['origin'] == b['origin']
  unpaired = Raw2RawUnpaired(raw2raw_mat, camera='samsung-s9')
  assert unpaired.keys == ['u1_B']
  want = _script_extract(raw2raw_dng / 'unpaired/samsung-s9/dng/u1.dng',
                         'samsung-s9')
  np.testing.assert_allclose(unpaired[0]['raw'], want, atol=2e-7)
  from_dng = Raw2RawUnpaired(raw2raw_dng, camera='samsung-s9')
  np.testing.assert_allclose(from_dng[0]['raw'], want, atol=2e-7)


def test_raw2raw_file_levels_differ_from_script_levels(tmp_path):
  camera_dir = tmp_path / 'unpaired' / 'iphone-x' / 'dng'
  camera_dir.mkdir(parents=True)
  mosaic = np.full((H, W), 1000, np.uint16)
  # The file says black 0; the script's constant for the iPhone is 528.
  rawio.write_dng(camera_dir / 'x.dng', mosaic, pattern='RGGB',
                  black_level=0, white_level=4095)
  auto = Raw2RawUnpaired(tmp_path, camera='iphone-x')[0]['raw']
  from_file = Raw2RawUnpaired(tmp_path, camera='iphone-x',
                              levels='file')[0]['raw']
  np.testing.assert_allclose(auto, (1000 - 528) / (4095 - 528), rtol=1e-6)
  np.testing.assert_allclose(from_file, 1000 / 4095, rtol=1e-6)


def test_raw2raw_mapping_uses_the_scripts_kernel_order():
  rng = np.random.default_rng(0)
  packed = rng.random((3, 5, 4)).astype(np.float32)
  matrix = rng.normal(0, 0.3, (16, 4))
  np.testing.assert_allclose(raw2raw_module.apply_mapping(packed, matrix),
                             _script_map(packed.astype(np.float64), matrix),
                             atol=1e-6)
  with pytest.raises(ValueError, match='16 x 4'):
    raw2raw_module.apply_mapping(packed, matrix[:, :3])


def test_raw2raw_malformed_layouts_name_the_missing_piece(raw2raw_mat,
                                                          raw2raw_dng,
                                                          tmp_path):
  broken = tmp_path / 'mat'
  shutil.copytree(raw2raw_mat, broken)
  partner = broken / 'paired/samsung-s9/raw-rggb/2021-06-04_10-00-00_A.mat'
  partner.unlink()
  problems, message = _layout_error(Raw2RawPaired, broken, split='test')
  assert ('missing pair', str(partner)) in problems
  assert 'samsung-s9 side of the pair' in message

  no_mapping = tmp_path / 'dng'
  shutil.copytree(raw2raw_dng, no_mapping)
  mapping = no_mapping / 'paired/samsung-s9/mapping/2021-06-05_11-00-00.mat'
  mapping.unlink()
  shutil.rmtree(no_mapping / 'paired/iphone-x/dng')
  problems, _ = _layout_error(Raw2RawPaired, no_mapping, split='test',
                              source='dng')
  assert ('missing pair', str(mapping)) in problems
  assert ('missing', str(no_mapping / 'paired/iphone-x/dng')) in problems

  # A .mat without the script's variable, and a corrupt DNG.
  scipy.io.savemat(broken / 'unpaired/iphone-x/raw-rggb/u1_A.mat',
                   {'rggb': np.zeros((4, 4, 4))})
  with pytest.raises(DatasetLayoutError, match="'raw_rggb' not in the file"):
    Raw2RawUnpaired(broken, camera='iphone-x')[0]
  bad = no_mapping / 'unpaired/iphone-x/dng/u1.dng'
  bad.write_bytes(b'II*\x00' + b'\x00' * 200)
  with pytest.raises(DatasetLayoutError, match='unreadable') as error:
    Raw2RawUnpaired(no_mapping, camera='iphone-x')[0]
  assert error.value.problems[0].path == str(bad)
  _, message = _layout_error(Raw2RawUnpaired, tmp_path, camera='pixel')
  assert 'extracted .mat folders' in message


# --- ZRR ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def zrr_root(tmp_path_factory):
  root = tmp_path_factory.mktemp('zrr')
  rng = np.random.default_rng(2)
  for split, n in (('train', 3), ('test', 2), ('full_resolution', 1)):
    for i in range(n):
      mosaic = rng.integers(0, 1024, (H, W))
      _write_png16(root / split / 'huawei_raw' / f'{i + 7}.png', mosaic)
      if split != 'full_resolution':
        rgb = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
        (root / split / 'canon').mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / split / 'canon' / f'{i + 7}.jpg',
                                  quality=95)
  return root


def _reference_pynet(mosaic):
  """RAW-to-sRGB util.py: remove_black_level + extract_bayer_channels."""
  img = np.maximum(mosaic.astype(np.float32) - 63, 0) / (1020 - 63)
  ch_r, ch_gb = img[0::2, 0::2], img[0::2, 1::2]
  ch_gr, ch_b = img[1::2, 0::2], img[1::2, 1::2]
  return np.dstack((ch_b, ch_gb, ch_r, ch_gr))


def test_zrr_reads_pairs_in_canonical_order(zrr_root):
  train = ZRRDataset(zrr_root, split='train', coords=True)
  assert train.keys == ['7', '8', '9']  # natural order
  assert set(train.fields) == {'raw', 'rgb', 'coord'}
  for i, key in enumerate(train.keys):
    sample = train[i]
    mosaic = train.read_mosaic(key)
    assert sample['raw'].shape == (H // 2, W // 2, 4)
    # The reference's PyNET tensor (B, G_R, R, G_B) is raw[..., (3, 1, 0, 2)].
    np.testing.assert_allclose(sample['raw'][..., (3, 1, 0, 2)],
                               _reference_pynet(mosaic), rtol=1e-6)
    assert sample['raw'].max() <= (1023 - 63) / 957 + 1e-6
    assert sample['raw'].min() == 0.0  # only the lower side is clipped
    with Image.open(zrr_root / 'train' / 'canon' / f'{key}.jpg') as jpg:
      np.testing.assert_array_equal(sample['rgb'] * 255,
                                    np.asarray(jpg, np.float32))
    assert sample['rgb'].shape == (H, W, 3)
    assert sample['name'] == key
  # Reference get_coord(H, W, 1, 1): pixel centres, x along W, y along H.
  coord = train[0]['coord']
  np.testing.assert_allclose(coord[0, :, 0],
                             np.linspace(-1 + 1 / W, 1 - 1 / W, W), atol=1e-7)
  np.testing.assert_allclose(coord[:, 0, 1],
                             np.linspace(-1 + 1 / H, 1 - 1 / H, H), atol=1e-7)
  np.testing.assert_allclose(coordinate_map(2, 4)[0, :, 0],
                             [-0.75, -0.25, 0.25, 0.75])
  assert ZRRDataset(zrr_root, split='val').keys == ['7', '8']
  full = ZRRDataset(zrr_root, split='full_resolution')
  assert list(full.fields) == ['raw'] and 'rgb' not in full[0]


def test_zrr_malformed_layouts_name_every_missing_piece(zrr_root, tmp_path):
  root = tmp_path / 'zrr'
  shutil.copytree(zrr_root, root)
  shutil.rmtree(root / 'test' / 'canon')
  (root / 'train' / 'canon' / '8.jpg').unlink()
  problems, _ = _layout_error(ZRRDataset, root, split='test')
  assert problems == [('missing', str(root / 'test' / 'canon'))]
  problems, message = _layout_error(ZRRDataset, root, split='train')
  assert problems == [('missing pair',
                       str(root / 'train' / 'canon' / '8.jpg'))]
  assert 'Canon sRGB JPG paired with' in message
  (root / 'train' / 'huawei_raw' / '9.png').write_bytes(b'not a png')
  (root / 'train' / 'huawei_raw' / '8.png').unlink()
  dataset = ZRRDataset(root, split='train')
  with pytest.raises(DatasetLayoutError, match='unreadable') as error:
    dataset[dataset.keys.index('9')]
  assert error.value.problems[0].path.endswith('9.png')


# --- NUS ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def nus_root(tmp_path_factory):
  root = tmp_path_factory.mktemp('nus')
  camera = root / 'Canon600D'
  rng = np.random.default_rng(3)
  names = ['Canon600D_0001', 'Canon600D_0002']
  for name in names:
    _write_png16(camera / 'PNG' / f'{name}.PNG',
                 rng.integers(2000, 16000, (H, W, 3)))
  cells = np.empty((2, 1), dtype=object)
  cells[0, 0], cells[1, 0] = names
  scipy.io.savemat(camera / 'Canon600D_gt.mat', {
      'groundtruth_illuminants': np.array([[0.3, 0.5, 0.2], [0.2, 0.5, 0.3]]),
      'darkness_level': np.array([[2048]]),
      'saturation_level': np.array([[15279]]),
      'CC_coords': np.array([[4, 10, 6, 20], [0, 8, 30, 40]]),
      'all_image_names': cells})
  return root


def test_nus_normalises_with_the_ground_truth_levels(nus_root):
  dataset = NUSDataset(nus_root, camera='Canon600D')
  assert dataset.keys == ['Canon600D_0001', 'Canon600D_0002']
  assert (dataset.darkness_level, dataset.saturation_level) == (2048, 15279)
  sample = dataset[0]
  stored = rawio.read_image(nus_root / 'Canon600D/PNG/Canon600D_0001.PNG')
  counts = np.rint(stored * 65535)
  np.testing.assert_allclose(
      sample['image'], np.clip((counts - 2048) / (15279 - 2048), 0, 1),
      atol=1e-6)
  assert sample['image'].shape == (H, W, 3)
  np.testing.assert_allclose(sample['illuminant'], [0.3, 0.5, 0.2])
  # CC_coords are (y1, y2, x1, x2).
  mask = sample['mask'][..., 0]
  assert mask[4:10, 6:20].max() == 0 and mask.sum() == H * W - 6 * 14
  only = NUSDataset(nus_root, names=['Canon600D_0002'])
  assert only.keys == ['Canon600D_0002']


def test_nus_malformed_layouts_name_the_missing_piece(nus_root, tmp_path):
  root = tmp_path / 'nus'
  shutil.copytree(nus_root, root)
  missing = root / 'Canon600D/PNG/Canon600D_0002.PNG'
  missing.unlink()
  assert _layout_error(NUSDataset, root)[0] == [('missing', str(missing))]
  assert _layout_error(NUSDataset, root, camera='NikonD5200')[0] == [
      ('missing', str(root / 'NikonD5200'))]
  scipy.io.savemat(root / 'Canon600D/Canon600D_gt.mat',
                   {'darkness_level': 1})
  with pytest.raises(DatasetLayoutError, match="'groundtruth_illuminants'"):
    NUSDataset(root)


# --- LSMI ---------------------------------------------------------------------


def _mix_chroma(mixmap, chroma, lights):
  """LSMI utils.py `mix_chroma`, restated."""
  out = np.zeros(mixmap.shape[:2] + (3,))
  for i, light in enumerate(lights):
    out += mixmap[:, :, i:i + 1] * np.asarray(chroma[int(light) - 1])
  return out


@pytest.fixture(scope='module')
def lsmi_root(tmp_path_factory):
  root = tmp_path_factory.mktemp('lsmi')
  rng = np.random.default_rng(4)
  camera = root / 'galaxy'
  meta, h, w = {}, H // 2, W // 2
  for place in ('Place1', 'Place2'):
    folder = camera / place
    folder.mkdir(parents=True)
    for lights in ('1', '12'):
      tifffile.imwrite(folder / f'{place}_{lights}.tiff',
                       rng.integers(64, 1023, (h, w, 3)).astype(np.uint16))
      rawio.write_dng(folder / f'{place}_{lights}.dng',
                      rng.integers(64, 1023, (H, W)).astype(np.uint16),
                      pattern='GRBG', black_level=64, white_level=1023)
    share = rng.random((h, w))
    share[0, :3] = -1  # uncalculable pixels
    np.save(folder / f'{place}_12.npy',
            np.stack([share, np.where(share == -1, -1, 1 - share)], -1))
    meta[place] = {'NumOfLights': 2,
                   'MCCCoord': {'mcc1': [[8, 8], [20, 8], [20, 16], [8, 16]],
                                'mcc2': [[30, 2], [40, 2], [40, 8], [30, 8]],
                                'mcc3': [[2, 20], [8, 20], [8, 28], [2, 28]]},
                   'Light1': [0.6, 1.0, 0.4], 'Light2': [0.4, 1.0, 0.7]}
  (camera / 'meta.json').write_text(json.dumps(meta))
  (camera / 'split.json').write_text(json.dumps(
      {'train': ['Place1'], 'test': ['Place2']}))
  return root


def test_lsmi_reads_images_mixture_maps_and_illumination(lsmi_root):
  dataset = LSMIDataset(lsmi_root, camera='galaxy', split='train')
  assert dataset.keys == ['Place1_1', 'Place1_12']
  # TIFF levels come from a raw file of the camera folder, as the
  # official scripts' template.
  assert (dataset.black_level, dataset.white_level) == (64, 1023)
  meta = json.loads((lsmi_root / 'galaxy/meta.json').read_text())['Place1']
  chroma = [meta['Light1'], meta['Light2'], [0, 0, 0]]
  for i, lights in enumerate(('1', '12')):
    sample = dataset[i]
    stored = tifffile.imread(lsmi_root / f'galaxy/Place1/Place1_{lights}.tiff')
    np.testing.assert_allclose(sample['image'],
                               np.clip((stored - 64.0) / 959.0, 0, 1),
                               atol=1e-6)
    if lights == '1':
      mixmap = np.ones(stored.shape[:2] + (1,))
    else:
      mixmap = np.load(lsmi_root / 'galaxy/Place1/Place1_12.npy')
    bad = mixmap[..., 0] == -1
    want = _mix_chroma(np.where(mixmap == -1, 0, mixmap), chroma, lights)
    want[bad] = 1.0
    np.testing.assert_allclose(sample['illumination'], want, atol=1e-6)
    np.testing.assert_allclose(sample['mixture'][..., :len(lights)],
                               np.where(mixmap == -1, 0, mixmap), atol=1e-7)
    # Lights off in this image have zero rows.
    want_lights = np.zeros((3, 3))
    for light in lights:
      want_lights[int(light) - 1] = chroma[int(light) - 1]
    np.testing.assert_allclose(sample['illuminants'], want_lights, rtol=1e-6)
    # The charts are masked: MCCCoord is in full-resolution pixels.
    assert sample['mask'][6, 7, 0] == 0 and sample['mask'][12, 20, 0] == 1
    assert sample['mask'][2, 17, 0] == 0 and sample['mask'][12, 2, 0] == 0
  raw = LSMIDataset(lsmi_root, camera='galaxy', split='test', source='raw')
  sample = raw[1]
  dng = rawio.read_raw(lsmi_root / 'galaxy/Place2/Place2_12.dng')
  want = np.clip(np.asarray(isp.pack(dng.mosaic.astype(np.float64),
                                     pattern='GRBG')) - 64, 0, None) / 959
  np.testing.assert_allclose(sample['raw'], np.minimum(want, 1), atol=1e-6)
  assert sample['mixture'].shape == (H // 2, W // 2, 3)


def test_lsmi_malformed_layouts_name_the_missing_piece(lsmi_root, tmp_path):
  root = tmp_path / 'lsmi'
  shutil.copytree(lsmi_root, root)
  mixture = root / 'galaxy/Place2/Place2_12.npy'
  mixture.unlink()
  (root / 'galaxy/split.json').write_text(json.dumps(
      {'train': ['Place1'], 'test': ['Place2', 'Place9']}))
  problems, message = _layout_error(LSMIDataset, root, camera='galaxy',
                                    split='test')
  assert ('missing', str(mixture)) in problems
  assert ('missing', str(root / 'galaxy/Place9')) in problems
  assert 'mixture map of Place2_12.tiff' in message
  assert _layout_error(LSMIDataset, root, camera='sony')[0] == [
      ('missing', str(root / 'sony'))]


# --- FiveK --------------------------------------------------------------------


@pytest.fixture(scope='module')
def fivek_root(tmp_path_factory):
  root = tmp_path_factory.mktemp('fivek')
  rng = np.random.default_rng(5)
  photos = root / 'raw_photos' / 'HQa1to700' / 'photos'
  photos.mkdir(parents=True)
  (root / 'tiff16_c').mkdir()
  for name in ('a0001-jmac_DSC1459', 'a0002-dgw_005', 'a0003-NKIM_MG_8178'):
    rawio.write_dng(photos / f'{name}.dng',
                    rng.integers(100, 4000, (H, W)).astype(np.uint16),
                    pattern='BGGR', black_level=[100, 101, 102, 103],
                    white_level=4000)
    rawio.write_image(root / 'tiff16_c' / f'{name}.tif',
                      rng.random((H, W, 3)).astype(np.float32), bit_depth=16)
  return root


def test_fivek_pairs_dng_with_expert_rendering(fivek_root):
  everything = FiveKDataset(fivek_root, split='all')
  assert everything.keys == ['a0001-jmac_DSC1459', 'a0002-dgw_005',
                             'a0003-NKIM_MG_8178']
  train = FiveKDataset(fivek_root, split='train', num_train=2)
  test = FiveKDataset(fivek_root, split='test', num_train=2)
  assert train.keys == everything.keys[:2] and test.keys == everything.keys[2:]
  limited = FiveKDataset(fivek_root, split='train', limit=1)
  assert limited.keys == ['a0001-jmac_DSC1459']
  sample = test[0]
  dng = rawio.read_raw(fivek_root / 'raw_photos/HQa1to700/photos/'
                       'a0003-NKIM_MG_8178.dng')
  packed = np.asarray(isp.pack(dng.mosaic.astype(np.float64),
                               pattern='BGGR'))
  black = np.array([103, 102, 101, 100])  # canonical R, Gr, Gb, B of BGGR
  np.testing.assert_allclose(sample['raw'],
                             np.clip((packed - black) / (4000 - black), 0, 1),
                             atol=1e-6)
  np.testing.assert_array_equal(sample['target'], rawio.read_image(
      fivek_root / 'tiff16_c/a0003-NKIM_MG_8178.tif'))
  assert sample['target'].shape == (H, W, 3)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_fivek_orientation_ops_match_exif_transpose(orientation):
  # PIL's ImageOps.exif_transpose methods, an independent reading of EXIF.
  methods = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}
  image = np.arange(12, dtype=np.uint8).reshape(3, 4)
  want = (image if orientation == 1 else
          np.asarray(Image.fromarray(image).transpose(methods[orientation])))
  flags = pipeline.dihedral_element(fivek_module.ORIENTATION_OPS[orientation])
  got = pipeline.apply_dihedral(
      {'x': image[..., None].astype(np.float32)},
      {'x': pipeline.Field('image')}, transpose=flags[0], vflip=flags[1],
      hflip=flags[2])['x'][..., 0]
  np.testing.assert_array_equal(got, want)


def test_fivek_size_mismatch_and_missing_rendering(fivek_root, tmp_path):
  root = tmp_path / 'fivek'
  shutil.copytree(fivek_root, root)
  rawio.write_image(root / 'tiff16_c/a0001-jmac_DSC1459.tif',
                    np.zeros((H + 2, W + 4, 3), np.float32), bit_depth=16)
  cropped = FiveKDataset(root, split='all')[0]
  assert cropped['target'].shape == (H, W, 3)
  assert cropped['raw'].shape == (H // 2, W // 2, 4)
  with pytest.raises(DatasetLayoutError, match='does not match its raw'):
    FiveKDataset(root, split='all', align='strict')[0]
  missing = root / 'tiff16_c/a0002-dgw_005.tif'
  missing.unlink()
  assert _layout_error(FiveKDataset, root, split='all')[0] == [
      ('missing pair', str(missing))]
  assert 'tiff16_e' in _layout_error(FiveKDataset, root, expert='e')[1]


# --- LoL ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def lol_root(tmp_path_factory):
  root = tmp_path_factory.mktemp('lol')
  rng = np.random.default_rng(6)
  layouts = {'our485/low': '{}', 'our485/high': '{}',
             'eval15/low': '{}', 'eval15/high': '{}',
             'Real_captured/Train/Low': 'low{:05d}',
             'Real_captured/Train/Normal': 'normal{:05d}',
             'Synthetic/Test/Low': 'r{:03d}x', 'Synthetic/Test/Normal':
                 'r{:03d}x'}
  for folder, pattern in layouts.items():
    (root / folder).mkdir(parents=True)
    for i in (1, 2, 10):
      image = (rng.random((8, 12, 3)) * 255).astype(np.uint8)
      Image.fromarray(image).save(root / folder / f'{pattern.format(i)}.png')
  return root


def test_lol_pairs_low_and_normal_light_images(lol_root):
  v1 = LOLDataset(lol_root, version='v1', split='train')
  assert v1.keys == ['1', '2', '10']
  sample = v1[2]
  np.testing.assert_array_equal(
      sample['low'], rawio.read_image(lol_root / 'our485/low/10.png'))
  np.testing.assert_array_equal(
      sample['high'], rawio.read_image(lol_root / 'our485/high/10.png'))
  assert sample['low'].dtype == np.float32 and sample['low'].shape == (8, 12,
                                                                       3)
  real = LOLDataset(lol_root, version='v2-real', split='train')
  assert real.keys == ['00001', '00002', '00010']
  np.testing.assert_array_equal(
      real[0]['high'],
      rawio.read_image(lol_root / 'Real_captured/Train/Normal/normal00001.png'))
  synthetic = LOLDataset(lol_root, version='v2-synthetic', split='test')
  assert len(synthetic) == 3


def test_prepare_lol_writes_prepared_arrays(lol_root, tmp_path):
  out = prepare_lol(lol_root, tmp_path / 'prepared', num_labelled=2,
                    size=(8, 12), progress=False)
  info = json.loads((out / 'dataset.json').read_text())
  assert info['counts'] == {'labelled_raw': 2, 'labelled_srgb': 2,
                            'unlabelled_srgb': 1, 'test_raw': 3,
                            'test_srgb': 3}
  labelled = load_split(out, 'labelled')
  assert labelled['raw'].dtype == np.uint16
  pairs = ArrayDataset(labelled, minimum=5)
  assert len(pairs) == 6   # repeated to hold 5
  first = LOLDataset(lol_root, version='v1', split='train')[0]
  # Same size: the resize is the identity up to the 16-bit quantisation.
  np.testing.assert_allclose(pairs[2]['raw'], first['low'], atol=1e-4)
  np.testing.assert_allclose(load_split(out, 'unlabelled')['srgb'][0] / 65535,
                             LOLDataset(lol_root)[2]['high'], atol=1e-4)
  # Written once: a second call returns the folder as it is.
  assert prepare_lol(lol_root, out, num_labelled=1) == out
  arrays_module.check_prepared(out)
  with pytest.raises(FileNotFoundError, match='prepare_fivek'):
    arrays_module.check_prepared(tmp_path)
  with pytest.raises(ValueError, match='split must be one of'):
    load_split(out, 'train')


def test_prepare_lol_adds_folder_photographs(lol_root, tmp_path):
  photos = tmp_path / 'photos' / 'nested'
  photos.mkdir(parents=True)
  # A portrait JPEG: turned to landscape and resized; one uniform colour.
  Image.fromarray(np.full((24, 16, 3), (30, 180, 90), np.uint8)).save(
      photos / 'portrait.jpg', quality=100)
  out = prepare_lol(lol_root, tmp_path / 'prepared', num_labelled=0,
                    unlabelled_dirs=[tmp_path / 'photos'], size=(8, 12),
                    progress=False)
  extra = load_split(out, 'unlabelled')['srgb']
  assert extra.shape == (1, 8, 12, 3)   # every pair labelled: the photo only
  np.testing.assert_allclose(extra[0] / 65535, np.broadcast_to(
      np.array([30, 180, 90]) / 255, (8, 12, 3)), atol=3 / 255)
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='no image file'):
    prepare_lol(lol_root, tmp_path / 'other', num_labelled=0,
                unlabelled_dirs=[tmp_path / 'empty'], progress=False)


def test_lol_malformed_layouts_name_the_missing_piece(lol_root, tmp_path):
  root = tmp_path / 'lol'
  shutil.copytree(lol_root, root)
  partner = root / 'Real_captured/Train/Normal/normal00002.png'
  partner.unlink()
  assert _layout_error(LOLDataset, root, version='v2-real')[0] == [
      ('missing pair', str(partner))]
  problems, message = _layout_error(LOLDataset, root, version='v2-real',
                                    split='test')
  assert problems == [
      ('missing', str(root / 'Real_captured/Test/Low')),
      ('missing', str(root / 'Real_captured/Test/Normal'))]
  assert '2 problem(s)' in message


def test_every_loader_declares_fields_the_pipeline_accepts(
    zrr_root, raw2raw_mat, nus_root, lsmi_root, fivek_root, lol_root):
  datasets = [open_dataset('zrr', zrr_root, coords=True),
              open_dataset('raw2raw_paired', raw2raw_mat, split='anchor'),
              open_dataset('nus', nus_root), open_dataset('lsmi', lsmi_root),
              open_dataset('fivek', fivek_root, split='all'),
              open_dataset('lol', lol_root)]
  assert isinstance(datasets[0], ZRRDataset)
  with pytest.raises(ValueError, match="unknown dataset 'sidd'"):
    open_dataset('sidd', zrr_root)
  for dataset in datasets:
    sample = dataset[0]
    assert set(dataset.fields) <= set(sample)
    height, width = pipeline.reference_size(sample, dataset.fields)
    assert height > 0 and width > 0
    for key, field in dataset.fields.items():
      if field.kind != 'meta':
        assert sample[key].dtype == np.float32, (dataset, key)

