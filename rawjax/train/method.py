"""What a training method contributes to the generic loop, and the registry.

The loop (`rawjax.train.loop`) owns devices, data sharding, checkpoints,
logging, evaluation scheduling and failure handling. A method owns its models,
losses and per-device steps. They meet in `Method`:

  * `init(config, rng) -> state`: the initial train state, a plain dict pytree
    with at least 'step' (int32 scalar), 'rng' and 'params'; optimiser states,
    BatchNorm statistics, history pools, memorised parameter sets... are more
    entries of the same dict, so checkpoints hold all of them.
  * `steps`: one or more per-device step functions
    `step(state, batch, rng) -> (state, metrics)`, applied in order each
    iteration (a GAN has a D step and a G step). They reduce gradients, batch
    statistics and metrics with `jax.lax.pmean(..., axis_name='batch')`, and
    report a scalar 'loss' in `metrics` (the loop skips an update whose loss
    is not finite). `steps` may instead be a function `steps(config) ->
    sequence of step functions`, for steps that close over config values
    (learning rate, loss weights); the loop calls it once. The loop derives
    `rng` from (state['rng'], state['step']) and advances state['step'];
    state['rng'] must be a raw uint32 key (`jax.random.PRNGKey`).
  * `make_data(config, *, split, process_index, process_count) -> iterable`
    of host batches for this process (leading axis = this process's share of
    the global batch); the loop reshapes for the local devices. To resume,
    the loop calls `iterable.iterate(start_step=k)` when it exists (a
    `rawjax.data.Pipeline`, whose (devices, per_device, ...) batches the loop
    flattens first), else replays a deterministic iterable past k batches.
  * `evaluate(config, state, *, workdir) -> dict` of scalars (and it may write
    results.json / results.md / PNGs under workdir).
  * `sample_images(config, state, batch) -> dict[str, array]` of (N, H, W, 3)
    images in [0, 1] for the sample grids (optional).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

StepFn = Callable[[Any, Any, Any], tuple[Any, dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  init: Callable[..., dict[str, Any]]
  steps: Sequence[StepFn] | Callable[[Any], Sequence[StepFn]]
  make_data: Callable[..., Iterable[Any]]
  evaluate: Callable[..., dict[str, float]]
  sample_images: Callable[..., dict[str, Any]] | None = None


_REGISTRY: dict[str, Callable[[], Method]] = {}

# config.method -> the package under rawjax.methods that registers it (one
# package per paper; a name not listed is looked up as a package of its own).
METHOD_PACKAGES = {
    'raw2raw_semi': 'raw2raw_semi',
    'cycle_gan': 'cstpp',
    'cstpp_adapt': 'cstpp',
    'liteisp': 'liteisp',
    'kpn_isp': 'kpn',
    'semiisp': 'semiisp',
}


def register_method(name: str):
  """Decorator registering a zero-argument factory returning a `Method`."""
  def wrap(factory: Callable[[], Method]):
    if name in _REGISTRY:
      raise ValueError(f'training method {name!r} is already registered.')
    _REGISTRY[name] = factory
    return factory
  return wrap


def register(name: str, *, init: Callable[..., dict[str, Any]],
             steps: Sequence[StepFn] | Callable[[Any], Sequence[StepFn]],
             make_data: Callable[..., Iterable[Any]],
             evaluate: Callable[..., dict[str, float]],
             sample_images: Callable[..., dict[str, Any]] | None = None
             ) -> Method:
  """Registers the method `name` made of these functions; returns it.

  The one-call registration of a method package's `__init__.py`.
  """
  method = Method(name=name, init=init, steps=steps, make_data=make_data,
                  evaluate=evaluate, sample_images=sample_images)
  register_method(name)(lambda: method)
  return method


def get_method(name: str) -> Method:
  """The registered method `name` (config.method), or a clear error.

  A method lives in the package `rawjax.methods.<paper>`
  (`METHOD_PACKAGES`, else `rawjax.methods.<name>`), imported on first use.
  """
  if name not in _REGISTRY and name.isidentifier():
    module = f'rawjax.methods.{METHOD_PACKAGES.get(name, name)}'
    try:
      importlib.import_module(module)
    except ModuleNotFoundError as e:
      if e.name != module:
        raise
  if name not in _REGISTRY:
    raise ValueError(f'unknown training method {name!r}; registered: '
                     f'{", ".join(sorted(_REGISTRY)) or "none"}.')
  return _REGISTRY[name]()
