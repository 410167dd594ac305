"""Convolution weight gradients on CPU: XLA's, rawjax's banded form, PyTorch's.

For each shape (the 3x3 convolutions of LiteISPNet at a 448x448 output,
batch 2, plus strided and 1x1 ones), the kernel gradient dW of one
convolution is timed three ways, alternately in one process:

  * xla: `jax.vjp` of `lax.conv_general_dilated` (XLA's backward-filter
    convolution);
  * rawjax: `rawjax.models.conv.weight_gradient` (bands of output rows,
    one GEMM per band), what `conv2d`'s gradient uses on CPU;
  * torch: `torch.nn.grad.conv2d_weight` (oneDNN), `--torch-threads` threads.

The full forward + input gradient + weight gradient of `conv2d` is timed
beside XLA's plain convolution's too. `--band-bytes` sweeps the band size.

    python benchmarks/conv_grad.py [--repeats 5] [--band-bytes 1 2 4]
        [--json PATH]

Ratios: xla / rawjax and torch / rawjax (above 1 where rawjax is faster).
"""

from __future__ import annotations

import time

import _timing  # benchmarks/_timing.py

# (N, H, W, C_in, C_out, k, stride)
SHAPES = [
    (2, 224, 224, 66, 66, 3, 1),
    (2, 224, 224, 64, 64, 3, 1),
    (2, 224, 224, 64, 256, 3, 1),
    (2, 112, 112, 64, 64, 3, 1),
    (2, 56, 56, 128, 128, 3, 1),
    (2, 28, 28, 128, 512, 3, 1),
    (2, 224, 224, 64, 64, 1, 1),
    (2, 256, 256, 64, 128, 4, 2),
]


def main(argv=None):
  parser = _timing.argument_parser(__doc__, 'conv_grad', repeats=5)
  parser.add_argument('--band-bytes', type=float, nargs='+', default=None,
                      help='MiB per band to sweep (default: the module '
                      'constant)')
  parser.add_argument('--torch-threads', type=int, default=2)
  parser.add_argument('--quick', action='store_true',
                      help='the first four shapes only')
  args = parser.parse_args(argv)

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rawjax.models import conv  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(args.torch_threads)
  except ImportError:
    torch = None

  bands = args.band_bytes or [conv.BAND_BYTES / 2**20]
  rows = []
  for n, h, w, cin, cout, k, s in SHAPES[:4] if args.quick else SHAPES:
    rng = np.random.default_rng(0)
    pad = (k - 1) // 2
    x = rng.normal(size=(n, h, w, cin)).astype(np.float32)
    kernel = rng.normal(size=(k, k, cin, cout)).astype(np.float32) * 0.05
    plain = lambda a, q: jax.lax.conv_general_dilated(  # noqa: E731
        a, q, (s, s), ((pad, pad), (pad, pad)),
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    out_shape = jax.eval_shape(plain, x, kernel).shape
    dy = rng.normal(size=out_shape).astype(np.float32)
    xla_dw = jax.jit(lambda a, g: jax.vjp(lambda q: plain(a, q), kernel)[1](g)[0])
    if torch is not None:
      tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
      tdy = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())
      shape = (cout, cin, k, k)
      torch_dw = lambda: torch.nn.grad.conv2d_weight(  # noqa: E731
          tx, shape, tdy, stride=s, padding=pad)
    else:
      torch_dw = lambda: None  # noqa: E731
    reference = np.asarray(xla_dw(x, dy))
    for mib in bands:
      conv.BAND_BYTES = int(mib * 2**20)
      ours = jax.jit(lambda a, g: conv.weight_gradient(
          a, g, kernel_shape=kernel.shape, strides=(s, s),
          padding=((pad, pad), (pad, pad))))
      error = float(np.abs(np.asarray(ours(x, dy)) - reference).max() /
                    np.abs(reference).max())
      versus_xla = _timing.time_side_by_side(lambda: ours(x, dy),
                                             lambda: xla_dw(x, dy).block_until_ready(),
                                             args.repeats)
      versus_torch = _timing.time_side_by_side(lambda: ours(x, dy), torch_dw,
                                               args.repeats)
      rows.append({
          'name': f'dW {k}x{k}/{s} {cin}->{cout} at {h}x{w}, batch {n}',
          'band_mib': mib, 'run_s': versus_xla['jax_s'],
          'xla_s': versus_xla['torch_s'], 'torch_s': versus_torch['torch_s'],
          'xla_over_rawjax': versus_xla['ratio'],
          'ratio': versus_torch['ratio'] if torch is not None else None,
          'relative_error': error})
      print(rows[-1], flush=True)
  print(_timing.markdown_table(
      [('convolution', '{name}'), ('band MiB', '{band_mib:g}'),
       ('rawjax s', '{run_s:.4f}'), ('XLA s', '{xla_s:.4f}'),
       ('PyTorch s', '{torch_s:.4f}'), ('XLA / rawjax', '{xla_over_rawjax:.2f}'),
       ('PyTorch / rawjax', '{ratio:.2f}'), ('rel. error', '{relative_error:.1e}')],
      [{**r, 'torch_s': r['torch_s'] or float('nan'),
        'ratio': r['ratio'] or float('nan')} for r in rows]))
  _timing.write_json({'benchmark': 'conv_grad', 'machine': _timing.machine(),
                      'load_average': __import__('os').getloadavg(),
                      'timestamp': time.time(), 'rows': rows}, args.json)


if __name__ == '__main__':
  main()
