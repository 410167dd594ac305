"""Datasets simulated on first use, in the layout of the real ones.

Each module writes one dataset from the spectral simulator
(`rawjax.data.synthetic`) into the datasets cache, once, and returns its
folder; a method's config points at it when `config.data.root` is empty:

  * `rawjax.data.simulated.raw2raw`: the two-camera Afifi raw2raw layout;
  * `rawjax.data.simulated.zrr`: misaligned RAW / sRGB pairs in the ZRR
    layout (LiteISPNet);
  * `rawjax.data.simulated.kpn_pairs`: aligned raw / sRGB .npz pairs (KPN);
  * `rawjax.data.simulated.semiisp`: the SemiISP arrays folder.

`dataset_root` is the one rule that chooses between a user's folder and
the simulation.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from rawjax.io.staging import datasets_cache

__all__ = ['dataset_root']


def dataset_root(data: Any, *, build: Callable[[pathlib.Path], pathlib.Path],
                 check: Callable[[pathlib.Path], None] | None = None
                 ) -> pathlib.Path:
  """`data.root`, or the dataset `build(cache)` simulates (once) in the cache.

  Args:
    data: a config's `data` section, with `root` (a folder, '' for the
      simulation) and `cache_dir` ('' for $RAWJAX_DATA_DIR or
      ~/.cache/rawjax).
    build: `cache folder -> dataset folder`, generating it when absent.
    check: optional `folder -> None` raising a clear error when a user's
      folder does not have the expected layout.

  Raises:
    FileNotFoundError: `data.root` is set and is not a folder.
  """
  if data.root:
    root = pathlib.Path(data.root).expanduser()
    if not root.is_dir():
      raise FileNotFoundError(f'config.data.root={str(root)!r} is not a '
                              'folder.')
    if check is not None:
      check(root)
    return root
  return build(datasets_cache(data.cache_dir))
