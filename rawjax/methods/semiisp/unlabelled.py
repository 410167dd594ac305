"""SemiISP's unlabelled sRGB sources (`config.data.unlabelled`).

The paper draws its unlabelled images from COCO: photographs of other
content and another quality than the labelled targets, which is what its
sRGB quality update (USQ) and online filtering (OPF) exist for. Sources:

  * 'fivek_expert': the prepared folder's `unlabelled_srgb` split, as
    before: FiveK's expert renderings of other training images
    (`prepare_fivek`), LoL's normal-light images (`prepare_lol`), or the
    simulator's renderings of other scenes. In-domain: the targets' style.
  * 'raw2srgb_v2_content': out-of-domain crops of the photographs that the
    `raw2srgb_v2` simulator keeps for its unlabelled scenes (the unlabelled
    share of `rawjax.data.sources.content_split`, built-in catalogue): the
    photographs themselves, as their sRGB files store them, not rendered
    by the simulated camera. The simulated labelled pairs of preset
    'raw2srgb_v2' only use the other share, so the two are disjoint by
    content.
  * 'folder': the user's own photographs (COCO in the paper), every
    .png/.jpg/.jpeg/.tif/.tiff under `data.unlabelled_dir` (recursive),
    EXIF-rotated, turned to the labelled images' orientation, centre-cropped
    to their aspect and resized to their size.

The last two are written once as a uint16 `unlabelled_srgb.npy` (the
prepared-arrays encoding, memory-mapped when read) in the datasets cache,
in a folder named by the source, its settings and the image size.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from rawjax.data import sources as sources_lib
from rawjax.data.datasets import arrays
from rawjax.io.staging import datasets_cache, staged_directory

__all__ = [
    'CONTENT_PRESET', 'SOURCES', 'content_crops', 'content_photographs',
    'folder_images', 'load_unlabelled', 'prepare_unlabelled',
]

SOURCES = ('fivek_expert', 'raw2srgb_v2_content', 'folder')
CONTENT_PRESET = 'raw2srgb_v2'
# A crop spans this fraction of the largest crop of the labelled aspect
# that fits in the photograph (side lengths): zooms of 1x to ~3x, so two
# photographs give many framings, as a collection of photographs has.
_CROP_RANGE = (0.35, 1.0)


def content_photographs() -> tuple[sources_lib.ImageSource, ...]:
  """The unlabelled share of the `raw2srgb_v2` content split (built-in)."""
  from rawjax.data import synthetic  # pylint: disable=g-import-not-at-top
  fraction = synthetic.PRESETS[CONTENT_PRESET].unlabelled_fraction
  _, names = synthetic.catalogue_names(fraction)
  by_name = {s.name: s for s in sources_lib.builtin_sources()}
  if not names:
    raise ValueError('raw2srgb_v2_content: the built-in photograph catalogue '
                     '(rawjax.data.sources) has no unlabelled share.')
  return tuple(by_name[n] for n in names)


def content_crops(count: int, size: Sequence[int], *, seed: int
                  ) -> Iterator[np.ndarray]:
  """`count` random crops of `content_photographs()`, each `size` (H, W).

  Crop i draws from `np.random.default_rng([seed, 23, i])`: a photograph
  (uniformly), a crop of the aspect H:W whose side is a uniform fraction
  of the largest such crop (`_CROP_RANGE`), its position, and a horizontal
  flip; it is resized (antialiased) to `size`.
  """
  photos = [sources_lib.load_source(s) for s in content_photographs()]
  height, width = map(int, size)
  for i in range(int(count)):
    rng = np.random.default_rng([seed, 23, i])
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    scale = min(ph / height, pw / width) * rng.uniform(*_CROP_RANGE)
    ch = max(1, min(ph, int(round(height * scale))))
    cw = max(1, min(pw, int(round(width * scale))))
    top = rng.integers(ph - ch + 1)
    left = rng.integers(pw - cw + 1)
    crop = photo[top:top + ch, left:left + cw]
    if rng.uniform() < 0.5:
      crop = crop[:, ::-1]
    yield _resize(crop, size)


def _resize(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Antialiased bilinear resize to `size` (H, W), float32.

  Pillow's triangle filter per channel (widened by the scale factor when
  downscaling): photographs come in many sizes, and `jax.image.resize`
  would compile once per size (300 crops: 46 s instead of ~1 s). Not
  `arrays.resize_landscape`: the crops already have the target's aspect,
  which may be portrait.
  """
  height, width = map(int, size)
  return np.stack([
      np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c],
                                                      np.float32)).resize(
          (width, height), Image.Resampling.BILINEAR))
      for c in range(image.shape[-1])], axis=-1)


