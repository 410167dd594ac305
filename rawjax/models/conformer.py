"""The modified Conformer backbone of CSTPP (Xie et al., ACM MM 2024).

Conformer (Peng et al., ICCV 2021) runs a CNN branch and a ViT branch side by
side and couples them at every block with feature coupling units (FCU).
CSTPP's official generator (`ydxxxx/Unsupervised-Raw-to-raw-Mapping`,
`generator.py`) changes it to a dense per-token regressor; this module is
that backbone, NHWC, up to the token features (the head and the colour
transform are in `rawjax.models.cstpp`):

    x (B, H, W, C), H and W multiples of 32
    stem:   conv7x7/s2/p3 (no bias) -> BN(1e-5) -> ReLU -> maxpool 2x2   1/4
    conv_1: ConvBlock(stem -> c1, residual conv)                          1/4
    trans_patch_conv: conv4x4/s4 (bias) on the stem output -> tokens      1/16
    trans_1: ViT block (no cls token)
    conv_trans_2 .. conv_trans_depth: ConvTransBlock, three stages of
      depth // 3 blocks (the first stage has one fewer: trans_1 is its
      first), channels c1, 2 c1, 4 c1, the first block of stages 2 and 3
      with stride 2 and a residual conv, FCU strides 4, 2, 1; the last
      block's fusion ConvBlock has stride 2 (its output is unused, as in
      the official code)
    -> tokens (B, H/16, W/16, embed_dim)

with c1 = base_channels * channel_ratio (32 * 2 = 64: "base channels 32
rising to 256"). Differences from Conformer (spec section 1.2): 2x2 max
pool instead of 3x3/s2/p1, no cls token (so FCUDown adds no cls token and
FCUUp drops none), qkv without bias, all dropout and drop-path rates 0,
regression on all tokens. The convolutional branch's own output is
computed but never used: the CNN influences the result only through the
FCUDown couplings, exactly as the official generator.

Layer details: ConvBlock = 1x1 -> BN -> ReLU -> 3x3 (stride, + coupled
feature before it) -> BN -> ReLU (x2) -> 1x1 -> BN, plus identity or
1x1-conv + BN residual, ReLU; BN eps 1e-6, LayerNorm eps 1e-6 in the ViT
blocks and FCUDown; exact (erf) GELU; FCUDown = 1x1 conv -> avg pool ->
LayerNorm -> GELU; FCUUp = 1x1 conv -> BN -> ReLU -> nearest upsampling
(`jnp.repeat`). The 3x3 convolutions are dense (groups = 1), so no grouped
or depthwise convolution is needed.

Initialisation as Conformer's `_init_weights`: Linear N(0, 0.02) (timm's
trunc_normal_ with absolute bounds +-2 is untruncated at std 0.02) with
zero bias; Conv weights Kaiming normal (fan_out, ReLU gain); conv biases
PyTorch's default U(+-1/sqrt(fan_in)); Norm scale 1, bias 0.

BatchNorm: Flax momentum 0.9 = PyTorch momentum 0.1; Flax keeps the biased
running variance (PyTorch the unbiased one), a small train/eval difference.
`bn_axis_name` makes BatchNorm synchronous over a named mapped axis (the
statistics of the global batch, as the official single-GPU batch of 4).

Module names identify the normalisation layers for parameter sharing: every
BatchNorm is named `*bn*` (`stem_bn`, `bn1`, `residual_bn`, ...), every
LayerNorm `norm*` or `ln` (see `rawjax.models.cstpp.is_per_direction`).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from rawjax.models import layers

__all__ = [
    'Attention', 'ConformerBackbone', 'ConvBlock', 'ConvTransBlock',
    'FCUDown', 'FCUUp', 'TransformerBlock', 'conv_kernel_init',
    'linear_init',
]

# Conformer's _init_weights: kaiming_normal_(mode='fan_out', relu) for
# convolutions (untruncated normal, std sqrt(2 / fan_out)).
conv_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
linear_init = nn.initializers.normal(0.02)
_gelu = functools.partial(jax.nn.gelu, approximate=False)


def conv(features: int, kernel: int, *, in_features: int, stride: int = 1,
         padding: int = 0, use_bias: bool = False, name: str | None = None
         ) -> nn.Conv:
  """PyTorch `nn.Conv2d` with Conformer's initialisation, explicit padding."""
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((padding, padding), (padding, padding)),
                 use_bias=use_bias, kernel_init=conv_kernel_init,
                 bias_init=layers.torch_bias_init(in_features * kernel *
                                                  kernel),
                 name=name)


def dense(features: int, *, use_bias: bool = True,
          name: str | None = None) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=linear_init,
                  bias_init=nn.initializers.zeros, name=name)


def batch_norm(*, train: bool, epsilon: float, axis_name: str | None,
               name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=epsilon, axis_name=axis_name if train else None,
                      name=name)


