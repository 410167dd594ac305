"""The training stream: unpaired patches of both cameras plus anchor pairs.

The paper mixes unpaired and anchor samples in each batch of 16 without
saying how. Here every step takes `data.unpaired_batch` unpaired patches
*per camera* and `data.anchor_batch` anchor pairs (both global batch sizes),
from three seeded, resumable streams: the paper config uses 4 + 4 unpaired
patches and 4 pairs (16 images). Static shares keep the shapes static (one
compilation) and let each device hold an equal part of each.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval import raw2raw as raw2raw_eval
from rawjax.eval.raw2raw import require_train_split
from rawjax.methods.raw2raw_semi.config import check_config

__all__ = ['TrainData', 'anchor_keys', 'make_data']


def anchor_keys(config, anchors: raw2raw_data.Raw2RawPaired) -> list[str]:
  """The anchor pairs used: all, or Table 2's `data.num_anchors` of them."""
  return [anchors.keys[i] for i in raw2raw_eval.anchor_indices(
      len(anchors), config.data.num_anchors, config.seed)]


class TrainData(pipeline_lib.ZippedPipelines):
  """The training stream: unpaired patches of both cameras + anchor pairs.

  Batch of step s (this process's share, leading axis = samples):
    'unpaired_a', 'unpaired_b': (U / P, p, p, 4) float32 patches;
    'anchor_a', 'anchor_b': (A / P, p, p, 4) aligned anchor patches
  (U = data.unpaired_batch, A = data.anchor_batch, P processes, p =
  data.patch_size), in [0, 1]. Three `rawjax.data.Pipeline`s with their own
  seeds; `iterate(start_step=k)` resumes all of them exactly at step k.
  """

  def __init__(self, config, *, split: str = 'train', process_index: int = 0,
               process_count: int = 1):
    require_train_split(split, method='raw2raw_semi')
    check_config(config)
    data = config.data
    for key in ('unpaired_batch', 'anchor_batch'):
      if data[key] % process_count:
        raise ValueError(f'config.data.{key}={data[key]} does not split over '
                         f'{process_count} processes.')
    self.root = dataset_root(data)
    self.cameras = raw2raw_eval.camera_names(data.cameras, self.root)
    unpaired = [raw2raw_data.Raw2RawUnpaired(self.root, camera=c)
                for c in self.cameras]
    anchors = raw2raw_data.Raw2RawPaired(self.root, split='anchor',
                                         cameras=self.cameras)
    self.anchor_keys = anchor_keys(config, anchors)
    common = dict(patch_size=data.patch_size, augment=tuple(data.augment),
                  local_device_count=1, process_index=process_index,
                  process_count=process_count, num_workers=data.num_workers,
                  worker_count=data.get('worker_count', 0),
                  prefetch=data.prefetch)
    u, a = data.unpaired_batch, data.anchor_batch
    self.pipelines = {
        'unpaired_a': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(unpaired[0], range(len(unpaired[0])), u),
            per_device_batch=u // process_count, fields=('raw',),
            seed=pipeline_lib.stream_seed(config.seed, 0), **common),
        'unpaired_b': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(unpaired[1], range(len(unpaired[1])), u),
            per_device_batch=u // process_count, fields=('raw',),
            seed=pipeline_lib.stream_seed(config.seed, 1), **common),
        'anchor': pipeline_lib.Pipeline(
            pipeline_lib.Resampled(anchors, [anchors.keys.index(k)
                                 for k in self.anchor_keys], a),
            per_device_batch=a // process_count, fields=('raw_a', 'raw_b'),
            seed=pipeline_lib.stream_seed(config.seed, 2), **common),
    }

  def merge(self, parts: Mapping[str, Mapping[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    first = lambda x: np.asarray(x)[0]  # noqa: E731  (1 "device", see init)
    return {'unpaired_a': first(parts['unpaired_a']['raw']),
            'unpaired_b': first(parts['unpaired_b']['raw']),
            'anchor_a': first(parts['anchor']['raw_a']),
            'anchor_b': first(parts['anchor']['raw_b'])}


# The Method interface's make_data(config, *, split, process_index,
# process_count): the stream itself.
make_data = TrainData
