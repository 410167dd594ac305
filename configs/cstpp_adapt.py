"""Cross-camera ISP with a trained CSTPP (section 4.3 of Xie et al., small).

    python -m launch.train --config=configs/raw2raw_cstpp.py:quick \
        --workdir=CSTPP
    python -m launch.train --config=configs/cstpp_adapt.py:quick \
        --config.adapt.cstpp_workdir=CSTPP --workdir=CSTPP/adapt

Trains a small raw-to-sRGB ISP on each camera and deploys it on the other:
as is ('no mapping'), fed G_{Y->X}(raw_Y) ('adaptation', test time), or
trained on G_{X->Y}(raw_X) ('augmentation', train time), beside the
'same camera' upper bound; PSNR, SSIM and KL on X's sRGB rendering of the
paired test scenes (`rawjax.methods.cstpp.adapt`). The CSTPP generators are
the newest checkpoint of `adapt.cstpp_workdir`.

The `model` and `data` sections (and `eval.split`, `eval.max_test_images`)
are those of configs/raw2raw_cstpp.py of the same variant, so they match
the CSTPP checkpoint: override them as for that run. 'quick' = the CSTPP
quick run's model and data; '' = the paper-sized ones. `train.num_steps`
is the ISP's Adam steps (300).
"""

import pathlib

import ml_collections

from rawjax.train.config import (
    load_config_module, set_run_length, unknown_variant)

_CSTPP = pathlib.Path(__file__).resolve().with_name('raw2raw_cstpp.py')


def adapt_config(config: ml_collections.ConfigDict
                 ) -> ml_collections.ConfigDict:
  """A CSTPP config (configs/raw2raw_cstpp.py or a user's) made the
  adaptation experiment's: method, seed, the `adapt` section, the budget."""
  config.method = 'cstpp_adapt'
  config.seed = 0  # the ISPs' initial draw and patch stream

  config.adapt = ml_collections.ConfigDict(dict(
      cstpp_workdir='',     # the CSTPP training workdir (required)
      isp_model='unet',     # any rawjax.models name: packed raw -> sRGB
      isp_options='{"features": 8, "levels": 2, "out_channels": 3}',  # JSON
      patch_size=64,        # packed pixels
      batch_size=8,
      learning_rate=1e-3,   # Adam, constant; L1 loss
  ))

  # 300 ISP steps, evaluated once at the end; no training image samples.
  set_run_length(config, num_steps=300, eval_every=0, checkpoint_every=100,
                 log_every=50, images_every=0)
  return config


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('', 'quick'):
    raise unknown_variant(variant, 'configs/cstpp_adapt.py',
                          choices="'' (paper-sized CSTPP) or 'quick'")
  return adapt_config(load_config_module(_CSTPP).get_config(variant))
