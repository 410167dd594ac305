"""Scene content: photograph-driven reflectances, dead leaves, the chart."""

from __future__ import annotations

import functools

import numpy as np

from rawjax.data.synthetic.reflectance import _upsampler
from rawjax.isp import color

NATURAL_IMAGES = ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle')
TEXTURE_IMAGES = ('brick', 'grass', 'gravel')

# The ColorChecker N Ohta patch used for the chart's frame ('black 2 (1.5 D)').
_CHART_FRAME = 23
_CHART_ROWS, _CHART_COLS = 4, 6


def _load_skimage(name: str) -> np.ndarray:
  from skimage import data  # pylint: disable=g-import-not-at-top
  if name == 'motorcycle':
    return data.stereo_motorcycle()[0]
  return getattr(data, name)()


@functools.lru_cache(maxsize=None)
def _natural_source(name: str) -> tuple[np.ndarray, np.ndarray]:
  """(H, W, 4) indices and weights of a photograph, computed once."""
  return _decompose(_load_skimage(name)[..., :3])


def _decompose(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(H, W, 3) uint8 sRGB -> (H, W, 4) int16 indices, float32 weights."""
  codes = (image[..., 0].astype(np.int32) << 16 |
           image[..., 1].astype(np.int32) << 8 | image[..., 2])
  unique, inverse = np.unique(codes.ravel(), return_inverse=True)
  levels_8bit = np.asarray(color.srgb_decode(
      np.arange(256, dtype=np.float32) / 255), np.float64)
  linear = levels_8bit[np.stack([unique >> 16, (unique >> 8) & 255,
                                 unique & 255], -1)]
  # 0.85: the photograph's white becomes a surface a little less reflective
  # than the library's brightest white patches.
  indices, weights = _upsampler()(0.85 * linear)
  shape = image.shape[:2] + (4,)
  return (indices[inverse].reshape(shape).astype(np.int16),
          weights[inverse].reshape(shape))


@functools.lru_cache(maxsize=None)
def _texture_source(name: str) -> np.ndarray:
  image = _load_skimage(name).astype(np.float32)
  if image.ndim == 3:
    image = image[..., :3].mean(-1)
  low, high = np.percentile(image, (1, 99))
  return np.clip((image - low) / (high - low), 0, 1)


def _crop_indices(rng, source_hw, h, w):
  """Row/column indices of a random nearest-neighbour crop-and-zoom."""
  zoom_max = min(source_hw[0] / h, source_hw[1] / w)
  zoom = rng.uniform(min(0.7, zoom_max), min(1.4, zoom_max))
  top = rng.uniform(0, source_hw[0] - h * zoom)
  left = rng.uniform(0, source_hw[1] - w * zoom)
  rows = np.minimum((top + (np.arange(h) + 0.5) * zoom).astype(int),
                    source_hw[0] - 1)
  cols = np.minimum((left + (np.arange(w) + 0.5) * zoom).astype(int),
                    source_hw[1] - 1)
  return rows, cols


def _upsample_linear(grid: np.ndarray, n: int, axis: int) -> np.ndarray:
  """Linear interpolation of a grid to n cell-centred samples along an axis."""
  cells = grid.shape[axis] - 1
  position = (np.arange(n) + 0.5) / n * cells
  lower = np.minimum(position.astype(int), cells - 1)
  frac = position - lower
  shape = [1, 1]
  shape[axis] = n
  frac = frac.reshape(shape)
  return (np.take(grid, lower, axis) * (1 - frac) +
          np.take(grid, lower + 1, axis) * frac)


def _fractal_noise(rng, h, w):
  """1/f value noise in [0, 1] (octaves of bilinearly zoomed random grids).

  Elementwise on purpose: OpenBLAS threads make tiny matrix products 15x
  slower next to XLA's thread pool.
  """
  field = np.zeros((h, w), np.float64)
  for octave in range(2, 7):
    cells = 2**octave
    grid = rng.random((cells + 1, cells + 1))
    field += _upsample_linear(_upsample_linear(grid, h, 0), w, 1) / cells**0.8
  field -= field.min()
  return field / max(field.max(), 1e-12)


def _texture_field(rng, h, w):
  if rng.random() < 0.5:
    source = _texture_source(TEXTURE_IMAGES[rng.integers(len(TEXTURE_IMAGES))])
    rows, cols = _crop_indices(rng, source.shape, h, w)
    return source[np.ix_(rows, cols)]
  return _fractal_noise(rng, h, w)


def _random_orientation(rng, *arrays):
  k, flip = int(rng.integers(4)), bool(rng.integers(2))
  out = []
  for a in arrays:
    a = np.rot90(a, k, axes=(0, 1))
    out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
  return out


def _natural_content(rng, h, w):
  name = NATURAL_IMAGES[rng.integers(len(NATURAL_IMAGES))]
  indices, weights = _crop_source(rng, *_natural_source(name), h, w)
  return f'natural: {name}', indices, weights


def _crop_source(rng, indices, weights, h, w):
  """A random square crop-and-zoom of a decomposed photograph, rotated."""
  side = max(h, w)
  rows, cols = _crop_indices(rng, indices.shape[:2], side, side)
  indices, weights = _random_orientation(
      rng, indices[np.ix_(rows, cols)], weights[np.ix_(rows, cols)])
  return indices[:h, :w].astype(np.int32), weights[:h, :w]


# Catalogue photographs are decomposed at most this size (longest side):
# crops zoom 0.7-1.4 of a 256-pixel scene, and a 24-megapixel sample image
# would cost ~150 MB of indices and weights.
_MAX_SOURCE_SIDE = 768
# The content split does not depend on the dataset seed: every dataset keeps
# the same photographs for its unlabelled scenes.
_CONTENT_SPLIT_SEED = 0


@functools.lru_cache(maxsize=None)
def _catalogue(unlabelled_fraction: float,
               photo_dir: str | None = None) -> tuple[tuple, tuple]:
  """(labelled, unlabelled) photographs: the built-in ones and `photo_dir`'s."""
  from rawjax.data import sources  # pylint: disable=g-import-not-at-top
  catalogue = tuple(sources.builtin_sources())
  if photo_dir is not None:
    catalogue += tuple(sources.folder_sources(photo_dir))
  if not catalogue:
    raise ValueError('content_sources="catalogue": rawjax.data.sources found '
                     'no photographs.')
  if unlabelled_fraction <= 0:
    return catalogue, ()
  labelled, unlabelled = sources.content_split(
      catalogue, seed=_CONTENT_SPLIT_SEED,
      unlabelled_fraction=unlabelled_fraction)
  return tuple(labelled), tuple(unlabelled)


def _source_name(source) -> str:
  return str(getattr(source, 'name', source))


def catalogue_names(unlabelled_fraction: float = 0.0,
                    photo_dir: str | None = None
                    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """Names of the (labelled, unlabelled) catalogue photographs."""
  labelled, unlabelled = _catalogue(float(unlabelled_fraction), photo_dir)
  return (tuple(map(_source_name, labelled)),
          tuple(map(_source_name, unlabelled)))


@functools.lru_cache(maxsize=None)
def _photo_source(source) -> tuple[np.ndarray, np.ndarray]:
  """Indices and weights of a catalogue photograph, computed once."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from rawjax.data import sources  # pylint: disable=g-import-not-at-top
  image = np.asarray(sources.load_source(source), np.float32)[..., :3]
  image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
  scale = _MAX_SOURCE_SIDE / max(image.shape[:2])
  if scale < 1:
    size = (max(1, round(image.shape[1] * scale)),
            max(1, round(image.shape[0] * scale)))
    image = np.asarray(Image.fromarray(image).resize(size, Image.BOX))
  return _decompose(image)


def _fractal_content(rng, h, w, num_surfaces):
  """A procedural scene: four spectra blended by fractal fields.

  Each of three library spectra dominates where its own 1/f field is
  highest (a softmax with a random sharpness); a fourth field darkens the
  mixture towards black. No edges: the smooth counterpart of dead leaves.
  """
  surfaces = rng.integers(0, num_surfaces, 3)
  sharpness = rng.uniform(3.0, 12.0)
  fields = np.stack([_fractal_noise(rng, h, w) for _ in range(3)], -1)
  mix = np.exp(sharpness * (fields - fields.max(-1, keepdims=True)))
  mix /= mix.sum(-1, keepdims=True)
  albedo = rng.uniform(0.2, 1.0) * (0.3 + 0.7 * _texture_field(rng, h, w))
  weights = np.concatenate([mix * albedo[..., None], 1 - albedo[..., None]],
                           -1).astype(np.float32)
  indices = np.broadcast_to(np.append(surfaces, num_surfaces),
                            (h, w, 4)).astype(np.int32)
  return 'fractal', indices, weights


def _catalogue_content(rng, h, w, num_surfaces, config, *, unlabelled):
  """A catalogue photograph, a fractal scene or dead leaves."""
  if rng.random() < config.natural_fraction:
    labelled, unlabelled_pool = _catalogue(float(config.unlabelled_fraction),
                                           config.photo_dir)
    pool = unlabelled_pool if unlabelled and unlabelled_pool else labelled
    source = pool[int(rng.integers(len(pool)))]
    indices, weights = _crop_source(rng, *_photo_source(source), h, w)
    return f'photo: {_source_name(source)}', indices, weights
  if rng.random() < config.procedural_fraction:
    return _fractal_content(rng, h, w, num_surfaces)
  return _dead_leaves(rng, h, w, num_surfaces)


def _dead_leaves(rng, h, w, num_surfaces):
  """Occluding leaves, each a textured mixture of 3 spectra and black."""
  # Large leaves (log-uniform radii) cover the background first, then
  # power-law leaves (p(r) ~ r^-3, scale invariant) fall on top.
  large = int(rng.integers(15, 40))
  small = int(rng.integers(100, 250))
  leaves = large + small
  size = max(h, w)
  r_min, r_max = 2.0, 0.15 * size
  u = rng.random(small)
  radii = np.concatenate([
      np.exp(rng.uniform(np.log(0.1 * size), np.log(0.5 * size), large)),
      (r_min**-2 - u * (r_min**-2 - r_max**-2))**-0.5])
  cy, cx = rng.uniform(-0.1, 1.1, leaves) * h, rng.uniform(-0.1, 1.1, leaves) * w
  labels = np.zeros((h, w), np.int32)
  square = rng.random(leaves) < 0.4
  for i in range(leaves):
    r = radii[i]
    t, b = max(int(cy[i] - r), 0), min(int(cy[i] + r) + 1, h)
    l, rt = max(int(cx[i] - r), 0), min(int(cx[i] + r) + 1, w)
    if t >= b or l >= rt:
      continue
    if square[i]:
      labels[t:b, l:rt] = i + 1
    else:
      yy = np.arange(t, b)[:, None] + 0.5 - cy[i]
      xx = np.arange(l, rt)[None, :] + 0.5 - cx[i]
      region = labels[t:b, l:rt]
      region[yy * yy + xx * xx <= r * r] = i + 1
  n = leaves + 1
  cy = np.concatenate([[h / 2], cy])
  cx = np.concatenate([[w / 2], cx])
  radii = np.concatenate([[max(h, w)], radii])
  surfaces = rng.integers(0, num_surfaces, (n, 3))
  albedo = rng.uniform(0.1, 1.0, n)
  third = rng.uniform(0.0, 0.3, n)
  mode = rng.integers(0, 4, n)
  offset = rng.uniform(0, 1, n)
  contrast = rng.uniform(0.5, 2.0, n)
  angle = rng.uniform(0, 2 * np.pi, n)
  slope = rng.uniform(0.2, 1.0, n) / radii
  fields = [_texture_field(rng, h, w), _fractal_noise(rng, h, w)]

  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
  m = mode[labels]
  gradient = ((xx - cx[labels]) * np.cos(angle[labels]) +
              (yy - cy[labels]) * np.sin(angle[labels])) * slope[labels]
  t = offset[labels] + np.where(m == 1, gradient, 0.0)
  t += np.where(m == 2, contrast[labels] * (fields[0] - 0.5), 0.0)
  t += np.where(m == 3, contrast[labels] * (fields[1] - 0.5), 0.0)
  t = np.clip(t, 0, 1)
  a, third_w = albedo[labels], third[labels]
  weights = np.stack([a * (1 - third_w) * (1 - t), a * (1 - third_w) * t,
                      a * third_w, 1 - a], -1).astype(np.float32)
  black = num_surfaces  # the library's last spectrum
  indices = np.concatenate(
      [surfaces[labels], np.full((h, w, 1), black)], -1).astype(np.int32)
  return 'dead_leaves', indices, weights


def _place_chart(rng, indices, weights):
  """Paints a ColorChecker; returns the (24, 4) patch boxes, even-aligned."""
  h, w = indices.shape[:2]
  pitch = int(rng.uniform(0.45, 0.75) * min(w / _CHART_COLS, h / _CHART_ROWS))
  pitch = max(pitch, 6)
  border = max(pitch // 4, 1)
  chart_h = _CHART_ROWS * pitch + 2 * border
  chart_w = _CHART_COLS * pitch + 2 * border
  top = int(rng.integers(0, h - chart_h + 1))
  left = int(rng.integers(0, w - chart_w + 1))
  indices[top:top + chart_h, left:left + chart_w] = _CHART_FRAME
  weights[top:top + chart_h, left:left + chart_w] = (1, 0, 0, 0)
  gap = max(pitch // 8, 1)
  boxes = []
  for patch in range(_CHART_ROWS * _CHART_COLS):
    row, col = divmod(patch, _CHART_COLS)
    y0 = top + border + row * pitch + gap
    x0 = left + border + col * pitch + gap
    y1, x1 = y0 + pitch - 2 * gap, x0 + pitch - 2 * gap
    indices[y0:y1, x0:x1] = patch
    # The measurement box: inside the patch, on even (packed) coordinates.
    inset = max((y1 - y0) // 6, 0)
    box = [y0 + inset, x0 + inset, y1 - inset, x1 - inset]
    box = [(box[0] + 1) // 2 * 2, (box[1] + 1) // 2 * 2, box[2] // 2 * 2,
           box[3] // 2 * 2]
    boxes.append(box)
  boxes = np.array(boxes, np.int32)
  if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
    raise ValueError(f'The image ({h}x{w}) is too small for a chart with '
                     'measurable patches; use at least 64x64.')
  return boxes
