"""PyTorch checkpoints -> Flax parameters, one function per network.

    params = convert_liteisp(load_state_dict('LiteISPNet_model_1.pth'))
    python -m rawjax.convert liteisp LiteISPNet_model_1.pth liteisp.npz
    python -m rawjax.convert gcm GCMModel_model_1.pth gcm.npz
    python -m rawjax.convert vgg19 vgg19-dcbb9e9d.pth vgg19.npz
    python -m rawjax.convert lpips alexnet-owt-7be5be79.pth lpips.npz \
        --lpips-lin=alex.pth
    python -m rawjax.convert nafnet NAFNet-SIDD-width32.pth nafnet.npz \
        --nafnet-variant=sidd-width32

Inputs are state dicts with the official key names: the RAW-to-sRGB release
(`cszhilu1998/RAW-to-sRGB`: `LiteISPNet`, `GCMModel`, saved as
{'state_dict': ...}, possibly with DataParallel's 'module.' prefix),
torchvision's `vgg19` (and `alexnet`, with the `lpips` package's
weights/v0.1/alex.pth for LPIPS) and NAFNet's releases
(`megvii-research/NAFNet`, in BasicSR's {'params': ...} wrapper). `load_state_dict` reads .pt/.pth files
with torch (when installed; `torch.load(weights_only=True)`) and .npz files
holding the same keys (no torch needed). The CLI writes the Flax parameters as an .npz
of '/'-joined paths (`save_params` / `load_params`).

Every converter checks the state dict against the Flax model's own
parameter shapes first (`check_state_dict`) and raises one ValueError naming
every missing key, every key whose shape differs (expected vs found) and
every unexpected key, so a checkpoint of another variant (other widths, the
PreCoord branch) is rejected rather than half-loaded.

Key mapping. Flax module names spell the PyTorch key path with '_' before
numeric parts ('down1_1' / 'rg_0' / 'res_2' = `down1.1.rg.0.res.2`,
'guide_net_0_0' = `guide_net.0.0`, 'features_35' = `features.35`); a conv
weight (O, I, kh, kw) becomes 'kernel' (kh, kw, I, O), a bias stays 'bias'.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    'check_state_dict', 'convert_gcm', 'convert_liteisp', 'convert_lpips',
    'convert_nafnet', 'convert_pwcnet', 'convert_vgg19',
    'flax_to_torch_key', 'load_params', 'load_state_dict', 'main',
    'save_params',
]

StateDict = Mapping[str, Any]


# --- shared helpers --------------------------------------------------------------


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
  """A PyTorch state dict as {key: float32 numpy array}.

  .pt/.pth/.pytorch/.tar: read with torch (`weights_only=True`); a
  {'state_dict': ...} or BasicSR {'params': ...} wrapper is unwrapped and a
  'module.' prefix (DataParallel) stripped. .npz: the same keys stored with
  numpy.

  Raises:
    FileNotFoundError: the file does not exist.
    ImportError: a torch file but torch is not installed (the message says
      how to get an .npz instead).
    ValueError: the file holds no tensor dict.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f'checkpoint not found: {path}')
  if path.suffix == '.npz':
    with np.load(path) as f:
      raw = {k: np.asarray(f[k]) for k in f.files}
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(
          f'reading {path} needs PyTorch (pip install torch==2.13.0); or save '
          'the state dict elsewhere as an .npz of its tensors '
          '(np.savez(out, **{k: v.numpy() for k, v in sd.items()})).') from e
    loaded = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(loaded, Mapping) and 'state_dict' in loaded:
      loaded = loaded['state_dict']
    loaded = _unwrap_params(loaded)
    if not isinstance(loaded, Mapping):
      raise ValueError(f'{path} holds a {type(loaded).__name__}, not a state '
                       'dict.')
    raw = {k: v.detach().cpu().numpy() for k, v in loaded.items()
           if hasattr(v, 'detach')}
  if not raw:
    raise ValueError(f'{path} holds no tensors.')
  return {_strip_module(k): v for k, v in raw.items()}


def _unwrap_params(state_dict: Any) -> Any:
  """BasicSR's (NAFNet's) checkpoint {'params': state_dict} -> state_dict."""
  if isinstance(state_dict, Mapping) and isinstance(state_dict.get('params'),
                                                    Mapping):
    return state_dict['params']
  return state_dict


