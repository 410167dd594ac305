"""The training stream: unpaired patches of both cameras, drawn apart.

The official loader couples file i of A with file i of B for ever; here A
and B are two seeded streams, so they are re-paired at random every epoch
(docs/cstpp.md).
"""

from __future__ import annotations

import numpy as np

from rawjax.data import pipeline as pipeline_lib
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.data.simulated.raw2raw import dataset_root
from rawjax.eval.raw2raw import camera_names, require_train_split
from rawjax.methods.cstpp.config import check_config

__all__ = ['TrainData', 'make_data', 'process_share']


def process_share(batch_size: int, key: str, *, process_index: int,
                  process_count: int) -> slice:
  """This process's slice of a global batch of `batch_size` (config `key`).

  Raises:
    ValueError: the batch does not split evenly over the processes.
  """
  if batch_size % process_count:
    raise ValueError(f'config.{key}={batch_size} does not split over '
                     f'{process_count} processes.')
  share = batch_size // process_count
  return slice(process_index * share, (process_index + 1) * share)


class TrainData(pipeline_lib.ZippedPipelines):
  """Unpaired patches of both cameras, drawn independently.

  Batch of step s: {'a': (N, p, p, C), 'b': (N, p, p, C)} float32 in
  [0, 1], N = data.batch_size / process_count. Two seeded
  `rawjax.data.Pipeline` streams (crops, dihedral augmentation from
  data.augment); `iterate(start_step=k)` resumes both exactly.
  """

  def __init__(self, config, *, split: str = 'train', process_index: int = 0,
               process_count: int = 1):
    require_train_split(split, method='cycle_gan')
    check_config(config)
    data = config.data
    process_share(data.batch_size, 'data.batch_size',
                  process_index=process_index, process_count=process_count)
    self.root = dataset_root(data)
    self.cameras = camera_names(data.cameras, self.root)
    n = data.batch_size
    self.pipelines = {}
    for i, (key, camera) in enumerate(zip(('a', 'b'), self.cameras)):
      dataset = raw2raw_data.Raw2RawUnpaired(self.root, camera=camera)
      self.pipelines[key] = pipeline_lib.Pipeline(
          pipeline_lib.Resampled(dataset, range(len(dataset)), n),
          per_device_batch=n // process_count, fields=('raw',),
          patch_size=data.patch_size, augment=tuple(data.augment),
          seed=pipeline_lib.stream_seed(config.seed, 10 + i),
          local_device_count=1, process_index=process_index,
          process_count=process_count, num_workers=data.num_workers,
          prefetch=data.prefetch)

  def merge(self, parts):
    return {k: np.asarray(v['raw'])[0] for k, v in parts.items()}


# The Method interface's make_data(config, *, split, process_index,
# process_count): the stream itself.
make_data = TrainData
