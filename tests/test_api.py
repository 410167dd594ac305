"""Reflection checks of the public API conventions (as dm_pix does)."""

import inspect

import pytest

from rawjax import io as rawio
from rawjax import isp, metrics

MODULES = [isp, metrics, rawio]


def _public_functions():
  for module in MODULES:
    names = getattr(module, '__all__', None) or [
        n for n in dir(module) if not n.startswith('_')]
    for name in names:
      obj = getattr(module, name)
      if inspect.isfunction(obj) and obj.__module__.startswith('rawjax'):
        yield f'{module.__name__}.{name}', obj


PUBLIC = sorted(set(_public_functions()), key=lambda item: item[0])


def test_there_is_a_public_api():
  assert len(PUBLIC) > 40


@pytest.mark.parametrize('name,fn', PUBLIC, ids=[n for n, _ in PUBLIC])
def test_options_are_keyword_only(name, fn):
  """A parameter with a default is an option, and options come after `*`."""
  for p in inspect.signature(fn).parameters.values():
    if p.default is not inspect.Parameter.empty:
      assert p.kind is inspect.Parameter.KEYWORD_ONLY, (
          f'{name}: option {p.name!r} must be keyword-only')


@pytest.mark.parametrize('name,fn', PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_functions_are_documented(name, fn):
  assert fn.__doc__ and fn.__doc__.strip(), f'{name} has no docstring'


def test_isp_exports_every_inverse():
  pairs = [('pack', 'unpack'), ('normalize', 'denormalize'),
           ('white_balance', 'inverse_white_balance'),
           ('apply_ccm', 'inverse_ccm'), ('srgb_encode', 'srgb_decode'),
           ('xyz_to_lab', 'lab_to_xyz'), ('srgb_to_lab', 'lab_to_srgb'),
           ('linear_srgb_to_xyz', 'xyz_to_linear_srgb'),
           ('to_pynet_order', 'from_pynet_order'),
           ('demosaic_bilinear', 'mosaic')]
  for forward, inverse in pairs:
    assert forward in dir(isp) and inverse in dir(isp)
