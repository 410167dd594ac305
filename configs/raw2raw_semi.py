"""Semi-supervised raw-to-raw mapping (Afifi & Abuolaim, BMVC 2021).

    python -m launch.train --config=configs/raw2raw_semi.py --workdir=DIR
    python -m launch.train --config=configs/raw2raw_semi.py:quick --workdir=DIR

The default variant has the paper's settings (Adam 1e-4, betas 0.9/0.999,
16 images per batch, 256x256 patches, 140 epochs, all loss terms) on a
paper-sized simulated dataset; set `--config.data.root=PATH` (and
`--config.data.cameras=iphone-x,samsung-s9` if needed) for Afifi's data.
'quick' trains a smaller U-Net on a small simulated dataset and evaluates
it on this 2-core CPU in well under 15 minutes.

Table 1 ablations: `--config.loss.anchor=0` (w/o L_a), `--config.loss.mapping=0`
(w/o L_m), `--config.loss.anchor=0 --config.loss.reconstruction=0` (only L_m).
Table 2's anchor count x: `--config.data.num_anchors=x`.

The method: `rawjax.methods.raw2raw_semi` (docs/raw2raw_semi.md).
"""

import ml_collections

from rawjax.train.config import base_config, set_run_length, unknown_variant

# Afifi's dataset: 196 unpaired images per camera and 22 anchor pairs; one
# epoch passes over all 414 training images at 16 per step.
_PAPER_EPOCHS = 140
_PAPER_STEPS_PER_EPOCH = -(-(2 * 196 + 22) // 16)


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = base_config()
  config.method = 'raw2raw_semi'
  config.seed = 0

  config.model = ml_collections.ConfigDict(dict(
      name='unet',
      features=24,      # Deep-WB's widths 24-48-96-192-384
      levels=4,         # poolings; patches and network inputs: multiples of 16
      in_channels=4,    # packed (R, Gr, Gb, B)
      out_channels=4,
  ))

  # 'independent': each camera's U-Net has its own random initialisation;
  # 'shared': both start from the same weights (the paper does not say).
  config.model_init = 'independent'

  config.data = ml_collections.ConfigDict(dict(
      root='',          # raw2raw layout; '' = the simulated dataset below
      cameras=(),       # (A, B) folders; () = dataset.json's, else Afifi's
      cache_dir='',     # where the simulator writes ('' = $RAWJAX_DATA_DIR
                        # or ~/.cache/rawjax)
      synthetic=ml_collections.ConfigDict(dict(
          preset='raw2raw', num_scenes=529, seed=0, height=512, width=512)),
      patch_size=256,   # on the packed grid
      unpaired_batch=4,  # per camera, global
      anchor_batch=4,    # pairs, global: 4 + 4 + 2 * 4 = 16 images a step
      num_anchors=0,     # x of Table 2 (0 = every anchor pair)
      augment=('hflip', 'vflip', 'transpose'),
      num_workers=2,
      # grain worker processes decoding batches (0: in this process).
      worker_count=0,
      prefetch=2,
  ))

  config.optim = ml_collections.ConfigDict(dict(
      learning_rate=1e-4, b1=0.9, b2=0.999, eps=1e-8,
      schedule='constant',  # the paper; 'cosine': warm-up + cosine decay
      warmup_steps=0, final_fraction=0.0))

  config.loss = ml_collections.ConfigDict(dict(
      reconstruction=1.0,  # eq. 3 weight (0 = off)
      anchor=1.0,          # eq. 4
      mapping=1.0,         # eq. 5
      reduction='sum',     # 'sum': squared Frobenius norms (the paper);
                           # 'mean': per-element means
  ))

  config.inference = ml_collections.ConfigDict(dict(
      postfit=True,             # Deep-WB's polynomial post-fit
      postfit_size=656,         # longest side the network sees
      postfit_kernel='raw2raw16',
  ))

  config.eval = ml_collections.ConfigDict(dict(
      split='test',
      calibration='chart',      # baselines fitted on one anchor chart each
      poly_kernel='raw2raw16',  # the "poly" global calibration
      poly_ridge=1e-4,
      fda_beta=0.01,
      delta_e='auto',           # 'metadata' (target camera's WB + matrix),
                                # 'srgb' (Afifi's rgb2lab on raw), 'auto'
      # With metadata: 'target_metadata' (both images through the target
      # capture's white balance and matrix, clipped; ours) or 'paper' (the
      # paper's section 3: the camera's matrix to XYZ, the ground truth's
      # light from its chart's neutral patches, the prediction's estimated
      # from the prediction by shades of grey, no clipping).
      deltae_protocol='target_metadata',
      deltae_estimator_p=6.0,   # shades-of-grey norm (1 = grey world); the
                                # paper's learned estimator is not public
      report_network_output=True,
      num_grid_images=4,
      error_gain=10.0,
      max_test_images=0,        # 0 = all
  ))

  set_run_length(config, num_steps=_PAPER_EPOCHS * _PAPER_STEPS_PER_EPOCH,
                 eval_every=0, checkpoint_every=500, log_every=50,
                 images_every=500)

  if variant == 'quick':
    # ~200 small scenes (about a minute to simulate), a narrower U-Net on
    # 64x64 patches, a higher learning rate for the short run.
    config.data.synthetic.num_scenes = 200
    config.data.synthetic.height = 256
    config.data.synthetic.width = 256
    config.data.patch_size = 64
    config.model.features = 16
    config.optim.learning_rate = 1e-3
    # Measured (docs/raw2raw_semi.md): 600 constant-rate steps left A -> B
    # 1 dB below the global 3x3; 2000 cosine steps pass it in PSNR but not
    # in DeltaE 2000; 3000 pass it in every column, both directions.
    config.optim.schedule = 'cosine'
    config.optim.warmup_steps = 50
    set_run_length(config, num_steps=3000, checkpoint_every=500,
                   log_every=20, images_every=200)
  elif variant:
    raise unknown_variant(variant, 'configs/raw2raw_semi.py')
  return config
