"""Running a trained generator: the channel view, eval-mode translation.

G_AB maps camera A's packed raw to camera B's (G_BA the reverse); at test
time BatchNorm uses its running statistics and the output is clipped to
[0, 1]. The generator pads any size to multiples of 32 M and crops back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rawjax.isp import color
from rawjax.methods.cstpp import config as config_lib
from rawjax.models import cstpp

__all__ = [
    'direction_variables', 'model_view', 'quantize', 'sample_images',
    'translate',
]


def quantize(x: Any, enabled: bool) -> Any:
  """The official loader's ToPILImage / ToTensor round trip (`enabled`):
  floor(255 clip(x, 0, 1)) / 255; else x unchanged."""
  return jnp.floor(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0 if enabled else x


def model_view(config, packed: Any) -> jax.Array:
  """Packed raw as the generator sees it: (R, Gr, Gb, B), or (R, G, B) with
  greens averaged for the 3-channel variant (model.in_channels = 3)."""
  x = jnp.asarray(packed, jnp.float32)
  return color.packed_to_rgb(x) if config.model.in_channels == 3 else x


@functools.partial(jax.jit, static_argnames=('model',))
def _generate(model, params, stats, images):
  return model.apply({'params': params, 'batch_stats': stats}, images,
                     train=False)


def direction_variables(state: Mapping[str, Any],
                        direction: str) -> tuple[Any, Any]:
  """(params, batch_stats) of one direction's generator from a state.

  Args:
    state: a (host) train state of the method.
    direction: 'a_to_b' (G_AB) or 'b_to_a' (G_BA).
  """
  split = jax.tree.map(jnp.asarray, state['params']['generator'])
  stats = jax.tree.map(jnp.asarray, state['batch_stats'][direction])
  return cstpp.merge_params(split, direction), stats


def translate(model: cstpp.CSTPPGenerator, params: Any, stats: Any,
              image: Any, *, clip: bool = True) -> np.ndarray:
  """One (h, w, C) or a batch (N, h, w, C) through a generator (eval mode).

  Any size (the generator pads to multiples of 32 M and crops). Returns
  numpy float32, clipped to [0, 1] unless `clip=False`.
  """
  image = jnp.asarray(image, jnp.float32)
  single = image.ndim == 3
  out = _generate(model, params, stats, image[None] if single else image)
  out = out[0] if single else out
  return np.asarray(jnp.clip(out, 0.0, 1.0) if clip else out)


def sample_images(config, state, batch) -> dict[str, np.ndarray]:
  """A -> B translations of the batch's A images (raw visualisation).

  Returns:
    {'a', 'a_to_b', 'b'}: (N, p, p, 3), N <= 4.
  """
  model = config_lib.generator_model(config)
  params, stats = direction_variables(state, 'a_to_b')
  a = np.asarray(batch['a']).reshape(-1, *np.shape(batch['a'])[-3:])[:4]
  b = np.asarray(batch['b']).reshape(-1, *np.shape(batch['b'])[-3:])[:4]
  mapped = translate(model, params, stats, model_view(config, a))
  if config.model.in_channels == 3:
    mapped = mapped[..., (0, 1, 1, 2)]  # packed layout for the display
  show = lambda x: np.asarray(color.visualize_raw(x))  # noqa: E731
  return {'a': show(a), 'a_to_b': show(mapped), 'b': show(b)}
