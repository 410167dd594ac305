"""rawjax networks against their independent PyTorch references, side by side.

For each network the PyTorch reference in tests/torch_reference is built with
torch's default initialisation, its state dict is converted with
`rawjax.convert`, and both run the same inputs in one process, alternately
(`_timing.time_side_by_side`), so that their ratio holds on a shared
machine. The outputs are compared too (max |rawjax - torch|), which shows
both frameworks do the same work.

  * LiteISPNet forward (packed 224x224x4 -> 448x448x3) and train step (L1,
    Adam, batch 2 in --full; the figures of the performance issue);
  * GCM forward (448x448);
  * NAFNet-SIDD-width32 forward (256x256 in --quick, 512x512 in --full);
  * PWC-Net forward (448x448, the network alone, no resizing).

torch runs with `--torch-threads` threads (default 2, this machine's cores).
jax compile time is reported apart from run time.

    python benchmarks/models_vs_torch.py [--quick | --full] [--only NAME ...]
        [--repeats N] [--json PATH]

Prints a markdown table and writes JSON (default
benchmarks/results/models_vs_torch.json). Ratio = torch time / rawjax time:
above 1 where rawjax is faster.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Callable

import _timing  # benchmarks/_timing.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))

# (network, figure) -> sizes per mode.
SIZES = {
    'quick': {'liteisp_batch': 1, 'nafnet': 256, 'frame': 448},
    'full': {'liteisp_batch': 2, 'nafnet': 512, 'frame': 448},
}


def _state(module) -> dict[str, Any]:
  return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _nchw(torch, x):
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _max_diff(got, want_nchw) -> float:
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(np.abs(np.asarray(got) -
                      want_nchw.detach().numpy().transpose(0, 2, 3, 1)).max())


def _forward_row(torch, network: str, figure: str, model, params, inputs,
                 net, repeats: int) -> dict[str, Any]:
  """Forward of `model` (jitted) beside `net` (no_grad) on the same inputs.

  inputs: NHWC numpy arrays, given to torch as NCHW; `params` the converted
  weights of `net`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  tensors = [_nchw(torch, a) for a in inputs]
  forward = jax.jit(lambda p, *xs: model.apply({'params': p}, *xs))

  def torch_forward():
    with torch.no_grad():
      return net(*tensors)

  timing = _timing.time_side_by_side(lambda: forward(params, *inputs),
                                     torch_forward, repeats)
  return {'network': network, 'figure': figure, **timing,
          'max_abs_diff': _max_diff(forward(params, *inputs),
                                    torch_forward())}


