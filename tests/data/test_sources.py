"""The offline catalogue of natural photographs, user folders, content split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from rawjax import io as rawio
from rawjax.data import sources


def test_builtin_catalogue_is_non_empty_and_loads():
  catalogue = sources.builtin_sources()
  assert len(catalogue) >= 1
  names = [s.name for s in catalogue]
  assert len(set(names)) == len(names)
  for source in catalogue:
    assert source.origin and source.path
    image = sources.load_source(source)
    assert image.ndim == 3 and image.shape[-1] == 3, source.name
    assert image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert min(image.shape[:2]) >= 64
    # A colour photograph, not a grey image stored as RGB.
    assert np.abs(image - image.mean(-1, keepdims=True)).mean() > 0.01


def test_builtin_catalogue_lists_scikit_image_photographs():
  names = {s.name for s in sources.builtin_sources()}
  assert {'astronaut', 'chelsea', 'coffee'} <= names
  assert not names & {'camera', 'moon', 'color', 'logo', 'hubble_deep_field'}


def _write_folder(folder, rng: np.random.Generator):
  (folder / 'sub').mkdir()
  # Smooth, so that JPEG's chroma subsampling keeps it close.
  yy, xx = np.mgrid[0:20, 0:24] / 24.0
  rgb = np.stack([xx, yy, 0.5 + 0.3 * xx * yy], -1) * rng.uniform(0.6, 1.0)
  rgb = rgb.astype(np.float32)
  rawio.write_image(folder / 'b.png', rgb, bit_depth=16)
  Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / 'a.jpg',
                                                     quality=95)
  rawio.write_image(folder / 'sub' / 'c.tif', rgb, bit_depth=8)
  (folder / 'notes.txt').write_text('not an image')
  return rgb


def test_folder_sources_list_and_load(tmp_path):
  rng = np.random.default_rng(31)
  rgb = _write_folder(tmp_path, rng)
  flat = sources.folder_sources(tmp_path)
  assert [s.name for s in flat] == ['a', 'b']
  deep = sources.folder_sources(tmp_path, recursive=True)
  assert [s.name for s in deep] == ['a', 'b', 'sub/c']
  for source in deep:
    image = sources.load_source(source)
    assert image.shape == (20, 24, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
  # 16-bit PNG keeps its precision; the JPEG is close.
  np.testing.assert_allclose(sources.load_source(flat[1]), rgb, atol=1e-4)
  np.testing.assert_allclose(sources.load_source(flat[0]), rgb, atol=0.1)


def test_folder_errors_are_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match='no folder'):
    sources.folder_sources(tmp_path / 'missing')
  with pytest.raises(ValueError, match='no image file'):
    sources.folder_sources(tmp_path)
  (tmp_path / 'x.png').write_bytes(b'')
  with pytest.raises(NotADirectoryError, match='is a file'):
    sources.folder_sources(tmp_path / 'x.png')


def test_load_source_errors_are_clear(tmp_path):
  rng = np.random.default_rng(32)
  rawio.write_image(tmp_path / 'grey.png', rng.random((8, 8), np.float32))
  with pytest.raises(ValueError, match='greyscale'):
    sources.load_source(sources.folder_sources(tmp_path)[0])
  with pytest.raises(FileNotFoundError, match='no file'):
    sources.load_source(sources.ImageSource(
        name='gone', origin='test', path=str(tmp_path / 'gone.png')))
  with pytest.raises(ValueError, match='exactly one of path and loader'):
    sources.ImageSource(name='none', origin='test')
  with pytest.raises(TypeError, match='ImageSource'):
    sources.load_source('astronaut.png')


def test_loader_sources_scale_integer_images():
  rng = np.random.default_rng(33)
  codes = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
  source = sources.ImageSource(name='mem', origin='test',
                               loader=lambda: codes)
  image = sources.load_source(source)
  assert image.shape == (10, 12, 3)
  np.testing.assert_allclose(image, codes[..., :3] / 255.0, atol=1e-7)


def _catalogue(rng: np.random.Generator, count=10):
  """In-memory sources; two pairs share a content key (stereo-pair style)."""
  out = []
  for i in range(count):
    content = 'pair0' if i < 2 else ('pair1' if i < 4 else '')
    out.append(sources.ImageSource(
        name=f'img{i:02d}', origin='test', content=content,
        loader=lambda v=rng.random(): np.full((4, 4, 3), v, np.float32)))
  return tuple(out)


def test_content_split_is_deterministic_and_disjoint():
  rng = np.random.default_rng(34)
  catalogue = _catalogue(rng)
  labelled, unlabelled = sources.content_split(catalogue, seed=3,
                                               unlabelled_fraction=0.4)
  again = sources.content_split(catalogue[::-1], seed=3,
                                unlabelled_fraction=0.4)
  assert (labelled, unlabelled) == again      # order-independent
  assert {s.name for s in labelled} | {s.name for s in unlabelled} == {
      s.name for s in catalogue}
  keys_l = {s.content_key for s in labelled}
  keys_u = {s.content_key for s in unlabelled}
  assert not keys_l & keys_u                 # disjoint by content
  assert len(keys_u) == round(0.4 * 8)       # 8 content keys
  others = [sources.content_split(catalogue, seed=seed,
                                  unlabelled_fraction=0.4)[1]
            for seed in range(8)]
  assert len({tuple(s.name for s in u) for u in others}) > 1


def test_content_split_edges_and_errors():
  rng = np.random.default_rng(35)
  catalogue = _catalogue(rng, 5)
  labelled, unlabelled = sources.content_split(
      catalogue, seed=0, unlabelled_fraction=0.0)
  assert len(labelled) == 5 and not unlabelled
  labelled, unlabelled = sources.content_split(
      catalogue, seed=0, unlabelled_fraction=0.01)
  assert labelled and unlabelled             # at least one each side
  with pytest.raises(ValueError, match='unlabelled_fraction'):
    sources.content_split(catalogue, seed=0, unlabelled_fraction=1.5)
  duplicate = catalogue + (dataclasses.replace(catalogue[0]),)
  with pytest.raises(ValueError, match='duplicate source names'):
    sources.content_split(duplicate, seed=0, unlabelled_fraction=0.5)


def test_builtin_split_keeps_the_stereo_pair_together():
  catalogue = sources.builtin_sources()
  for seed in range(5):
    labelled, unlabelled = sources.content_split(catalogue, seed=seed,
                                                 unlabelled_fraction=0.4)
    for side in (labelled, unlabelled):
      names = {s.name for s in side}
      assert ('motorcycle_left' in names) == ('motorcycle_right' in names)