def _strip_module(key: str) -> str:
  return key[len('module.'):] if key.startswith('module.') else key


def _as_numpy(state_dict: StateDict) -> dict[str, np.ndarray]:
  out = {}
  for key, value in state_dict.items():
    if hasattr(value, 'detach'):  # a torch tensor
      value = value.detach().cpu().numpy()
    out[_strip_module(key)] = np.asarray(value)
  return out


def flax_to_torch_key(path: Sequence[str]) -> str:
  """('down1_1', 'rg_0', 'res_0', 'kernel') -> 'down1.1.rg.0.res.0.weight'."""
  parts = []
  for name in path[:-1]:
    tokens = name.split('_')
    numeric = []
    while len(tokens) > 1 and tokens[-1].isdigit():
      numeric.insert(0, tokens.pop())
    parts.append('_'.join(tokens))
    parts.extend(numeric)
  leaf = path[-1]
  leaf = {'kernel': 'weight', 'bias': 'bias', 'scale': 'weight'}.get(leaf,
                                                                      leaf)
  return '.'.join(parts + [leaf])


def _torch_shape(path: Sequence[str], shape: tuple[int, ...]
                 ) -> tuple[int, ...]:
  if path[-1] == 'kernel' and len(shape) == 4:
    kh, kw, i, o = shape
    return (o, i, kh, kw)
  return tuple(shape)


def _template_entries(template: Any) -> list[tuple[tuple[str, ...], str,
                                                   tuple[int, ...]]]:
  """(flax path, torch key, torch shape) for every leaf of a params tree."""
  entries = []
  for keypath, leaf in jax.tree_util.tree_leaves_with_path(template):
    path = tuple(str(getattr(k, 'key', k)) for k in keypath)
    entries.append((path, flax_to_torch_key(path),
                    _torch_shape(path, tuple(leaf.shape))))
  return entries


def check_state_dict(state_dict: StateDict,
                     expected: Mapping[str, tuple[int, ...]], *,
                     network: str, optional: Mapping[str, tuple[int, ...]]
                     | None = None,
                     ignore: Callable[[str], bool] | None = None) -> None:
  """Raises one ValueError naming every missing, misshapen or unexpected key.

  Args:
    state_dict: key -> array (numpy or torch).
    expected: the keys the network needs with their PyTorch shapes.
    network: the name used in the message.
    optional: keys that may be absent but must have this shape if present
      (e.g. LiteISPNet's fixed wavelet filters).
    ignore: keys for which this returns True are neither needed nor
      unexpected (e.g. VGG's classifier).
  """
  optional = dict(optional or {})
  ignore = ignore or (lambda key: False)
  shapes = {k: tuple(np.shape(v)) for k, v in state_dict.items()}
  missing = sorted(k for k in expected if k not in shapes)
  wrong = sorted(f'{k}: expected {tuple(s)}, found {shapes[k]}'
                 for k, s in {**expected, **optional}.items()
                 if k in shapes and shapes[k] != tuple(s))
  unexpected = sorted(k for k in shapes if k not in expected and
                      k not in optional and not ignore(k))
  problems = []
  if missing:
    problems.append(f'missing keys ({len(missing)}): {", ".join(missing)}')
  if wrong:
    problems.append(f'wrong shapes ({len(wrong)}): {"; ".join(wrong)}')
  if unexpected:
    problems.append(f'unexpected keys ({len(unexpected)}): '
                    f'{", ".join(unexpected)}')
  if problems:
    raise ValueError(f'{network} state dict does not match the model: ' +
                     ' | '.join(problems))


def _set(tree: dict, path: Sequence[str], value: np.ndarray) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


def _convert(state_dict: StateDict, template: Any, *, network: str,
             optional: Mapping[str, tuple[int, ...]] | None = None,
             ignore: Callable[[str], bool] | None = None) -> dict[str, Any]:
  """Flax params shaped as `template` from a checked state dict."""
  sd = _as_numpy(state_dict)
  entries = _template_entries(template)
  check_state_dict(sd, {key: shape for _, key, shape in entries},
                   network=network, optional=optional, ignore=ignore)
  params: dict[str, Any] = {}
  for path, key, _ in entries:
    value = np.asarray(sd[key], np.float32)
    if path[-1] == 'kernel' and value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    _set(params, path, value)
  return params


