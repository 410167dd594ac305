"""A catalogue of natural colour photographs available offline.

Scene content for the simulator: the colour photographs of natural scenes
that installed packages ship on disk (no download), and any folder of the
user's own photographs. Every source is loaded as (H, W, 3) float32
sRGB-encoded values in [0, 1].

What the installed dependencies ship (checked in scikit-image 0.26,
colour-science 0.4.7, imageio 2.38, Pillow 13, scipy 1.17, OpenCV 5, torch
2.13; see docs/camera_isp.md for the search):

  * scikit-image's bundled data directory: six colour photographs of natural
    scenes, `BUILTIN_PHOTOGRAPHS` below with their credits and licences
    (public domain, CC0, and the Middlebury stereo pair, whose licence is
    not stated beyond a request to cite). Excluded: the
    greyscale images (camera, moon, coins, ...), synthetic ones (color,
    logo, chessboard_RGB, horse, multipage_rgb), scientific imagery that is
    not a natural scene (hubble_deep_field, retina, ihc), and the files that
    need a pooch download, not on disk (and none a natural colour
    photograph: eagle is greyscale, lily and skin are microscopy).
  * the other packages ship no natural photograph: colour-science's images
    are synthetic (a gradient background, an Ishihara plate, logos, EXR test
    patterns), imageio's standard images are downloaded on demand, and
    Pillow, scipy (`scipy.datasets` downloads), OpenCV and torch carry none.

`content_split` divides sources into labelled and unlabelled sets by
*content*: the two views of the Middlebury motorcycle share one content key,
so near-identical images never straddle the split (SemiISP draws its
unlabelled images from other content, COCO, than its labelled pairs).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np

from rawjax.io import image as image_io

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')

# (name, file in skimage's data dir, content key, origin and licence).
BUILTIN_PHOTOGRAPHS = (
    ('astronaut', 'astronaut.png', 'astronaut',
     'scikit-image data: Eileen Collins, NASA Great Images; public domain'),
    ('chelsea', 'chelsea.png', 'chelsea',
     'scikit-image data: Chelsea the cat; CC0, photographer Stefan van der '
     'Walt'),
    ('coffee', 'coffee.png', 'coffee',
     'scikit-image data: coffee cup, courtesy of Pikolo Espresso Bar; CC0, '
     'photographer Rachel Michetti'),
    ('rocket', 'rocket.jpg', 'rocket',
     'scikit-image data: DSCOVR launch on Falcon 9, SpaceX photos; public '
     'domain'),
    ('motorcycle_left', 'motorcycle_left.png', 'motorcycle',
     'scikit-image data: Middlebury 2014 stereo benchmark (Scharstein et al., '
     'GCPR 2014), left view downsampled x4; no licence stated, the '
     'benchmark asks users to cite the paper'),
    ('motorcycle_right', 'motorcycle_right.png', 'motorcycle',
     'scikit-image data: Middlebury 2014 stereo benchmark (Scharstein et al., '
     'GCPR 2014), right view downsampled x4; no licence stated, the '
     'benchmark asks users to cite the paper'),
)


@dataclasses.dataclass(frozen=True)
class ImageSource:
  """One photograph of the catalogue.

  Attributes:
    name: unique name within a catalogue (e.g. 'coffee', a file stem).
    origin: where it comes from and under which licence.
    path: the image file, or None when `loader` provides the pixels.
    loader: a zero-argument function returning the image as an array (any
      layout `load_source` accepts), used when `path` is None.
    content: the content key: sources with the same key show the same scene
      (a stereo pair, two crops) and `content_split` keeps them together;
      '' means the name.
  """
  name: str
  origin: str
  path: str | None = None
  loader: Callable[[], np.ndarray] | None = None
  content: str = ''

  def __post_init__(self):
    if (self.path is None) == (self.loader is None):
      raise ValueError(f'ImageSource {self.name!r}: give exactly one of path '
                       'and loader.')

  @property
  def content_key(self) -> str:
    """The content key (`content`, or the name when it is empty)."""
    return self.content or self.name


def _skimage_data_dir() -> pathlib.Path:
  import skimage.data  # pylint: disable=g-import-not-at-top
  return pathlib.Path(skimage.data.data_dir)


def builtin_sources() -> tuple[ImageSource, ...]:
  """The natural colour photographs shipped on disk by installed packages.

  Only files present locally are listed (a trimmed installation yields a
  shorter catalogue, never a download).

  Returns:
    `ImageSource`s in the fixed order of `BUILTIN_PHOTOGRAPHS` (six with
    scikit-image 0.26: astronaut, chelsea, coffee, rocket, motorcycle_left,
    motorcycle_right; five content keys).
  """
  try:
    data_dir = _skimage_data_dir()
  except ImportError:
    return ()
  sources = []
  for name, filename, content, origin in BUILTIN_PHOTOGRAPHS:
    path = data_dir / filename
    if path.is_file():
      sources.append(ImageSource(name=name, origin=origin, path=str(path),
                                 content=content))
  return tuple(sources)


def folder_sources(path: str | os.PathLike[str], *,
                   recursive: bool = False) -> tuple[ImageSource, ...]:
  """The photographs in a folder: every .png/.jpg/.jpeg/.tif/.tiff file.

  Files are listed, not opened (`load_source` reads them); names are the
  paths relative to the folder without extension, sorted, and each file is
  its own content key.

  Args:
    path: the folder.
    recursive: also list sub-folders.

  Returns:
    `ImageSource`s sorted by name, origin 'folder <path>'.

  Raises:
    FileNotFoundError: the folder does not exist.
    NotADirectoryError: the path is a file.
    ValueError: the folder holds no image file.
  """
  folder = pathlib.Path(path)
  if not folder.exists():
    raise FileNotFoundError(f'folder_sources: no folder at {str(folder)!r}.')
  if not folder.is_dir():
    raise NotADirectoryError(
        f'folder_sources: {str(folder)!r} is a file, not a folder.')
  pattern = '**/*' if recursive else '*'
  files = sorted(f for f in folder.glob(pattern)
                 if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
  if not files:
    raise ValueError(
        f'folder_sources: no image file ({", ".join(IMAGE_EXTENSIONS)}) in '
        f'{str(folder)!r}{" or its sub-folders" if recursive else ""}.')
  return tuple(
      ImageSource(name=str(f.relative_to(folder).with_suffix('')),
                  origin=f'folder {folder}', path=str(f))
      for f in files)


def _read_file(path: str) -> np.ndarray:
  suffix = pathlib.Path(path).suffix.lower()
  if suffix in ('.jpg', '.jpeg'):
    from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
    with Image.open(path) as image:
      # Cameras store portrait photographs rotated, with an EXIF flag.
      image = ImageOps.exif_transpose(image)
      return np.asarray(image.convert('RGB'), np.float32) / np.float32(255)
  # PNG and TIFF keep 16-bit precision through rawjax's own reader.
  return image_io.read_image(path)


def load_source(source: ImageSource) -> np.ndarray:
  """Loads one photograph as sRGB-encoded float32 RGB.

  8- and 16-bit integer files are scaled by their maximum code; an alpha
  channel is dropped; float images are clipped to [0, 1].

  Args:
    source: an `ImageSource`.

  Returns:
    (H, W, 3) float32 in [0, 1].

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: the image is greyscale or not an (H, W, 3) image.
  """
  if not isinstance(source, ImageSource):
    raise TypeError(f'load_source: expected an ImageSource, got '
                    f'{type(source).__name__}.')
  if source.path is not None:
    if not pathlib.Path(source.path).is_file():
      raise FileNotFoundError(f'load_source: {source.name!r}: no file at '
                              f'{source.path!r}.')
    image = _read_file(source.path)
  else:
    image = np.asarray(source.loader())
    if np.issubdtype(image.dtype, np.integer):
      image = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
  image = np.asarray(image, np.float32)
  if image.ndim == 3 and image.shape[-1] == 4:
    image = image[..., :3]
  if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1):
    raise ValueError(f'load_source: {source.name!r} is a greyscale image '
                     f'(shape {image.shape}); the catalogue needs colour '
                     'photographs.')
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'load_source: {source.name!r} must be an (H, W, 3) '
                     f'colour image, got shape {image.shape}.')
  return np.clip(image, 0.0, 1.0)


def content_split(sources: Sequence[ImageSource], *, seed: int,
                  unlabelled_fraction: float
                  ) -> tuple[tuple[ImageSource, ...], tuple[ImageSource, ...]]:
  """Splits sources into labelled and unlabelled sets, disjoint by content.

  The content keys (`ImageSource.content_key`) are sorted, permuted by
  `np.random.default_rng(seed)`, and the first round(fraction * keys) keys
  go to the unlabelled set; when 0 < fraction < 1 and there are two or more
  keys, each side gets at least one. The result depends only on the set of
  sources and the seed, not on their order.

  Args:
    sources: `ImageSource`s with unique names.
    seed: the permutation seed.
    unlabelled_fraction: fraction of content keys for the unlabelled set, in
      [0, 1].

  Returns:
    (labelled, unlabelled) tuples of sources, each sorted by name.

  Raises:
    ValueError: duplicate names, or a fraction outside [0, 1].
  """
  fn = 'content_split'
  if not 0 <= unlabelled_fraction <= 1:
    raise ValueError(f'{fn}: unlabelled_fraction must be in [0, 1], got '
                     f'{unlabelled_fraction}.')
  sources = tuple(sources)
  names = [s.name for s in sources]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f'{fn}: duplicate source names {duplicates}.')
  keys = sorted({s.content_key for s in sources})
  count = int(round(unlabelled_fraction * len(keys)))
  if 0 < unlabelled_fraction < 1 and len(keys) >= 2:
    count = min(max(count, 1), len(keys) - 1)
  order = np.random.default_rng(seed).permutation(len(keys))
  unlabelled_keys = {keys[i] for i in order[:count]}
  by_name = sorted(sources, key=lambda s: s.name)
  labelled = tuple(s for s in by_name if s.content_key not in unlabelled_keys)
  unlabelled = tuple(s for s in by_name if s.content_key in unlabelled_keys)
  return labelled, unlabelled
