"""The global colour mapping (GCM) module of Zhang et al. (ICCV 2021), eq. 2.

y_tilde = C(x_hat, y, tau): a pixel-wise mapping of the demosaicked raw x_hat
towards the colours of the target sRGB y, used only in training to make the
optical flow between y_tilde and y reliable. As in the released code
(`zrrjoint_model.GCMModel`, `--gcm_coord True`):

    xg       = x_hat ** (1/2.2)                     (gamma inside the module)
    GuideNet : concat(xg, y, tau) (8 ch) -> conv7x7 s2 p0 (32) -> ReLU
               -> conv3x3 p1 (32) -> ReLU -> conv3x3 p1 (32)
               -> global average pool -> conv1x1 (64)       g: (N, 1, 1, 64)
    SPN      : f = ReLU(conv1x1(concat(xg, tau)) (5 -> 64))
               f = f * g + f                     (= f (1 + g), applied once)
               f = [conv1x1 (64) -> ReLU] x 3
               y_tilde = conv1x1 (64 -> 3)(f) + xg   (residual in gamma space)

All convs have biases; no activation on g and no additive shift. 46,243
parameters with coordinates (GuideNet 33,184, SPN 13,059); without them
(`coord=False`) the inputs have 6 and 3 channels. The DSLR guide y is not
gamma-corrected. The paper's Table A prints the GuideNet's first conv
output as 222x222 for a 448 input; the code's 7x7 stride-2 unpadded conv
gives 221x221 (the global pooling makes this immaterial).

Parameter names follow the reference's state-dict keys (`guide_net.0.0` ->
'guide_net_0_0', ..., `align_tail` -> 'align_tail'), see `rawjax.convert`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import layers
from rawjax.models.liteisp import input_gamma

__all__ = ['GCM']


class GCM(nn.Module):
  """GCM: (demosaic (N, H, W, 3), target (N, H, W, 3), coord) -> (N, H, W, 3).

  Attributes:
    guide_features: GuideNet width (32).
    features: SPN width and guidance length (64).
    coord: feed the coordinate map tau to both branches (the released model).
    gamma: exponent applied to the demosaic inside the module (1/2.2).

  Call: `apply(variables, demosaic, target, coord=None)`; demosaic is the
  bilinear demosaic of the normalised raw (linear, about [0, 1]); target the
  DSLR sRGB in [0, 1]; coord (N, H, W, 2) or (H, W, 2) pixel-centre
  coordinates in [-1, 1] (required when `coord=True`; ZRR augments it with
  the images). Returns y_tilde, not clamped.
  """
  guide_features: int = 32
  features: int = 64
  coord: bool = True
  gamma: float = 1.0 / 2.2

  @nn.compact
  def __call__(self, demosaic: jax.Array, target: jax.Array,
               coord: jax.Array | None = None) -> jax.Array:
    if demosaic.ndim != 4 or demosaic.shape[-1] != 3:
      raise ValueError(f'GCM: expected a demosaic (N, H, W, 3), got shape '
                       f'{demosaic.shape}.')
    if target.shape != demosaic.shape:
      raise ValueError(f'GCM: target shape {target.shape} differs from the '
                       f'demosaic {demosaic.shape}.')
    n, h, w, _ = demosaic.shape
    if min(h, w) < 7:
      raise ValueError(f'GCM: images must be at least 7x7 (GuideNet 7x7 '
                       f'conv), got {h}x{w}.')
    # Exactly 0 at 0, as the reference's torch.pow (input_gamma).
    xg = demosaic if self.gamma == 1.0 else input_gamma(demosaic, self.gamma)
    guide_in, base_in = [xg, target], [xg]
    if self.coord:
      if coord is None:
        raise ValueError('GCM: coord=True needs the coordinate map '
                         '(N, H, W, 2).')
      coord = jnp.broadcast_to(jnp.asarray(coord, xg.dtype), (n, h, w, 2))
      guide_in.append(coord)
      base_in.append(coord)
    g = jnp.concatenate(guide_in, axis=-1)
    g = nn.relu(layers.Conv(self.guide_features, kernel_size=7, strides=2,
                            padding=0, name='guide_net_0_0')(g))
    g = nn.relu(layers.Conv(self.guide_features, kernel_size=3, padding=1,
                            name='guide_net_1_0')(g))
    g = layers.Conv(self.guide_features, kernel_size=3, padding=1,
                    name='guide_net_1_2')(g)
    g = jnp.mean(g, axis=(1, 2), keepdims=True)
    g = layers.Conv(self.features, kernel_size=1, name='guide_net_3')(g)

    f = jnp.concatenate(base_in, axis=-1)
    f = nn.relu(layers.Conv(self.features, kernel_size=1,
                            name='align_head_0')(f))
    f = f * g + f
    for k in (0, 2, 4):
      f = nn.relu(layers.Conv(self.features, kernel_size=1,
                              name=f'align_base_{k}')(f))
    return layers.Conv(3, kernel_size=1, name='align_tail')(f) + xg
