"""Tests for rawjax.io.image: PNG/TIFF writing and reading."""

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from rawjax.io import read_image, write_image

EXTENSIONS = ['.png', '.tif', '.tiff']


def _grid(bits, shape, seed=0):
  """Random integers on the b-bit grid, always including 0 and the maximum."""
  maxval = 2**bits - 1
  q = np.random.default_rng(seed).integers(0, maxval + 1, shape)
  q.flat[0], q.flat[-1] = 0, maxval
  return q


@pytest.mark.parametrize('ext', EXTENSIONS)
@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('shape', [(7, 5, 3), (6, 9)])
@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_float_round_trip_is_exact_on_the_grid(tmp_path, ext, bits, shape,
                                               dtype):
  maxval = 2**bits - 1
  q = _grid(bits, shape)
  path = tmp_path / f'image{ext}'
  write_image(path, (q / maxval).astype(dtype), bit_depth=bits)
  back = read_image(path)
  assert back.dtype == np.float32 and back.shape == shape
  np.testing.assert_array_equal(np.round(back * maxval), q)
  np.testing.assert_array_equal(
      back, q.astype(np.float32) / np.float32(maxval))
  assert back.min() == 0.0 and back.max() == 1.0


@pytest.mark.parametrize('ext', EXTENSIONS)
@pytest.mark.parametrize('bits', [8, 16])
def test_integer_images_are_written_as_is(tmp_path, ext, bits):
  dtype = np.uint8 if bits == 8 else np.uint16
  q = _grid(bits, (4, 6, 3), seed=1).astype(dtype)
  path = tmp_path / f'image{ext}'
  write_image(path, q, bit_depth=bits)
  if ext == '.png':
    _, _, _, info = png.Reader(filename=str(path)).read()
    assert info['bitdepth'] == bits and not info['greyscale']
  else:
    stored = tifffile.imread(path)
    assert stored.dtype == dtype
    np.testing.assert_array_equal(stored, q)
  np.testing.assert_array_equal(np.round(read_image(path) * (2**bits - 1)), q)


def test_eight_bit_png_is_a_plain_pillow_image(tmp_path):
  q = _grid(8, (5, 4, 3)).astype(np.uint8)
  write_image(tmp_path / 'a.png', q)
  with Image.open(tmp_path / 'a.png') as im:
    assert im.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(im), q)
  write_image(tmp_path / 'g.png', q[..., 0])
  with Image.open(tmp_path / 'g.png') as im:
    assert im.mode == 'L'


def test_sixteen_bit_keeps_precision(tmp_path):
  image = np.linspace(0, 1, 65536).reshape(256, 256)
  write_image(tmp_path / 'ramp.png', image, bit_depth=16)
  back = read_image(tmp_path / 'ramp.png')
  assert len(np.unique(back)) == 65536
  np.testing.assert_allclose(back, image, atol=0.5 / 65535 + 1e-7)


@pytest.mark.parametrize('bits', [8, 16])
def test_quantisation_rule(tmp_path, bits):
  m = 2**bits - 1
  values = np.array([-0.5, 0.0, 0.5 / m, 0.49 / m, 0.5, 1.0, 1.5,
                     (m - 0.5) / m, (m - 0.51) / m])
  expected = [0, 0, 1, 0, int(np.floor(0.5 * m + 0.5)), m, m, m, m - 1]
  write_image(tmp_path / 'q.tif', values.reshape(1, -1), bit_depth=bits)
  stored = tifffile.imread(tmp_path / 'q.tif')
  np.testing.assert_array_equal(stored.ravel(), expected)


def test_accepts_jax_arrays(tmp_path):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  write_image(tmp_path / 'j.png', jnp.full((2, 3, 3), 0.5, jnp.float32))
  np.testing.assert_array_equal(read_image(tmp_path / 'j.png'),
                                np.float32(128) / np.float32(255))


def test_alpha_is_dropped_on_read(tmp_path):
  rgba = _grid(8, (3, 4, 4)).astype(np.uint8)
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
  back = read_image(tmp_path / 'rgba.png')
  assert back.shape == (3, 4, 3)
  np.testing.assert_array_equal(np.round(back * 255), rgba[..., :3])


@pytest.mark.parametrize('shape', [(4,), (2, 3, 4), (2, 3, 1), (1, 2, 3, 3),
                                   (0, 4, 3)])
def test_bad_shapes(tmp_path, shape):
  with pytest.raises(ValueError, match='shape'):
    write_image(tmp_path / 'x.png', np.zeros(shape))


@pytest.mark.parametrize('name', ['x.jpg', 'x.bmp', 'x', 'x.png.gz'])
def test_bad_extensions(tmp_path, name):
  with pytest.raises(ValueError, match='extension'):
    write_image(tmp_path / name, np.zeros((2, 2)))
  with pytest.raises(ValueError, match='extension'):
    read_image(tmp_path / name)


def test_upper_case_extension(tmp_path):
  write_image(tmp_path / 'X.PNG', np.zeros((2, 2)))
  assert read_image(tmp_path / 'X.PNG').shape == (2, 2)


@pytest.mark.parametrize('bit_depth', [1, 12, 32, '8'])
def test_bad_bit_depth(tmp_path, bit_depth):
  with pytest.raises(ValueError, match='bit_depth'):
    write_image(tmp_path / 'x.png', np.zeros((2, 2)), bit_depth=bit_depth)


@pytest.mark.parametrize('dtype, bits', [(np.uint16, 8), (np.uint8, 16),
                                         (np.int32, 8), (np.int64, 16)])
def test_integer_dtype_must_match_bit_depth(tmp_path, dtype, bits):
  with pytest.raises(ValueError, match='dtype must match'):
    write_image(tmp_path / 'x.tif', np.zeros((2, 2), dtype), bit_depth=bits)


def test_bool_and_nan_are_rejected(tmp_path):
  with pytest.raises(ValueError, match='dtype'):
    write_image(tmp_path / 'x.png', np.zeros((2, 2), bool))
  with pytest.raises(ValueError, match='NaN'):
    write_image(tmp_path / 'x.png', np.full((2, 2), np.nan))


def test_read_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError):
    read_image(tmp_path / 'missing.png')
  with pytest.raises(FileNotFoundError):
    read_image(tmp_path / 'missing.tif')


def test_read_unsupported_tiff_dtype(tmp_path):
  tifffile.imwrite(tmp_path / 'i32.tif', np.zeros((2, 2), np.int32))
  with pytest.raises(ValueError, match='dtype'):
    read_image(tmp_path / 'i32.tif')


def test_float_tiff_is_returned_as_float32(tmp_path):
  data = np.random.default_rng(0).random((3, 3, 3)).astype(np.float32)
  tifffile.imwrite(tmp_path / 'f.tif', data, photometric='rgb')
  np.testing.assert_array_equal(read_image(tmp_path / 'f.tif'), data)