class ConvBlock(nn.Module):
  """Conformer's bottleneck block (expansion 4), NHWC.

  `__call__(x, x_t=None, *, train)` -> (out, x2): out (B, H/s, W/s,
  features); x2 the 3x3 conv's activated output (B, H/s, W/s, features/4),
  which FCUDown reads. `x_t` (B, H/s, W/s, features/4), if given, is added
  to the input of the 3x3 convolution (the fusion path).
  """
  features: int
  stride: int = 1
  res_conv: bool = False
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x, x_t=None, *, train: bool):
    med = self.features // 4
    bn = functools.partial(batch_norm, train=train, epsilon=1e-6,
                           axis_name=self.bn_axis_name)
    c_in = x.shape[-1]
    residual = x
    h = conv(med, 1, in_features=c_in, name='conv1')(x)
    h = nn.relu(bn(name='bn1')(h))
    if x_t is not None:
      h = h + x_t
    h = conv(med, 3, in_features=med, stride=self.stride, padding=1,
             name='conv2')(h)
    x2 = nn.relu(bn(name='bn2')(h))
    h = conv(self.features, 1, in_features=med, name='conv3')(x2)
    h = bn(name='bn3')(h)
    if self.res_conv:
      residual = conv(self.features, 1, in_features=c_in, stride=self.stride,
                      name='residual_conv')(residual)
      residual = bn(name='residual_bn')(residual)
    return nn.relu(h + residual), x2


class Attention(nn.Module):
  """Multi-head self-attention, qkv without bias (CSTPP), proj with bias."""
  num_heads: int
  qkv_bias: bool = False

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    head_dim = d // self.num_heads
    qkv = dense(3 * d, use_bias=self.qkv_bias, name='qkv')(x)
    # PyTorch's reshape(B, N, 3, heads, head_dim): the weight layout of a
    # converted checkpoint.
    qkv = qkv.reshape(b, n, 3, self.num_heads, head_dim)
    q, k, v = (jnp.moveaxis(qkv[:, :, i], 2, 1) for i in range(3))
    logits = jnp.einsum('bhnd,bhmd->bhnm', q, k) * head_dim**-0.5
    attention = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum('bhnm,bhmd->bhnd', attention, v)
    out = jnp.moveaxis(out, 1, 2).reshape(b, n, d)
    return dense(d, name='proj')(out)


class TransformerBlock(nn.Module):
  """Pre-norm ViT block: x + Attn(LN(x)), then x + MLP(LN(x)); (B, N, D)."""
  num_heads: int
  mlp_ratio: float = 4.0
  qkv_bias: bool = False

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    x = x + Attention(self.num_heads, self.qkv_bias, name='attn')(
        nn.LayerNorm(epsilon=1e-6, name='norm1')(x))
    h = nn.LayerNorm(epsilon=1e-6, name='norm2')(x)
    h = _gelu(dense(int(d * self.mlp_ratio), name='fc1')(h))
    return x + dense(d, name='fc2')(h)


def _avg_pool(x, stride: int):
  if stride == 1:
    return x
  b, h, w, c = x.shape
  return x.reshape(b, h // stride, stride, w // stride, stride, c).mean(
      axis=(2, 4))


class FCUDown(nn.Module):
  """CNN -> tokens: 1x1 conv, avg pool by `stride`, LayerNorm, GELU.

  (B, H, W, C) -> (B, H/stride * W/stride, embed_dim), row-major tokens.
  """
  embed_dim: int
  stride: int

  @nn.compact
  def __call__(self, x):
    x = conv(self.embed_dim, 1, in_features=x.shape[-1], use_bias=True,
             name='conv_project')(x)
    x = _avg_pool(x, self.stride)
    b, h, w, d = x.shape
    x = nn.LayerNorm(epsilon=1e-6, name='ln')(x.reshape(b, h * w, d))
    return _gelu(x)


class FCUUp(nn.Module):
  """Tokens -> CNN: 1x1 conv, BN, ReLU, nearest upsampling by `stride`.

  (B, h * w, D) with the grid (h, w) -> (B, h * stride, w * stride, C).
  """
  features: int
  stride: int
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, tokens, grid: tuple[int, int], *, train: bool):
    b, _, d = tokens.shape
    x = tokens.reshape(b, grid[0], grid[1], d)
    x = conv(self.features, 1, in_features=d, use_bias=True,
             name='conv_project')(x)
    x = batch_norm(train=train, epsilon=1e-6, axis_name=self.bn_axis_name,
                   name='bn')(x)
    x = nn.relu(x)
    if self.stride > 1:
      x = jnp.repeat(jnp.repeat(x, self.stride, axis=1), self.stride, axis=2)
    return x


