"""PQDynamicISP's parameter network: a learnable ISP f_ISP (SemiISP eq. 3).

The network is an encoder that looks at a resized copy of the input and
predicts the parameters of the PQDynamicISP function family
(`rawjax.isp.pqdynamic`: CC, GA, GM, CS and, for image enhancement, IT):

    P = DNN(Resize(I_R)),   I_S = f_ISP(I_R; P)      (SemiISP eqs. 1-3)

Two variants (the paper's):
  * 'global': one parameter set per image. The encoder's features are
    averaged over space and a dense layer gives (N, 36) (45 with IT)
    unconstrained values.
  * 'local': a coarse grid of parameter sets (`grid` x `grid` regions).
    The features are average-pooled to the grid and a 1x1 convolution gives
    (N, g, g, 36); the unconstrained values are bilinearly interpolated to
    every pixel (`jax.image.resize`, 'linear', half-pixel centres) and then
    mapped into the parameter ranges per pixel, so every pixel's parameters
    are valid and the output is continuous across region borders.

Unconstrained values go through `pqdynamic.params_from_unconstrained` (the
documented range maps), so the network cannot leave the ranges the inverse
LUTs cover. The head is initialised to zero: at step 0 the ISP is the
identity colour matrix with mid-range curves, whatever the trunk does.

Encoder (our choice; the paper gives no architecture in our copy): bilinear
antialiased resize to `resize` x `resize`, then `depth` blocks of a 3x3
stride-2 convolution + LeakyReLU(0.2) (widths `features * 2**min(k, 2)`),
then the head. Convolutions use PyTorch's default initialisation
(`rawjax.models.layers.Conv`).

Inputs: (N, H, W, 3) images in [0, 1]: demosaicked linear camera RGB for
the ISP task, low-light sRGB for enhancement. Outputs of `__call__`:
(N, H, W, 3) in [0, 1].
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.isp import pqdynamic
from rawjax.models import layers

__all__ = ['PQDynamicNet', 'VARIANTS', 'interpolate_grid']

VARIANTS = ('global', 'local')


def interpolate_grid(z: jax.Array, height: int, width: int) -> jax.Array:
  """(..., g, g, P) region values -> (..., H, W, P), bilinear.

  Half-pixel centres (as `jax.image.resize` 'linear' without antialiasing,
  which only matters when shrinking): region centres sit at the centres of
  the H/g x W/g blocks; values are held constant beyond the outer centres.
  """
  lead = z.shape[:-3]
  return jax.image.resize(z, (*lead, height, width, z.shape[-1]),
                          method='linear', antialias=False)


class PQDynamicNet(nn.Module):
  """The PQDynamicISP encoder and its function family (see module doc).

  Attributes:
    variant: 'global' (one parameter set per image) or 'local' (a grid).
    features: width of the first encoder block.
    depth: stride-2 blocks (the resized input shrinks by 2**depth).
    resize: side of the square the input is resized to (the paper's
      Resize(I_R)); a multiple of 2**depth.
    grid: regions per side for the 'local' variant.
    with_itm: prepend the inverse tone map f_IT (image enhancement, 45
      parameters instead of 36).
    ranges: the parameter ranges (`pqdynamic.ParamRanges`).
  """
  variant: str = 'global'
  features: int = 16
  depth: int = 4
  resize: int = 128
  grid: int = 4
  with_itm: bool = False
  ranges: pqdynamic.ParamRanges = pqdynamic.DEFAULT_RANGES

  @property
  def num_params(self) -> int:
    return (pqdynamic.NUM_PARAMS_WITH_ITM if self.with_itm
            else pqdynamic.NUM_PARAMS)

  def _check(self, x: jax.Array) -> None:
    if self.variant not in VARIANTS:
      raise ValueError(f'PQDynamicNet: variant must be one of {VARIANTS}, '
                       f'got {self.variant!r}.')
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'PQDynamicNet: expected (N, H, W, 3) images, got '
                       f'shape {x.shape}.')
    if self.resize % 2**self.depth or self.resize < 2**self.depth:
      raise ValueError(f'PQDynamicNet: resize={self.resize} must be a '
                       f'positive multiple of 2**depth = {2**self.depth}.')
    side = self.resize // 2**self.depth
    if self.variant == 'local' and (self.grid < 1 or side % self.grid):
      raise ValueError(f'PQDynamicNet: the encoder output ({side}x{side}) '
                       f'must split into grid={self.grid} regions per side.')

  @nn.compact
  def predict(self, x: jax.Array) -> jax.Array:
    """Unconstrained parameters z: (N, P) global or (N, g, g, P) local."""
    self._check(x)
    n = x.shape[0]
    y = jax.image.resize(x, (n, self.resize, self.resize, 3), method='linear',
                         antialias=True)
    for k in range(self.depth):
      y = layers.Conv(self.features * 2**min(k, 2), 3, strides=2, padding=1,
                      name=f'block_{k}')(y)
      y = nn.leaky_relu(y, 0.2)
    # Zero head: z = 0 is the identity matrix and mid-range curves.
    head = _ZeroConv1x1(self.num_params, name='head')
    if self.variant == 'global':
      return head(jnp.mean(y, axis=(1, 2), keepdims=True))[:, 0, 0]
    side = y.shape[1]
    cell = side // self.grid
    pooled = y.reshape(n, self.grid, cell, self.grid, cell,
                       y.shape[-1]).mean(axis=(2, 4))
    return head(pooled)

  def to_params(self, z: jax.Array, height: int, width: int
                ) -> pqdynamic.ISPParams:
    """`ISPParams` for (N, H, W) images from `predict`'s z.

    Global: (N, 3) leaves, (N, 3, 3) matrix. Local: per pixel, (N, H, W, 3)
    leaves and (N, H, W, 3, 3) matrices (use `per_pixel=True`).
    """
    if self.variant == 'local':
      z = interpolate_grid(z, height, width)
    return pqdynamic.params_from_unconstrained(z, ranges=self.ranges)

  def render(self, x: jax.Array, z: jax.Array) -> jax.Array:
    """f_ISP(x; P(z)): (N, H, W, 3) in [0, 1]."""
    params = self.to_params(z, x.shape[1], x.shape[2])
    return pqdynamic.isp_forward(x, params,
                                 per_pixel=self.variant == 'local')

  def __call__(self, x: jax.Array) -> jax.Array:
    """(N, H, W, 3) in [0, 1] -> f_ISP output (N, H, W, 3) in [0, 1]."""
    return self.render(x, self.predict(x))


class _ZeroConv1x1(nn.Module):
  """A 1x1 convolution whose kernel and bias start at zero."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.zeros,
                        (x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,),
                      jnp.float32)
    return jnp.einsum('...c,cp->...p', x, kernel) + bias
