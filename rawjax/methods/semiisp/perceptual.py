"""VGG16 weights for SemiISP's phase-1 perceptual loss (eq. 5).

rawjax ships no network weights, so the VGG term needs the user's
torchvision `vgg16` checkpoint (vgg16-397923af.pth, ImageNet), given in
`config.isp.vgg_weights` either as that .pth (converted on load; needs
torch) or as the .npz of Flax parameters written by

    rawjax-convert vgg16 vgg16-397923af.pth vgg16.npz

(`rawjax.convert.convert_vgg16`; an .npz of the state dict's tensors also
works, without torch).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

__all__ = ['CONVERT_HINT', 'load_vgg16', 'save_vgg16']

CONVERT_HINT = (
    "torchvision's vgg16 state dict (vgg16-397923af.pth), or its Flax .npz "
    'from `rawjax-convert vgg16 vgg16-397923af.pth vgg16.npz`')


def load_vgg16(path: str | os.PathLike[str], *, layer: str) -> dict[str, Any]:
  """VGG16 params up to `layer` from a Flax .npz or a torchvision state dict.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: the file's keys or shapes do not match VGG16 up to `layer`.
  """
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  p = pathlib.Path(path).expanduser()
  if not p.is_file():
    raise FileNotFoundError(f'VGG16 weights not found: {p} (expected '
                            f'{CONVERT_HINT}).')
  if p.suffix == '.npz':
    with np.load(p) as f:
      flax_layout = any('/' in k for k in f.files)
    if flax_layout:
      params = convert.load_params(p)
      # A file saved for a deeper layer holds more convolutions: keep the
      # ones this layer's trunk uses.
      reference = _template(layer)
      missing = sorted(set(reference) - set(params))
      if missing:
        raise ValueError(f'{p}: VGG16 params lack {missing} for layer '
                         f'{layer!r}.')
      return {k: params[k] for k in reference}
  return convert.convert_vgg16(convert.load_state_dict(p), layer=layer)


def save_vgg16(state_dict_path: str | os.PathLike[str],
               out: str | os.PathLike[str], *,
               layer: str = 'relu5_3') -> pathlib.Path:
  """Converts a torchvision vgg16 checkpoint to a Flax .npz once.

  The default keeps the whole trunk (relu5_3), so the file serves any
  `config.isp.vgg_layer`.
  """
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  params = convert.convert_vgg16(convert.load_state_dict(state_dict_path),
                                 layer=layer)
  return convert.save_params(out, params)


def _template(layer: str) -> Any:
  """The (shape-only) params tree of `VGG16(layer)`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from rawjax.models.vgg import VGG16  # pylint: disable=g-import-not-at-top
  return jax.eval_shape(lambda: VGG16(layer=layer).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))['params']
