"""The cross-camera ISP experiment of CSTPP (section 4.3) with the old flags.

A thin wrapper: the experiment is the training method 'cstpp_adapt'
(`rawjax.methods.cstpp.adapt`), run by the one loop. The direct command is

    python -m launch.train --config=configs/cstpp_adapt.py:quick \
        --config.adapt.cstpp_workdir=/tmp/cstpp_quick \
        --workdir=/tmp/cstpp_quick/adapt

This wrapper takes the CSTPP config and workdir as before,

    python -m launch.cstpp_adapt --config=configs/raw2raw_cstpp.py:quick \
        --workdir=/tmp/cstpp_quick [--isp_model=unet] \
        [--isp_options='{"features": 8, "levels": 2, "out_channels": 3}'] \
        [--steps=300] [--patch=64] [--batch=8] [--lr=1e-3] [--seed=0] \
        [--max_test_images=0] [--out=DIR]

trains the ISPs in DIR (default workdir/adapt; its checkpoints resume a run,
a finished run is not repeated) and prints the table it writes to
DIR/eval/step_<steps>/results.md.
"""

from __future__ import annotations

import argparse
import pathlib

from rawjax import train
from rawjax.train.config import load_config_module

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True,
                      help='the CSTPP config, path[:variant]')
  parser.add_argument('--workdir', required=True,
                      help='the CSTPP training workdir (its checkpoint)')
  parser.add_argument('--isp_model', default='unet')
  parser.add_argument('--isp_options',
                      default='{"features": 8, "levels": 2, '
                      '"out_channels": 3}',
                      help='JSON keyword options of the ISP model')
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--patch', type=int, default=64)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--lr', type=float, default=1e-3)
  parser.add_argument('--max_test_images', type=int, default=0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', default='')
  args = parser.parse_args(argv)
  path, _, variant = args.config.partition(':')
  config = load_config_module(_ROOT / 'configs' / 'cstpp_adapt.py'
                              ).adapt_config(
                                  load_config_module(path).get_config(variant))
  config.seed = args.seed
  config.adapt.update(cstpp_workdir=args.workdir, isp_model=args.isp_model,
                      isp_options=args.isp_options, patch_size=args.patch,
                      batch_size=args.batch, learning_rate=args.lr)
  config.eval.max_test_images = args.max_test_images
  config.train.num_steps = args.steps
  out = pathlib.Path(args.out or pathlib.Path(args.workdir) / 'adapt')
  train.configure_logging()
  train.train_and_evaluate(config, out)
  table = out / 'eval' / f'step_{args.steps:08d}' / 'results.md'
  print(table.read_text())


if __name__ == '__main__':
  main()
