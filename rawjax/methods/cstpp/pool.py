"""CycleGAN's history pool of generated images (ImagePool), as pure functions.

The discriminators see, besides real images, generated ones drawn from a
history of 50 (Shrivastava et al.), so they do not chase the latest
generator only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

__all__ = ['pool_init', 'pool_query']


def pool_init(size: int, image_shape: Sequence[int]) -> dict[str, jax.Array]:
  """An empty history pool of `size` images of `image_shape` (h, w, C).

  Returns:
    {'images': (size, h, w, C) float32 zeros, 'count': int32 0}.
  """
  return {'images': jnp.zeros((size, *image_shape), jnp.float32),
          'count': jnp.zeros((), jnp.int32)}


def pool_query(pool: Mapping[str, jax.Array], images: jax.Array,
               rng: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
  """CycleGAN's ImagePool.query, pure: (new pool, images for D).

  Per image in order: while the pool is not full, store it and return it;
  afterwards, with probability 1/2 return a random stored image and store
  the new one in its place, else return the new image. A pool of size 0
  returns the images.

  Args:
    pool: {'images': (S, h, w, C), 'count': int32 scalar}.
    images: (N, h, w, C) new generated images.
    rng: PRNG key.

  Returns:
    (the updated pool, (N, h, w, C) images for the discriminator).
  """
  size = pool['images'].shape[0]
  if size == 0:
    return dict(pool), images
  stored, count = pool['images'], pool['count']
  outputs = []
  for i, key in enumerate(jax.random.split(rng, images.shape[0])):
    image = images[i]
    key_coin, key_index = jax.random.split(key)
    filling = count < size
    swap = jnp.logical_and(~filling, jax.random.uniform(key_coin) > 0.5)
    index = jnp.where(filling, jnp.minimum(count, size - 1),
                      jax.random.randint(key_index, (), 0, size))
    old = stored[index]
    outputs.append(jnp.where(swap, old, image))
    write = jnp.logical_or(filling, swap)
    stored = stored.at[index].set(jnp.where(write, image, old))
    count = jnp.where(filling, count + 1, count)
  return {'images': stored, 'count': count}, jnp.stack(outputs)
