"""Colour polynomial kernels and their batched least-squares fits.

A kernel expands each colour x = (x_1..x_C) into T terms phi(x); a mapping
is a (T, C_out) matrix M applied as y = phi(x) M. Every kernel here is a table
of integer exponents e (T, C) and a root degree k per term,

    phi_t(x) = (prod_c x_c^e_tc)^(1 / k_t),

so one vectorised code path serves all of them:

| name | C | terms | source |
|---|---|---|---|
| 'linear' | any | x_1..x_C (the 3x3 / 4x4 matrix) | |
| 'affine' | any | x_1..x_C, 1 | |
| 'cheung10' | 3 | R, G, B, RG, RB, GB, R^2, G^2, B^2, 1 | Cheung et al. 2004 (colour-science's order) |
| 'hong11' | 3 | cheung10 with RGB before the 1 | Hong, Luo & Rhodes 2001 (Afifi's Deep-WB kernel) |
| 'polynomial2' | 3 | R, G, B, R^2, G^2, B^2, RG, GB, RB | Finlayson et al. 2015 |
| 'root_polynomial2' | 3, 4 | x_c, sqrt(x_a x_b) | Finlayson et al. 2015 |
| 'root_polynomial3' | 3, 4 | + cube roots of degree-3 products | Finlayson et al. 2015 |
| 'raw2raw16' | 4 | R, Gr, Gb, B, squares, 6 pairs, R Gr Gb B, 1 | Afifi's `kernelP` (raw2raw data) |
| 'cstpp14' | 4 | squares, 6 pairs, R, Gr, Gb, B | CSTPP (Xie et al. 2024), intended set |
| 'cstpp14_code' | 4 | as cstpp14 with Gr B twice and no R B | CSTPP's released code (a bug) |

Packed raw is (R, Gr, Gb, B), so the 4-channel kernels take packed pixels
as they are. For three channels the root-polynomial terms follow
colour-science's `polynomial_expansion_Finlayson2015`; for four channels the
same construction (every product of degree k whose k-th root is not already a
term) in lexicographic channel order. Roots are sign-preserving (colour's
`spow`) and guarded at 0 (`safe_power`), so gradients stay finite.

Fits minimise, per leading (batch) index,

    sum_i w_i ||phi(x_i) M - y_i||^2 + ridge * sum_i w_i * ||D M||_F^2,

with D the diagonal of the terms' root-mean-square values (ridge on
standardised terms, so it treats a small term such as R Gr Gb B like a large
one). It is solved by the normal equations of the RMS-normalised terms
(Cholesky, then one step of iterative refinement), in float32. The small
default ridge (1e-6) only matters when terms are collinear, e.g. when
Gr = Gb exactly (noise-free raw), where the unregularised problem has no
unique solution; with ridge=0 such a fit returns NaN.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rawjax import _checks
from rawjax.isp import _math

HIGHEST = jax.lax.Precision.HIGHEST

# Channel indices of R, G, B and of R, Gr, Gb, B, for readable tables.
_R, _G, _B = 0, 1, 2
_GR, _GB, _B4 = 1, 2, 3


def _monomial(channels: int, *indices: int) -> tuple[int, ...]:
  e = [0] * channels
  for i in indices:
    e[i] += 1
  return tuple(e)


def _table(channels: int, terms, root=None):
  exponents = np.array([_monomial(channels, *t) for t in terms], np.int32)
  roots = np.ones(len(terms), np.int32) if root is None else np.asarray(
      root, np.int32)
  return exponents, roots


_CHEUNG10 = [(_R,), (_G,), (_B,), (_R, _G), (_R, _B), (_G, _B), (_R, _R),
             (_G, _G), (_B, _B), ()]
_HONG11 = _CHEUNG10[:-1] + [(_R, _G, _B), ()]
_FINLAYSON2 = [(_R,), (_G,), (_B,), (_R, _R), (_G, _G), (_B, _B), (_R, _G),
               (_G, _B), (_R, _B)]
# colour-science's Finlayson 2015 root-polynomial order for R, G, B.
_ROOT3_DEG2 = [(_R,), (_G,), (_B,), (_R, _G), (_G, _B), (_R, _B)]
_ROOT3_DEG3 = _ROOT3_DEG2 + [(_R, _G, _G), (_G, _B, _B), (_R, _B, _B),
                             (_G, _R, _R), (_B, _G, _G), (_B, _R, _R),
                             (_R, _G, _B)]
_RAW2RAW16 = [(0,), (_GR,), (_GB,), (_B4,), (0, 0), (_GR, _GR), (_GB, _GB),
              (_B4, _B4), (0, _GR), (0, _GB), (0, _B4), (_GR, _GB),
              (_GR, _B4), (_GB, _B4), (0, _GR, _GB, _B4), ()]
_CSTPP14 = [(0, 0), (_GR, _GR), (_GB, _GB), (_B4, _B4), (0, _GR), (_GR, _GB),
            (_GB, _B4), (0, _GB), (_GR, _B4), (0, _B4), (0,), (_GR,), (_GB,),
            (_B4,)]
_CSTPP14_CODE = _CSTPP14[:9] + [(_GR, _B4)] + _CSTPP14[10:]

KERNELS = ('linear', 'affine', 'cheung10', 'hong11', 'polynomial2',
           'root_polynomial2', 'root_polynomial3', 'raw2raw16', 'cstpp14',
           'cstpp14_code')
_FIXED_CHANNELS = {'cheung10': 3, 'hong11': 3, 'polynomial2': 3,
                   'raw2raw16': 4, 'cstpp14': 4, 'cstpp14_code': 4}


def _root_polynomial(channels: int, degree: int):
  """Finlayson's root-polynomial terms of a given maximum degree."""
  if channels == 3:
    terms = _ROOT3_DEG2 if degree == 2 else _ROOT3_DEG3
    return _table(3, terms, [len(t) for t in terms])
  terms, seen = [], set()
  for k in range(1, degree + 1):
    for combo in itertools.combinations_with_replacement(range(channels), k):
      exponents = _monomial(channels, *combo)
      direction = tuple(e / k for e in exponents)
      if k > 1 and np.count_nonzero(exponents) == 1:
        continue  # a power of one channel: its root is a linear term
      if direction in seen:
        continue
      seen.add(direction)
      terms.append(combo)
  return _table(channels, terms, [len(t) for t in terms])


