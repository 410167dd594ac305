"""SemiISP's training batches: real pairs, and unlabelled sRGB in phase 2.

The data are prepared arrays (`rawjax.data.datasets.arrays`): a user's
FiveK / LoL conversion in `config.data.root`, or the simulated folder
(`rawjax.data.simulated.semiisp`). The unlabelled images come from
`config.data.unlabelled` (`rawjax.methods.semiisp.unlabelled`): the
prepared folder's own split, or an out-of-domain set prepared once.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import numpy as np

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets.arrays import ArrayDataset, load_split
from rawjax.data.simulated import semiisp as simulated_semiisp
from rawjax.methods.semiisp.config import check_config
from rawjax.methods.semiisp.unlabelled import load_unlabelled

__all__ = ['TrainData', 'dataset_root', 'make_data']


def dataset_root(config) -> pathlib.Path:
  """`config.data.root` (a prepared folder) or the simulated one.

  With an empty root the simulator writes the folder into
  `data.cache_dir` (default `$RAWJAX_DATA_DIR` or ~/.cache/rawjax) on first
  use, named by its settings.
  """
  return simulated_semiisp.dataset_root(config.data, task=config.task)


class TrainData(pipeline_lib.ZippedPipelines):
  """Zipped, resumable streams: real pairs (+ unlabelled sRGB in phase 2).

  Batch (this process's share): 'raw', 'srgb' (n_real, p, p, 3) and, in
  phase 'semi', 'unlabelled' (n_pseudo, p, p, 3), floats in [0, 1]. The
  class is the method's `make_data`: only split 'train' (evaluation reads
  the test pairs itself).
  """

  def __init__(self, config, *, split: str = 'train', process_index: int = 0,
               process_count: int = 1):
    if split != 'train':
      raise ValueError(f"semiisp trains on split 'train' (evaluation reads "
                       f'the test pairs itself), got {split!r}.')
    check_config(config)
    root = dataset_root(config)
    phase, data = config.phase, config.data
    real_batch = {'isp': config.isp.batch, 'semi': config.semi.real_batch,
                  'supervised': config.supervised.batch}[phase]
    sizes = {'real': real_batch}
    if phase == 'semi':
      sizes['unlabelled'] = config.semi.pseudo_batch
    for key, size in sizes.items():
      if size % process_count:
        raise ValueError(f'the {key} batch {size} does not split over '
                         f'{process_count} processes.')
    splits = {'real': load_split(root, 'labelled', limit=data.num_labelled)}
    if data.get('unlabelled_pairs', False):
      splits['real'] = _with_unlabelled_pairs(splits['real'], root, data)
    if phase == 'semi':
      unlabelled = load_unlabelled(
          data, size=splits['real']['srgb'].shape[1:3], seed=config.seed)
      splits['unlabelled'] = (
          unlabelled if unlabelled is not None else
          load_split(root, 'unlabelled', limit=data.num_unlabelled))
    common = dict(patch_size=data.patch_size or None,
                  augment=tuple(data.augment), local_device_count=1,
                  process_index=process_index, process_count=process_count,
                  num_workers=data.num_workers,
                  worker_count=data.get('worker_count', 0),
                  prefetch=data.prefetch)
    self.pipelines = {
        key: pipeline_lib.Pipeline(
            ArrayDataset(splits[key], minimum=size),
            per_device_batch=size // process_count,
            seed=pipeline_lib.stream_seed(config.seed, i), **common)
        for i, (key, size) in enumerate(sizes.items())}

  def merge(self, parts: Mapping[str, Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    out = {'raw': parts['real']['raw'][0], 'srgb': parts['real']['srgb'][0]}
    if 'unlabelled' in parts:
      out['unlabelled'] = parts['unlabelled']['srgb'][0]
    return out


def _with_unlabelled_pairs(labelled: Mapping[str, np.ndarray],
                           root: pathlib.Path, data) -> dict[str, np.ndarray]:
  """The labelled pairs followed by the unlabelled scenes' true pairs (the
  real-pairs ceiling), in memory."""
  extra = load_split(root, 'unlabelled', limit=data.num_unlabelled,
                     with_raw=True)
  for field in ('raw', 'srgb'):
    if extra[field].shape[1:] != labelled[field].shape[1:]:
      raise ValueError(
          f"data.unlabelled_pairs: the unlabelled scenes' {field} images are "
          f'{extra[field].shape[1:]}, the labelled ones '
          f'{labelled[field].shape[1:]}; they must share a size.')
  return {field: np.concatenate([labelled[field], extra[field]])
          for field in ('raw', 'srgb')}


# `Method.make_data(config, *, split, process_index, process_count)`.
make_data = TrainData
