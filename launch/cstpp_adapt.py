"""Cross-camera ISP with a trained CSTPP (the paper's section 4.3, small).

A raw-to-sRGB ISP model trained on camera X is deployed on camera Y. The
trained CSTPP generators help in two ways (the paper's Fig. 1 b, c):

  * adaptation (test time): the ISP trained on X -> X sRGB is fed
    G_{Y->X}(raw_Y);
  * augmentation (train time): the ISP is trained on G_{X->Y}(raw_X) with
    X's sRGB, then fed raw_Y directly.

Beside them: 'no mapping' (the ISP trained on X fed raw_Y as is) and the
'same camera' upper bound (fed raw_X of the test scene). The test target is
always camera X's sRGB rendering of the test scene, as the paper's B -> A
evaluation; the roles of the cameras are then swapped. Metrics: PSNR, SSIM
and the histogram KL of eq. 14 on sRGB (the paper's FID is not computed: it
needs Inception weights, and on a few dozen small images it would not be
meaningful).

What it does, concretely: the data is the CSTPP config's dataset (the
simulated one by default). Training pairs: camera X's unpaired packed raws
with the 8-bit sRGB rendering stored in their metadata (`meta/<file>.npz`
'srgb'); test: the paired test split (both cameras saw the same scene). The
ISP is any registered `rawjax.models` model taking (B, h, w, 4) packed raw;
its output must be (B, h, w, 3) (sRGB at packed resolution, the rendering
2 x 2-averaged) or (B, 2h, 2w, 3) (full resolution). It is trained from
scratch with Adam and an L1 loss on random patches for `--steps` steps,
identically (same seed, same patches) in every setting. The generators run
in eval mode at `config.model.downsample`.

    python -m launch.cstpp_adapt --config=configs/raw2raw_cstpp.py:quick \
        --workdir=/tmp/cstpp_quick [--isp_model=unet] \
        [--isp_options='{"features": 8, "levels": 2, "out_channels": 3}'] \
        [--steps=300] [--patch=64] [--batch=8] [--out=DIR]

Writes DIR/results.json and DIR/results.md (default workdir/adapt) and
prints the table.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from rawjax import metrics, models
from rawjax.data.datasets import raw2raw as raw2raw_data
from rawjax.train import cycle_gan, raw2raw_semi

_DEFAULT_OPTIONS = '{"features": 8, "levels": 2, "out_channels": 3}'


def _srgb(path: pathlib.Path) -> np.ndarray:
  with np.load(path) as f:
    if 'srgb' not in f:
      raise ValueError(f'{path} has no sRGB rendering (key "srgb"); the '
                       'experiment needs the simulated dataset\'s metadata.')
    return f['srgb'].astype(np.float32) / 255.0


def _halve(image: np.ndarray) -> np.ndarray:
  h, w, c = image.shape
  return image.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))


def load_camera(root, camera):
  """Unpaired (packed raw, full-resolution sRGB) of one camera."""
  dataset = raw2raw_data.Raw2RawUnpaired(root, camera=camera)
  raws, srgbs = [], []
  for key in dataset.keys:
    raws.append(dataset.load(key)['raw'])
    srgbs.append(_srgb(root / 'unpaired' / camera / 'meta' / f'{key}.npz'))
  return raws, srgbs


def load_tests(root, cameras, limit):
  """Test scenes: both cameras' packed raws and sRGB renderings."""
  dataset = raw2raw_data.Raw2RawPaired(root, split='test', cameras=cameras)
  keys = dataset.keys[:limit] if limit else dataset.keys
  tests = []
  for key in keys:
    sample = dataset.load(key)
    tests.append({'raw': (sample['raw_a'], sample['raw_b']),
                  'srgb': tuple(_srgb(root / 'paired' / c / 'meta' /
                                      f'{key}.npz') for c in cameras)})
  return tests


def _fit_target(srgb, out_shape):
  return srgb if out_shape[0] == srgb.shape[0] else _halve(srgb)


