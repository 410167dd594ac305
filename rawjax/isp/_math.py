"""Gradient-safe elementary operations shared by the ISP stages.

`x ** p` for 0 < p < 1 has an infinite derivative at 0, and `a / b` has one
where `b` vanishes. Under `jnp.where` both branches are differentiated, so the
unsafe value must be replaced *before* the operation (the dm_pix idiom).
"""

from __future__ import annotations

import jax.numpy as jnp

EPS = 1e-8


def safe_power(x: jnp.ndarray, p, *, eps: float = EPS) -> jnp.ndarray:
  """`max(x, eps) ** p`: finite value and gradient for every x >= 0.

  Written as exp(p log x): XLA's general `pow` handles negative bases and
  special cases and runs about 4x slower on CPU; the base here is positive.
  """
  return jnp.exp(p * jnp.log(jnp.maximum(x, eps)))


def safe_divide(a: jnp.ndarray, b: jnp.ndarray, *,
                eps: float = EPS) -> jnp.ndarray:
  """`a / b` with |b| kept at least `eps` (sign preserved, b == 0 -> +eps)."""
  b = jnp.asarray(b)
  safe_b = jnp.where(jnp.abs(b) < eps, jnp.where(b < 0, -eps, eps), b)
  return a / safe_b


def safe_sqrt(x: jnp.ndarray, *, eps: float = EPS) -> jnp.ndarray:
  """`sqrt(max(x, eps))`: finite gradient at 0."""
  return jnp.sqrt(jnp.maximum(x, eps))
