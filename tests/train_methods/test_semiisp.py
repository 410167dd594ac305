"""SemiISP: eqs. 10-14, losses, pseudo-RAW, memory, one step per phase."""

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.measure import block_reduce

from rawjax import io as rawio, metrics as metrics_lib
from rawjax.data.datasets import arrays
from rawjax.isp import noise as noise_lib
from rawjax.isp import pqdynamic
from rawjax.methods import semiisp
from rawjax.methods.semiisp import objective
from rawjax.models import pqdynamic_net
from rawjax.train import get_method, loop, parallel as parallel_lib
from rawjax.train import state as state_lib
from rawjax.train.checkpoint import Checkpointer
from rawjax.train.config import load_config_module

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'configs'
_LUT_SHAPE = (10, 8, 8, 48)


def _load_config(name, variant):
  return load_config_module(CONFIGS / f'{name}.py').get_config(variant)


# --- eqs. 10-13 and 14 --------------------------------------------------------


def _opf_by_hand(real, pseudo, beta):
  l_r = np.mean(real)
  delta = np.array([0.0 if l > beta * l_r else 1.0 for l in pseudo])
  kept = delta.sum()
  l_p = (delta * pseudo).sum() / kept if kept else 0.0
  n_r = len(real)
  return n_r / (n_r + kept) * l_r + kept / (n_r + kept) * l_p, l_p, delta


@pytest.mark.parametrize('pseudo, expected_kept', [
    ([0.1, 0.25, 0.15, 0.5], 2),    # some filtered
    ([0.9, 0.7, 0.41, 2.0], 0),     # all filtered: L_semi = L_r
    ([0.0, 0.2, 0.1, 0.05], 4),     # none filtered
])
def test_opf_loss_equals_hand_computation(variant, pseudo, expected_kept):
  real = np.array([0.1, 0.3], np.float32)
  pseudo = np.array(pseudo, np.float32)
  fn = variant(functools.partial(objective.online_pseudo_filtering_loss,
                                 beta=1.2))
  loss, aux = fn(real_losses=real, pseudo_losses=pseudo)
  expected, l_p, delta = _opf_by_hand(real, pseudo, 1.2)
  assert float(aux['kept']) == expected_kept
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  np.testing.assert_allclose(aux['pseudo_loss'], l_p, rtol=1e-6)
  np.testing.assert_allclose(aux['real_loss'], 0.2, rtol=1e-6)
  np.testing.assert_array_equal(aux['mask'], delta)
  if expected_kept == 0:
    np.testing.assert_allclose(loss, 0.2, rtol=1e-6)
  # The mask is not differentiated: d/dl_p = delta / (N_r + kept).
  grad_real, grad_pseudo = jax.grad(
      lambda r, p: fn(real_losses=r, pseudo_losses=p)[0], argnums=(0, 1))(
          real, pseudo)
  np.testing.assert_allclose(grad_real, 1.0 / (2 + expected_kept), rtol=1e-6)
  np.testing.assert_allclose(grad_pseudo, delta / (2 + expected_kept),
                             rtol=1e-6)


def test_opf_loss_over_devices_equals_whole_batch():
  rng = np.random.default_rng(0)
  real = rng.uniform(0, 1, (4, 1)).astype(np.float32)
  pseudo = rng.uniform(0, 1.3, (4, 3)).astype(np.float32)

  def per_device(r, p):
    loss, aux = objective.online_pseudo_filtering_loss(
        real_losses=r, pseudo_losses=p, beta=1.0, axis_name='batch')
    return jax.lax.pmean(loss, 'batch'), aux['kept']

  loss, kept = jax.pmap(per_device, axis_name='batch')(real, pseudo)
  expected, _, delta = _opf_by_hand(real.ravel(), pseudo.ravel(), 1.0)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(kept, delta.sum())