def _centre_crop(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Turned to the orientation of `size`, centre-cropped to its aspect and
  resized to it (portrait photographs are turned, as `prepare_fivek` does)."""
  height, width = map(int, size)
  if height != width and (image.shape[0] > image.shape[1]) != (height > width):
    image = np.swapaxes(image, 0, 1)
  ih, iw = image.shape[:2]
  scale = min(ih / height, iw / width)
  ch, cw = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
  top, left = (ih - ch) // 2, (iw - cw) // 2
  return _resize(image[top:top + ch, left:left + cw], size)


def folder_images(folder: str | os.PathLike[str]
                  ) -> tuple[sources_lib.ImageSource, ...]:
  """The photographs under `folder` (recursive), sorted by relative path.

  Raises:
    FileNotFoundError / NotADirectoryError / ValueError: no such folder, a
      file, or no image in it (the message names the path).
  """
  return sources_lib.folder_sources(pathlib.Path(folder).expanduser(),
                                    recursive=True)


def _folder_crops(photos, size) -> Iterator[np.ndarray]:
  for source in photos:
    try:
      image = sources_lib.load_source(source)
    except (OSError, ValueError) as error:
      raise ValueError(f'data.unlabelled_dir: cannot use {source.path}: '
                       f'{error}') from error
    yield _centre_crop(image, size)


def prepare_unlabelled(directory: str | os.PathLike[str], images, *,
                       count: int, size: Sequence[int],
                       info: dict) -> pathlib.Path:
  """Writes `count` images of `size` as <directory>/unlabelled_srgb.npy.

  uint16 round(clip(x) * 65535) as the prepared arrays; written in a
  staged folder then renamed (an interrupted run leaves nothing), and
  left as it is when <directory>/unlabelled.json exists.
  """
  directory = pathlib.Path(directory).expanduser()
  if (directory / 'unlabelled.json').is_file():
    return directory
  height, width = map(int, size)
  with staged_directory(directory, marker='unlabelled.json') as staging:
    staging.mkdir(parents=True)
    out = np.lib.format.open_memmap(staging / 'unlabelled_srgb.npy', 'w+',
                                    np.uint16, (count, height, width, 3))
    written = 0
    for written, image in enumerate(images, start=1):
      out[written - 1] = np.round(np.clip(image, 0.0, 1.0) * arrays.SCALE)
    out.flush()
    del out
    if written != count:
      raise ValueError(f'prepare_unlabelled: expected {count} images, got '
                       f'{written}.')
    (staging / 'unlabelled.json').write_text(json.dumps(
        dict(info, count=count, size=[height, width]), indent=1))
  return directory


def load_unlabelled(data, *, size: Sequence[int], seed: int
                    ) -> dict[str, np.ndarray] | None:
  """{'srgb': (U, H, W, 3) uint16 memmap} of `data.unlabelled`, or None.

  None for 'fivek_expert' (the prepared folder's own split). Otherwise the
  set is prepared once in `datasets_cache(data.cache_dir)`.

  Args:
    data: a SemiISP config's `data` section (`unlabelled`,
      `unlabelled_dir`, `num_unlabelled`, `synthetic.num_unlabelled`,
      `cache_dir`).
    size: (H, W) of the labelled images.
    seed: the crops' seed ('raw2srgb_v2_content').
  """
  source = data.unlabelled
  if source == 'fivek_expert':
    return None
  if source not in SOURCES:
    raise ValueError(f'data.unlabelled must be one of {SOURCES}, got '
                     f'{source!r}.')
  height, width = map(int, size)
  cache = datasets_cache(data.cache_dir)
  if source == 'raw2srgb_v2_content':
    count = int(data.num_unlabelled or data.synthetic.num_unlabelled)
    if count < 1:
      raise ValueError("data.unlabelled='raw2srgb_v2_content' makes "
                       'data.num_unlabelled crops (0: '
                       'data.synthetic.num_unlabelled); both are 0.')
    names = [s.name for s in content_photographs()]
    name = (f'semiisp-unlabelled-v2content-n{count}-s{seed}-'
            f'{height}x{width}')
    images = content_crops(count, (height, width), seed=seed)
    info = dict(source=source, photographs=names, seed=seed)
  else:
    photos = folder_images(data.unlabelled_dir)
    if data.num_unlabelled:
      photos = photos[:int(data.num_unlabelled)]
    count = len(photos)
    listing = '\n'.join(f'{s.path} {os.stat(s.path).st_size}'
                        for s in photos)
    key = hashlib.sha256(listing.encode()).hexdigest()[:12]
    name = f'semiisp-unlabelled-folder-{key}-n{count}-{height}x{width}'
    images = _folder_crops(photos, (height, width))
    info = dict(source=source,
                folder=str(pathlib.Path(data.unlabelled_dir).expanduser()))
  directory = prepare_unlabelled(cache / name, images, count=count,
                                 size=(height, width), info=info)
  return {'srgb': np.load(directory / 'unlabelled_srgb.npy', mmap_mode='r')}
