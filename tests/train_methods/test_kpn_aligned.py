"""Alignment -> KPN end to end: misalign, align, train, evaluate.

The phone raw is three 256 x 256 crops of the GoPro DNG (packed,
normalised), the "high-end camera" image its `rawjax.isp.process`
rendering with another tone (0.9 x + 0.03) seen through a known warp
(`rawjax.data.simulated.kpn_pairs.random_warp`: similarity, smooth local
flow, two local rotations per image). `align_simulated` aligns it back with
`rawjax.align` into KPN pairs and manifests; the kpn_isp method trains on
them for a few steps and evaluates on the aligned test pairs.
"""

import json
import pathlib

import jax
import numpy as np
import pytest

from rawjax import io as rawio
from rawjax.data.datasets import DatasetLayoutError, PairFolder
from rawjax.isp import cfa, levels
from rawjax.isp import pipeline as isp_pipeline
from rawjax.isp.metadata import RawMetadata
from rawjax.train.config import load_config_module, set_run_length

cv2 = pytest.importorskip('cv2')
from rawjax import align  # pylint: disable=g-import-not-at-top,wrong-import-position
from rawjax.data.simulated import kpn_pairs as simulation  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = load_config_module(pathlib.Path(__file__).resolve().parents[2] /
                             'configs' / 'kpn_isp.py')
SIZE, P = 256, 64
# Mosaic crops with enough SIFT texture for the global homography.
CROPS = {'train': [(300, 560), (556, 560)], 'test': [(812, 816)]}


@pytest.fixture(scope='module')
def aligned(shared_data, tmp_path_factory):
  raw = rawio.read_raw(shared_data / 'raw' /
                       'gopro_hero6_black_crop1536x1152.dng')
  meta = raw.metadata()
  source = tmp_path_factory.mktemp('source')
  unit = RawMetadata.create(pattern=raw.pattern, black_level=0.0,
                            white_level=1.0, wb_gains=meta.wb_gains,
                            cam_to_srgb=meta.cam_to_srgb)
  render = jax.jit(isp_pipeline.process)
  for split, crops in CROPS.items():
    (source / split).mkdir()
    for i, (y, x) in enumerate(crops):
      mosaic = np.asarray(raw.mosaic)[y:y + SIZE, x:x + SIZE]
      packed = np.asarray(levels.normalize(
          cfa.pack(mosaic.astype(np.float32), pattern=raw.pattern),
          black_level=meta.black_level, white_level=meta.white_level))
      srgb = np.asarray(render(cfa.unpack(packed, pattern=raw.pattern), unit))
      np.savez(source / split / f'crop-{i}.npz', raw=packed,
               srgb=np.clip(0.9 * srgb + 0.03, 0, 1).astype(np.float32),
               pattern=raw.pattern, wb_gains=np.asarray(meta.wb_gains),
               cam_to_srgb=np.asarray(meta.cam_to_srgb))
  out = tmp_path_factory.mktemp('aligned') / 'pairs'
  config = align.AlignConfig(patch_size=P, min_keypoints=0)
  simulation.align_simulated(source, out, config=config, seed=0)
  return source, out


def _manifests(out, split):
  return [json.loads(p.read_text())
          for p in sorted((out / split).glob('*' + align.MANIFEST_SUFFIX))]