@functools.lru_cache(maxsize=None)
def kernel_table(kernel: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
  """The (T, C) integer exponents and (T,) root degrees of a kernel.

  Raises:
    ValueError: unknown kernel, or a kernel that does not apply to
      `channels` input channels.
  """
  if kernel not in KERNELS:
    raise ValueError(f'Unknown polynomial kernel {kernel!r}; choose one of '
                     f'{", ".join(KERNELS)}.')
  needed = _FIXED_CHANNELS.get(kernel)
  if needed is not None and channels != needed:
    raise ValueError(f'Polynomial kernel {kernel!r} takes {needed} channels, '
                     f'got {channels}.')
  if kernel in ('root_polynomial2', 'root_polynomial3') and channels not in (
      3, 4):
    raise ValueError(f'Polynomial kernel {kernel!r} takes 3 or 4 channels, '
                     f'got {channels}.')
  if kernel == 'linear':
    return _table(channels, [(c,) for c in range(channels)])
  if kernel == 'affine':
    return _table(channels, [(c,) for c in range(channels)] + [()])
  if kernel.startswith('root_polynomial'):
    return _root_polynomial(channels, int(kernel[-1]))
  terms = {'cheung10': _CHEUNG10, 'hong11': _HONG11,
           'polynomial2': _FINLAYSON2, 'raw2raw16': _RAW2RAW16,
           'cstpp14': _CSTPP14, 'cstpp14_code': _CSTPP14_CODE}[kernel]
  return _table(channels, terms)


def polynomial_num_terms(kernel: str, channels: int) -> int:
  """Number of terms T of `kernel` on `channels` input channels."""
  return int(kernel_table(kernel, channels)[0].shape[0])


def polynomial_features(x: ArrayLike, *, kernel: str) -> jax.Array:
  """Expands colours into the terms of a polynomial kernel.

  Args:
    x: (..., C) colours, e.g. packed raw (R, Gr, Gb, B) or RGB, about [0, 1].
    kernel: a name in `KERNELS` (see the module docstring for the terms).

  Returns:
    (..., T) float features, in the kernel's documented term order.
  """
  fn = 'polynomial_features'
  x = _checks.as_float(x, name='x', fn=fn)
  _checks.check_min_rank(x, 1, name='x', fn=fn, layout='(..., C)')
  exponents, roots = kernel_table(kernel, x.shape[-1])
  columns = []
  for e, k in zip(exponents, roots):
    term = jnp.ones(x.shape[:-1], x.dtype)
    for c, power in enumerate(e):
      for _ in range(power):
        term = term * x[..., c]
    if k > 1:
      # Sign-preserving root (colour-science's spow), guarded at 0.
      term = jnp.sign(term) * _math.safe_power(jnp.abs(term), 1.0 / k)
    columns.append(term)
  return jnp.stack(columns, axis=-1)


def fit_polynomial(source: ArrayLike, target: ArrayLike, *, kernel: str,
                   weights: ArrayLike | None = None,
                   ridge: float = 1e-6) -> jax.Array:
  """Least-squares polynomial mapping from source to target colours, batched.

  Minimises sum_i w_i ||phi(s_i) M - t_i||^2 + ridge sum_i w_i ||D M||^2
  for each leading index, D the terms' RMS values (see the module docstring).

  Args:
    source: (..., N, C) colours (chart patch means, or the pixels of an
      image flattened to N = H * W).
    target: (..., N, C_out) corresponding colours.
    kernel: a name in `KERNELS`.
    weights: optional (..., N) non-negative sample weights (e.g. a 0/1 mask
      of valid pixels).
    ridge: Tikhonov weight on the RMS-normalised terms, relative to the
      total sample weight.

  Returns:
    (..., T, C_out) mapping matrix, to use with `apply_polynomial`.
  """
  fn = 'fit_polynomial'
  source = _checks.as_float(source, name='source', fn=fn)
  target = _checks.as_float(target, name='target', fn=fn)
  _checks.check_min_rank(source, 2, name='source', fn=fn, layout='(..., N, C)')
  _checks.check_min_rank(target, 2, name='target', fn=fn,
                         layout='(..., N, C_out)')
  if source.shape[:-1] != target.shape[:-1]:
    raise ValueError(f'{fn}: source {tuple(source.shape)} and target '
                     f'{tuple(target.shape)} must agree on (..., N).')
  if ridge < 0:
    raise ValueError(f'{fn}: ridge must be >= 0, got {ridge}.')
  features = polynomial_features(source, kernel=kernel)
  num_terms = features.shape[-1]
  if weights is None:
    weights = jnp.ones(source.shape[:-1], features.dtype)
  else:
    weights = _checks.as_float(weights, name='weights', fn=fn)
    if weights.shape != source.shape[:-1]:
      raise ValueError(f'{fn}: weights must have shape {source.shape[:-1]} '
                       f'(..., N), got {tuple(weights.shape)}.')
  root_w = jnp.sqrt(jnp.maximum(weights, 0.0))[..., None]
  design = features * root_w
  rhs = target * root_w
  total = jnp.sum(weights, axis=-1)[..., None]
  # Unit-RMS columns (Jacobi preconditioning) keep the normal equations well
  # conditioned in float32; a tall QR would be better conditioned still but
  # LAPACK's is ~100x slower here for 16 k x 16 systems.
  rms = jnp.sqrt(jnp.sum(jnp.square(design), axis=-2) /
                 jnp.maximum(total, _math.EPS))
  rms = jnp.where(rms > 0, rms, 1.0)
  design = design / rms[..., None, :]
  gram = jnp.einsum('...nt,...nu->...tu', design, design, precision=HIGHEST)
  gram = gram + (ridge * total)[..., None] * jnp.eye(num_terms,
                                                     dtype=gram.dtype)
  factor = jnp.linalg.cholesky(gram)

  def solve(b):
    y = jax.scipy.linalg.solve_triangular(factor, b, lower=True)
    return jax.scipy.linalg.solve_triangular(
        jnp.swapaxes(factor, -1, -2), y, lower=False)

  def normal_rhs(r):
    return jnp.einsum('...nt,...no->...to', design, r, precision=HIGHEST)

  coefficients = solve(normal_rhs(rhs))
  # One step of iterative refinement recovers the accuracy that forming the
  # Gram matrix costs.
  residual = rhs - jnp.einsum('...nt,...to->...no', design, coefficients,
                              precision=HIGHEST)
  correction = normal_rhs(residual) - (ridge * total)[..., None] * coefficients
  coefficients = coefficients + solve(correction)
  return coefficients / rms[..., :, None]


def apply_polynomial(x: ArrayLike, matrix: ArrayLike, *,
                     kernel: str) -> jax.Array:
  """Applies a polynomial mapping: y = phi(x) M.

  Args:
    x: (..., H, W, C) images (or any (..., C) colours when `matrix` is 2-D).
    matrix: (T, C_out), or (..., T, C_out) with the leading dims of `x`
      before its H, W axes (one mapping per image).
    kernel: the kernel `matrix` was fitted with.

  Returns:
    (..., H, W, C_out), not clipped.
  """
  fn = 'apply_polynomial'
  matrix = _checks.as_float(matrix, name='matrix', fn=fn)
  features = polynomial_features(x, kernel=kernel)
  if matrix.ndim < 2 or matrix.shape[-2] != features.shape[-1]:
    raise ValueError(f'{fn}: matrix of shape {tuple(matrix.shape)} does not '
                     f'fit the {features.shape[-1]} terms of {kernel!r} on '
                     f'{jnp.shape(x)[-1]} channels.')
  if matrix.ndim == 2:
    return jnp.einsum('...t,to->...o', features, matrix, precision=HIGHEST)
  _checks.check_min_rank(features, 3, name='x', fn=fn,
                         layout='(..., H, W, C)')
  return jnp.einsum('...hwt,...to->...hwo', features, matrix,
                    precision=HIGHEST)
