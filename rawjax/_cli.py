"""Console scripts (`[project.scripts]`): the library's command lines.

Each runs the `main` of its module, which stays runnable as `python -m
<module>` too; a script exits 0 on success (the mains return their result
for programmatic use, which `sys.exit` would print as an error).
"""

from __future__ import annotations

import importlib


def _run(module: str) -> None:
  importlib.import_module(module).main()


def align() -> None:
  """`rawjax-align`: `python -m rawjax.align`."""
  _run('rawjax.align')


def convert() -> None:
  """`rawjax-convert`: `python -m rawjax.convert`."""
  _run('rawjax.convert')


def baselines() -> None:
  """`rawjax-baselines`: `python -m rawjax.baselines`."""
  _run('rawjax.baselines')


def simulate() -> None:
  """`rawjax-simulate`: `python -m rawjax.data.synthetic`."""
  _run('rawjax.data.synthetic')
