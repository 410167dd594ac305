"""Colour -> barycentric mixtures of measured reflectance spectra."""

from __future__ import annotations

import functools

import numpy as np

from rawjax.data import _spectra
from rawjax.isp import color


class _Upsampler:
  """Colour -> barycentric mixture of 4 library spectra (Delaunay in RGB)."""

  def __init__(self):
    from scipy import spatial  # pylint: disable=g-import-not-at-top
    _, library = _spectra.reflectance_library()
    d65 = _spectra.named_illuminants(('D65',))[0]
    xyz = _spectra.xyz_of_reflectances(library, d65)
    self.vertices = xyz @ color.XYZ_TO_SRGB.T
    self.tri = spatial.Delaunay(self.vertices)
    # Out-of-hull colours are pulled towards the library's mean colour at
    # their own luminance; that axis is inside the hull up to `top`.
    self.centre = self.vertices.mean(0)
    low, high = 0.0, 10.0
    for _ in range(40):
      mid = 0.5 * (low + high)
      inside = self.tri.find_simplex(mid * self.centre[None])[0] >= 0
      low, high = (mid, high) if inside else (low, mid)
    self.top = low

  def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 3) linear sRGB -> (P, 4) library indices and convex weights."""
    luminance = rgb @ color.SRGB_TO_XYZ[1]
    scale = np.clip(luminance / (self.centre @ color.SRGB_TO_XYZ[1]),
                    1e-3 * self.top, 0.98 * self.top)
    anchor = scale[:, None] * self.centre
    simplex = np.full(len(rgb), -1)
    point = rgb.copy()
    for t in np.linspace(1.0, 0.0, 11):
      todo = np.flatnonzero(simplex < 0)
      if not todo.size:
        break
      candidate = anchor[todo] + t * (rgb[todo] - anchor[todo])
      found = self.tri.find_simplex(candidate)
      hit = found >= 0
      simplex[todo[hit]] = found[hit]
      point[todo[hit]] = candidate[hit]
    transform = self.tri.transform[simplex]
    b = np.einsum('pij,pj->pi', transform[:, :3], point - transform[:, 3])
    weights = np.clip(np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1),
                      0, None)
    weights /= weights.sum(1, keepdims=True)
    return (self.tri.simplices[simplex].astype(np.int32),
            weights.astype(np.float32))


@functools.lru_cache(maxsize=None)
def _upsampler() -> _Upsampler:
  return _Upsampler()
