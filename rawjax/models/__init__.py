"""Flax linen models, chosen by name (`config.model.name`) through a registry.

    model = get_model(config.model.name, **options)   # a flax.linen.Module

A model module registers its classes (or factories) with `register_model`;
the registry is filled when `rawjax.models` is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn

from rawjax.models import layers
from rawjax.models.layers import Conv, ConvTranspose2x2
from rawjax.models.unet import UNet, UNetDecoder, UNetEncoder

__all__ = [
    'Conv', 'ConvTranspose2x2', 'UNet', 'UNetDecoder', 'UNetEncoder',
    'get_model', 'layers', 'model_from_config', 'model_names',
    'register_model',
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
  """Decorator: registers a Module class or factory under `name`."""
  def wrap(factory):
    if name in _REGISTRY:
      raise ValueError(f'model {name!r} is already registered.')
    _REGISTRY[name] = factory
    return factory
  return wrap


def model_names() -> tuple[str, ...]:
  return tuple(sorted(_REGISTRY))


def get_model(name: str, **options: Any) -> nn.Module:
  """The model registered as `name`, built with keyword `options`.

  Raises:
    ValueError: unknown name (the registered ones are listed), or an option
      the model does not take (named).
  """
  if name not in _REGISTRY:
    raise ValueError(f'unknown model {name!r}; registered: '
                     f'{", ".join(model_names()) or "none"}.')
  factory = _REGISTRY[name]
  fields = getattr(factory, '__dataclass_fields__', None)
  if fields is not None:
    unknown = sorted(set(options) - set(fields) - {'parent', 'name'})
    if unknown:
      raise ValueError(f'model {name!r} has no option(s) {unknown}; it takes '
                       f'{sorted(k for k in fields if k not in ("parent", "name"))}.')
  return factory(**options)


def model_from_config(model_config: Mapping[str, Any]) -> nn.Module:
  """`get_model(name, **rest)` from a config section {'name': ..., ...}."""
  options = dict(model_config)
  if 'name' not in options:
    raise ValueError('the model config needs a `name` (registered: '
                     f'{", ".join(model_names())}).')
  return get_model(options.pop('name'), **options)


register_model('unet')(UNet)
from rawjax.models.kpn import KPN, apply_kernels  # noqa: E402
register_model('kpn')(KPN)

from rawjax.models.pqdynamic_net import PQDynamicNet  # noqa: E402
register_model('pqdynamic_net')(PQDynamicNet)
from rawjax.models import conformer, cstpp  # noqa: E402
register_model('cstpp')(cstpp.CSTPPGenerator)
register_model('cstpp_discriminator')(cstpp.GlobalDiscriminator)
register_model('patchgan')(cstpp.PatchDiscriminator)

from rawjax.models.gcm import GCM  # noqa: E402
from rawjax.models import liteisp  # noqa: E402
from rawjax.models.liteisp import LiteISPNet  # noqa: E402
from rawjax.models.vgg import VGG19  # noqa: E402
from rawjax.models.lpips import LPIPS  # noqa: E402

register_model('liteisp')(LiteISPNet)
register_model('gcm')(GCM)
register_model('patchgan_liteisp')(liteisp.PatchDiscriminator)
register_model('vgg19')(VGG19)
register_model('lpips')(LPIPS)

from rawjax.models.nafnet import NAFNet  # noqa: E402
register_model('nafnet')(NAFNet)

from rawjax.models.resnet_generator import ResnetGenerator  # noqa: E402
register_model('resnet_generator')(ResnetGenerator)
