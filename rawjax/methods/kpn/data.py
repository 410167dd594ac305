"""The kernel-prediction ISP's data: aligned pairs (or their simulation)."""

from __future__ import annotations

import pathlib

import jax

from rawjax.align import AlignConfig
from rawjax.data import pipeline as pipeline_lib
from rawjax.data import simulated
from rawjax.data.datasets.kpn_pairs import PairFolder
from rawjax.data.simulated import kpn_pairs as kpn_simulation
from rawjax.methods.kpn import config as config_lib

__all__ = ['align_config', 'dataset_root', 'make_data']


def dataset_root(config) -> pathlib.Path:
  """`config.data.root`, or the simulated pairs (made on first use).

  The simulation is `config.data.synthetic`'s raw2raw dataset exported for
  camera `config.data.camera` (`rawjax.data.simulated.kpn_pairs`); with
  `config.data.alignment.simulate`, misaligned by a known warp and aligned
  back by `rawjax.align` (`ensure_aligned_pairs`).
  """
  s = config.data.synthetic
  a = config.data.alignment
  progress = jax.process_index() == 0

  def build(cache):
    if a.simulate:
      return kpn_simulation.ensure_aligned_pairs(
          cache, num_scenes=s.num_scenes, seed=s.seed, height=s.height,
          width=s.width, preset=s.preset, camera=config.data.camera,
          config=align_config(config), num_rotations=a.num_rotations,
          rotation_shift=a.rotation_shift, progress=progress)
    return kpn_simulation.ensure_synthetic_pairs(
        cache, num_scenes=s.num_scenes, seed=s.seed, height=s.height,
        width=s.width, preset=s.preset, camera=config.data.camera,
        progress=progress)

  return simulated.dataset_root(config.data, build=build)


def align_config(config) -> AlignConfig:
  """The `rawjax.align.AlignConfig` of `config.data.alignment`."""
  a = config.data.alignment
  return AlignConfig(patch_size=a.patch_size, max_flow=a.max_flow,
                     flow_method=a.flow_method,
                     pwcnet_weights=a.pwcnet_weights,
                     flow_regularization=a.flow_regularization,
                     min_keypoints=a.min_keypoints)


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> pipeline_lib.Pipeline:
  """Seeded, resumable batches {'raw': (b, p, p, 4), 'srgb': (b, 2p, 2p, 3)}.

  b = config.data.batch_size / process_count (this process's share), p =
  config.data.patch_size (packed pixels), random crops and
  config.data.augment.
  """
  config_lib.check_config(config, process_count=process_count)
  if split != 'train':
    raise ValueError(f"kpn_isp trains on split 'train' (evaluation reads "
                     f'the test split itself), got {split!r}.')
  data = config.data
  return pipeline_lib.Pipeline(
      PairFolder(dataset_root(config), split='train',
                 white_balance=data.white_balance,
                 include_rejected=data.include_rejected),
      per_device_batch=data.batch_size // process_count,
      patch_size=data.patch_size, augment=tuple(data.augment),
      seed=config.seed, local_device_count=1, process_index=process_index,
      process_count=process_count, num_workers=data.num_workers,
      worker_count=data.get('worker_count', 0),
      prefetch=data.prefetch)
