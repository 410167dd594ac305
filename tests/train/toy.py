"""A toy training method for the loop tests, and its config file.

Linear regression y = x . w + b on fresh Gaussian batches, trained by SGD
with heavy-ball momentum, so that `reference_sgd` can replay the run in
float64 numpy as an independent reference. Registered as
'test_linear_regression'; also a config file for the launchers:

    python -m launch.train --config=tests/train/toy.py --workdir=DIR

Options (config.toy): `random_weights` weighs each sample's squared error
by a uniform draw from the step key (folded with the device index), so
resume tests also check the per-step key derivation; `nan_steps` fills
those data steps' inputs with NaN; `delay` sleeps before each batch (so a
subprocess can be killed mid-run); `sigterm_at_step` sends SIGTERM to this
process while preparing that data step; `iterable` ('resumable' with
`iterate(start_step=)`, or 'generator', replayed by the loop).
"""

import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rawjax import train
from rawjax.train import method as method_lib

NAME = 'test_linear_regression'
FEATURES = 12  # a sample is also shown as a 2x2x3 image


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = train.base_config()
  config.method = NAME
  config.seed = 3
  config.train.num_steps = 8
  config.train.max_bad_steps = 2
  config.train.eval_at_end = True
  config.checkpoint.every_steps = 2
  config.checkpoint.max_to_keep = 2
  config.logging.log_every_steps = 1
  config.logging.progress_bar = False
  config.toy = ml_collections.ConfigDict(dict(
      batch_size=8, learning_rate=0.05, momentum=0.5, random_weights=False,
      nan_steps=(), delay=0.0, sigterm_at_step=-1, iterable='resumable'))
  if variant == 'kill':  # slow enough to be killed mid-run
    config.train.num_steps = 30
    config.checkpoint.every_steps = 3
    config.toy.random_weights = True
    config.toy.delay = 0.15
  elif variant:
    raise ValueError(f'unknown toy variant {variant!r}')
  return config


def true_parameters(seed: int) -> tuple[np.ndarray, float]:
  rng = np.random.default_rng([seed, 1])
  return rng.normal(size=FEATURES), float(rng.normal())


def global_batch(config, step: int) -> dict[str, np.ndarray]:
  """The whole batch of data step `step` (all processes), float32."""
  w, b = true_parameters(config.seed)
  rng = np.random.default_rng([config.seed, 2, step])
  x = rng.normal(size=(config.toy.batch_size, FEATURES))
  y = x @ w + b + 0.1 * rng.normal(size=config.toy.batch_size)
  if step in tuple(config.toy.nan_steps):
    x = np.full_like(x, np.nan)
  return dict(x=x.astype(np.float32), y=y.astype(np.float32))


class ToyData:

  def __init__(self, config, process_index, process_count):
    self.config = config
    self.size = config.toy.batch_size // process_count
    self.offset = process_index * self.size

  def batch(self, step):
    toy = self.config.toy
    if toy.delay:
      time.sleep(toy.delay)
    if step == toy.sigterm_at_step:
      os.kill(os.getpid(), signal.SIGTERM)
    full = global_batch(self.config, step)
    return {k: v[self.offset:self.offset + self.size] for k, v in full.items()}

  def iterate(self, *, start_step=0):
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def init(config, rng):
  params = dict(w=jnp.zeros(FEATURES, jnp.float32),
                b=jnp.zeros((), jnp.float32))
  return train.create_state(params=params, rng=rng,
                            momentum=jax.tree.map(jnp.zeros_like, params))


def make_step(config):
  toy = config.toy

  def sgd_step(state, batch, rng):
    def loss_fn(params):
      error = jnp.square(batch['x'] @ params['w'] + params['b'] - batch['y'])
      if toy.random_weights:
        key = jax.random.fold_in(rng, jax.lax.axis_index('batch'))
        error = error * jax.random.uniform(key, error.shape)
      return jnp.mean(error)

    loss, grads = jax.value_and_grad(loss_fn)(state['params'])
    grads = jax.lax.pmean(grads, 'batch')
    momentum = jax.tree.map(lambda m, g: toy.momentum * m + g,
                            state['momentum'], grads)
    updates = jax.tree.map(lambda m: -toy.learning_rate * m, momentum)
    params = jax.tree.map(jnp.add, state['params'], updates)
    metrics = dict(loss=jax.lax.pmean(loss, 'batch'),
                   **train.diagnostics(grads=grads, params=state['params'],
                                       updates=updates))
    return dict(state, params=params, momentum=momentum), metrics

  return sgd_step


def make_data(config, *, split, process_index, process_count):
  del split
  data = ToyData(config, process_index, process_count)
  if config.toy.iterable == 'generator':
    return data.iterate(start_step=0)
  return data


def evaluate(config, state, *, workdir):
  del workdir
  w, b = true_parameters(config.seed)
  error = np.concatenate([state['params']['w'] - w, [state['params']['b'] - b]])
  return dict(parameter_mse=float(np.mean(np.square(error))),
              step=int(state['step']))


def sample_images(config, state, batch):
  del config
  x = np.asarray(batch['x']).reshape(-1, 2, 2, 3)
  scale = np.abs(np.asarray(state['params']['w'])).reshape(1, 2, 2, 3)
  return dict(inputs=1 / (1 + np.exp(-x)), weighted=np.tanh(np.abs(x) * scale))


def make_steps(config):
  return [make_step(config)]


def _factory():
  return method_lib.Method(
      name=NAME, init=init, steps=make_steps, make_data=make_data,
      evaluate=evaluate, sample_images=sample_images)


# Registered once per process, even if this file is loaded again as a
# config file (config_flags imports it under another module name).
try:
  method_lib.register_method(NAME)(_factory)
except ValueError:
  pass


def reference_sgd(config, num_steps: int) -> dict[str, np.ndarray]:
  """Float64 replay of the toy run (no random weights): NaN steps skipped."""
  toy = config.toy
  w, b = np.zeros(FEATURES), 0.0
  mw, mb = np.zeros(FEATURES), 0.0
  for step in range(num_steps):
    data = global_batch(config, step)
    x, y = data['x'].astype(np.float64), data['y'].astype(np.float64)
    residual = x @ w + b - y
    gw, gb = 2 * x.T @ residual / len(y), 2 * residual.mean()
    if not (np.isfinite(gw).all() and np.isfinite(gb)):
      continue
    mw, mb = toy.momentum * mw + gw, toy.momentum * mb + gb
    w, b = w - toy.learning_rate * mw, b - toy.learning_rate * mb
  return dict(w=w, b=np.float64(b))
