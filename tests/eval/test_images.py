"""Comparison grids (titled columns, row labels) and error maps."""

import numpy as np
import pytest

from rawjax import eval as rawjax_eval
from rawjax import io as rawio


def test_image_grid_layout():
  images = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2) / 12
  grid = rawjax_eval.image_grid(images, padding=1)
  assert grid.shape == (2 * 3 + 1, 2 * 3 + 1)
  np.testing.assert_array_equal(grid[1:3, 1:3], images[0])
  np.testing.assert_array_equal(grid[1:3, 4:6], images[1])
  np.testing.assert_array_equal(grid[4:6, 1:3], images[2])
  assert (grid[4:6, 4:6] == 1).all() and (grid[0] == 1).all()


def test_untitled_grid_places_images_of_different_sizes():
  rng = np.random.default_rng(0)
  small = rng.uniform(size=(4, 6, 3)).astype(np.float32)
  large = rng.uniform(size=(8, 10, 3)).astype(np.float32)
  grid = rawjax_eval.labelled_grid([[small, large], [large]], padding=2)
  assert grid.shape == (2 * (8 + 2) + 2, 2 * (10 + 2) + 2, 3)
  np.testing.assert_array_equal(grid[2:6, 2:8], small)
  np.testing.assert_array_equal(grid[2:10, 14:24], large)
  np.testing.assert_array_equal(grid[12:20, 2:12], large)
  assert (grid[12:20, 14:24] == 1).all()  # the missing cell stays white


def test_titles_and_labels_are_drawn_outside_the_images():
  rng = np.random.default_rng(1)
  rows = [[rng.uniform(0.4, 0.6, (32, 48, 3)).astype(np.float32)
           for _ in range(3)] for _ in range(2)]
  plain = rawjax_eval.labelled_grid(rows)
  titled = rawjax_eval.labelled_grid(
      rows, column_titles=['input', 'output', 'target'],
      row_labels=['scene_0', 'scene_1'])
  extra_h = titled.shape[0] - plain.shape[0]
  extra_w = titled.shape[1] - plain.shape[1]
  assert extra_h > 0 and extra_w > 0
  # The images are unchanged (8-bit quantised), text only in the bands.
  body = titled[extra_h:, extra_w:]
  np.testing.assert_allclose(body, plain, atol=0.5 / 255 + 1e-6)
  assert titled[:extra_h].min() < 0.5  # dark title pixels
  assert titled[extra_h:, :extra_w].min() < 0.5  # dark label pixels


def test_grid_rejects_mismatched_titles_and_bad_images():
  image = np.zeros((4, 4, 3), np.float32)
  with pytest.raises(ValueError, match='column titles'):
    rawjax_eval.labelled_grid([[image, image]], column_titles=['a'])
  with pytest.raises(ValueError, match='row labels'):
    rawjax_eval.labelled_grid([[image]], row_labels=['a', 'b'])
  with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
    rawjax_eval.labelled_grid([[np.zeros((4, 4), np.float32)]])
  with pytest.raises(ValueError, match='at least one'):
    rawjax_eval.labelled_grid([])


def test_write_image_rows_writes_a_png(tmp_path):
  rng = np.random.default_rng(2)
  rows = [[rng.uniform(size=(16, 16, 3)).astype(np.float32)] * 2]
  path = tmp_path / 'grid.png'
  rawjax_eval.write_image_rows(path, rows, column_titles=['a', 'b'],
                               row_labels=['x'])
  written = rawio.read_image(path)
  want = rawjax_eval.labelled_grid(rows, column_titles=['a', 'b'],
                                   row_labels=['x'])
  np.testing.assert_allclose(written, want, atol=0.5 / 255 + 1e-6)


def test_non_finite_pixels_become_zero():
  image = np.full((4, 4, 3), np.nan, np.float32)
  grid = rawjax_eval.labelled_grid([[image]], padding=0)
  np.testing.assert_array_equal(grid, 0.0)


def test_error_map():
  prediction = np.zeros((2, 2, 3), np.float32)
  target = np.array([[[0.1] * 3, [0.0] * 3], [[0.3, 0.0, 0.0], [1.0] * 3]],
                    np.float32)
  shown = rawjax_eval.error_map(prediction, target, gain=5.0)
  assert shown.shape == (2, 2, 3)
  np.testing.assert_allclose(shown[..., 0], [[0.5, 0.0], [0.5, 1.0]],
                             atol=1e-6)
  np.testing.assert_array_equal(shown[..., 0], shown[..., 2])
