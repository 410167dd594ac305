"""Random state dicts in the PyTorch references' layout, built without torch.

The checkpoint converters' key and shape checks run on these where torch is
not installed: one normal draw per parameter of a Flax template, under the
key `rawjax.convert.flax_to_torch_key` gives it and in torch's shape.
"""

import jax
import numpy as np

from rawjax import convert


def random_state_dict(template, *, seed, per_channel=()):
  """{torch key: float32 normal draws} for every leaf of `template`.

  Args:
    template: Flax parameters (arrays or shape structs).
    seed: the numpy generator's seed; leaves are drawn in tree order.
    per_channel: leaf names torch stores as (1, C, 1, 1) (NAFNet's beta
      and gamma), not as Flax's (C,).

  Returns:
    The state dict; 4-D (HWIO) kernels are torch's (O, I, H, W).
  """
  rng = np.random.default_rng(seed)
  state = {}
  for keypath, leaf in jax.tree_util.tree_leaves_with_path(template):
    path = tuple(k.key for k in keypath)
    shape = leaf.shape
    if len(shape) == 4:
      shape = (shape[3], shape[2], shape[0], shape[1])
    elif path[-1] in per_channel:
      shape = (1, shape[0], 1, 1)
    state[convert.flax_to_torch_key(path)] = rng.normal(size=shape).astype(
        np.float32)
  return state
