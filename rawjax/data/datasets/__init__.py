"""Loaders for the datasets users own, in their published on-disk layouts.

Each loader validates the layout when opened (`DatasetLayoutError` lists
every missing piece and where it was expected), returns samples as dicts of
host numpy arrays, and declares how the batching pipeline
(`rawjax.data.pipeline.Pipeline`) crops and augments each array through its
`fields`. Layouts, shapes, ranges and channel orders: docs/datasets.md.
`arrays` is the prepared-arrays layout (uint16 .npy splits) that
`prepare_fivek` / `prepare_lol` convert FiveK / LoL into once (SemiISP).
"""

from rawjax.data.datasets._layout import (
    DatasetLayoutError, FileDataset, Problem)
from rawjax.data.datasets.arrays import (
    ArrayDataset, load_split, prepare_arrays)
from rawjax.data.datasets.fivek import FiveKDataset, prepare_fivek
from rawjax.data.datasets.lol import LOLDataset, prepare_lol
from rawjax.data.datasets.kpn_pairs import PairFolder
from rawjax.data.datasets.lsmi import LSMIDataset
from rawjax.data.datasets.nus import NUSDataset
from rawjax.data.datasets.raw2raw import Raw2RawPaired, Raw2RawUnpaired
from rawjax.data.datasets.zrr import ZRRDataset, coordinate_map

__all__ = [
    'ArrayDataset', 'DatasetLayoutError', 'FileDataset', 'FiveKDataset',
    'LOADERS', 'LOLDataset', 'LSMIDataset', 'NUSDataset', 'PairFolder',
    'Problem', 'Raw2RawPaired', 'Raw2RawUnpaired', 'ZRRDataset',
    'coordinate_map', 'load_split', 'open_dataset', 'prepare_arrays',
    'prepare_fivek', 'prepare_lol',
]

# Config names of the loaders (`open_dataset(config.data.name, ...)`).
LOADERS = {
    'raw2raw_paired': Raw2RawPaired,
    'raw2raw_unpaired': Raw2RawUnpaired,
    'nus': NUSDataset,
    'lsmi': LSMIDataset,
    'zrr': ZRRDataset,
    'fivek': FiveKDataset,
    'lol': LOLDataset,
    'kpn_pairs': PairFolder,
}


def open_dataset(name: str, root, **options) -> FileDataset:
  """Opens the loader registered as `name` (see `LOADERS`) on `root`.

  `options` are the loader's keyword options (split, camera, ...), so a
  config's data section maps onto it directly:
  `open_dataset(**config.data)` with data = {name, root, split, ...}.
  """
  if name not in LOADERS:
    raise ValueError(f'unknown dataset {name!r}; choose one of '
                     f'{sorted(LOADERS)}.')
  return LOADERS[name](root, **options)
