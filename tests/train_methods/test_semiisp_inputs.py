"""SemiISP inputs: eq. 5 (VGG16 perceptual loss), unlabelled sources, keys."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rawjax import convert
from rawjax.data import sources
from rawjax.data.datasets import arrays
from rawjax.data.synthetic import catalogue_names
from rawjax.methods import semiisp
from rawjax.methods.semiisp import objective, perceptual, unlabelled
from rawjax.models import vgg
from rawjax.train.config import ConfigError, check_at_start, load_config_module

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'configs'


def _config(variant, name='semiisp_fivek'):
  return load_config_module(CONFIGS / f'{name}.py').get_config(variant)


def _set(config, **changes):
  with config.unlocked():
    for key, value in changes.items():
      *path, last = key.split('__')
      node = config
      for part in path:
        node = node[part]
      node[last] = value
  return config


# --- eq. 5 -------------------------------------------------------------------


def _vgg16_state_dict(rng):
  """A torchvision-shaped vgg16 state dict (features and a classifier)."""
  state, channels, index = {}, 3, 0
  for width in vgg.VGG16_CONFIG:
    if width == 'M':
      index += 1
      continue
    state[f'features.{index}.weight'] = rng.normal(
        0, 0.2, (width, channels, 3, 3)).astype(np.float32)
    state[f'features.{index}.bias'] = rng.normal(0, 0.1, width).astype(
        np.float32)
    channels, index = width, index + 2
  state['classifier.0.weight'] = np.zeros((4, 2), np.float32)
  return state


def _relu1_1_by_hand(x, weight, bias):
  """relu(conv3x3(normalise(x)) + b), zero padding, numpy, (N, H, W, 64)."""
  x = (x - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  h, w = x.shape[1:3]
  out = np.zeros(x.shape[:3] + (weight.shape[0],))
  for dy in range(3):
    for dx in range(3):
      out += np.einsum('nhwc,oc->nhwo', padded[:, dy:dy + h, dx:dx + w],
                       weight[:, :, dy, dx])
  return np.maximum(out + bias, 0.0)


def test_eq5_perceptual_term_equals_hand_computation():
  rng = np.random.default_rng(0)
  state = _vgg16_state_dict(rng)
  params = convert.convert_vgg16(
      {k: v for k, v in state.items() if k.startswith('features.0.')},
      layer='relu1_1')
  x = rng.random((2, 6, 5, 3)).astype(np.float32)
  y = rng.random((2, 6, 5, 3)).astype(np.float32)
  w, b = state['features.0.weight'], state['features.0.bias']
  vgg_by_hand = np.mean((_relu1_1_by_hand(x, w, b) -
                         _relu1_1_by_hand(y, w, b)) ** 2)
  mse = np.mean((x - y) ** 2)
  loss = jax.jit(lambda a, c: objective.isp_loss(
      predictions=a, targets=c, kind='mse', vgg_weight=0.1, vgg_params=params,
      vgg_layer='relu1_1'))(x, y)
  np.testing.assert_allclose(loss, mse + 0.1 * vgg_by_hand, rtol=2e-5)
  # alpha = 0 is MSE exactly, without weights.
  np.testing.assert_allclose(
      objective.isp_loss(predictions=x, targets=y, kind='mse'), mse,
      rtol=1e-6)
  # The target's features carry no gradient.
  grad = jax.grad(lambda c: objective.perceptual_loss(
      predictions=x, targets=c, vgg_params=params, layer='relu1_1'))(y)
  assert not np.any(np.asarray(grad))
  with pytest.raises(ValueError, match='needs vgg_params'):
    objective.isp_loss(predictions=x, targets=y, kind='mse', vgg_weight=0.1)


def test_vgg16_weights_convert_save_and_load(tmp_path):
  rng = np.random.default_rng(1)
  state = _vgg16_state_dict(rng)
  torch_like = tmp_path / 'vgg16_state.npz'
  np.savez(torch_like, **{k: v for k, v in state.items()
                          if int(k.split('.')[1]) <= 7 or 'classifier' in k})
  params = perceptual.load_vgg16(torch_like, layer='relu2_2')
  assert sorted(params) == ['features_0', 'features_2', 'features_5',
                            'features_7']
  np.testing.assert_array_equal(
      params['features_5']['kernel'],
      state['features.5.weight'].transpose(2, 3, 1, 0))
  # A Flax .npz of a deeper layer serves a shallower one.
  flax = convert.save_params(tmp_path / 'flax.npz', params)
  shallow = perceptual.load_vgg16(flax, layer='relu1_2')
  assert sorted(shallow) == ['features_0', 'features_2']
  with pytest.raises(ValueError, match='lack'):
    perceptual.load_vgg16(flax, layer='relu3_1')
  with pytest.raises(ValueError, match='missing keys'):
    convert.convert_vgg16({'features.0.weight': state['features.0.weight']},
                             layer='relu1_2')
  with pytest.raises(FileNotFoundError, match='vgg16'):
    perceptual.load_vgg16(tmp_path / 'nope.pth', layer='relu2_2')


# --- unlabelled sources ------------------------------------------------------


def test_raw2srgb_v2_content_is_disjoint_and_deterministic(tmp_path):
  photos = unlabelled.content_photographs()
  labelled, kept_out = catalogue_names(0.5)
  assert {p.name for p in photos} == set(kept_out)
  assert not {p.content_key for p in photos} & {
      s.content_key for s in sources.builtin_sources() if s.name in labelled}
  first = list(unlabelled.content_crops(3, (12, 20), seed=4))
  again = list(unlabelled.content_crops(3, (12, 20), seed=4))
  assert all(c.shape == (12, 20, 3) and c.dtype == np.float32 for c in first)
  np.testing.assert_array_equal(np.stack(first), np.stack(again))
  assert 0.0 <= np.min(first) and np.max(first) <= 1.0
  assert not np.array_equal(first[0], first[1])
  # Prepared once as 16-bit codes, with the config's seed and count.
  data = _config('quick,ood,semi').data
  with data.unlocked():
    data.update(dict(num_unlabelled=3, cache_dir=str(tmp_path)))
  stored = unlabelled.load_unlabelled(data, size=(12, 20), seed=4)['srgb']
  np.testing.assert_allclose(stored / arrays.SCALE, np.stack(first),
                             atol=1 / arrays.SCALE)


def test_folder_source_reads_crops_and_caches(tmp_path):
  folder = tmp_path / 'photos' / 'sub'
  folder.mkdir(parents=True)
  rng = np.random.default_rng(2)
  exact = (rng.random((8, 12, 3)) * 255).astype(np.uint8)
  Image.fromarray(exact).save(folder / 'a.png')
  # Portrait and uniform: turned to landscape, the colour is kept.
  Image.fromarray(np.full((30, 18, 3), (200, 40, 90), np.uint8)).save(
      folder / 'b.jpg', quality=100)
  (folder / 'notes.txt').write_text('not an image')
  data = _config('quick,semi').data
  with data.unlocked():
    data.update(dict(unlabelled='folder', unlabelled_dir=str(tmp_path),
                     cache_dir=str(tmp_path / 'cache')))
  out = unlabelled.load_unlabelled(data, size=(8, 12), seed=0)['srgb']
  assert out.shape == (2, 8, 12, 3) and out.dtype == np.uint16
  # Same size as the target: the resize is the identity (16-bit codes).
  np.testing.assert_allclose(out[0] / arrays.SCALE, exact / 255, atol=1e-4)
  np.testing.assert_allclose(out[1] / arrays.SCALE,
                             np.broadcast_to(np.array([200, 40, 90]) / 255,
                                             (8, 12, 3)), atol=3 / 255)
  assert len(list((tmp_path / 'cache').glob(
      '**/semiisp-unlabelled-folder-*'))) == 1
  (tmp_path / 'empty').mkdir()
  with data.unlocked():
    data.unlabelled_dir = str(tmp_path / 'empty')
  with pytest.raises(ValueError, match='no image file'):
    unlabelled.load_unlabelled(data, size=(8, 12), seed=0)


# --- config keys -------------------------------------------------------------


def test_new_keys_defaults_and_variants():
  quick = _config('quick,semi')
  assert (quick.data.unlabelled, quick.data.synthetic.preset,
          quick.isp.vgg_weight) == ('fivek_expert', 'raw2srgb', 0.0)
  ood = _config('quick,ood,semi')
  assert (ood.data.unlabelled, ood.data.synthetic.preset, ood.pseudo.usq) == (
      'raw2srgb_v2_content', 'raw2srgb_v2', True)
  assert (ood.data.num_unlabelled, ood.data.synthetic.num_unlabelled) == (
      300, 300)
  assert not ood.data.unlabelled_pairs
  assert _config('ood,semi').data.unlabelled == 'folder'
  assert [_config(f'{n},isp').isp.vgg_weight for n in ('100', '500', '4500')
          ] == [0.0, 0.1, 0.1]
  assert _config('denoise,isp').isp.vgg_weight == 0.0


@pytest.mark.parametrize('changes, message', [
    (dict(isp__vgg_weight=-0.1), 'isp.vgg_weight'),
    (dict(isp__vgg_layer='relu9_9'), 'isp.vgg_layer'),
    (dict(data__unlabelled='coco'), 'data.unlabelled'),
    (dict(data__unlabelled='folder'), 'data.unlabelled_dir'),
    (dict(data__unlabelled_dir='/tmp'), "only read with"),
    (dict(data__unlabelled='raw2srgb_v2_content'), "preset='raw2srgb_v2'"),
    (dict(data__synthetic__preset='raw2srgb_v3'), 'data.synthetic.preset'),
    (dict(data__unlabelled_pairs=True), 'a supervised-only run'),
])
def test_new_keys_are_checked(changes, message):
  config = _set(_config('quick,semi'), **changes)
  with pytest.raises(ConfigError, match=message):
    semiisp.check_config(config)


def test_start_checks_name_the_missing_files(tmp_path):
  config = _set(_config('500,isp'), data__root='')
  with pytest.raises(ConfigError, match=r'isp\.vgg_weights.*vgg16'):
    check_at_start(config, num_devices=1, num_processes=1)
  with pytest.raises(ConfigError, match='isp.vgg_weights'):
    semiisp.make_steps(config)
  semi = _set(_config('ood,semi'), data__unlabelled_dir=str(tmp_path),
              pseudo__isp_workdir=str(tmp_path))
  with pytest.raises(ConfigError, match='data.unlabelled_dir.*no image file'):
    check_at_start(semi, num_devices=1, num_processes=1)


def test_phase_2_batches_draw_from_the_chosen_source(tmp_path):
  rng = np.random.default_rng(3)
  image = lambda n: rng.uniform(0.05, 0.95, (n, 16, 16, 3))  # noqa: E731
  root = arrays.prepare_arrays(
      tmp_path / 'data', labelled_raw=image(4), labelled_srgb=image(4),
      unlabelled_srgb=image(3), test_raw=image(1), test_srgb=image(1))
  folder = tmp_path / 'photos'
  folder.mkdir()
  for i in range(2):
    Image.fromarray(np.full((16, 16, 3), 250 * i, np.uint8)).save(
        folder / f'{i}.png')
  config = _set(_config('quick,semi'), data__root=str(root),
                data__patch_size=8, data__num_workers=1,
                data__cache_dir=str(tmp_path / 'cache'),
                data__unlabelled='folder', data__unlabelled_dir=str(folder),
                semi__real_batch=2, semi__pseudo_batch=4)
  batch = semiisp.make_data(config).batch(0)
  assert batch['raw'].shape == (2, 8, 8, 3)
  assert batch['unlabelled'].shape == (4, 8, 8, 3)
  # Only the folder's two flat images (0 and 250/255), none of the prepared
  # split's random ones.
  values = np.unique(np.round(batch['unlabelled'] * 255))
  assert set(values) <= {0.0, 250.0}


# --- the real-pairs ceiling (data.unlabelled_pairs) ---------------------------


def test_unlabelled_pairs_key_is_checked():
  config = _set(_config('quick,supervised'), data__unlabelled_pairs=True)
  semiisp.check_config(config)   # a supervised-only run: valid
  with pytest.raises(ConfigError, match='fine-tuning'):
    semiisp.check_config(_set(_config('quick,supervised'),
                              data__unlabelled_pairs=True,
                              supervised__init_from='/somewhere'))
  with pytest.raises(ConfigError, match='num_unlabelled is 0'):
    semiisp.check_config(_set(_config('quick,supervised'),
                              data__unlabelled_pairs=True,
                              data__synthetic__num_unlabelled=0))


def test_ceiling_trains_on_labelled_and_unlabelled_true_pairs(tmp_path):
  # Labelled images hold values <= 0.3, the unlabelled scenes' pairs >= 0.7:
  # an epoch of the ceiling's stream must show both, in their pairs.
  rng = np.random.default_rng(5)
  low = lambda n: rng.uniform(0.0, 0.3, (n, 8, 8, 3))  # noqa: E731
  high = lambda n: rng.uniform(0.7, 1.0, (n, 8, 8, 3))  # noqa: E731
  raw_u = high(3)
  root = arrays.prepare_arrays(
      tmp_path / 'data', labelled_raw=low(2), labelled_srgb=low(2),
      unlabelled_srgb=raw_u[..., ::-1], unlabelled_raw=raw_u,
      test_raw=low(1), test_srgb=low(1))
  split = arrays.load_split(root, 'unlabelled', with_raw=True)
  np.testing.assert_allclose(split['raw'] / arrays.SCALE, raw_u,
                             atol=0.5 / arrays.SCALE + 1e-7)
  assert set(arrays.load_split(root, 'unlabelled')) == {'srgb'}
  config = _set(_config('quick,supervised'), data__root=str(root),
                data__unlabelled_pairs=True, data__patch_size=0,
                data__num_workers=1, data__augment=(), supervised__batch=5)
  batch = semiisp.make_data(config).batch(0)
  assert batch['raw'].shape == (5, 8, 8, 3)
  means = batch['raw'].mean(axis=(1, 2, 3))
  assert (means < 0.3).sum() == 2 and (means > 0.7).sum() == 3
  # Each unlabelled raw comes with its own sRGB (here the channels reversed).
  for raw, srgb in zip(batch['raw'], batch['srgb']):
    if raw.mean() > 0.7:
      np.testing.assert_allclose(srgb, raw[..., ::-1], atol=1e-4)


def test_ceiling_needs_the_unlabelled_raws(tmp_path):
  image = np.full((1, 8, 8, 3), 0.5)
  root = arrays.prepare_arrays(
      tmp_path / 'data', labelled_raw=image, labelled_srgb=image,
      unlabelled_srgb=image, test_raw=image, test_srgb=image)
  with pytest.raises(FileNotFoundError, match='no unlabelled_raw.npy'):
    arrays.load_split(root, 'unlabelled', with_raw=True)
  with pytest.raises(ValueError, match='they are pairs'):
    arrays.prepare_arrays(
        tmp_path / 'other', labelled_raw=image, labelled_srgb=image,
        unlabelled_srgb=image, unlabelled_raw=np.concatenate([image, image]),
        test_raw=image, test_srgb=image)


def test_comparison_curves_continue_phase2_into_fine_tuning(tmp_path):
  from rawjax.methods.semiisp import comparison  # pylint: disable=g-import-not-at-top

  def run(name, points):
    folder = tmp_path / 'unet' / name
    folder.mkdir(parents=True)
    with open(folder / 'metrics.jsonl', 'w', encoding='utf-8') as f:
      for step, psnr in points:
        f.write(json.dumps({'step': step, 'train/loss': 0.1}) + '\n')
        f.write(json.dumps({'step': step, 'eval/psnr': psnr}) + '\n')

  run('supervised', [(50, 14.0), (100, 15.0)])
  run('one_to_many', [(50, 13.0)])
  run('one_to_many_ft', [(25, 15.5), (50, 16.0)])
  assert comparison.validation_curve(tmp_path / 'unet' / 'one_to_many_ft',
                                     offset=50) == ([75, 100], [15.5, 16.0])
  results = {'targets': {'unet': {'supervised': {}, 'one_to_many': {},
                                  'one_to_many_ft': {}}}}
  image = comparison.curves_figure(tmp_path, results, phase2_steps=50)
  assert image.width > 100 and image.height > 100
