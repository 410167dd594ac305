"""The one gradient-update helper every method's step uses."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rawjax import train
from rawjax.train import steps


def _problem(seed):
  rng = np.random.default_rng(seed)
  params = {'w': jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
            'b': jnp.zeros((2,), jnp.float32)}
  x = jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32)  # 2 devices
  y = jnp.asarray(rng.normal(size=(2, 4, 2)), jnp.float32)
  return params, x, y


def _loss(params, x, y):
  prediction = x @ params['w'] + params['b']
  return jnp.mean(jnp.square(prediction - y)), prediction


def test_gradient_update_equals_the_manual_sequence_under_pmap():
  params, x, y = _problem(0)
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)

  def step(x, y):
    loss, _, update = steps.gradient_update(
        tx, functools.partial(_loss, x=x, y=y), params=params,
        opt_state=opt_state)
    return loss, update

  loss, update = jax.pmap(step, axis_name=steps.AXIS_NAME,
                          devices=jax.devices()[:2])(x, y)
  grads = [jax.grad(lambda p, i=i: _loss(p, x[i], y[i])[0])(params)
           for i in range(2)]
  mean = jax.tree.map(lambda a, b: (a + b) / 2, *grads)
  updates, want_state = tx.update(mean, opt_state, params)
  want = optax.apply_updates(params, updates)
  for key in params:
    np.testing.assert_allclose(update.params[key][0], want[key], rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(update.params[key][1], want[key], rtol=1e-6,
                               atol=1e-7)
  np.testing.assert_allclose(update.diagnostics['grad_norm'][0],
                             optax.tree.norm(mean), rtol=1e-6)
  np.testing.assert_allclose(update.diagnostics['update_norm'][0],
                             optax.tree.norm(updates), rtol=1e-6)
  np.testing.assert_allclose(loss[1], _loss(params, x[1], y[1])[0],
                             rtol=1e-6)
  for got, want_leaf in zip(jax.tree.leaves(update.opt_state),
                            jax.tree.leaves(want_state)):
    np.testing.assert_allclose(got[0], want_leaf, rtol=1e-6, atol=1e-7)


def test_transform_sees_the_reduced_gradients_and_reports():
  params, x, y = _problem(1)
  tx = optax.sgd(0.1)

  def clip_to_zero(grads):
    return jax.tree.map(jnp.zeros_like, grads), {'clipped': jnp.float32(1)}

  def step(x, y):
    grads = jax.grad(lambda p: _loss(p, x, y)[0])(params)
    return steps.apply_gradients(tx, params=params,
                                 opt_state=tx.init(params), grads=grads,
                                 transform=clip_to_zero)

  update = jax.pmap(step, axis_name=steps.AXIS_NAME,
                    devices=jax.devices()[:2])(x, y)
  for key in params:
    np.testing.assert_array_equal(update.params[key][0], params[key])
  assert float(update.diagnostics['clipped'][0]) == 1.0
  assert float(update.diagnostics['grad_norm'][0]) == 0.0


def test_raw_key_and_schedules():
  typed = jax.random.key(3)
  raw = train.raw_key(typed)
  assert raw.dtype == jnp.uint32
  np.testing.assert_array_equal(raw, jax.random.key_data(typed))
  np.testing.assert_array_equal(train.raw_key(jax.random.PRNGKey(3)), raw)
  constant = train.warmup_cosine_schedule(learning_rate=1e-3,
                                          schedule='constant', num_steps=10)
  assert float(constant(7)) == pytest.approx(1e-3)
  cosine = train.warmup_cosine_schedule(
      learning_rate=1e-3, schedule='cosine', num_steps=100, warmup_steps=10,
      final_fraction=0.1)
  assert float(cosine(0)) == 0.0
  assert float(cosine(10)) == pytest.approx(1e-3)
  assert float(cosine(100)) == pytest.approx(1e-4)
  with pytest.raises(ValueError, match="'constant' or 'cosine'"):
    train.warmup_cosine_schedule(learning_rate=1e-3, schedule='linear',
                                 num_steps=10)