def _template(model, *inputs) -> Any:
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0),
                         *[jnp.zeros(s, jnp.float32) for s in inputs]))
  return shapes['params']


def save_params(path: str | os.PathLike[str], params: Any) -> pathlib.Path:
  """Writes a Flax params tree as an .npz of '/'-joined paths."""
  flat = {'/'.join(str(getattr(k, 'key', k)) for k in keypath): np.asarray(v)
          for keypath, v in jax.tree_util.tree_leaves_with_path(params)}
  path = pathlib.Path(path).expanduser()
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'wb') as f:
    np.savez(f, **flat)
  return path


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
  """Reads `save_params`' .npz back into a nested dict of float32 arrays."""
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f'parameter file not found: {path}')
  params: dict[str, Any] = {}
  with np.load(path) as f:
    for key in f.files:
      _set(params, key.split('/'), np.asarray(f[key], np.float32))
  return params


# --- LiteISPNet and GCM (RAW-to-sRGB) ----------------------------------------------

# LiteISPNet's fixed wavelet layers: (key, channels of the DWT/IWT filters).
def _liteisp_wavelet_keys(channels: Sequence[int]) -> dict[str, int]:
  ch1, ch2, _ = channels
  return {'down1.3.weight': ch1, 'down2.2.weight': ch1, 'down3.2.weight': ch2,
          'up3.0.weight': ch2, 'up2.0.weight': ch1, 'up1.0.weight': ch1}


def convert_liteisp(state_dict: StateDict, *,
                    channels: Sequence[int] = (64, 128, 128),
                    num_blocks: int = 4, reduction: int = 16,
                    coord: bool = True,
                    input_order: str = 'canonical') -> dict[str, Any]:
  """The reference `LiteISPNet` state dict -> `rawjax.models.LiteISPNet` params.

  Args:
    state_dict: keys as in `zrrjoint_model.LiteISPNet` (head.weight,
      down1.0.weight, down1.1.rg.0.res.0.weight, ..., tail.2.bias). The fixed
      DWT/IWT weights (down1.3.weight, ..., up1.0.weight) may be absent; when
      present they must be the Haar filters.
    channels, num_blocks, reduction, coord: the model variant (reference
      defaults).
    input_order: 'canonical' permutes the head conv's input channels so the
      Flax model takes rawjax's (R, Gr, Gb, B) packing and computes what the
      reference computes on PyNET's (B, Gb, R, Gr) packing of the same raw;
      'pynet' keeps the reference's order.

  Returns:
    The params tree (nested dicts of float32 numpy arrays).

  Raises:
    ValueError: missing, misshapen or unexpected keys (all named), wavelet
      weights that are not the Haar filters, or a bad `input_order`.
  """
  from rawjax.isp import cfa  # pylint: disable=g-import-not-at-top
  from rawjax.models.liteisp import LiteISPNet, haar_filters  # pylint: disable=g-import-not-at-top
  if input_order not in ('canonical', 'pynet'):
    raise ValueError(f"input_order must be 'canonical' or 'pynet', got "
                     f'{input_order!r}.')
  channels = tuple(int(c) for c in channels)
  model = LiteISPNet(channels=channels, num_blocks=num_blocks,
                     reduction=reduction, coord=coord)
  template = _template(model, (1, 8, 8, 4))
  wavelets = _liteisp_wavelet_keys(channels)
  optional = {k: (4 * c, 1, 2, 2) for k, c in wavelets.items()}
  params = _convert(state_dict, template, network='LiteISPNet',
                    optional=optional)
  sd = _as_numpy(state_dict)
  bad = [k for k, c in wavelets.items()
         if k in sd and not np.allclose(sd[k], haar_filters(c), atol=1e-6)]
  if bad:
    raise ValueError(f'LiteISPNet state dict: the fixed wavelet weights '
                     f'{bad} are not the Haar filters of networks.DWTForward.')
  if input_order == 'canonical':
    kernel = params['head']['kernel']
    params['head']['kernel'] = np.moveaxis(np.asarray(
        cfa.from_pynet_order(np.moveaxis(kernel, 2, -1))), -1, 2)
  return params


