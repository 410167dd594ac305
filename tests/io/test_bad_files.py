"""A generated bad-file corpus for `read_raw`, read in guarded subprocesses.

More than 300 small files are built into tmp_path from the real sample raws
(../shared/data/raw): crops of the two DNGs written with `write_dng`, then
truncated, with bytes flipped in their TIFF structure (everything but the
pixel data), and with single tags patched to values seen in corrupt files;
plus copies of the Nikon film-scanner NEF (not a Bayer sensor) with bytes
flipped in its IFDs. Each file is read by a worker subprocess that reports
per file, with a timeout, so a crash or a hang in LibRaw is attributed to the
file that caused it. The rule: no crash, no hang, no exception other than
`RawReadError`, and every decoded file has black < white, a valid Bayer
pattern, an even size, and a Bayer source.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import tifffile

from rawjax import isp
from rawjax.io import read_raw, write_dng
from rawjax.isp import cfa

REPO = pathlib.Path(__file__).resolve().parents[2]
BLACKMAGIC = 'blackmagic_pocket_cinema_4k_12bit.dng'
GOPRO = 'gopro_hero6_black_crop1536x1152.dng'
NIKON_SCAN = 'nikon_coolscan_iv_ed_rgb_scan.nef'

# A worker that times out this long after its last report is hung.
FILE_TIMEOUT_S = 30
WORKERS = 2

_WORKER = r'''
import json, sys
from rawjax.io import raw as R
for path in json.load(open(sys.argv[1])):
  print(json.dumps({'path': path, 'status': 'start'}), flush=True)
  try:
    im = R.read_raw(path)
    out = {'status': 'READ', 'pattern': im.pattern,
           'shape': list(im.mosaic.shape), 'black': im.black_level.tolist(),
           'white': im.white_level, 'raw_type': im.raw_type,
           'above_white': im.above_white, 'warnings': len(im.warnings)}
  except R.RawReadError as e:
    out = {'status': 'RawReadError', 'reason': e.reason}
  except BaseException as e:  # reported to the test, which fails on it
    out = {'status': 'EXCEPTION', 'type': type(e).__name__, 'reason': str(e)}
  out['path'] = path
  print(json.dumps(out), flush=True)
'''

_FORMATS = {1: 'B', 3: 'H', 4: 'I', 5: 'I', 7: 'B', 8: 'h', 9: 'i', 10: 'i'}

# (name, tag code, values) written over a tag's value in place; the values
# are those of corrupt files (issue 17) or of layouts rawjax must refuse.
TAG_PATCHES = [
    ('white_1', 50717, (1,)), ('white_0', 50717, (0,)),
    ('white_100', 50717, (100,)), ('white_max', 50717, (65535,)),
    ('white_2p32', 50717, (2**32 - 1,)),
    ('black_65000', 50714, (65000, 1) * 4),
    ('black_16000', 50714, (16000, 1) * 4),
    ('black_one_161', 50714, (0, 1, 161, 1, 0, 1, 0, 1)),
    ('black_zero_den', 50714, (64, 0) * 4),
    ('neutral_zero_den', 50728, (1, 0, 1, 0, 1, 0)),
    ('neutral_zero', 50728, (0, 1, 1, 1, 0, 1)),
    ('neutral_huge', 50728, (2**32 - 1, 1, 1, 1, 1, 2**32 - 1)),
    ('cfa_cmmy', 33422, (3, 4, 4, 5)), ('cfa_rggg', 33422, (0, 1, 1, 1)),
    ('cfa_cmyw', 33422, (3, 4, 5, 6)), ('cfa_grbg', 33422, (1, 0, 2, 1)),
    ('cfa_out_of_range', 33422, (0, 1, 1, 9)),
    ('plane_cmy', 50710, (3, 4, 5)), ('plane_bgr', 50710, (2, 1, 0)),
    ('plane_rgr', 50710, (0, 1, 0)),
    ('cfa_dim_1x1', 33421, (1, 1)), ('cfa_dim_6x6', 33421, (6, 6)),
    ('cfa_dim_2x1', 33421, (2, 1)),
    ('width_odd', 256, (95,)), ('height_odd', 257, (63,)),
    ('width_small', 256, (7,)), ('width_huge', 256, (60000,)),
    ('photometric_rgb', 262, (2,)), ('photometric_linear', 262, (34892,)),
    ('photometric_grey', 262, (1,)), ('samples_3', 277, (3,)),
    ('bits_8', 258, (8,)), ('bits_12', 258, (12,)), ('bits_0', 258, (0,)),
    ('compression_jpeg', 259, (7,)), ('compression_odd', 259, (99,)),
    ('strip_offset_past_end', 273, (2**31,)),
    ('strip_count_huge', 279, (2**31,)), ('strip_count_0', 279, (0,)),
    ('subfile_preview', 254, (1,)),
    ('matrix_zero_den', 50721, (1, 0) * 9),
    ('matrix_zero', 50721, (0, 1) * 9),
    ('illuminant_bad', 50778, (999,)),
    ('dng_version_0', 50706, (0, 0, 0, 0)),
]
# Patches after which the file describes no Bayer mosaic: must not decode.
NOT_BAYER = {'cfa_cmmy', 'cfa_rggg', 'cfa_cmyw', 'cfa_out_of_range',
             'plane_cmy', 'plane_rgr', 'cfa_dim_1x1', 'cfa_dim_6x6',
             'cfa_dim_2x1', 'photometric_rgb', 'photometric_linear',
             'samples_3'}

TRUNCATIONS = 16
FLIPS = 36
NIKON_FLIPS = 30
# Bytes of the scanner NEF whose corruption made LibRaw decode it as a flat
# RGGB mosaic (IFD0 entries, the Make tag, the scan's SubIFD).
NIKON_KNOWN_BAD = (83, 89, 90, 93, 296, 297, 300, 9196, 9197, 9200)


def _write_crop(path, image, top, left, height=64, width=96, gain_maps=False):
  mosaic = image.mosaic[top:top + height, left:left + width]
  pattern = cfa.crop_pattern(image.pattern, top=top, left=left)
  maps = None
  if gain_maps:
    falloff = isp.radial_falloff(height // 2, width // 2,
                                 corner_falloff=(0.3, 0.4, 0.4, 0.5))
    maps = isp.gain_maps_from_falloff(falloff, pattern=pattern,
                                      map_points=(5, 7))
  black = [0.0] * 4  # per CFA site, row by row
  for c, (dy, dx) in enumerate(cfa.channel_offsets(pattern)):
    black[2 * dy + dx] = float(image.black_level[c])
  write_dng(path, mosaic, pattern=pattern, black_level=black,
            white_level=int(image.white_level),
            color_matrix=image.xyz_to_camera,
            as_shot_neutral=1.0 / image.wb_gains, gain_maps=maps)


def _metadata_ranges(path):
  """Byte ranges outside the pixel data, and the tags with their offsets."""
  size = path.stat().st_size
  with tifffile.TiffFile(path) as tif:
    page = tif.pages[0]
    tags = {t.code: (t.valueoffset, t.dtype, t.count) for t in
            page.tags.values()}
    start, count = int(page.dataoffsets[0]), int(page.databytecounts[0])
  ranges = [(0, start), (start + count, size)]
  return [r for r in ranges if r[1] > r[0]], tags


def _patch(data, tag, values):
  offset, dtype, count = tag
  fmt = _FORMATS[int(dtype)]
  n = len(values)
  if dtype in (5, 10):
    n = min(n, 2 * count)
  else:
    n = min(n, count)
  out = bytearray(data)
  struct.pack_into(f'<{n}{fmt}', out, offset, *values[:n])
  return bytes(out)


def _build_corpus(raw_dir, work, rng):
  """Writes the corpus; returns [(path, kind, bayer_source)]."""
  gopro, blackmagic = read_raw(raw_dir / GOPRO), read_raw(raw_dir / BLACKMAGIC)
  bases = {'gopro': (gopro, 500, 700, False),
           'gopro_odd_phase': (gopro, 301, 411, False),
           'gopro_gain_map': (gopro, 100, 200, True),
           'blackmagic': (blackmagic, 1000, 2000, False)}
  files = []

  def add(name, data, kind, bayer=True):
    path = work / f'{len(files):04d}_{name}.dng'
    path.write_bytes(data)
    files.append((str(path), kind, bayer))

  for base, (image, top, left, maps) in bases.items():
    path = work / f'base_{base}.dng'
    _write_crop(path, image, top, left, gain_maps=maps)
    data = path.read_bytes()
    files.append((str(path), 'base', True))
    ranges, tags = _metadata_ranges(path)
    for cut in np.unique(rng.integers(1, len(data), TRUNCATIONS)):
      add(f'{base}_cut{cut}', data[:cut], 'truncation')
    lengths = np.array([b - a for a, b in ranges], np.float64)
    for k in range(FLIPS):
      a, b = ranges[rng.choice(len(ranges), p=lengths / lengths.sum())]
      out = bytearray(data)
      for _ in range(1 + k % 3):  # one, two or three flipped bytes
        i = int(rng.integers(a, b))
        out[i] ^= int(rng.integers(1, 256))
      add(f'{base}_flip{k}', bytes(out), 'byte flip')
    for name, code, values in TAG_PATCHES:
      if code in tags:
        add(f'{base}_{name}', _patch(data, tags[code], values), 'tag patch',
            bayer=name not in NOT_BAYER)
  nikon = (raw_dir / NIKON_SCAN).read_bytes()
  positions = list(NIKON_KNOWN_BAD) + rng.integers(
      0, 12_000, NIKON_FLIPS - len(NIKON_KNOWN_BAD)).tolist()
  for k, i in enumerate(positions):
    out = bytearray(nikon)
    out[i] ^= 0xFF if k < len(NIKON_KNOWN_BAD) else int(rng.integers(1, 256))
    path = work / f'nikon_{k:02d}_{i}.nef'
    path.write_bytes(bytes(out))
    files.append((str(path), 'nikon byte flip', False))
  return files


def _run_workers(paths, work):
  """Reads every path in worker subprocesses; {path: result}.

  A worker that dies (a crash in C) or reports nothing for FILE_TIMEOUT_S
  (a hang) is blamed for the file it had started, and the rest of its share
  is read by a fresh worker.
  """
  results = {}
  pending = [paths[i::WORKERS] for i in range(WORKERS)]
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  round_ = 0
  while any(pending):
    procs = []
    for k, share in enumerate(pending):
      if not share:
        continue
      listing = work / f'share_{round_}_{k}.json'
      listing.write_text(json.dumps(share))
      procs.append((share, subprocess.Popen(
          [sys.executable, '-c', _WORKER, str(listing)], cwd=REPO, env=env,
          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)))
    pending = []
    for share, proc in procs:
      # The whole share gets FILE_TIMEOUT_S plus a generous per-file budget.
      try:
        out, _ = proc.communicate(timeout=FILE_TIMEOUT_S + 0.5 * len(share))
        failure = None if proc.returncode == 0 else (
            f'CRASH (exit code {proc.returncode})')
      except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        failure = 'HANG'
      started = None
      for line in out.splitlines():
        record = json.loads(line)
        if record['status'] == 'start':
          started = record['path']
        else:
          results[record['path']] = record
          started = None
      if failure is not None:
        if started is None:  # died before (or between) files
          started = next(p for p in share if p not in results)
        results[started] = {'status': failure, 'path': started}
        pending.append([p for p in share if p not in results])
    round_ += 1
  return results


def _wrong_metadata(record, bayer):
  if record['status'] != 'READ':
    return None
  problems = []
  if not bayer:
    problems.append('a non-Bayer source decoded as Bayer')
  if max(record['black']) >= record['white']:
    problems.append(f'black {record["black"]} >= white {record["white"]}')
  if record['pattern'] not in cfa.PATTERNS:
    problems.append(f'pattern {record["pattern"]}')
  if record['shape'][0] % 2 or record['shape'][1] % 2:
    problems.append(f'odd size {record["shape"]}')
  if record['raw_type'] != 'Flat':
    problems.append(f'raw type {record["raw_type"]}')
  return '; '.join(problems) or None


def test_bad_file_corpus(shared_data, tmp_path):
  rng = np.random.default_rng(17)
  files = _build_corpus(shared_data / 'raw', tmp_path, rng)
  assert len(files) >= 300, len(files)
  results = _run_workers([f[0] for f in files], tmp_path)

  statuses = collections.Counter(results[p]['status'] for p, _, _ in files)
  failures = [(p, results[p]) for p, _, _ in files
              if results[p]['status'] not in ('READ', 'RawReadError')]
  wrong = [(p, w) for p, _, bayer in files
           if (w := _wrong_metadata(results[p], bayer))]
  print(f'\nbad-file corpus: {len(files)} files, {dict(statuses)}; '
        f'{len(wrong)} with wrong metadata')
  assert not failures, failures[:10]
  assert not wrong, [(pathlib.Path(p).name, w) for p, w in wrong]
  # The corpus must exercise decoding too, not only rejection.
  assert statuses['READ'] >= 30, statuses
  assert statuses['RawReadError'] >= 100, statuses
  bases = [p for p, kind, _ in files if kind == 'base']
  assert all(results[p]['status'] == 'READ' for p in bases)
