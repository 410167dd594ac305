"""Writing a folder so that readers never see it half made."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid
from collections.abc import Iterator

__all__ = ['DEFAULT_CACHE', 'datasets_cache', 'staged_directory']

DEFAULT_CACHE = '~/.cache/rawjax'


@contextlib.contextmanager
def staged_directory(final: str | os.PathLike[str], *,
                     marker: str = 'dataset.json') -> Iterator[pathlib.Path]:
  """Yields a fresh temporary sibling of `final`; renames it there on success.

  The caller fills the yielded path (it does not exist yet: create it or
  let the writer do so). On a clean exit it is renamed to `final` in one
  step, so an interrupted run leaves no half-written folder. When another
  process published `final` first (its `marker` exists) the rename's error
  is ignored and this copy is dropped. The temporary folder is removed in
  every case.
  """
  final = pathlib.Path(final)
  final.parent.mkdir(parents=True, exist_ok=True)
  staging = final.parent / f'.{final.name}.tmp-{uuid.uuid4().hex[:8]}'
  try:
    yield staging
    try:
      staging.rename(final)
    except OSError:
      if not (final / marker).exists():
        raise
  finally:
    if staging.exists():
      shutil.rmtree(staging, ignore_errors=True)


def datasets_cache(cache_dir: str | os.PathLike[str]) -> pathlib.Path:
  """Where generated and prepared datasets live: `<cache>/datasets`.

  `<cache>` is `cache_dir` (a config's `data.cache_dir`) unless it is '',
  else `$RAWJAX_DATA_DIR`, else ~/.cache/rawjax.
  """
  cache = cache_dir or os.environ.get('RAWJAX_DATA_DIR') or DEFAULT_CACHE
  return pathlib.Path(cache).expanduser() / 'datasets'
