"""VGG-19 / VGG-16 features (torchvision's `vgg19` / `vgg16`, configurations
E / D, no BatchNorm).

Only the convolutional trunk is built, up to a named ReLU (the LiteISPNet
perceptual loss stops at relu5_4, the reference's 'relu_16': the last max
pool is excluded, output stride 16). Parameter names follow torchvision's
state-dict keys: `features.<i>.weight` -> 'features_<i>' / 'kernel', so
`rawjax.convert.convert_vgg19` maps a torchvision checkpoint one to one.

Inputs are (N, H, W, 3) RGB in [0, 1]; `normalize=True` applies the ImageNet
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) first, as the
reference's `normalize_batch`.

`VGG16` (SemiISP's perceptual loss, eq. 5, with VGG16) is the same trunk
with configuration D; its parameters use the same torchvision key scheme.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import layers

__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'VGG16', 'VGG16_CONFIG', 'VGG19',
           'VGG19_CONFIG', 'relu_names']

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision cfg 'E': conv widths, 'M' = 2x2 max pool.
VGG19_CONFIG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M',
                512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M')
# torchvision cfg 'D'.
VGG16_CONFIG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
                512, 512, 512, 'M', 512, 512, 512, 'M')


def relu_names(config=VGG19_CONFIG) -> dict[str, int]:
  """'relu<block>_<k>' -> index of that ReLU in torchvision's `features`."""
  names, index, block, k = {}, 0, 1, 0
  for v in config:
    if v == 'M':
      index += 1
      block, k = block + 1, 0
    else:
      k += 1
      names[f'relu{block}_{k}'] = index + 1
      index += 2
  return names


def _trunk(x: jax.Array, config, layer: str, normalize: bool,
           network: str) -> jax.Array:
  """The conv trunk of `config` up to ReLU `layer`, inside a compact module."""
  names = relu_names(config)
  if layer not in names:
    raise ValueError(f'{network}: unknown layer {layer!r}; one of '
                     f'{", ".join(names)}.')
  if x.shape[-1] != 3:
    raise ValueError(f'{network}: expected (N, H, W, 3) RGB, got {x.shape}.')
  stop = names[layer]
  if normalize:
    x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(
        IMAGENET_STD, x.dtype)
  index = 0
  for v in config:
    if v == 'M':
      x = layers.max_pool_2x2(x)
      index += 1
      continue
    x = layers.Conv(v, kernel_size=3, padding=1, name=f'features_{index}')(x)
    x = nn.relu(x)
    if index + 1 == stop:
      return x
    index += 2
  return x


class VGG19(nn.Module):
  """VGG-19 conv trunk up to `layer` (inclusive): (N, H, W, 3) -> features.

  Attributes:
    layer: the last ReLU kept, e.g. 'relu5_4' (LiteISPNet), 'relu2_2'.
    normalize: apply the ImageNet normalisation to [0, 1] inputs.
  """
  layer: str = 'relu5_4'
  normalize: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _trunk(x, VGG19_CONFIG, self.layer, self.normalize, 'VGG19')


class VGG16(nn.Module):
  """VGG-16 conv trunk up to `layer` (inclusive): (N, H, W, 3) -> features.

  Attributes:
    layer: the last ReLU kept, e.g. 'relu2_2' (Johnson et al.'s feature
      reconstruction layer), 'relu3_3', 'relu5_3'.
    normalize: apply the ImageNet normalisation to [0, 1] inputs.
  """
  layer: str = 'relu2_2'
  normalize: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _trunk(x, VGG16_CONFIG, self.layer, self.normalize, 'VGG16')
