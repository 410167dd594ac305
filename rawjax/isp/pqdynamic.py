"""PQDynamicISP function family (Yoshimura et al.) with inverses, for SemiISP.

    f_ISP = f_CS . f_GM . f_GA . f_CC  [. f_IT]          (SemiISP eq. 3)
    f_ISP^-1 = [f_IT^-1 .] f_CC^-1 . f_GA^-1 . f_GM^-1 . f_CS^-1   (eq. 6)

colour correction (CC, a 3x3 matrix), gain (GA), gamma tone mapping (GM),
contrast stretcher (CS) and, for image enhancement, an inverse tone map (IT)
prepended. The paper's formulas (eqs. 16-22) are garbled in our copy, so the
curves are the forms chosen in `docs/pqdynamicisp.md`; each sits behind one
small function so a published form can replace it without touching callers:

  * CC (eqs. 4, 16, 17): out = M in, 9 free parameters; inverse M^-1.
  * GA and CS (eq. 18, "amplifies without overflow and without clipping"),
    per channel, gain g >= 1, knee t, softness s in (0, 1]:
        y = g x                                   for x <= x_k = t / g
        y = t + (1 - t) h(u),  u = (x - x_k) / (1 - x_k)   otherwise,
        h(u) = a u / (1 + (a^s - 1) u^s)^(1/s),   a = (g - t) / (1 - t),
    a generalised Moebius (Reinhard) roll-off: h(0) = 0, h(1) = 1, slope g
    at the knee (C1), monotone, y(1) = 1 (to an ulp); s = 1 is Reinhard, smaller
    s bends sharper after the knee and leaves a straighter shoulder. Inverse
    in closed form per piece: u = h / (1 + (a^s - 1)(1 - h^s))^(1/s).
  * GM (eqs. 20, 21), per channel, p_g1, p_g2 >= 1, k in [0, 1]:
        y = k x^(1/p_g1) + (1 - k) x^(1/p_g2),
    no closed-form inverse: a 4-D LUT (60 x 30 x 30 x 512, the paper's grid)
    over (p_g1, p_g2, k, sqrt(y)) storing x^E (see `_mixture_lut`), plus
    optional Newton steps.
  * IT (eq. 22), per channel, p3, p4 >= 1, k in [0, 1]:
        y = k x^p3 + (1 - k) x^p4   (the mirror of GM), inverse by its own LUT.

Every curve maps [0, 1] onto [0, 1], is increasing and continuous; inputs are
clamped to [0, 1] first (zero gradient outside).

Parameters: `ISPParams` holds per-function NamedTuples whose leaves are
(..., 3) per colour channel (the global variant) or (..., H, W, 3) per pixel
(`per_pixel=True`, the local variant after the network's interpolation); the
CC matrix is (..., 3, 3) or (..., H, W, 3, 3). Leading dims broadcast against
the image's, so one image with N parameter sets gives N outputs (SemiISP's
one-to-many sRGB-to-RAW). `params_from_unconstrained` maps a network's raw
outputs into the documented ranges (`ParamRanges`).

The LUT inverses take the table as an argument (`lut=` / `luts=`): a jitted
caller then traces it like any array, so the 110 MB table is neither
recompiled against nor folded into the program as a constant. When omitted,
the default table is built or loaded from the cache (fine eagerly; under
`jit` pass it explicitly).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import lut as lut_lib
from rawjax.isp.lut import _clip

HIGHEST = jax.lax.Precision.HIGHEST
TINY = float(np.finfo(np.float32).tiny)

# The paper's table: (p_g1, p_g2, k, output) with d_g1, d_g2, d_k, d_o =
# 60, 30, 30, 512, inverted from d_i = 10000 dense inputs (appendix A.2).
PAPER_LUT_SHAPE = (60, 30, 30, 512)
PAPER_INPUT_SAMPLES = 10000
# Dense inputs x = u^4 (u uniform) resolve the steep start of x^(1/p).
_INPUT_WARP = 4
_LUT_VERSION = 1


# --- parameters -------------------------------------------------------------

class CurveParams(NamedTuple):
  """f_GA / f_CS parameters, each (..., 3) or (..., H, W, 3)."""
  gain: jax.Array      # g >= 1, the slope below the knee
  knee: jax.Array      # t in [0, 1), the output level where the roll-off starts
  softness: jax.Array  # s in (0, 1], the roll-off exponent


class MixtureParams(NamedTuple):
  """f_GM (p_g1, p_g2, k) / f_IT (p3, p4, k) parameters, each (..., 3)."""
  p1: jax.Array  # >= 1
  p2: jax.Array  # >= 1
  k: jax.Array   # in [0, 1], the weight of the p1 term


class ISPParams(NamedTuple):
  """One PQDynamicISP parameter set (or a batch of them: leading dims)."""
  cc: jax.Array                       # (..., 3, 3) colour matrix
  ga: CurveParams
  gm: MixtureParams
  cs: CurveParams
  itm: MixtureParams | None = None    # only for image enhancement


class InverseLUTs(NamedTuple):
  """The tables for `isp_inverse`: f_GM^-1 and (optionally) f_IT^-1."""
  gm: lut_lib.UniformLUT
  itm: lut_lib.UniformLUT | None = None


@dataclasses.dataclass(frozen=True)
class ParamRanges:
  """Parameter ranges (our choice; the paper's are not legible).

  The GA/CS ranges keep the smallest slope of the curve, g ((1 - t) /
  (g - t))^(s + 1) at x = 1, above 0.035, so the analytic inverse of a
  float32 image is good to ~1e-5 everywhere. The GM/IT exponent ranges are
  where the paper's 60 x 30 x 30 x 512 table meets its reported round-trip
  error (mean 1.1e-5, max 6.5e-5); they also set the LUT's grid.
  """
  cc_diagonal: float = 2.0           # diagonal in [1/x, x] (log-symmetric)
  cc_off_diagonal: float = 0.4       # |off-diagonal| <= x * the row diagonal
  gain: tuple[float, float] = (1.0, 8.0)       # log-uniform map
  knee: tuple[float, float] = (0.0, 0.5)
  softness: tuple[float, float] = (0.2, 1.0)
  cs_gain: tuple[float, float] = (1.0, 8.0)
  cs_knee: tuple[float, float] = (0.0, 0.5)
  cs_softness: tuple[float, float] = (0.2, 1.0)
  gamma: tuple[float, float] = (1.0, 2.0)      # p_g1, p_g2
  itm_exponent: tuple[float, float] = (1.0, 2.0)  # p3, p4


DEFAULT_RANGES = ParamRanges()
NUM_PARAMS = 36            # CC 9, GA 9, GM 9, CS 9
NUM_PARAMS_WITH_ITM = 45   # + IT 9


# --- elementary pieces --------------------------------------------------------

def _pow(x: jnp.ndarray, p) -> jnp.ndarray:
  """x^p for x >= 0, p > 0: finite value and gradient at 0 (value ~0 there).

  exp(p log x) rather than `jnp.power`, which XLA's CPU backend evaluates
  about 6x slower; relative error ~1e-7 |p log x|.
  """
  return jnp.exp(p * jnp.log(jnp.maximum(x, TINY)))


def _unit(x: jnp.ndarray) -> jnp.ndarray:
  return _clip(x, 0.0, 1.0)


def _per_image(param: jnp.ndarray, per_pixel: bool,
               trailing: int = 1) -> jnp.ndarray:
  """(..., *p) per-image parameters -> (..., 1, 1, *p) to broadcast on H, W."""
  if per_pixel:
    return param
  index = (Ellipsis,) + (None, None) + (slice(None),) * trailing
  return param[index]


def _check_image(image: ArrayLike, fn: str) -> jnp.ndarray:
  image = _checks.as_float(image, name='image', fn=fn)
  _checks.check_min_rank(image, 3, name='image', fn=fn, layout='(..., H, W, 3)')
  _checks.check_channels(image, 3, name='image', fn=fn)
  return image


def _channel_params(params, fn: str, per_pixel: bool):
  leaves = [_checks.as_float(p, name=name, fn=fn)
            for name, p in zip(params._fields, params)]
  for name, leaf in zip(params._fields, leaves):
    if leaf.ndim < (3 if per_pixel else 1) or leaf.shape[-1] != 3:
      layout = '(..., H, W, 3)' if per_pixel else '(..., 3)'
      raise ValueError(f'{fn}: parameter {name!r} must have shape {layout} '
                       f'(one value per colour channel), got '
                       f'{tuple(leaf.shape)}.')
  return [_per_image(leaf, per_pixel) for leaf in leaves]


# --- colour correction (eqs. 4, 16, 17) ---------------------------------------

def _check_matrix(matrix: ArrayLike, fn: str, per_pixel: bool) -> jnp.ndarray:
  matrix = _checks.as_float(matrix, name='matrix', fn=fn)
  if matrix.ndim < (4 if per_pixel else 2) or matrix.shape[-2:] != (3, 3):
    layout = '(..., H, W, 3, 3)' if per_pixel else '(..., 3, 3)'
    raise ValueError(f'{fn}: matrix must have shape {layout}, got '
                     f'{tuple(matrix.shape)}.')
  return matrix


# The stages' arithmetic is jitted (inlined under an outer jit) so an eager
# call compiles one program instead of dispatching every op.
@functools.partial(jax.jit, static_argnames=('per_pixel', 'invert'))
def _apply_matrix(image: jnp.ndarray, matrix: jnp.ndarray, per_pixel: bool,
                  invert: bool = False) -> jax.Array:
  if invert:
    matrix = jnp.linalg.inv(matrix)
  matrix = _per_image(matrix, per_pixel, trailing=2)
  return jnp.einsum('...ij,...j->...i', matrix, image, precision=HIGHEST)


def color_correction(image: ArrayLike, matrix: ArrayLike, *,
                     per_pixel: bool = False) -> jax.Array:
  """f_CC (eq. 16): out = M in per pixel, 9 free parameters.

  Args:
    image: (..., H, W, 3) linear camera RGB.
    matrix: (..., 3, 3), or (..., H, W, 3, 3) with `per_pixel`.
    per_pixel: one matrix per pixel (the local variant).

  Returns:
    (broadcast ..., H, W, 3), unclipped.
  """
  fn = 'color_correction'
  return _apply_matrix(_check_image(image, fn),
                       _check_matrix(matrix, fn, per_pixel), per_pixel)


def inverse_color_correction(image: ArrayLike, matrix: ArrayLike, *,
                             per_pixel: bool = False) -> jax.Array:
  """f_CC^-1 (eq. 17): in = M^-1 out; M must be invertible (see ranges)."""
  fn = 'inverse_color_correction'
  return _apply_matrix(_check_image(image, fn),
                       _check_matrix(matrix, fn, per_pixel), per_pixel,
                       invert=True)


# --- gain and contrast stretcher (eq. 18, 19) ----------------------------------

def _curve_terms(gain, knee, softness):
  gain = jnp.maximum(gain, 1.0)
  knee = _clip(knee, 0.0, 0.999)
  softness = jnp.maximum(softness, 1e-3)
  slope = (gain - knee) / (1.0 - knee)          # a >= 1
  a_pow_s_minus_1 = jnp.expm1(softness * jnp.log(slope))
  return gain, knee, softness, slope, a_pow_s_minus_1


@jax.jit
def _gain_curve(x, gain, knee, softness):
  gain, knee, softness, slope, c = _curve_terms(gain, knee, softness)
  x = _unit(x)
  knee_in = knee / gain
  u = _unit((x - knee_in) / (1.0 - knee_in))
  h = slope * u * jnp.exp(-jnp.log1p(c * _pow(u, softness)) / softness)
  y = jnp.where(x <= knee_in, gain * x, knee + (1.0 - knee) * h)
  return _unit(y)


@jax.jit
def _inverse_gain_curve(y, gain, knee, softness):
  gain, knee, softness, _, c = _curve_terms(gain, knee, softness)
  y = _unit(y)
  knee_in = knee / gain
  h = _unit((y - knee) / (1.0 - knee))
  one_minus_h_pow_s = -jnp.expm1(softness * jnp.log(jnp.maximum(h, TINY)))
  u = h * jnp.exp(-jnp.log1p(c * one_minus_h_pow_s) / softness)
  x = jnp.where(y <= knee, y / gain, knee_in + (1.0 - knee_in) * u)
  return _unit(x)


def _curve_docstring(name: str, equation: str) -> str:
  return f"""{name} ({equation}): per-channel gain with a knee and a roll-off.

  y = g x below the knee x_k = t / g, then t + (1 - t) h(u) with the
  generalised Moebius roll-off h (see the module docstring); y(1) = 1, no
  clipping, C1, increasing. Parameters are clamped to their valid domain
  (g >= 1, t in [0, 0.999], s >= 1e-3); inputs to [0, 1].

  Args:
    image: (..., H, W, 3) in [0, 1].
    params: `CurveParams` with (..., 3) leaves, or (..., H, W, 3) with
      `per_pixel`.
    per_pixel: parameters given per pixel (the local variant).

  Returns:
    (broadcast ..., H, W, 3) in [0, 1].
  """


def gain_curve(image: ArrayLike, params: CurveParams, *,
         per_pixel: bool = False) -> jax.Array:
  fn = 'gain_curve'
  return _gain_curve(_check_image(image, fn),
                     *_channel_params(params, fn, per_pixel))


def inverse_gain_curve(image: ArrayLike, params: CurveParams, *,
                 per_pixel: bool = False) -> jax.Array:
  """f_GA^-1 (eq. 19): the closed-form inverse of `gain_curve`, by pieces."""
  fn = 'inverse_gain_curve'
  return _inverse_gain_curve(_check_image(image, fn),
                             *_channel_params(params, fn, per_pixel))


def contrast_stretch(image: ArrayLike, params: CurveParams, *,
                     per_pixel: bool = False) -> jax.Array:
  fn = 'contrast_stretch'
  return _gain_curve(_check_image(image, fn),
                     *_channel_params(params, fn, per_pixel))


def inverse_contrast_stretch(image: ArrayLike, params: CurveParams, *,
                             per_pixel: bool = False) -> jax.Array:
  """f_CS^-1: the closed-form inverse of `contrast_stretch`."""
  fn = 'inverse_contrast_stretch'
  return _inverse_gain_curve(_check_image(image, fn),
                             *_channel_params(params, fn, per_pixel))


gain_curve.__doc__ = _curve_docstring('f_GA', 'eq. 18')
contrast_stretch.__doc__ = _curve_docstring(
    'f_CS', 'the same form as eq. 18, its own parameters')


# --- two-power mixtures: gamma tone map and inverse tone map ------------------

def _exponents(p1, p2, kind: str):
  """The mixture's exponents (a, b): 1/p for GM (eq. 20), p for IT (eq. 22)."""
  p1 = jnp.maximum(p1, 1e-3)
  p2 = jnp.maximum(p2, 1e-3)
  return (1.0 / p1, 1.0 / p2) if kind == 'gm' else (p1, p2)


def _mixture(x, a, b, k):
  """k x^a + (1 - k) x^b, sharing one log between the two powers."""
  log_x = jnp.log(jnp.maximum(x, TINY))
  return k * jnp.exp(a * log_x) + (1.0 - k) * jnp.exp(b * log_x)


def _log_encoding_exponent(a, b, k):
  """log E, E = a^k b^(1-k): the table stores v = x^E (see `_mixture_lut`)."""
  return k * jnp.log(a) + (1.0 - k) * jnp.log(b)


def _gm_forward(x, p1, p2, k):
  return _mixture(x, *_exponents(p1, p2, 'gm'), k)


def _itm_forward(x, p1, p2, k):
  return _mixture(x, *_exponents(p1, p2, 'itm'), k)


def _gm_encode(x, p1, p2, k):
  return _pow(x, jnp.exp(_log_encoding_exponent(*_exponents(p1, p2, 'gm'), k)))


def _itm_encode(x, p1, p2, k):
  return _pow(x, jnp.exp(_log_encoding_exponent(*_exponents(p1, p2, 'itm'),
                                                k)))


def _square(s: np.ndarray) -> np.ndarray:
  return s * s


_FAMILIES = {'gm': (_gm_forward, _gm_encode), 'itm': (_itm_forward, _itm_encode)}


def _mixture_lut(kind: str, exponent_range, shape, cache_dir,
                 progress) -> lut_lib.UniformLUT:
  """The inverse table of a two-power mixture, built once and cached.

  Axes: (p1, p2, k, s) with p1, p2 uniform over `exponent_range`, k over
  [0, 1] and s = sqrt(y) over [0, 1] (the output axis is uniform in sqrt(y):
  near y = 0 the inverse behaves like y^p and a grid uniform in y loses
  its first cell). Value: v = x^E with E = a^k b^(1-k), the k-weighted
  geometric mean of the exponents, decoded as x = v^(1/E). Where one power
  dominates, x ~ (y / k)^(1/a), so v ~ y / k is nearly linear in the
  parameters; storing x itself would make the table 10-100x less accurate.
  """
  if len(shape) != 4 or any(int(d) < 2 for d in shape):
    raise ValueError(f'{kind} LUT: shape must be 4 axis sizes >= 2 '
                     f'(p1, p2, k, output), got {shape}.')
  low, high = map(float, exponent_range)
  if not 0.0 < low < high:
    raise ValueError(f'{kind} LUT: exponent range must satisfy 0 < low < '
                     f'high, got {exponent_range}.')
  forward, encode = _FAMILIES[kind]
  d1, d2, dk, do = map(int, shape)
  return lut_lib.cached_inverse_lut(
      forward,
      [lut_lib.Axis(low, high, d1), lut_lib.Axis(low, high, d2),
       lut_lib.Axis(0.0, 1.0, dk)],
      lut_lib.Axis(0.0, 1.0, do),
      name=f'pqdynamic-{kind}', version=_LUT_VERSION,
      input_nodes=np.linspace(0.0, 1.0, PAPER_INPUT_SAMPLES) ** _INPUT_WARP,
      output_from_coordinate=_square, encode=encode, cache_dir=cache_dir,
      progress=progress)


def gamma_tone_map_lut(*, p_range: tuple[float, float] = DEFAULT_RANGES.gamma,
                       shape: tuple[int, ...] = PAPER_LUT_SHAPE,
                       cache_dir=None, progress: bool = True
                       ) -> lut_lib.UniformLUT:
  """The f_GM^-1 table over (p_g1, p_g2, k, sqrt(y)), cached on disk.

  Args:
    p_range: (low, high) of p_g1 and p_g2 covered by the grid.
    shape: (d_g1, d_g2, d_k, d_o); the paper's 60 x 30 x 30 x 512 by default.
    cache_dir: overrides `lut.cache_directory()`.
    progress: progress bar while building (a few seconds, once).

  Returns:
    A `UniformLUT` (110 MB at the paper's grid), shared by later calls.
  """
  return _mixture_lut('gm', p_range, shape, cache_dir, progress)


def inverse_tone_map_lut(*, p_range: tuple[float, float] = (
    DEFAULT_RANGES.itm_exponent), shape: tuple[int, ...] = PAPER_LUT_SHAPE,
                         cache_dir=None, progress: bool = True
                         ) -> lut_lib.UniformLUT:
  """The f_IT^-1 table over (p3, p4, k, sqrt(y)); as `gamma_tone_map_lut`."""
  return _mixture_lut('itm', p_range, shape, cache_dir, progress)


def default_luts(*, with_itm: bool = False,
                 ranges: ParamRanges = DEFAULT_RANGES, cache_dir=None,
                 progress: bool = True) -> InverseLUTs:
  """The tables `isp_inverse` needs, at the paper's grid over `ranges`."""
  gm = gamma_tone_map_lut(p_range=ranges.gamma, cache_dir=cache_dir,
                          progress=progress)
  itm = (inverse_tone_map_lut(p_range=ranges.itm_exponent,
                              cache_dir=cache_dir, progress=progress)
         if with_itm else None)
  return InverseLUTs(gm, itm)


@functools.partial(jax.jit, static_argnames='kind')
def _forward_mixture(x, p1, p2, k, kind: str):
  return _unit(_mixture(_unit(x), *_exponents(p1, p2, kind), _unit(k)))


def _newton(x, y, a, b, k, steps: int):
  """Newton steps on k x^a + (1 - k) x^b = y, in the form x <- x (1 - r).

  r = (f(x) - y) / (x f'(x)) needs no division by x; r <= 1/2 keeps a step
  from overshooting below zero (it never binds once x is close); where
  x f'(x) < 1e-18 (x ~ 0) the step is skipped.
  """
  for _ in range(steps):
    log_x = jnp.log(jnp.maximum(x, TINY))
    xa = jnp.exp(a * log_x)
    xb = jnp.exp(b * log_x)
    residual = k * xa + (1.0 - k) * xb - y
    slope_x = k * a * xa + (1.0 - k) * b * xb
    # Below 1e-18 (x ~ 0) skip the step: the quotient's gradient divides
    # by slope_x^2, which would underflow to 0 and give 0/0.
    usable = slope_x > 1e-18
    ratio = jnp.where(usable, residual / jnp.where(usable, slope_x, 1.0), 0.0)
    x = _unit(x * (1.0 - jnp.minimum(ratio, 0.5)))
  return x


def _inverse_mixture(y, params: MixtureParams, table: lut_lib.UniformLUT,
                     kind: str, newton_steps: int, per_pixel: bool, fn: str):
  y = _check_image(y, fn)
  values = _checks.as_float(table.values, name='lut.values', fn=fn)
  if values.ndim != 4:
    raise ValueError(f'{fn}: lut must be a 4-D table over (p1, p2, k, '
                     f'sqrt(y)), got values of shape {tuple(values.shape)}.')
  _channel_params(params, fn, per_pixel)  # validates the shapes
  raw = [_checks.as_float(p, name=n, fn=fn)
         for n, p in zip(params._fields, params)]
  if not isinstance(newton_steps, int) or newton_steps < 0:
    raise ValueError(f'{fn}: newton_steps must be an int >= 0, got '
                     f'{newton_steps!r}.')
  return _inverse_mixture_core(y, *raw, values,
                               jnp.asarray(table.lower, jnp.float32),
                               jnp.asarray(table.upper, jnp.float32),
                               kind=kind, newton_steps=newton_steps,
                               per_pixel=per_pixel)


@functools.partial(jax.jit,
                   static_argnames=('kind', 'newton_steps', 'per_pixel'))
def _inverse_mixture_core(y, p1_raw, p2_raw, k_raw, values, lower, upper, *,
                          kind, newton_steps, per_pixel):
  y = _unit(y)
  # Clamped to the grid so the decoding exponent matches the table's.
  p1, p2, k = (_clip(p, lower[i], upper[i])
               for i, p in enumerate((p1_raw, p2_raw, k_raw)))
  a, b = _exponents(p1, p2, kind)
  inverse_exponent = jnp.exp(-_log_encoding_exponent(a, b, k))   # 1/E
  s = jnp.sqrt(jnp.maximum(y, TINY))
  if per_pixel:
    v = lut_lib.lut_interpolate(lut_lib.UniformLUT(values, lower, upper),
                                [p1, p2, k, s])
  else:
    # One parameter set per image and channel: collapse the three parameter
    # axes first (a (..., 3, d_o) curve per channel), then two gathers per
    # pixel. Multilinear interpolation is separable, so this equals the 4-D
    # lookup up to rounding.
    curves = lut_lib.lut_interpolate(
        lut_lib.UniformLUT(values, lower[:3], upper[:3]),
        jnp.stack(jnp.broadcast_arrays(p1, p2, k), axis=-1))
    v = lut_lib.lut_interpolate_curves(
        curves[..., None, None, :, :], s, lower=lower[3], upper=upper[3])
    inverse_exponent = _per_image(inverse_exponent, False)
  x = _unit(_pow(v, inverse_exponent))
  if newton_steps:
    a, b = _exponents(*(_per_image(p, per_pixel) for p in (p1_raw, p2_raw)),
                      kind)
    x = _newton(x, y, a, b, _unit(_per_image(k_raw, per_pixel)), newton_steps)
  return x


def _mixture_docstring(name: str, equation: str, form: str) -> str:
  return f"""{name} ({equation}): y = {form} per channel.

  Increasing, [0, 1] onto [0, 1]; inputs clamped to [0, 1].

  Args:
    image: (..., H, W, 3) in [0, 1].
    params: `MixtureParams` with (..., 3) leaves, or (..., H, W, 3) with
      `per_pixel`.
    per_pixel: parameters given per pixel (the local variant).

  Returns:
    (broadcast ..., H, W, 3) in [0, 1].
  """


def _inverse_docstring(name: str, table_fn: str) -> str:
  return f"""{name}^-1 by the 4-D LUT (SemiISP eq. 8, 21), plus Newton steps.

  The table is interpolated multilinearly at (p1, p2, k, sqrt(y)) and
  decoded (see `{table_fn}`); parameters outside the table's grid are clamped
  for the lookup, and the Newton steps then solve the exact equation with
  the given parameters. LUT only: mean |f(f^-1(y)) - y| ~2e-6 over the grid
  (max < 6.5e-5); one Newton step: ~1e-7.

  Args:
    image: (..., H, W, 3) in [0, 1].
    params: `MixtureParams`, (..., 3) leaves or (..., H, W, 3) with
      `per_pixel`.
    lut: the table from `{table_fn}()`; loaded (or built) when None. Pass it
      explicitly under `jit`.
    newton_steps: refinement steps after the lookup (0: LUT only).
    per_pixel: parameters given per pixel: a full 4-D lookup per pixel
      instead of one curve per image and channel.

  Returns:
    (broadcast ..., H, W, 3) in [0, 1].
  """


def gamma_tone_map(image: ArrayLike, params: MixtureParams, *,
                   per_pixel: bool = False) -> jax.Array:
  fn = 'gamma_tone_map'
  return _forward_mixture(_check_image(image, fn),
                          *_channel_params(params, fn, per_pixel), kind='gm')


def inverse_gamma_tone_map(image: ArrayLike, params: MixtureParams, *,
                           lut: lut_lib.UniformLUT | None = None,
                           newton_steps: int = 0,
                           per_pixel: bool = False) -> jax.Array:
  table = gamma_tone_map_lut() if lut is None else lut
  return _inverse_mixture(image, params, table, 'gm', newton_steps, per_pixel,
                          'inverse_gamma_tone_map')


def inverse_tone_map(image: ArrayLike, params: MixtureParams, *,
                     per_pixel: bool = False) -> jax.Array:
  fn = 'inverse_tone_map'
  return _forward_mixture(_check_image(image, fn),
                          *_channel_params(params, fn, per_pixel), kind='itm')


def inverse_inverse_tone_map(image: ArrayLike, params: MixtureParams, *,
                             lut: lut_lib.UniformLUT | None = None,
                             newton_steps: int = 0,
                             per_pixel: bool = False) -> jax.Array:
  table = inverse_tone_map_lut() if lut is None else lut
  return _inverse_mixture(image, params, table, 'itm', newton_steps, per_pixel,
                          'inverse_inverse_tone_map')


gamma_tone_map.__doc__ = _mixture_docstring(
    'f_GM', 'eq. 20', 'k x^(1/p_g1) + (1 - k) x^(1/p_g2)')
inverse_tone_map.__doc__ = _mixture_docstring(
    'f_IT', 'eq. 22', 'k x^p3 + (1 - k) x^p4')
inverse_gamma_tone_map.__doc__ = _inverse_docstring('f_GM', 'gamma_tone_map_lut')
inverse_inverse_tone_map.__doc__ = _inverse_docstring('f_IT',
                                                      'inverse_tone_map_lut')


# --- the composed ISP (eqs. 3, 6) ---------------------------------------------

def isp_forward(raw: ArrayLike, params: ISPParams, *, per_pixel: bool = False,
                clip: bool = True) -> jax.Array:
  """f_ISP = f_CS . f_GM . f_GA . f_CC (eq. 3), with f_IT first if present.

  Args:
    raw: (..., H, W, 3) demosaicked linear camera RGB in [0, 1].
    params: `ISPParams`; leaves (..., 3) / (..., 3, 3) per image, or with
      H, W axes before the channel axes when `per_pixel`. Leading dims
      broadcast with the image's (N parameter sets on one image: N outputs).
    per_pixel: parameters per pixel (the local variant).
    clip: clamp the colour-corrected image to [0, 1], the domain of the
      curves (they clamp anyway; this only makes it explicit for f_CC^-1).

  Returns:
    (broadcast ..., H, W, 3) sRGB-like output in [0, 1].
  """
  return _isp_forward(_check_image(raw, 'isp_forward'), params,
                      per_pixel=per_pixel, clip=clip)


@functools.partial(jax.jit, static_argnames=('per_pixel', 'clip'))
def _isp_forward(x, params: ISPParams, *, per_pixel: bool, clip: bool):
  if params.itm is not None:
    x = inverse_tone_map(x, params.itm, per_pixel=per_pixel)
  x = color_correction(x, params.cc, per_pixel=per_pixel)
  if clip:
    x = _unit(x)
  x = gain_curve(x, params.ga, per_pixel=per_pixel)
  x = gamma_tone_map(x, params.gm, per_pixel=per_pixel)
  return contrast_stretch(x, params.cs, per_pixel=per_pixel)


def isp_inverse(srgb: ArrayLike, params: ISPParams, *,
                luts: InverseLUTs | None = None, newton_steps: int = 0,
                per_pixel: bool = False, clip: bool = True) -> jax.Array:
  """f_ISP^-1 = f_CC^-1 . f_GA^-1 . f_GM^-1 . f_CS^-1 (eq. 6) [then f_IT^-1].

  Args:
    srgb: (..., H, W, 3) in [0, 1].
    params: `ISPParams` as for `isp_forward`.
    luts: `InverseLUTs` (from `default_luts`); loaded when None. Pass them
      explicitly under `jit`.
    newton_steps: Newton refinement after each LUT lookup.
    per_pixel: parameters per pixel (the local variant).
    clip: clamp the recovered raw image to [0, 1] (a colour matrix can map
      [0, 1] outside it, and `isp_forward` clipped there).

  Returns:
    (broadcast ..., H, W, 3) pseudo-raw in [0, 1] (if `clip`).
  """
  x = _check_image(srgb, 'isp_inverse')
  if luts is None:
    luts = default_luts(with_itm=params.itm is not None)
  if params.itm is not None and luts.itm is None:
    raise ValueError('isp_inverse: params include f_IT but luts.itm is None; '
                     'use default_luts(with_itm=True).')
  if not isinstance(newton_steps, int) or newton_steps < 0:
    raise ValueError(f'isp_inverse: newton_steps must be an int >= 0, got '
                     f'{newton_steps!r}.')
  return _isp_inverse(x, params, luts, newton_steps=newton_steps,
                      per_pixel=per_pixel, clip=clip)


@functools.partial(jax.jit,
                   static_argnames=('newton_steps', 'per_pixel', 'clip'))
def _isp_inverse(x, params: ISPParams, luts: InverseLUTs, *,
                 newton_steps: int, per_pixel: bool, clip: bool):
  x = inverse_contrast_stretch(x, params.cs, per_pixel=per_pixel)
  x = inverse_gamma_tone_map(x, params.gm, lut=luts.gm,
                             newton_steps=newton_steps, per_pixel=per_pixel)
  x = inverse_gain_curve(x, params.ga, per_pixel=per_pixel)
  x = inverse_color_correction(x, params.cc, per_pixel=per_pixel)
  if clip:
    x = _unit(x)
  if params.itm is not None:
    x = inverse_inverse_tone_map(x, params.itm, lut=luts.itm,
                                 newton_steps=newton_steps,
                                 per_pixel=per_pixel)
  return x


# --- range maps from unconstrained network outputs ----------------------------

def _interval(z, bounds):
  low, high = bounds
  return low + (high - low) * jax.nn.sigmoid(z)


def _log_interval(z, bounds):
  low, high = np.log(bounds[0]), np.log(bounds[1])
  return jnp.exp(low + (high - low) * jax.nn.sigmoid(z))


def _logit(v, bounds):
  low, high = bounds
  fraction = jnp.clip((v - low) / (high - low), 1e-7, 1.0 - 1e-7)
  return jnp.log(fraction) - jnp.log1p(-fraction)


def _cc_from_unconstrained(z, ranges: ParamRanges):
  z = z.reshape(z.shape[:-1] + (3, 3))
  eye = jnp.eye(3, dtype=z.dtype)
  diagonal = jnp.exp(np.log(ranges.cc_diagonal) * jnp.tanh(
      jnp.diagonal(z, axis1=-2, axis2=-1)))
  off = ranges.cc_off_diagonal * diagonal[..., :, None] * jnp.tanh(z)
  return eye * diagonal[..., None, :] + (1.0 - eye) * off


def params_from_unconstrained(z: ArrayLike, *,
                              ranges: ParamRanges = DEFAULT_RANGES
                              ) -> ISPParams:
  """Maps a network's unconstrained outputs into the parameter ranges.

  Layout of the last axis (36 values, or 45 with f_IT):
    [0:9]   CC, row-major: diagonal d = D^tanh(z) in [1/D, D]; off-diagonal
            m_ij = F d_i tanh(z_ij), so |m_ij| <= F d_i and each row is
            strictly diagonally dominant (2F < 1): M is always invertible.
    [9:18]  GA gain (log-uniform), knee, softness (sigmoid), 3 channels each.
    [18:27] GM p_g1, p_g2 (sigmoid into `ranges.gamma`), k (sigmoid).
    [27:36] CS gain, knee, softness (as GA, its own ranges).
    [36:45] IT p3, p4 (sigmoid into `ranges.itm_exponent`), k (sigmoid).
  z = 0 gives the identity matrix and mid-range curves.

  Args:
    z: (..., 36) or (..., 45) real values (any range).
    ranges: the target ranges.

  Returns:
    `ISPParams` with (..., 3) leaves and a (..., 3, 3) matrix.
  """
  fn = 'params_from_unconstrained'
  z = _checks.as_float(z, name='z', fn=fn)
  if z.ndim < 1 or z.shape[-1] not in (NUM_PARAMS, NUM_PARAMS_WITH_ITM):
    raise ValueError(f'{fn}: z must have {NUM_PARAMS} (or '
                     f'{NUM_PARAMS_WITH_ITM} with f_IT) values on the last '
                     f'axis, got shape {tuple(z.shape)}.')
  return _params_from_unconstrained(z, ranges)


@functools.partial(jax.jit, static_argnums=1)
def _params_from_unconstrained(z, ranges: ParamRanges) -> ISPParams:
  part = lambda i: z[..., 3 * i:3 * i + 3]  # noqa: E731
  ga = CurveParams(_log_interval(part(3), ranges.gain),
                   _interval(part(4), ranges.knee),
                   _interval(part(5), ranges.softness))
  gm = MixtureParams(_interval(part(6), ranges.gamma),
                     _interval(part(7), ranges.gamma),
                     jax.nn.sigmoid(part(8)))
  cs = CurveParams(_log_interval(part(9), ranges.cs_gain),
                   _interval(part(10), ranges.cs_knee),
                   _interval(part(11), ranges.cs_softness))
  itm = None
  if z.shape[-1] == NUM_PARAMS_WITH_ITM:
    itm = MixtureParams(_interval(part(12), ranges.itm_exponent),
                        _interval(part(13), ranges.itm_exponent),
                        jax.nn.sigmoid(part(14)))
  return ISPParams(_cc_from_unconstrained(z[..., :9], ranges), ga, gm, cs, itm)


def unconstrained_from_params(params: ISPParams, *,
                              ranges: ParamRanges = DEFAULT_RANGES
                              ) -> jax.Array:
  """Inverse of `params_from_unconstrained` (for initialising a network).

  Values on a range's boundary map to +-16 (sigmoid's float32 saturation).

  Returns:
    (..., 36) or (..., 45) with f_IT.
  """
  params = jax.tree.map(lambda v: _checks.as_float(
      v, name='params', fn='unconstrained_from_params'), params)
  return _unconstrained_from_params(params, ranges)


@functools.partial(jax.jit, static_argnums=1)
def _unconstrained_from_params(params: ISPParams, ranges: ParamRanges):
  cc = params.cc
  diagonal = jnp.diagonal(cc, axis1=-2, axis2=-1)
  clip_tanh = lambda t: jnp.arctanh(jnp.clip(t, -1 + 1e-7, 1 - 1e-7))  # noqa: E731
  z_diagonal = clip_tanh(jnp.log(diagonal) / np.log(ranges.cc_diagonal))
  z_cc = clip_tanh(cc / (ranges.cc_off_diagonal * diagonal[..., :, None]))
  eye = jnp.eye(3, dtype=cc.dtype)
  z_cc = eye * z_diagonal[..., None, :] + (1.0 - eye) * z_cc
  log_bounds = lambda b: (np.log(b[0]), np.log(b[1]))  # noqa: E731
  parts = [z_cc.reshape(z_cc.shape[:-2] + (9,)),
           _logit(jnp.log(params.ga.gain), log_bounds(ranges.gain)),
           _logit(params.ga.knee, ranges.knee),
           _logit(params.ga.softness, ranges.softness),
           _logit(params.gm.p1, ranges.gamma),
           _logit(params.gm.p2, ranges.gamma),
           _logit(params.gm.k, (0.0, 1.0)),
           _logit(jnp.log(params.cs.gain), log_bounds(ranges.cs_gain)),
           _logit(params.cs.knee, ranges.cs_knee),
           _logit(params.cs.softness, ranges.cs_softness)]
  if params.itm is not None:
    parts += [_logit(params.itm.p1, ranges.itm_exponent),
              _logit(params.itm.p2, ranges.itm_exponent),
              _logit(params.itm.k, (0.0, 1.0))]
  parts = [jnp.asarray(p, jnp.float32) for p in parts]
  lead = jnp.broadcast_shapes(*[p.shape[:-1] for p in parts])
  return jnp.concatenate(
      [jnp.broadcast_to(p, lead + p.shape[-1:]) for p in parts], axis=-1)