def _liteisp(torch, sizes, repeats) -> list[dict[str, Any]]:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from rawjax import convert, models  # pylint: disable=g-import-not-at-top
  from rawjax.data.datasets.zrr import coordinate_map  # pylint: disable=g-import-not-at-top
  from torch_reference.liteisp_torch import LiteISPNetTorch  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  net = LiteISPNetTorch()
  # The reference's channel order, so both networks read the same tensor.
  params = convert.convert_liteisp(_state(net), input_order='pynet')
  model = models.LiteISPNet()
  batch = sizes['liteisp_batch']
  rng = np.random.default_rng(0)
  raw = rng.uniform(0, 1, (batch, 224, 224, 4)).astype(np.float32)
  target = rng.uniform(0, 1, (batch, 448, 448, 3)).astype(np.float32)
  coord = np.broadcast_to(coordinate_map(224, 224),
                          (batch, 224, 224, 2)).astype(np.float32)
  t_raw, t_coord, t_target = (_nchw(torch, a) for a in (raw, coord, target))

  rows = [_forward_row(torch, 'LiteISPNet', f'forward, batch {batch}', model,
                       params, (raw, coord), net, repeats)]

  tx = optax.adam(1e-4)

  @jax.jit
  def step(p, o):
    loss, grads = jax.value_and_grad(lambda q: jax.numpy.mean(jax.numpy.abs(
        model.apply({'params': q}, raw, coord) - target)))(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  opt_state = tx.init(params)
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

  def torch_step():
    optimizer.zero_grad()
    loss = (net(t_raw, t_coord) - t_target).abs().mean()
    loss.backward()
    optimizer.step()
    return loss

  # The same parameters every call: the timing does not depend on values.
  rows.append({'network': 'LiteISPNet',
               'figure': f'train step (L1, Adam), batch {batch}',
               **_timing.time_side_by_side(lambda: step(params, opt_state)[2],
                                           torch_step, repeats)})
  return rows


def _gcm(torch, sizes, repeats) -> list[dict[str, Any]]:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rawjax import convert, models  # pylint: disable=g-import-not-at-top
  from rawjax.data.datasets.zrr import coordinate_map  # pylint: disable=g-import-not-at-top
  from torch_reference.liteisp_torch import GCMTorch  # pylint: disable=g-import-not-at-top

  torch.manual_seed(1)
  net = GCMTorch().eval()
  params = convert.convert_gcm(_state(net))
  size = sizes['frame']
  rng = np.random.default_rng(1)
  demosaic = rng.uniform(0, 1, (1, size, size, 3)).astype(np.float32)
  dslr = rng.uniform(0, 1, (1, size, size, 3)).astype(np.float32)
  coord = coordinate_map(size, size)[None].astype(np.float32)
  return [_forward_row(torch, 'GCM', f'forward {size}x{size}', models.GCM(),
                       params, (demosaic, dslr, coord), net, repeats)]


def _nafnet(torch, sizes, repeats) -> list[dict[str, Any]]:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rawjax import convert, models  # pylint: disable=g-import-not-at-top
  from torch_reference.nafnet_torch import NAFNetTorch  # pylint: disable=g-import-not-at-top

  options = dict(width=32, middle_blk_num=12, enc_blk_nums=(2, 2, 4, 8),
                 dec_blk_nums=(2, 2, 2, 2))
  torch.manual_seed(2)
  net = NAFNetTorch(img_channel=3, **options).eval()
  params = convert.convert_nafnet(_state(net), img_channel=3, **options)
  model = models.get_model('nafnet', img_channel=3, **options)
  size = sizes['nafnet']
  x = np.random.default_rng(2).uniform(0, 1, (1, size, size, 3)).astype(
      np.float32)
  return [_forward_row(torch, 'NAFNet-SIDD-32', f'forward {size}x{size}',
                       model, params, (x,), net, repeats)]


def _pwcnet(torch, sizes, repeats) -> list[dict[str, Any]]:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rawjax import convert  # pylint: disable=g-import-not-at-top
  from rawjax.models import pwcnet  # pylint: disable=g-import-not-at-top
  from torch_reference.pwcnet_torch import PWCNetTorch  # pylint: disable=g-import-not-at-top

  torch.manual_seed(3)
  net = PWCNetTorch().eval()
  params = convert.convert_pwcnet(_state(net))
  size = sizes['frame']
  rng = np.random.default_rng(3)
  first = rng.uniform(0, 1, (1, size, size, 3)).astype(np.float32)
  second = np.roll(first, (3, -5), axis=(1, 2))
  return [_forward_row(torch, 'PWC-Net', f'forward {size}x{size}',
                       pwcnet.PWCNet(), params, (first, second), net, repeats)]


NETWORKS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    'liteisp': _liteisp, 'gcm': _gcm, 'nafnet': _nafnet, 'pwcnet': _pwcnet,
}


def main(argv=None) -> dict[str, Any]:
  parser = _timing.argument_parser(__doc__, 'models_vs_torch', repeats=3)
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument('--quick', dest='mode', action='store_const',
                    const='quick')
  mode.add_argument('--full', dest='mode', action='store_const', const='full')
  parser.set_defaults(mode='quick')
  parser.add_argument('--only', nargs='+', choices=sorted(NETWORKS),
                      default=sorted(NETWORKS))
  parser.add_argument('--torch-threads', type=int, default=2)
  args = parser.parse_args(argv)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    parser.exit(2, 'models_vs_torch: needs torch (pip install torch); the '
                'references are PyTorch modules.\n')
  torch.set_num_threads(args.torch_threads)
  rows = []
  for name in args.only:
    rows += NETWORKS[name](torch, SIZES[args.mode], args.repeats)
  for row in rows:
    row.setdefault('max_abs_diff', float('nan'))
  print(_timing.markdown_table(
      [('network', '{network}'), ('figure', '{figure}'),
       ('rawjax s', '{jax_s:.3f}'), ('compile s', '{jax_compile_s:.1f}'),
       ('PyTorch s', '{torch_s:.3f}'), ('PyTorch / rawjax', '{ratio:.2f}'),
       ('max |diff|', '{max_abs_diff:.1e}')], rows))
  payload = {'benchmark': 'models_vs_torch', 'mode': args.mode,
             'machine': _timing.machine(), 'torch': torch.__version__,
             'torch_threads': torch.get_num_threads(),
             'repeats': args.repeats, 'rows': rows}
  _timing.write_json(payload, args.json)
  return payload


if __name__ == '__main__':
  main()
