"""2-D convolution whose weight gradient XLA's CPU backend computes fast.

`conv2d` is `lax.conv_general_dilated` (NHWC input, HWIO kernel) with one
change on CPU: the kernel's gradient. XLA's CPU backward-filter convolution
runs 3-7x slower than PyTorch's on the convolutions of these networks (at
224x224, 64 -> 64, batch 2: 0.22 s against 0.047 s), while the forward
and the input gradient are on par. Here the weight gradient

    dW[a, b, i, o] = sum_{n, y, x} xpad[n, s*y + d*a, s*x + d*b, i] dy[n, y, x, o]

is computed in bands of output rows: each band's taps are gathered into a
small (rows * W' * N, kh * kw * C_in) patch matrix that stays in cache and
multiplied by the band's (rows * W' * N, C_out) output gradient, the products
summed over the bands in a `fori_loop`. It is the same sum as im2col, but
without materialising the full patch matrix (kh * kw times the input), which
is what made whole-image im2col slower than XLA's own.

The input gradient stays XLA's own transposed convolution. The weight
gradient is XLA's too where XLA does well: on other backends (GPU, TPU,
whose convolution libraries are fast; `lax.platform_dependent` picks the
banded form on CPU only) and on small outputs. Measured side by side on the
2-core CPU (benchmarks/conv_grad.py, batch 2, 3x3): at 224x224 the banded
form is 2.8-11x faster than XLA's (64 -> 64, 66 -> 66, 64 -> 256) and on par
with PyTorch; at 112x112 and below XLA's is up to 2x faster than the banded
one. Hence `BANDED_MIN_PIXELS`: the banded form serves outputs of at least
N * H' * W' = 65,536 pixels (batch 2 at about 181x181).
1x1 stride-1 kernels are one matrix product over the pixels
(`_pointwise`), forward and backward, which XLA's CPU backend runs ~3x
faster than its 1x1 convolution. Other forward values are bit-identical to
`lax.conv_general_dilated`; all values and gradients equal it and
`jax.grad` of it to float32 rounding (tests/models/test_conv.py,
1e-5 relative). The custom VJP supports reverse mode (grad, vjp) and vmap;
forward-mode differentiation (jvp, jacfwd) of a `conv2d` is not available.

Benchmarks: benchmarks/conv_grad.py (per-shape dW beside XLA's and
PyTorch's).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ['conv2d', 'weight_gradient']

_DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')

# Bytes of one band's patch matrix: about L2-cache size, so that a band's
# patches, read once by the GEMM, are still in cache (tuned on the 2-core
# CI machine, benchmarks/conv_grad.py).
BAND_BYTES = 2 * 2**20

# Below this many output pixels (N * H' * W') XLA's own weight gradient is
# as fast or faster on CPU (see the module docstring).
BANDED_MIN_PIXELS = 65536

Padding = tuple[tuple[int, int], tuple[int, int]]


def _plain(x, kernel, strides, padding, dilation):
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=strides, padding=padding,
      rhs_dilation=dilation, dimension_numbers=_DIMENSIONS)


def _band_rows(n: int, out_w: int, patch_features: int, out_h: int) -> int:
  per_row = n * out_w * patch_features * 4
  return int(max(1, min(out_h, BAND_BYTES // max(per_row, 1))))


def weight_gradient(x: jax.Array, dy: jax.Array, *,
                    kernel_shape: Sequence[int],
                    strides: tuple[int, int] = (1, 1),
                    padding: Padding = ((0, 0), (0, 0)),
                    dilation: tuple[int, int] = (1, 1)) -> jax.Array:
  """The kernel gradient of `conv2d`, in bands of output rows.

  Args:
    x: (N, H, W, C_in) the convolution's input.
    dy: (N, H', W', C_out) the gradient of its output.
    kernel_shape: (kh, kw, C_in, C_out).
    strides, padding, dilation: as the forward convolution (padding explicit
      ((top, bottom), (left, right))).

  Returns:
    (kh, kw, C_in, C_out), in x's dtype with float32 accumulation.
  """
  kh, kw, cin, cout = kernel_shape
  n, out_h, out_w, _ = dy.shape
  (sh, sw), (dh, dw) = strides, dilation
  if kh == kw == 1 and strides == (1, 1):
    xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    xp = xp[:, :out_h, :out_w, :]
    out = jnp.dot(xp.reshape(-1, cin).T, dy.reshape(-1, cout),
                  preferred_element_type=jnp.float32)
    return out.reshape(kernel_shape).astype(x.dtype)
  rows = _band_rows(n, out_w, kh * kw * cin, out_h)
  bands = -(-out_h // rows)
  # Zero output-gradient rows past the end contribute nothing; the input is
  # padded far enough that every band's slice is in range.
  dy = jnp.pad(dy, ((0, 0), (0, bands * rows - out_h), (0, 0), (0, 0)))
  span_h = (rows - 1) * sh + (kh - 1) * dh + 1
  need_h = (bands - 1) * rows * sh + span_h
  need_w = (out_w - 1) * sw + (kw - 1) * dw + 1
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  xp = jnp.pad(xp, ((0, 0), (0, max(0, need_h - xp.shape[1])),
                    (0, max(0, need_w - xp.shape[2])), (0, 0)))

  def band(index, total):
    top = index * rows
    xs = jax.lax.dynamic_slice_in_dim(xp, top * sh, span_h, axis=1)
    ds = jax.lax.dynamic_slice_in_dim(dy, top, rows, axis=1)
    taps = [xs[:, a * dh:a * dh + (rows - 1) * sh + 1:sh,
               b * dw:b * dw + (out_w - 1) * sw + 1:sw, :]
            for a in range(kh) for b in range(kw)]
    patches = jnp.concatenate(taps, axis=-1).reshape(-1, kh * kw * cin)
    return total + jnp.dot(patches.T, ds.reshape(-1, cout),
                           preferred_element_type=jnp.float32)

  total = jax.lax.fori_loop(0, bands, band,
                            jnp.zeros((kh * kw * cin, cout), jnp.float32))
  return total.reshape(kernel_shape).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, strides, padding, dilation):
  return _plain(x, kernel, strides, padding, dilation)


def _conv_fwd(x, kernel, strides, padding, dilation):
  return _plain(x, kernel, strides, padding, dilation), (x, kernel)


def _conv_bwd(strides, padding, dilation, residuals, dy):
  x, kernel = residuals
  _, input_vjp = jax.vjp(
      lambda a: _plain(a, kernel, strides, padding, dilation), x)
  (dx,) = input_vjp(dy)

  def xla_dw(x, dy):
    _, kernel_vjp = jax.vjp(
        lambda k: _plain(x, k, strides, padding, dilation), kernel)
    return kernel_vjp(dy)[0]

  n, out_h, out_w, _ = dy.shape
  if n * out_h * out_w < BANDED_MIN_PIXELS:
    dk = xla_dw(x, dy)
  else:
    banded_dw = functools.partial(weight_gradient, kernel_shape=kernel.shape,
                                  strides=strides, padding=padding,
                                  dilation=dilation)
    dk = jax.lax.platform_dependent(x, dy, cpu=banded_dw, default=xla_dw)
  return dx, dk.astype(kernel.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def _pair(value) -> tuple[int, int]:
  if isinstance(value, int):
    return value, value
  a, b = value
  return int(a), int(b)


def _explicit_padding(padding) -> Padding:
  if isinstance(padding, int):
    return (padding, padding), (padding, padding)
  first, second = padding
  if isinstance(first, int):
    return (first, first), (second, second)
  return (int(first[0]), int(first[1])), (int(second[0]), int(second[1]))


def conv2d(x: jax.Array, kernel: jax.Array, *,
           strides: int | Sequence[int] = 1,
           padding: int | Sequence[int] | Sequence[Sequence[int]] = 0,
           dilation: int | Sequence[int] = 1) -> jax.Array:
  """PyTorch's `F.conv2d` in NHWC / HWIO, with the fast CPU weight gradient.

  Args:
    x: (N, H, W, C_in) float.
    kernel: (kh, kw, C_in, C_out), in x's dtype.
    strides: int or (sh, sw).
    padding: zero padding: an int (all sides), (ph, pw) (both sides of each
      axis, as PyTorch), or ((top, bottom), (left, right)).
    dilation: int or (dh, dw), the kernel's dilation.

  Returns:
    (N, H', W', C_out), H' = (H + top + bottom - dh (kh - 1) - 1) // sh + 1.
  """
  if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(f'conv2d: expected x (N, H, W, C) and kernel (kh, kw, C, '
                     f'C_out) with the same C, got {tuple(x.shape)} and '
                     f'{tuple(kernel.shape)}.')
  strides, padding = _pair(strides), _explicit_padding(padding)
  if kernel.shape[:2] == (1, 1) and strides == (1, 1):
    return _pointwise(x, kernel, padding)
  return _conv(x, kernel, strides, padding, _pair(dilation))


def _pointwise(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
  """A 1x1 stride-1 convolution as one matrix product over the pixels.

  XLA's CPU convolution runs a 1x1 kernel about 3x slower than the same
  product as a dot (1 x 448 x 448 x 64 -> 64: 84 ms against 29 ms; PyTorch
  64 ms), and autodiff of the dot gives dot-shaped input and weight
  gradients; on other backends the dot is as good as the convolution.
  """
  if padding != ((0, 0), (0, 0)):
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  return jnp.einsum('nhwc,co->nhwo', x, kernel[0, 0])