def test_alignment_writes_kpn_pairs(aligned):
  source, out = aligned
  truths, kept_files, all_files = [], [], []
  for split in CROPS:
    manifests = _manifests(out, split)
    assert len(manifests) == len(CROPS[split])
    for manifest in manifests:
      assert 'error' not in manifest, manifest.get('error')
      true = manifest['extra']['true_misalignment']
      original = PairFolder(source, split=split).load(
          manifest['extra']['source'])
      for index, entry in enumerate(manifest['patches']):
        if entry['file'] is None:
          assert entry['status'] == 'outside'
          continue
        t = true[str(index)]
        truths.append((t, entry['flow_score'], entry['kept']))
        all_files.append((split, entry['file']))
        if entry['kept']:
          kept_files.append((split, entry['file']))
        with np.load(out / split / f'{entry["file"]}.npz') as f:
          pair = {k: f[k] for k in f.files}
        y, x = entry['phone_origin']
        assert y % 2 == 0 and x % 2 == 0  # the CFA phase is kept
        # The raw is the source's packed raw at the phone patch, exactly.
        np.testing.assert_array_equal(
            pair['raw'], original['raw'][y // 2:(y + P) // 2,
                                         x // 2:(x + P) // 2])
        assert pair['srgb'].shape == (P, P, 3) and str(pair['pattern']) == 'RGGB'
        if entry['kept'] and t < 0.6:
          # Aligned: close to the ideal camera crop at the same place.
          ideal = original['srgb'][y:y + P, x:x + P]
          assert np.mean(np.abs(pair['srgb'] - ideal)) < 0.02
  truths = np.array(truths)
  print('\n(true misalignment px, flow score px, kept):')
  for t, s, k in truths:
    print(f'  {t:.2f} {s:.2f} {bool(k)}')
  # The score measures the true displacement; far from 1.2 px the
  # decisions are the truth's.
  np.testing.assert_allclose(truths[:, 1], truths[:, 0], atol=0.45)
  far_bad, far_good = truths[truths[:, 0] > 1.8], truths[truths[:, 0] < 0.6]
  assert len(far_bad) >= 2 and len(far_good) >= 4
  assert not far_bad[:, 2].any() and far_good[:, 2].all()
  for split in CROPS:
    folder = PairFolder(out, split=split)
    assert sorted(folder.keys) == sorted(f for s, f in kept_files if s == split)
    assert set(folder.rejected).isdisjoint(folder.keys)
    everything = PairFolder(out, split=split, include_rejected=True)
    assert sorted(everything.keys) == sorted(
        f for s, f in all_files if s == split)
    key = folder.keys[0]
    assert folder.misalignment(key) == folder.records[key]['flow_score']
    assert folder.metadata(key).pattern == 'RGGB'


def test_manifest_errors_are_named(aligned, tmp_path):
  _, out = aligned
  (tmp_path / 'train').mkdir()
  manifest = _manifests(out, 'train')[0]
  kept = next(e for e in manifest['patches'] if e['kept'])
  (tmp_path / 'train' / 'x.manifest.json').write_text(json.dumps(manifest))
  with pytest.raises(DatasetLayoutError, match=kept['file']):
    PairFolder(tmp_path, split='train')  # kept files are missing
  (tmp_path / 'train' / 'x.manifest.json').write_text('{"patches": 3}')
  np.savez(tmp_path / 'train' / 'a.npz', raw=np.zeros((4, 4, 4)),
           srgb=np.zeros((8, 8, 3)))
  with pytest.raises(DatasetLayoutError, match='unreadable'):
    PairFolder(tmp_path, split='train')


def test_kpn_trains_and_evaluates_on_aligned_pairs(aligned, tmp_path):
  from rawjax.train import loop  # pylint: disable=g-import-not-at-top
  _, out = aligned
  config = CONFIGS.get_config('aligned_quick')
  assert config.data.alignment.simulate and config.data.patch_size == P // 2
  config.data.update(root=str(out), num_workers=1, batch_size=4,
                     patch_size=16)
  config.model.update(features=4, levels=1, kernel_size=3)
  config.optim.warmup_steps = 0
  config.eval.num_grid_images = 1
  set_run_length(config, num_steps=3, eval_every=0, checkpoint_every=3,
                 log_every=1, images_every=0)
  state = loop.train_and_evaluate(config, tmp_path / 'run')
  assert int(np.asarray(state['step'])) == 3
  results = list((tmp_path / 'run').rglob('results.json'))
  assert results
  results = json.loads(results[0].read_text())
  test = PairFolder(out, split='test')
  assert results['num_test_images'] == len(test.keys) > 0
  assert results['num_with_metadata'] == len(test.keys)
  for name in ('kpn', 'process'):
    assert np.isfinite(results['rows'][name]['psnr'])
  metrics = [json.loads(line) for line in
             (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  losses = [v for m in metrics for k, v in m.items() if k.endswith('loss')]
  assert losses and np.isfinite(losses).all(), metrics[:2]


def test_alignment_settings_are_checked(tmp_path):
  from rawjax.methods import kpn as kpn_isp  # pylint: disable=g-import-not-at-top
  from rawjax.train.config import ConfigError  # pylint: disable=g-import-not-at-top
  config = CONFIGS.get_config('aligned_quick')
  kpn_isp.check_config(config)
  assert kpn_isp.align_config(config) == align.AlignConfig(
      patch_size=64, min_keypoints=10, flow_regularization=0.1)
  bad = [({'flow_method': 'pwcnet'}, 'data.alignment.pwcnet_weights'),
         ({'flow_method': 'pwcnets'}, 'data.alignment.flow_method'),
         ({'pwcnet_weights': str(tmp_path / 'w.npz')},
          'data.alignment.pwcnet_weights'),
         ({'patch_size': 33}, 'data.alignment.patch_size'),
         ({'max_flow': 0.0}, 'data.alignment.max_flow')]
  for change, key in bad:
    config = CONFIGS.get_config('aligned_quick')
    config.data.alignment.update(change)
    with pytest.raises(ConfigError, match=key.replace('.', r'\.')):
      kpn_isp.check_config(config)
  config = CONFIGS.get_config('aligned_quick')
  config.data.patch_size = 40  # larger than the 64 px aligned pairs allow
  with pytest.raises(ConfigError, match=r'at most data\.alignment'):
    kpn_isp.check_config(config)
