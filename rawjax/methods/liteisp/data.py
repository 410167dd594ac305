"""LiteISPNet's data: ZRR pairs (or their simulation) as training batches."""

from __future__ import annotations

import pathlib

import jax

from rawjax.data import pipeline as pipeline_lib
from rawjax.data import simulated
from rawjax.data.datasets import zrr
from rawjax.data.simulated import zrr as zrr_simulation
from rawjax.methods.liteisp import config as config_lib

__all__ = ['dataset_root', 'make_data', 'steps_per_epoch']


def dataset_root(config) -> pathlib.Path:
  """`config.data.root`, or the simulated ZRR dataset (generated once).

  The simulation's settings are `config.data.synthetic` (see
  `rawjax.data.simulated.zrr.ensure_synthetic_zrr`).
  """
  s = config.data.synthetic
  return simulated.dataset_root(
      config.data, build=lambda cache: zrr_simulation.ensure_synthetic_zrr(
          cache, num_train=s.num_train, num_test=s.num_test, seed=s.seed,
          size=s.size, max_shift=s.max_shift, preset=s.preset,
          progress=jax.process_index() == 0))


def steps_per_epoch(config) -> int:
  """`data.steps_per_epoch`, or len(train split) // batch (drop_last)."""
  if config.data.steps_per_epoch:
    return int(config.data.steps_per_epoch)
  dataset = zrr.ZRRDataset(dataset_root(config), split='train')
  return max(1, len(dataset) // config.data.batch_size)


def make_data(config, *, split: str = 'train', process_index: int = 0,
              process_count: int = 1) -> pipeline_lib.Pipeline:
  """ZRR batches: 'raw' (b, h, w, 4), 'rgb' and 'coord' (b, 2h, 2w, 3 | 2).

  Whole 448x448 samples (no cropping, as the reference), flips and
  transposes applied alike to all three (the GCM coordinates move with the
  pixels), a global batch of `data.batch_size` split over processes
  (b = batch_size / process_count).
  """
  config_lib.check_config(config, process_count=process_count)
  if split != 'train':
    raise ValueError(f"liteisp trains on split 'train' (evaluation reads "
                     f"the test split itself), got {split!r}.")
  data = config.data
  dataset = zrr.ZRRDataset(dataset_root(config), split='train', coords=True)
  return pipeline_lib.Pipeline(
      dataset, per_device_batch=data.batch_size // process_count,
      patch_size=data.patch_size or None, augment=tuple(data.augment),
      seed=config.seed, fields=('raw', 'rgb', 'coord'), local_device_count=1,
      process_index=process_index, process_count=process_count,
      num_workers=data.num_workers,
      worker_count=data.get('worker_count', 0), prefetch=data.prefetch)
