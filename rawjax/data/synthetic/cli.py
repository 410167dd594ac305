"""The command line: `python -m rawjax.data.synthetic --out DIR ...`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rawjax.data.synthetic.presets import PRESETS
from rawjax.data.synthetic.writer import write_dataset


def main(argv: Sequence[str] | None = None) -> dict:
  """Command line: `python -m rawjax.data.synthetic --out DIR ...`."""
  parser = argparse.ArgumentParser(
      prog='python -m rawjax.data.synthetic',
      description='Writes a simulated two-camera raw dataset in the Afifi '
      'raw2raw layout.')
  parser.add_argument('--out', required=True, help='output folder')
  parser.add_argument('--preset', default='raw2raw', choices=sorted(PRESETS))
  parser.add_argument('--num', type=int, default=300, help='number of scenes')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                      help='mosaic size (default 256 256)')
  parser.add_argument('--srgb', action=argparse.BooleanOptionalAction,
                      default=None, help='write sRGB PNGs (default: only '
                      'for the raw2srgb preset)')
  parser.add_argument('--cameras', nargs='+', metavar='CAMERA',
                      help='camera names, slugs or CSV files (default: the '
                      "preset's; see rawjax.data.synthetic.cameras)")
  parser.add_argument('--ssf-dir', help='folder of sensitivity CSVs '
                      '(default: $RAWJAX_SSF_DIR or ../shared/data/ssf)')
  parser.add_argument('--shading', action=argparse.BooleanOptionalAction,
                      default=None, help="lens shading (default: the "
                      "preset's)")
  parser.add_argument('--shading-corrected', action='store_true',
                      help='write shading-corrected raw (no GainMap)')
  parser.add_argument('--samples', type=int, default=None, metavar='N',
                      help='write DIR/samples.png with N scenes (default: 4 '
                      'for the _v2 presets, else none)')
  args = parser.parse_args(argv)
  config = PRESETS[args.preset]
  if args.size:
    config = config.replace(height=args.size[0], width=args.size[1])
  changes = {}
  if args.cameras:
    changes['cameras'] = tuple(args.cameras)
  if args.ssf_dir:
    changes['ssf_dir'] = args.ssf_dir
  if args.shading is not None:
    changes['shading'] = args.shading
  if args.shading_corrected:
    changes.update(shading=True, shading_corrected=True)
  if changes:
    config = config.replace(**changes)
  summary = write_dataset(args.out, preset=args.preset, num=args.num,
                          seed=args.seed, config=config, srgb=args.srgb,
                          samples=args.samples)
  print(f'wrote {args.num} {args.preset} scenes to {args.out} in '
        f'{summary["seconds"]:.1f} s '
        f'({len(summary["splits"]["anchor"])} anchor, '
        f'{len(summary["splits"]["test"])} test, unpaired '
        + ', '.join(f'{k}: {len(v)}'
                    for k, v in summary['splits']['unpaired'].items()) + ')')
  return summary