def convert_gcm(state_dict: StateDict, *, guide_features: int = 32,
                features: int = 64, coord: bool = True) -> dict[str, Any]:
  """The reference `GCMModel` state dict -> `rawjax.models.GCM` params.

  Keys: guide_net.0.0, guide_net.1.0, guide_net.1.2, guide_net.3,
  align_head.0, align_base.{0,2,4}, align_tail (weight and bias each).
  """
  from rawjax.models.gcm import GCM  # pylint: disable=g-import-not-at-top
  model = GCM(guide_features=guide_features, features=features, coord=coord)
  shape = (1, 16, 16, 3)
  template = _template(model, shape, shape, (1, 16, 16, 2))
  return _convert(state_dict, template, network='GCMModel')


# --- VGG-19 / VGG-16 (torchvision) --------------------------------------------------


def _convert_vgg(state_dict: StateDict, model, network: str) -> dict[str, Any]:
  """torchvision's VGG state dict -> `model`'s params, up to its layer.

  Only the convolutions up to the model's `layer` are needed; later
  `features.*` and the `classifier.*` keys are ignored. (`*_bn` checkpoints
  are rejected: their BatchNorm keys sit where plain VGG has convolutions.)
  """
  template = _template(model, (1, 32, 32, 3))
  needed = {flax_to_torch_key(p) for p, _, _ in _template_entries(template)}
  last = max(int(k.split('.')[1]) for k in needed)
  pattern = re.compile(r'^(features\.\d+|classifier\.\d+)\.(weight|bias)$')

  def ignore(key: str) -> bool:
    return key not in needed and bool(pattern.match(key)) and (
        key.startswith('classifier') or int(key.split('.')[1]) > last)
  return _convert(state_dict, template, network=network, ignore=ignore)


def convert_vgg19(state_dict: StateDict, *,
                  layer: str = 'relu5_4') -> dict[str, Any]:
  """torchvision's `vgg19` state dict -> `rawjax.models.VGG19(layer)` params."""
  from rawjax.models.vgg import VGG19  # pylint: disable=g-import-not-at-top
  return _convert_vgg(state_dict, VGG19(layer=layer), 'VGG19')


def convert_vgg16(state_dict: StateDict, *,
                  layer: str = 'relu5_3') -> dict[str, Any]:
  """torchvision's `vgg16` state dict -> `rawjax.models.VGG16(layer)` params.

  SemiISP's phase-1 perceptual loss (eq. 5); torchvision's
  vgg16-397923af.pth (ImageNet).
  """
  from rawjax.models.vgg import VGG16  # pylint: disable=g-import-not-at-top
  return _convert_vgg(state_dict, VGG16(layer=layer), 'VGG16')


# --- LPIPS v0.1, AlexNet (torchvision alexnet + the lpips package) ---------------


def convert_lpips(alexnet_state_dict: StateDict,
                  lin_state_dict: StateDict) -> dict[str, Any]:
  """The published LPIPS-alex weights -> `rawjax.models.lpips.LPIPS` params.

  Args:
    alexnet_state_dict: torchvision's `alexnet` (alexnet-owt-7be5be79.pth):
      features.{0,3,6,8,10}.{weight,bias}; the `classifier.*` keys are
      ignored.
    lin_state_dict: the lpips package's weights/v0.1/alex.pth:
      lin0.model.1.weight .. lin4.model.1.weight, (1, C, 1, 1) with
      C = 64, 192, 384, 256, 256.

  Returns:
    {'alexnet': {'features_<i>': {'kernel', 'bias'}}, 'lin<k>': {'model_1':
    {'kernel' (1, 1, C, 1)}}} (nested dicts of float32 numpy arrays).

  Raises:
    ValueError: naming every missing, misshapen or unexpected key of both
      files (one message).
  """
  from rawjax.models.lpips import LPIPS  # pylint: disable=g-import-not-at-top
  template = dict(_template(LPIPS(), (1, 64, 64, 3), (1, 64, 64, 3)))
  alex_template = template.pop('alexnet')
  classifier = re.compile(r'^classifier\.\d+\.(weight|bias)$')
  params: dict[str, Any] = {}
  problems = []
  for name, sd, tmpl, ignore in (
      ('AlexNet', alexnet_state_dict, alex_template,
       lambda key: bool(classifier.match(key))),
      ('LPIPS lin', lin_state_dict, template, None)):
    try:
      converted = _convert(sd, tmpl, network=name, ignore=ignore)
    except ValueError as e:
      problems.append(str(e))
      continue
    if name == 'AlexNet':
      params['alexnet'] = converted
    else:
      params.update(converted)
  if problems:
    raise ValueError(' || '.join(problems))
  return params


