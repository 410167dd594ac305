"""Running a per-device step on many devices: jax.pmap or jax.shard_map.

A method writes its step for one device's share of the batch and reduces
across devices with `jax.lax.pmean(..., axis_name='batch')` (gradients,
BatchNorm statistics, metrics). `Parallel` runs that same function either

  * under `jax.pmap` over the local devices (mode 'pmap', the default): the
    state is replicated with a leading device axis, a batch is
    (local_devices, per_device, ...); or
  * under `jax.shard_map` on a 1-D `jax.make_mesh` mesh named 'batch'
    spanning all (global) devices, jitted (mode 'shard_map'): the state is a
    replicated global array, a batch a global array sharded on its first
    axis. `check_vma` is off: with it, JAX's autodiff inside shard_map
    already sums the gradient of a replicated (invariant) parameter over
    devices, so a step written for pmap (`pmean` of per-device gradients)
    would get the sum instead of the mean. Off, the per-device function runs
    exactly as under pmap, and outputs are read from one device (like
    pmap's replica 0), so they must be reduced by the step.

Both give the numbers of one device running the step on the whole batch, up
to float32 summation order (`tests/train/test_parallel.py` states the
tolerance). Host code sees the same interface in both modes: `replicate`
(host state -> devices), `shard_batch` (host batch (L, ...) -> devices),
`compile` (per-device function -> callable on those), `unreplicate`
(devices -> host numpy state of replica 0).

Multi-host: call `initialize_distributed` (the launchers do) before touching
devices. Under pmap each process maps over its local devices and the
collectives span all processes; under shard_map the mesh spans all devices
and each process contributes its local rows of the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging
import jax
import numpy as np

__all__ = [
    'AXIS_NAME', 'Parallel', 'detect_multiprocess_environment',
    'define_distributed_flags', 'devices_from_config',
    'initialize_distributed',
]

AXIS_NAME = 'batch'


class Parallel:
  """One way of running per-device steps (see the module docstring).

  Args:
    mode: 'pmap' or 'shard_map'.
    devices: the devices to use (single process). Default: all of them:
      pmap over every process's devices, each process placing arrays on
      its local ones; shard_map on one mesh of `jax.devices()`. A
      single-device list runs the step on the whole batch.
  """

  def __init__(self, mode: str = 'pmap', *,
               devices: Sequence[jax.Device] | None = None):
    if mode not in ('pmap', 'shard_map'):
      raise ValueError(f"parallel mode must be 'pmap' or 'shard_map', got "
                       f'{mode!r}.')
    self.mode = mode
    # pmap over its default devices spans every process (collectives are
    # global); an explicit device list would confine it to those devices.
    self._pmap_devices = None if devices is None else list(devices)
    if devices is None:
      devices = jax.local_devices() if mode == 'pmap' else jax.devices()
    self.devices = list(devices)
    if not self.devices:
      raise ValueError('Parallel needs at least one device.')
    if mode == 'pmap':
      # pmap's own output sharding: inputs placed like this do not trigger a
      # second compilation when outputs are fed back.
      mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS_NAME,))
      self._stacked = jax.NamedSharding(mesh, jax.P(AXIS_NAME))
    else:
      self.mesh = jax.make_mesh((len(self.devices),), (AXIS_NAME,),
                                devices=self.devices)
      self._replicated = jax.NamedSharding(self.mesh, jax.P())
      self._split = jax.NamedSharding(self.mesh, jax.P(AXIS_NAME))

  @property
  def local_device_count(self) -> int:
    """Devices of this process the batch is split over."""
    return sum(d.process_index == jax.process_index() for d in self.devices)

  def replicate(self, tree: Any) -> Any:
    """A host pytree (numpy or jax) as the device state of this mode."""
    n = len(self.devices)

    def put(x):
      x = np.asarray(x)
      if self.mode == 'pmap':
        return jax.device_put(np.broadcast_to(x, (n, *x.shape)),
                              self._stacked)
      return jax.make_array_from_callback(x.shape, self._replicated,
                                          lambda index: x[index])
    return jax.tree.map(put, tree)

  def unreplicate(self, tree: Any) -> Any:
    """Replica 0 of a device state, as a host numpy pytree."""
    def get(x):
      if not isinstance(x, jax.Array):
        return np.array(x)
      data = np.array(x.addressable_shards[0].data)
      if self.mode == 'pmap':
        data = data.reshape(x.shape[1:])
      return data
    return jax.tree.map(get, tree)

  def shard_batch(self, batch: Any) -> Any:
    """This process's host batch, leaves (L, ...), placed for the step.

    L must be divisible by the local device count. pmap: (D, L / D, ...)
    on the local devices; shard_map: a global (process_count * L, ...)
    array split over the mesh.
    """
    d = self.local_device_count

    def put(path, x):
      x = np.asarray(x)
      if x.ndim == 0 or x.shape[0] % d:
        raise ValueError(
            f'batch{jax.tree_util.keystr(path)} has shape {x.shape}: its '
            f'leading axis must split over {d} local device(s).')
      if self.mode == 'pmap':
        return jax.device_put(x.reshape(d, x.shape[0] // d, *x.shape[1:]),
                              self._stacked)
      return jax.make_array_from_process_local_data(self._split, x)
    return jax.tree_util.tree_map_with_path(put, batch)

  def compile(self, fn: Callable[..., Any], *,
              donate_state: bool = True) -> Callable[..., Any]:
    """`fn(state, batch) -> outputs` per device, as a step on many devices.

    Every output must be identical on all devices (reduced with
    `lax.pmean`/`psum`/`pmin`... over 'batch'): pmap returns it per device
    (replica 0 is read), shard_map returns one replicated array. With
    `donate_state`, the input state's buffers are reused for the output.
    """
    donate = (0,) if donate_state else ()
    if self.mode == 'pmap':
      return jax.pmap(fn, axis_name=AXIS_NAME, devices=self._pmap_devices,
                      donate_argnums=donate)
    mapped = jax.shard_map(fn, mesh=self.mesh,
                           in_specs=(jax.P(), jax.P(AXIS_NAME)),
                           out_specs=jax.P(), check_vma=False)
    return jax.jit(mapped, donate_argnums=donate)


def devices_from_config(config) -> list[jax.Device] | None:
  """The devices `config.parallel` asks for (None = the mode's default)."""
  n = config.parallel.num_devices
  if not n:
    return None
  if jax.process_count() > 1:
    raise ValueError('config.parallel.num_devices must be 0 (all devices) in '
                     f'a multi-process run ({jax.process_count()} processes).')
  available = jax.local_devices()
  if n > len(available):
    raise ValueError(f'config.parallel.num_devices={n} but only '
                     f'{len(available)} device(s) are available.')
  return available[:n]


def detect_multiprocess_environment() -> str | None:
  """Which multi-process launcher started us, or None (single process).

  'slurm' (srun with more than one task), 'openmpi' (mpirun with more than
  one rank), 'tpu' (a multi-host TPU slice or multislice) or 'env'
  (JAX_COORDINATOR_ADDRESS set). A Cloud TPU VM that only its metadata
  server describes as multi-host is not visible here: pass `--distributed`
  (launch/tpu/train.sh does).
  """
  env = os.environ
  if (int(env.get('SLURM_NTASKS', '1') or 1) > 1 and
      'SLURM_JOB_ID' in env and 'SLURM_PROCID' in env):
    return 'slurm'
  if int(env.get('OMPI_COMM_WORLD_SIZE', '1') or 1) > 1:
    return 'openmpi'
  hosts = env.get('TPU_PROCESS_ADDRESSES') or env.get('TPU_WORKER_HOSTNAMES')
  if (hosts and ',' in hosts) or 'MEGASCALE_COORDINATOR_ADDRESS' in env:
    return 'tpu'
  if env.get('JAX_COORDINATOR_ADDRESS'):
    return 'env'
  return None


def initialize_distributed(*, force: bool = False,
                           coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """`jax.distributed.initialize()` when a multi-process run needs it.

  Initialises when `force`, when a coordinator address is given, or when
  `detect_multiprocess_environment` finds a launcher; JAX then reads the
  cluster from that environment (arguments left None are auto-detected).
  Must run before any JAX computation. Returns whether it initialised.
  """
  environment = detect_multiprocess_environment()
  if not (force or coordinator_address or environment):
    return False
  logging.info('jax.distributed.initialize (environment: %s, coordinator: '
               '%s)', environment, coordinator_address or 'auto')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
  logging.info('process %d of %d, %d local / %d global devices',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True


def define_distributed_flags() -> Callable[[], bool]:
  """Defines the launchers' multi-process flags; returns their initialiser.

  absl flags: --distributed (force `jax.distributed.initialize()`, e.g. on a
  Cloud TPU VM slice, where JAX reads the topology from the metadata
  server), --coordinator_address, --num_processes, --process_id (for
  clusters JAX does not detect). Call the returned function at the start of
  `main`, before any JAX computation.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  force = flags.DEFINE_bool(
      'distributed', False, 'Call jax.distributed.initialize() even if no '
      'multi-process launcher (Slurm, Open MPI, TPU env vars) is detected.')
  address = flags.DEFINE_string(
      'coordinator_address', None, 'host:port of process 0 (implies '
      '--distributed).')
  count = flags.DEFINE_integer('num_processes', None,
                               'Number of processes (with --distributed).')
  index = flags.DEFINE_integer('process_id', None,
                               'This process (with --distributed).')

  def initialize() -> bool:
    return initialize_distributed(
        force=force.value, coordinator_address=address.value,
        num_processes=count.value, process_id=index.value)

  return initialize
