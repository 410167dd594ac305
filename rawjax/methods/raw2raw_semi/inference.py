"""Inference: the decoder swap D_B(E_A(x)) and Deep-WB's post-fit.

Inference maps A -> B as D_B(E_A(x)), then applies the post-fit of Afifi's
Deep-WB (the paper's "inference post-processing used in [9]"): the network
runs on a downsampled copy (longer side at most
`config.inference.postfit_size`, `network_size`), a 16-term kernelP
polynomial is fitted by least squares from that input to the network's
output, and the polynomial is applied to the full-resolution input (clipped
to [0, 1], `apply_postfit`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax import baselines, models
from rawjax.isp import color
from rawjax.methods.raw2raw_semi import config as config_lib

__all__ = [
    'apply_postfit', 'camera_params', 'network_size', 'resize',
    'sample_images', 'swap', 'translate',
]


def network_size(height: int, width: int, *, max_side: int,
                 multiple: int) -> tuple[int, int]:
  """Where the network runs: longer side <= max_side, sides multiples.

  Images larger than `max_side` are scaled down (aspect kept); each side is
  then rounded to the nearest multiple of `multiple` (at least one).
  """
  scale = min(1.0, max_side / max(height, width)) if max_side > 0 else 1.0
  # Halves round up (Python's round() would send 2.5 to 2).
  return tuple(max(multiple, int(s * scale / multiple + 0.5) * multiple)
               for s in (height, width))


@functools.partial(jax.jit, static_argnames=('model',))
def swap(model: models.UNet, source_params: Any, target_params: Any,
         images: jax.Array) -> jax.Array:
  """D_target(E_source(images)): (N, h, w, C), h and w multiples of 2**L."""
  features = model.apply({'params': source_params}, images, method='encode')
  return model.apply({'params': target_params}, features, method='decode')


@functools.partial(jax.jit, static_argnames=('size',))
def resize(image: jax.Array, size: tuple[int, int]) -> jax.Array:
  """(h, w, C) -> (size[0], size[1], C), bilinear with antialiasing."""
  return jax.image.resize(image, (*size, image.shape[-1]), method='linear',
                          antialias=True)


@functools.partial(jax.jit, static_argnames=('kernel',))
def apply_postfit(small_input: Any, small_output: Any, image: Any, *,
                  kernel: str = 'raw2raw16') -> jax.Array:
  """Deep-WB's post-processing: a polynomial fitted small, applied large.

  Args:
    small_input: (h, w, 4) the (downsampled) image the network saw.
    small_output: (h, w, 4) the network's output for it (unclipped).
    image: (H, W, 4) the full-resolution input.
    kernel: the polynomial kernel (default Afifi's 16-term kernelP; its
      constant term plays the role of sklearn's intercept in Deep-WB).

  Returns:
    (H, W, 4) kernel(image) @ M clipped to [0, 1], M the least-squares fit
    of kernel(small_input) @ M = small_output.
  """
  matrix = baselines.fit_image_mapping(small_input, small_output,
                                       kernel=kernel, channels=4)
  return baselines.apply_mapping(image, matrix, kernel=kernel, clip=True)


def translate(model: models.UNet, source_params: Any, target_params: Any,
              image: Any, *, postfit: bool = True, postfit_size: int = 656,
              kernel: str = 'raw2raw16') -> np.ndarray:
  """Maps one packed raw image to the other camera: D_target(E_source(x)).

  Args:
    model: the U-Net both parameter sets belong to.
    source_params, target_params: the source camera's network (its encoder
      is used) and the target camera's (its decoder).
    image: (h, w, 4) packed raw in [0, 1], any size.
    postfit: Deep-WB's post-processing: run the network at
      `network_size(h, w, max_side=postfit_size)` (bilinear, antialiased
      resize), fit `kernel` by least squares from that input to the network
      output, apply it to the full-resolution image. False: run the network
      at full resolution (reflect-padded to a multiple of 2**levels).
    postfit_size: longest side the network sees with `postfit`.
    kernel: the polynomial (`rawjax.isp.polynomial` name), Afifi's kernelP.

  Returns:
    (h, w, 4) float32 in [0, 1].
  """
  image = jnp.asarray(image, jnp.float32)
  if image.ndim != 3 or image.shape[-1] != model.in_channels:
    raise ValueError(f'translate: expected (h, w, {model.in_channels}) '
                     f'packed raw, got shape {image.shape}.')
  h, w = image.shape[:2]
  multiple = 2**model.levels
  if postfit:
    size = network_size(h, w, max_side=postfit_size, multiple=multiple)
    small = image if size == (h, w) else resize(image, size)
    output = swap(model, source_params, target_params, small[None])[0]
    return np.asarray(apply_postfit(small, output, image, kernel=kernel))
  pad_h, pad_w = (-h) % multiple, (-w) % multiple
  padded = jnp.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode='reflect')
  output = swap(model, source_params, target_params, padded[None])[0]
  return np.asarray(jnp.clip(output[:h, :w], 0.0, 1.0))


def camera_params(state: Mapping[str, Any]) -> tuple[Any, Any]:
  """(camera A's, camera B's) network parameters of a (host) state."""
  params = jax.tree.map(jnp.asarray, state['params'])
  return params['camera_a'], params['camera_b']


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """Anchor patches mapped A -> B by the decoder swap (no post-fit).

  Returns:
    {'anchor_a', 'a_to_b', 'anchor_b'}: (N, p, p, 3) in the papers' raw
    visualisation (`rawjax.isp.visualize_raw`), N <= 4.
  """
  model = config_lib.model(config)
  params_a, params_b = camera_params(state)
  source = np.asarray(batch['anchor_a'])
  target = np.asarray(batch['anchor_b'])
  source = source.reshape(-1, *source.shape[-3:])[:4]
  target = target.reshape(-1, *target.shape[-3:])[:4]
  mapped = swap(model, params_a, params_b, jnp.asarray(source))
  show = lambda x: np.asarray(color.visualize_raw(x))  # noqa: E731
  return {'anchor_a': show(source), 'a_to_b': show(mapped),
          'anchor_b': show(target)}