# --- PWC-Net (sniklaus pytorch-pwc, loaded by RAW-to-sRGB) ------------------------


def _pwcnet_torch_key(path: Sequence[str]) -> str:
  return flax_to_torch_key(path)


def convert_pwcnet(state_dict: StateDict) -> dict[str, Any]:
  """sniklaus pytorch-pwc `Network` state dict -> `rawjax.models.PWCNet` params.

  Accepts the released file's key names ('moduleExtractor.moduleOne.0.weight')
  and the renamed ones the RAW-to-sRGB code loads ('module' -> 'net',
  'netExtractor.netOne.0.weight'). Conv weights (O, I, kh, kw) become
  (kh, kw, I, O); the ConvTranspose2d weights of 'netUpflow'/'netUpfeat'
  (I, O, kh, kw) become (kh, kw, I, O) (`ConvTranspose4x4` flips them
  spatially itself). Raises a ValueError naming missing, misshapen and
  unexpected keys.
  """
  from rawjax.models.pwcnet import PWCNet  # pylint: disable=g-import-not-at-top
  sd = {key.replace('module', 'net'): value
        for key, value in _as_numpy(state_dict).items()}
  template = _template(PWCNet(), (1, 64, 64, 3), (1, 64, 64, 3))
  entries = []
  for keypath, leaf in jax.tree_util.tree_leaves_with_path(template):
    path = tuple(str(getattr(k, 'key', k)) for k in keypath)
    shape = tuple(leaf.shape)
    transposed = len(shape) == 4 and path[-2] in ('netUpflow', 'netUpfeat')
    if len(shape) == 4:
      kh, kw, i, o = shape
      shape = (i, o, kh, kw) if transposed else (o, i, kh, kw)
    entries.append((path, _pwcnet_torch_key(path), shape, transposed))
  check_state_dict(sd, {key: shape for _, key, shape, _ in entries},
                   network='PWC-Net')
  params: dict[str, Any] = {}
  for path, key, _, transposed in entries:
    value = np.asarray(sd[key], np.float32)
    if value.ndim == 4:
      value = value.transpose((2, 3, 0, 1) if transposed else (2, 3, 1, 0))
    _set(params, path, value)
  return params


# --- NAFNet (megvii-research/NAFNet) ------------------------------------------------


def convert_nafnet(state_dict: StateDict, *, img_channel: int = 3,
                   width: int = 32, middle_blk_num: int = 12,
                   enc_blk_nums: Sequence[int] = (2, 2, 4, 8),
                   dec_blk_nums: Sequence[int] = (2, 2, 2, 2)
                   ) -> dict[str, Any]:
  """The official `NAFNet` state dict -> `rawjax.models.NAFNet` params.

  Args:
    state_dict: keys as `basicsr/models/archs/NAFNet_arch.py` (intro.weight,
      encoders.0.0.conv1.weight, encoders.0.0.conv2.weight (depthwise,
      (2c, 1, 3, 3)), encoders.0.0.sca.1.weight, encoders.0.0.norm1.weight,
      encoders.0.0.beta (1, c, 1, 1), downs.0.weight, middle_blks.0.*,
      ups.0.0.weight (no bias), decoders.0.0.*, ending.bias); a released
      checkpoint's {'params': ...} wrapper is accepted (also a
      'module.' prefix).
    img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums: the
      architecture (default NAFNet-SIDD-width32; the released ones are
      `rawjax.models.nafnet.OFFICIAL_CONFIGS`).

  Returns:
    The params tree (nested dicts of float32 numpy arrays): conv weights
    (O, I, kh, kw) -> 'kernel' (kh, kw, I, O) (depthwise (C, 1, 3, 3) ->
    (3, 3, 1, C)), beta / gamma (1, c, 1, 1) -> (c,).

  Raises:
    ValueError: missing, misshapen or unexpected keys (all named).
  """
  from rawjax.models.nafnet import NAFNet  # pylint: disable=g-import-not-at-top
  model = NAFNet(img_channel=int(img_channel), width=int(width),
                 middle_blk_num=int(middle_blk_num),
                 enc_blk_nums=tuple(enc_blk_nums),
                 dec_blk_nums=tuple(dec_blk_nums))
  sd = _as_numpy(_unwrap_params(state_dict))
  template = _template(model, (1, 16, 16, int(img_channel)))
  entries = []
  for path, key, shape in _template_entries(template):
    if path[-1] in ('beta', 'gamma'):
      shape = (1, shape[0], 1, 1)
    entries.append((path, key, shape))
  check_state_dict(sd, {key: shape for _, key, shape in entries},
                   network='NAFNet')
  params: dict[str, Any] = {}
  for path, key, _ in entries:
    value = np.asarray(sd[key], np.float32)
    if path[-1] == 'kernel':
      value = value.transpose(2, 3, 1, 0)
    elif path[-1] in ('beta', 'gamma'):
      value = value.reshape(-1)
    _set(params, path, value)
  return params