class ConvTransBlock(nn.Module):
  """One coupled stage block: ConvBlock, FCUDown + ViT block, FCUUp, fusion.

  `__call__(x, tokens, *, train)` -> (x, tokens). The coupled tokens are
  the element-wise sum of FCUDown(x2) and the incoming tokens.
  """
  features: int
  stride: int
  res_conv: bool
  dw_stride: int
  embed_dim: int
  num_heads: int
  mlp_ratio: float = 4.0
  qkv_bias: bool = False
  last_fusion: bool = False
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x, tokens, *, train: bool):
    x, x2 = ConvBlock(self.features, self.stride, self.res_conv,
                      self.bn_axis_name, name='cnn_block')(x, train=train)
    h2, w2 = x2.shape[1:3]
    x_st = FCUDown(self.embed_dim, self.dw_stride, name='squeeze_block')(x2)
    tokens = TransformerBlock(self.num_heads, self.mlp_ratio, self.qkv_bias,
                              name='trans_block')(x_st + tokens)
    x_t_r = FCUUp(self.features // 4, self.dw_stride, self.bn_axis_name,
                  name='expand_block')(
                      tokens, (h2 // self.dw_stride, w2 // self.dw_stride),
                      train=train)
    if self.last_fusion:
      fusion = ConvBlock(self.features, 2, True, self.bn_axis_name,
                         name='fusion_block')
    else:
      fusion = ConvBlock(self.features, 1, False, self.bn_axis_name,
                         name='fusion_block')
    x, _ = fusion(x, x_t_r, train=train)
    return x, tokens


class ConformerBackbone(nn.Module):
  """CSTPP's Conformer feature extractor (see the module docstring).

  Attributes:
    patch_size: token size in input pixels; 16 (the FCU strides 4, 2, 1
      are patch_size / 4, / 8, / 16).
    base_channels, channel_ratio: stage-1 width = their product (32 * 2).
    stem_channels: the stem's width (64, hard-coded in the official code).
    embed_dim, depth, num_heads, mlp_ratio, qkv_bias: the ViT branch.
    bn_axis_name: synchronous BatchNorm over this mapped axis in training.

  `__call__(x, *, train)`: x (B, H, W, C) with H, W multiples of
  2 * patch_size; returns tokens (B, H / patch_size, W / patch_size,
  embed_dim) (before the final LayerNorm, which the CSTPP head owns).
  """
  patch_size: int = 16
  base_channels: int = 32
  channel_ratio: int = 2
  stem_channels: int = 64
  embed_dim: int = 256
  depth: int = 6
  num_heads: int = 4
  mlp_ratio: float = 4.0
  qkv_bias: bool = False
  bn_axis_name: str | None = None

  def check(self, x) -> None:
    if self.patch_size != 16:
      raise ValueError(f'ConformerBackbone: patch_size must be 16 (the FCU '
                       f'strides are 4, 2, 1), got {self.patch_size}.')
    if self.depth < 3 or self.depth % 3:
      raise ValueError(f'ConformerBackbone: depth must be a positive '
                       f'multiple of 3 (three stages), got {self.depth}.')
    if self.embed_dim % self.num_heads:
      raise ValueError(f'ConformerBackbone: embed_dim={self.embed_dim} is not '
                       f'divisible by num_heads={self.num_heads}.')
    if (self.base_channels * self.channel_ratio) % 4:
      raise ValueError('ConformerBackbone: base_channels * channel_ratio '
                       'must be a multiple of 4 (bottleneck expansion).')
    if x.ndim != 4:
      raise ValueError(f'ConformerBackbone: expected (B, H, W, C) input, got '
                       f'shape {x.shape}.')
    h, w = x.shape[1:3]
    multiple = 2 * self.patch_size
    if h % multiple or w % multiple or not h or not w:
      raise ValueError(f'ConformerBackbone: H and W must be positive '
                       f'multiples of {multiple}, got {h}x{w}; pad the input '
                       '(the CSTPP generator does).')

  @nn.compact
  def __call__(self, x, *, train: bool):
    self.check(x)
    ax = self.bn_axis_name
    c_in = x.shape[-1]
    x = conv(self.stem_channels, 7, in_features=c_in, stride=2, padding=3,
             name='conv1')(x)
    x = nn.relu(batch_norm(train=train, epsilon=1e-5, axis_name=ax,
                           name='stem_bn')(x))
    x_base = layers.max_pool_2x2(x)
    stage1 = self.base_channels * self.channel_ratio
    x, _ = ConvBlock(stage1, 1, True, ax, name='conv_1')(x_base, train=train)
    dw = self.patch_size // 4
    tokens = conv(self.embed_dim, dw, in_features=self.stem_channels,
                  stride=dw, use_bias=True, name='trans_patch_conv')(x_base)
    b, nh, nw, d = tokens.shape
    tokens = tokens.reshape(b, nh * nw, d)
    tokens = TransformerBlock(self.num_heads, self.mlp_ratio, self.qkv_bias,
                              name='trans_1')(tokens)
    per_stage = self.depth // 3
    block = functools.partial(ConvTransBlock, embed_dim=self.embed_dim,
                              num_heads=self.num_heads,
                              mlp_ratio=self.mlp_ratio,
                              qkv_bias=self.qkv_bias, bn_axis_name=ax)
    features = stage1
    for i in range(2, self.depth + 1):
      stage = (i - 1) // per_stage  # 0, 1, 2
      first_of_stage = stage > 0 and (i - 1) % per_stage == 0
      stride, res_conv = (2, True) if first_of_stage else (1, False)
      features = stage1 * 2**stage
      x, tokens = block(features=features, stride=stride, res_conv=res_conv,
                        dw_stride=dw // 2**stage,
                        last_fusion=i == self.depth,
                        name=f'conv_trans_{i}')(x, tokens, train=train)
    return tokens.reshape(b, nh, nw, d)