def train_isp(model, raws, srgbs, *, steps, patch, batch, lr, seed):
  """Adam + L1 on random patches; returns the parameters."""
  probe = jnp.zeros((1, patch, patch, 4), jnp.float32)
  out_shape = jax.eval_shape(model.init_with_output, jax.random.PRNGKey(0),
                             probe)[0].shape
  scale = out_shape[1] // patch
  if out_shape[-1] != 3 or scale not in (1, 2):
    raise ValueError(f'the ISP model maps {probe.shape} to {out_shape}; it '
                     'must output (B, h, w, 3) or (B, 2h, 2w, 3) sRGB.')
  targets = [_fit_target(s, (raws[0].shape[0] * scale,)) for s in srgbs]
  params = jax.jit(model.init)(jax.random.PRNGKey(seed), probe)
  tx = optax.adam(lr)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, y):
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean(jnp.abs(model.apply(p, x) - y)))(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, loss

  rng = np.random.default_rng(seed)
  loss = None
  for _ in tqdm.trange(steps, desc='ISP training', leave=False):
    xs, ys = [], []
    for i in rng.integers(0, len(raws), batch):
      h, w = raws[i].shape[:2]
      top, left = rng.integers(0, h - patch + 1), rng.integers(0, w - patch + 1)
      xs.append(raws[i][top:top + patch, left:left + patch])
      ys.append(targets[i][top * scale:(top + patch) * scale,
                           left * scale:(left + patch) * scale])
    params, opt, loss = step(params, opt, jnp.asarray(np.stack(xs)),
                             jnp.asarray(np.stack(ys)))
  return params, float(loss), scale


@functools.partial(jax.jit, static_argnames=('model',))
def _render(model, params, raw):
  return jnp.clip(model.apply(params, raw[None])[0], 0.0, 1.0)


@jax.jit
def _scores(prediction, target):
  return {'psnr': metrics.psnr(prediction, target),
          'ssim': metrics.ssim(prediction, target),
          'kl': metrics.histogram_kl(prediction, target)}


def _evaluate(model, params, inputs, targets):
  values = {'psnr': [], 'ssim': [], 'kl': []}
  for x, y in zip(inputs, targets):
    out = _render(model, params, jnp.asarray(x))
    for k, v in _scores(out, jnp.asarray(_fit_target(y, out.shape))).items():
      values[k].append(float(v))
  return {k: float(np.mean(v)) for k, v in values.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True,
                      help='the CSTPP config, path[:variant]')
  parser.add_argument('--workdir', required=True,
                      help='the CSTPP training workdir (its checkpoint)')
  parser.add_argument('--isp_model', default='unet')
  parser.add_argument('--isp_options', default=_DEFAULT_OPTIONS,
                      help='JSON keyword options of the ISP model')
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--patch', type=int, default=64)
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--lr', type=float, default=1e-3)
  parser.add_argument('--max_test_images', type=int, default=0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', default='')
  args = parser.parse_args(argv)
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] /
                         'benchmarks'))
  from cstpp_downsample import load_config, restore_state  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)
  if config.model.in_channels != 4:
    raise ValueError('the cross-camera ISP experiment needs the packed-raw '
                     '(4-channel) CSTPP generators.')
  state = restore_state(config, args.workdir)
  root = raw2raw_semi.dataset_root(config)
  cameras = raw2raw_semi.camera_names(config, root)
  isp = models.get_model(args.isp_model, **json.loads(args.isp_options))
  generator = cycle_gan.generator_model(config)
  g = {tag: cycle_gan.direction_variables(state, tag)
       for tag in ('a_to_b', 'b_to_a')}
  translate = lambda tag, x: cycle_gan.translate(  # noqa: E731
      generator, *g[tag], x)
  tests = load_tests(root, cameras, args.max_test_images)
  common = dict(steps=args.steps, patch=args.patch, batch=args.batch,
                lr=args.lr, seed=args.seed)
  results = {'config': args.config, 'workdir': args.workdir,
             'cstpp_step': int(state['step']), 'isp_model': args.isp_model,
             'isp_options': json.loads(args.isp_options), 'steps': args.steps,
             'num_test_pairs': len(tests), 'settings': {}}
  for x, y, x_to_y, y_to_x in ((0, 1, 'a_to_b', 'b_to_a'),
                               (1, 0, 'b_to_a', 'a_to_b')):
    raws, srgbs = load_camera(root, cameras[x])
    targets = [t['srgb'][x] for t in tests]
    plain, loss_plain, _ = train_isp(isp, raws, srgbs, **common)
    augmented_raws = [translate(x_to_y, r) for r in raws]
    augmented, loss_aug, _ = train_isp(isp, augmented_raws, srgbs, **common)
    own = [t['raw'][x] for t in tests]
    other = [t['raw'][y] for t in tests]
    adapted = [translate(y_to_x, r) for r in other]
    title = f'ISP of {cameras[x]}, deployed on {cameras[y]}'
    results['settings'][title] = {
        'same camera (upper bound)': _evaluate(isp, plain, own, targets),
        'no mapping': _evaluate(isp, plain, other, targets),
        'adaptation (test time)': _evaluate(isp, plain, adapted, targets),
        'augmentation (train time)': _evaluate(isp, augmented, other,
                                               targets),
        'final train L1': {'plain': loss_plain, 'augmented': loss_aug},
    }
  lines = [f'# Cross-camera ISP with CSTPP ({args.isp_model}, '
           f'{args.steps} steps)', '']
  for title, rows in results['settings'].items():
    lines += [f'## {title}', '', '| setting | PSNR | SSIM | KL |',
              '|---|---|---|---|']
    for name, row in rows.items():
      if 'psnr' in row:
        lines.append(f'| {name} | {row["psnr"]:.2f} | {row["ssim"]:.4f} | '
                     f'{row["kl"]:.4f} |')
    lines.append('')
  table = '\n'.join(lines)
  print(table)
  out = pathlib.Path(args.out or pathlib.Path(args.workdir) / 'adapt')
  out.mkdir(parents=True, exist_ok=True)
  (out / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
  (out / 'results.md').write_text(table + '\n')
  return results


if __name__ == '__main__':
  main()