# --- command line ------------------------------------------------------------------

_CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {
    'liteisp': convert_liteisp,
    'gcm': convert_gcm,
    'vgg19': convert_vgg19,
    'vgg16': convert_vgg16,
    'lpips': convert_lpips,
    'pwcnet': convert_pwcnet,
    'nafnet': convert_nafnet,
}


def main(argv: Sequence[str] | None = None) -> pathlib.Path:
  """`python -m rawjax.convert NETWORK INPUT OUTPUT.npz [options]`."""
  parser = argparse.ArgumentParser(
      prog='python -m rawjax.convert',
      description='Converts a PyTorch state dict (.pth/.pt with torch, or an '
      '.npz of its tensors) to Flax parameters (.npz).')
  parser.add_argument('network', choices=sorted(_CONVERTERS))
  parser.add_argument('input', help='state dict (.pth/.pt or .npz)')
  parser.add_argument('output', help='Flax parameters (.npz)')
  parser.add_argument('--input-order', default='canonical',
                      choices=('canonical', 'pynet'),
                      help='liteisp: packed raw order the Flax model takes')
  parser.add_argument('--lpips-lin', default='',
                      help='lpips: the lpips package\'s weights/v0.1/alex.pth '
                      '(INPUT is torchvision\'s alexnet-owt-7be5be79.pth)')
  parser.add_argument('--layer', default=None,
                      help='vgg19 / vgg16: last ReLU kept (default the whole '
                      'trunk, relu5_4 / relu5_3)')
  from rawjax.models.nafnet import OFFICIAL_CONFIGS  # pylint: disable=g-import-not-at-top
  parser.add_argument('--nafnet-variant', default='sidd-width32',
                      choices=sorted(OFFICIAL_CONFIGS),
                      help='nafnet: the released architecture (default '
                      'sidd-width32)')
  parser.add_argument('--nafnet-options', default='{}',
                      help='nafnet: JSON overrides of the architecture, e.g. '
                      '\'{"width": 8, "enc_blk_nums": [1, 1]}\'')
  args = parser.parse_args(argv)
  state_dict = load_state_dict(args.input)
  options: dict[str, Any] = {}
  if args.network == 'liteisp':
    options['input_order'] = args.input_order
  if args.network in ('vgg19', 'vgg16') and args.layer:
    options['layer'] = args.layer
  if args.network == 'lpips':
    if not args.lpips_lin:
      parser.error('lpips needs --lpips-lin=alex.pth (the lpips package\'s '
                   'weights/v0.1/alex.pth) besides torchvision\'s alexnet '
                   'state dict as INPUT.')
    options['lin_state_dict'] = load_state_dict(args.lpips_lin)
  if args.network == 'nafnet':
    options.update(OFFICIAL_CONFIGS[args.nafnet_variant])
    extra = json.loads(args.nafnet_options)
    if not isinstance(extra, dict):
      parser.error('--nafnet-options must be a JSON object.')
    options.update(extra)
  params = _CONVERTERS[args.network](state_dict, **options)
  out = save_params(args.output, params)
  count = sum(int(np.size(x)) for x in jax.tree.leaves(params))
  print(f'{args.network}: {count:,} parameters -> {out}')
  return out


if __name__ == '__main__':
  main()