def test_multiscale_l1_matches_block_reduce(variant):
  rng = np.random.default_rng(1)
  x = rng.uniform(size=(2, 40, 36, 3)).astype(np.float32)
  y = rng.uniform(size=(2, 40, 36, 3)).astype(np.float32)
  out = variant(functools.partial(objective.multiscale_l1_loss,
                                  scales=(16, 32, 64), per_sample=True))(
                                      predictions=x, targets=y)
  expected = np.abs(x - y).mean(axis=(1, 2, 3))
  for k in (16, 32):   # 64 > the image: skipped
    pool = lambda a: block_reduce(a[:, :a.shape[1] // k * k,  # noqa: E731
                                    :a.shape[2] // k * k], (1, k, k, 1),
                                  np.mean)
    expected = expected + np.abs(pool(x) - pool(y)).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_per_sample_and_isp_losses_by_hand():
  rng = np.random.default_rng(2)
  x = rng.uniform(-0.1, 1.1, (3, 20, 20, 3)).astype(np.float32)
  y = rng.uniform(0, 1, (3, 20, 20, 3)).astype(np.float32)
  mse = np.mean((x - y) ** 2, axis=(1, 2, 3))
  for kind, expected in [('mse', mse),
                         ('l1', np.abs(x - y).mean(axis=(1, 2, 3)))]:
    np.testing.assert_allclose(objective.per_sample_loss(
        predictions=x, targets=y, kind=kind), expected, rtol=1e-5)
  ssim = np.asarray(metrics_lib.ssim(np.clip(x, 0, 1), y))
  np.testing.assert_allclose(objective.per_sample_loss(
      predictions=x, targets=y, kind='mse_ssim', ssim_weight=0.5),
                             mse + 0.5 * (1 - ssim), rtol=1e-5)
  np.testing.assert_allclose(objective.isp_loss(
      predictions=x, targets=y, kind='mse'), mse.mean(), rtol=1e-5)
  np.testing.assert_allclose(
      objective.isp_loss(predictions=x, targets=y, kind='l1_multiscale',
                         scales=(16,)),
      objective.multiscale_l1_loss(predictions=x, targets=y, scales=(16,)))
  with pytest.raises(ValueError, match='kind must be one of'):
    objective.per_sample_loss(predictions=x, targets=y, kind='l2')
  with pytest.raises(ValueError, match='kind must be one of'):
    objective.isp_loss(predictions=x, targets=y, kind='l1')


# --- memory and pseudo-RAW ----------------------------------------------------


def test_memory_is_a_ring_of_the_last_sets():
  memory = {'count': jnp.zeros((), jnp.int32),
            'global': jnp.zeros((5, 2), jnp.float32)}
  first = jnp.arange(6, dtype=jnp.float32).reshape(3, 2)
  memory = semiisp.memorise(memory, {'global': first}, axis_name=None)
  memory = semiisp.memorise(memory, {'global': first + 10}, axis_name=None)
  assert int(memory['count']) == 6
  np.testing.assert_array_equal(
      memory['global'], [[14, 15], [2, 3], [4, 5], [10, 11], [12, 13]])


@pytest.fixture(scope='module')
def luts():
  return pqdynamic.InverseLUTs(pqdynamic.gamma_tone_map_lut(
      shape=_LUT_SHAPE, progress=False))


@pytest.mark.parametrize('variant_name, sampling', [
    ('global', 'isp_unit'), ('local', 'function_unit')])
def test_pseudo_raw_inverts_back_through_f_isp(luts, variant_name, sampling):
  """f_ISP(f_ISP^-1(s; P); P) = s for memorised sets P (noise off)."""
  model = pqdynamic_net.PQDynamicNet(variant=variant_name, grid=2)
  shape = (16, *semiisp.z_shape(model))
  rng = np.random.default_rng(3)
  memory = {'count': jnp.asarray(16, jnp.int32),
            variant_name: jnp.asarray(rng.normal(0, 0.4, shape), jnp.float32)}
  srgb = jnp.asarray(rng.uniform(0.1, 0.9, (6, 16, 16, 3)), jnp.float32)

  @jax.jit
  def round_trip(key):
    z = semiisp.sample_sets(key, memory, 6, variant=variant_name,
                            sampling=sampling)
    raw = semiisp.pseudo_raw(model, srgb, z, luts, newton_steps=2)
    params = model.to_params(z, 16, 16)
    per_pixel = variant_name == 'local'
    unclipped = pqdynamic.isp_inverse(srgb, params, luts=luts,
                                      newton_steps=2, per_pixel=per_pixel,
                                      clip=False)
    back = pqdynamic.isp_forward(raw, params, per_pixel=per_pixel)
    return z, raw, unclipped, back

  z, raw, unclipped, back = round_trip(jax.random.PRNGKey(0))
  if sampling == 'isp_unit':  # every draw is one of the memorised sets
    stored = np.asarray(memory[variant_name]).reshape(16, -1)
    for row in np.asarray(z).reshape(6, -1):
      assert np.min(np.abs(stored - row).max(axis=1)) == 0.0
  assert float(raw.min()) >= 0.0 and float(raw.max()) <= 1.0
  # Pixels whose raw the colour matrix sends outside [0, 1] are clipped by
  # f_ISP^-1 (and f_ISP clamps there): not invertible, left out.
  inside = np.all((np.asarray(unclipped) >= 0) & (np.asarray(unclipped) <= 1),
                  axis=-1)
  assert inside.mean() > 0.5
  error = np.abs(np.asarray(back) - np.asarray(srgb)).max(axis=-1)[inside]
  assert error.max() < 1e-4, error.max()


def test_deterministic_generator_is_one_to_one(luts):
  """'w/o one-to-many': every key gives f_ISP^-1 with the mean set."""
  config = _load_config('semiisp_fivek', 'quick,deterministic,semi')
  with config.unlocked():
    config.pseudo.update(dict(usq=False, noise=False, lut_shape=_LUT_SHAPE))
  rng = np.random.default_rng(7)
  memory = {'count': jnp.asarray(3, jnp.int32),
            'global': jnp.asarray(rng.normal(0, 0.4, (5, 36)), jnp.float32)}
  srgb = jnp.asarray(rng.uniform(0.1, 0.9, (2, 8, 8, 3)), jnp.float32)
  generate = jax.jit(lambda key: semiisp.generate_pseudo_pairs(
      config, {'memory': memory}, srgb, key, luts=luts))
  raw_a, target = generate(jax.random.PRNGKey(0))
  raw_b, _ = generate(jax.random.PRNGKey(1))
  np.testing.assert_array_equal(raw_a, raw_b)
  np.testing.assert_array_equal(target, srgb)
  model = pqdynamic_net.PQDynamicNet(variant='global')
  mean = jnp.broadcast_to(memory['global'][:3].mean(0), (2, 36))
  np.testing.assert_allclose(
      raw_a, semiisp.pseudo_raw(model, srgb, mean, luts, newton_steps=2),
      atol=1e-6)


@pytest.mark.parametrize('noise_levels', ['semiisp', 'upi'])
@pytest.mark.parametrize('averaged_greens', [True, False])
def test_pseudo_noise_variance(noise_levels, averaged_greens):
  """Eq. 15 per image; G at half the variance when it is a two-site mean."""
  config = _load_config('semiisp_fivek', 'quick,semi')
  with config.unlocked():
    config.pseudo.update(dict(noise_levels=noise_levels,
                              averaged_greens=averaged_greens))
  clean = jnp.full((2, 256, 256, 3), 0.25, jnp.float32)
  level_key, noise_key = jax.random.split(jax.random.PRNGKey(3))
  noisy = jax.jit(functools.partial(semiisp.add_pseudo_noise, config))(
      level_key, noise_key, clean)
  if noise_levels == 'upi':
    levels = noise_lib.random_noise_levels(
        level_key, shape=(2,), shot_range=tuple(config.pseudo.shot_range))
  else:
    levels = noise_lib.random_semiisp_noise_levels(
        level_key, shape=(2,), shot_max=config.pseudo.shot_max,
        read_max=config.pseudo.read_max)
  expected = np.asarray(levels.shot)[:, None] * 0.25 + np.asarray(
      levels.read)[:, None] * np.ones((1, 3))
  if averaged_greens:
    expected = expected * np.array([1.0, 0.5, 1.0])
  variance = np.asarray(jnp.var(noisy - clean, axis=(1, 2)))
  # 65,536 samples per channel: the sample variance's relative standard
  # error is 0.55 %, so 3 % is beyond 5 sigma.
  np.testing.assert_allclose(variance, expected, rtol=0.03)
  with pytest.raises(ValueError, match=r'expected \(n, H, W, 3\)'):
    semiisp.add_pseudo_noise(config, level_key, noise_key, clean[..., :2])


# --- one step per config variant (4 devices) ----------------------------------


def _tiny(config, root):
  with config.unlocked():
    config.data.root = str(root)
    config.data.patch_size = 16
    config.data.num_workers = 1
    config.model.update(dict(name='unet', features=4, levels=1))
    config.isp_model.update(dict(features=4, depth=1, resize=8, grid=2))
    config.isp.update(dict(batch=4, memory_size=8))
    config.semi.update(dict(real_batch=4, pseudo_batch=4))
    config.supervised.update(dict(batch=4))
    config.pseudo.lut_shape = _LUT_SHAPE
    config.logging.progress_bar = False
  return config


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
  """Tiny prepared datasets (ISP and enhancement: same arrays)."""
  rng = np.random.default_rng(5)
  image = lambda n: rng.uniform(0.05, 0.95, (n, 16, 16, 3))  # noqa: E731
  root = tmp_path_factory.mktemp('semiisp') / 'data'
  arrays.prepare_arrays(root, labelled_raw=image(6) ** 2,
                        labelled_srgb=image(6), unlabelled_srgb=image(8),
                        test_raw=image(2) ** 2, test_srgb=image(2))
  return root


@pytest.fixture(scope='module')
def isp_workdirs(roots, tmp_path_factory):
  """Phase-1 checkpoints (ISP and enhancement) with filled memories."""
  out = {}
  for name in ('semiisp_fivek', 'semiie_lol'):
    config = _tiny(_load_config(name, 'quick,isp'), roots)
    state = state_lib.to_host(semiisp.init(config, jax.random.PRNGKey(0)))
    rng = np.random.default_rng(6)
    for variant in ('global', 'local'):
      buffer = state['memory'][variant]
      state['memory'][variant] = rng.normal(0, 0.5, buffer.shape).astype(
          np.float32)
    state['memory']['count'] = np.asarray(8, np.int32)
    workdir = tmp_path_factory.mktemp(f'{name}_isp')
    with Checkpointer(workdir / 'checkpoints', async_save=False) as ckpt:
      ckpt.save(1, state)
    out[name] = workdir
  return out


def _one_step(config):
  par = parallel_lib.Parallel('pmap')
  state = semiisp.init(config, jax.random.PRNGKey(1))
  data = semiisp.make_data(config)
  batch = par.shard_batch(data.batch(0))
  iteration = par.compile(loop.make_iteration(semiisp.make_steps(config)),
                          donate_state=False)
  replicated = par.replicate(state_lib.to_host(state))
  new, metrics, ok = iteration(replicated, batch)
  return state_lib.to_host(state), par.unreplicate(new), par.unreplicate(
      metrics), bool(par.unreplicate(ok)), (par, iteration, batch)


def _changed(a, b):
  return any(not np.array_equal(x, y) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope='module')
def isp_step(roots):
  config = _tiny(_load_config('semiisp_fivek', 'quick,isp'), roots)
  return config, _one_step(config)


def test_isp_phase_step_memorises(isp_step):
  config, (before, after, metrics, ok, (_, _, batch)) = isp_step
  assert ok and np.isfinite(metrics['loss'])
  assert int(after['step']) == 1 and _changed(before['params'],
                                              after['params'])
  # 4 devices x 1 image: the sets predicted for the batch (device order)
  # fill slots 0-3 of each buffer.
  assert int(after['memory']['count']) == 4
  raw = np.asarray(batch['raw']).reshape(-1, *batch['raw'].shape[2:])
  for variant in ('global', 'local'):
    model = pqdynamic_net.PQDynamicNet(
        variant=variant, **dict(config.isp_model))
    z = model.apply({'params': before['params'][variant]}, raw,
                    method='predict')
    np.testing.assert_allclose(after['memory'][variant][:4], z, atol=1e-6)
    assert np.all(after['memory'][variant][4:] == 0)


def test_memory_survives_checkpoint_and_resume(isp_step, tmp_path):
  config, (_, after, _, _, (par, iteration, batch)) = isp_step
  with Checkpointer(tmp_path / 'checkpoints', async_save=False) as ckpt:
    ckpt.save(1, after)
    template = state_lib.to_host(semiisp.init(config, jax.random.PRNGKey(9)))
    restored, _ = ckpt.restore(template)
  for key in ('count', 'global', 'local'):
    np.testing.assert_array_equal(restored['memory'][key],
                                  after['memory'][key])
  # Resuming continues the ring exactly as the uninterrupted run.
  resumed = par.unreplicate(iteration(par.replicate(restored), batch)[0])
  direct = par.unreplicate(iteration(par.replicate(after), batch)[0])
  assert int(resumed['memory']['count']) == 8
  for key in ('global', 'local'):
    np.testing.assert_array_equal(resumed['memory'][key],
                                  direct['memory'][key])


def _check_semi_step(result):
  before, after, metrics, ok, _ = result
  assert ok and np.isfinite(metrics['loss'])
  assert 0.0 <= metrics['kept_fraction'] <= 1.0
  assert _changed(before['params'], after['params'])
  if 'isp' in after:  # f_ISP and its memory are not trained in phase 2
    for a, b in zip(jax.tree.leaves(before['isp']),
                    jax.tree.leaves(after['isp'])):
      np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('name, variant', [
    ('semiisp_fivek', 'quick,semi'),             # USQ, noise, global, OPF
    ('semiie_lol', 'quick,semi'),                # enhancement: f_IT
])
def test_semi_phase_step(roots, isp_workdirs, name, variant):
  config = _tiny(_load_config(name, variant), roots)
  with config.unlocked():
    config.pseudo.isp_workdir = str(isp_workdirs[name])
    config.pseudo.usq = True   # off in the quick configs; exercised here
  _check_semi_step(_one_step(config))


@pytest.fixture(scope='module')
def upi_semi_step(roots):
  """UPI pseudo-data, MSE + SSIM (the 'denoise' row): no phase 1 needed."""
  config = _tiny(_load_config('semiisp_fivek', 'denoise,upi,semi'), roots)
  return _one_step(config)


def test_semi_phase_step_upi(upi_semi_step):
  _check_semi_step(upi_semi_step)
  assert 'isp' not in upi_semi_step[1]


def test_fine_tuning_starts_from_phase_2(roots, upi_semi_step, tmp_path):
  semi_state = upi_semi_step[1]
  with Checkpointer(tmp_path / 'checkpoints', async_save=False) as ckpt:
    ckpt.save(1, semi_state)
  fine = _tiny(_load_config('semiisp_fivek', 'denoise,upi,finetune'), roots)
  with fine.unlocked():
    fine.supervised.init_from = str(tmp_path)
  assert fine.train.num_steps == fine.supervised.finetune_steps
  assert semiisp.phase_config(fine, 'supervised').train.num_steps == (
      fine.supervised.finetune_steps)
  before, after, metrics, ok, _ = _one_step(fine)
  for a, b in zip(jax.tree.leaves(before['params']),
                  jax.tree.leaves(semi_state['params'])):
    np.testing.assert_array_equal(a, b)
  assert ok and np.isfinite(metrics['loss'])
  assert _changed(before['params'], after['params'])
  results = semiisp.evaluate(fine, after, workdir=tmp_path / 'eval')
  assert np.isfinite(results['psnr'])
  assert (tmp_path / 'eval' / 'results.md').is_file()
  written = json.loads((tmp_path / 'eval' / 'results.json').read_text())
  assert written['psnr'] == results['psnr'] and written['num_test'] == 2
  assert len(written['per_image']['ssim']) == 2
  # A titled grid: a band of column titles above two rows of 16 x 16 tiles.
  grid = rawio.read_image(tmp_path / 'eval' / 'grid.png')
  assert grid.shape[0] > 2 * 16 + 3 * 2 and grid.shape[1] > 3 * 16 + 4 * 2


def test_config_rows():
  """Table 5/6 rows (the local / per-unit inversion itself is covered by
  test_pseudo_raw_inverts_back_through_f_isp)."""
  rows = {size: _load_config('semiisp_fivek', f'{size},semi')
          for size in ('100', '500', '4500')}
  assert [(c.semi.real_batch, c.semi.pseudo_batch, c.semi.beta)
          for c in rows.values()] == [(2, 18, 1.0), (4, 16, 1.2), (6, 14, 1.0)]
  assert rows['4500'].pseudo.sampling == 'function_unit'
  assert rows['4500'].pseudo.inverse_variant == 'local'
  assert rows['4500'].isp.batch == 16 and rows['100'].isp.batch == 4
  denoise = _load_config('semiisp_fivek', 'denoise,semi')
  assert denoise.isp.loss == 'l1_multiscale' and denoise.pseudo.noise
  assert denoise.semi.loss == 'mse_ssim' and denoise.data.patch_size == 128
  assert denoise.train.num_steps == denoise.semi.num_steps == 40_000


def test_config_errors(roots):
  with pytest.raises(ValueError, match='unknown variant'):
    _load_config('semiisp_fivek', 'quick,bogus')
  with pytest.raises(ValueError, match='enhancement'):
    config = _load_config('semiie_lol', 'quick,semi')
    with config.unlocked():
      config.pseudo.generator = 'upi'
    semiisp.make_steps(config)
  for key, value, message in [
      ('noise_levels', 'gaussian', 'pseudo.noise_levels'),
      ('shot_range', (0.01, 0.001), 'shot_range must satisfy'),
      ('read_max', -1e-4, 'must be >= 0')]:
    config = _load_config('semiisp_fivek', 'quick,semi')
    with config.unlocked():
      config.pseudo[key] = value
    with pytest.raises(ValueError, match=message):
      semiisp.make_steps(config)
  config = _tiny(_load_config('semiisp_fivek', 'quick,semi'), roots)
  with pytest.raises(FileNotFoundError, match='run that phase first'):
    with config.unlocked():
      config.pseudo.isp_workdir = str(roots)
    semiisp.init(config, jax.random.PRNGKey(0))


def test_dataset_root_names_the_preparations(tmp_path):
  config = _load_config('semiisp_fivek', 'quick,isp')
  with config.unlocked():
    config.data.root = str(tmp_path)
  with pytest.raises(FileNotFoundError,
                     match=r'rawjax\.data\.datasets\.fivek\.prepare_fivek'):
    semiisp.dataset_root(config)


def test_registered_and_self_contained():
  method = get_method('semiisp')
  assert method.steps is semiisp.make_steps and method.init is semiisp.init
  # One package per paper: no import of another method package.
  package = pathlib.Path(semiisp.__file__).parent
  for path in package.glob('*.py'):
    for line in path.read_text().splitlines():
      if 'rawjax.methods' in line and 'import' in line:
        assert 'rawjax.methods.semiisp' in line or line.strip().startswith(
            'from rawjax.methods import semiisp'), (path, line)
