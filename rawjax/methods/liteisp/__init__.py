"""RAW-to-sRGB with inaccurately aligned supervision (Zhang et al., ICCV 2021).

LiteISPNet (eq. 1) and the GCM (eq. 2) trained jointly as the released code
does (`zrrjoint_model.py`, `train_zrr.sh`), registered as method 'liteisp':

  * `objective`: the losses, eqs. 5, 7 and 11 as coded (the LSGAN terms of
    eqs. 8-9 are `rawjax.losses`);
  * `alignment`: x_hat and the target aligned with the raw (eqs. 3, 4, 6);
  * `steps`: the train state and the per-device step (GCM, LiteISPNet and,
    for LiteISPGAN, the PatchGAN discriminator, each with its own Adam);
  * `inference`: full-frame tiled inference;
  * `evaluation`: Table 1 (PSNR / SSIM / LPIPS against the original, the
    raw-aligned, the result-aligned and the true aligned GT);
  * `config`, `data`: config checks and networks; ZRR batches.

The aligner is `config.align.method`: 'pyramid' (the weight-free
coarse-to-fine estimator of `rawjax.models.flow`, default), 'pwcnet' (the
reference's PWC-Net; converted weights in `config.align.weights`) or 'none'
(the no-alignment ablation: y_w = y, m = 1).

Data: `config.data.root` in the ZRR layout (`rawjax.data.datasets.zrr`).
Empty, a simulated ZRR-layout dataset is generated once into the cache
(`rawjax.data.simulated.zrr`): raws of one simulated camera, targets
rendered by *another* camera (colour inconsistency) and displaced by a
known smooth random warp per image (misalignment), with the true aligned
target kept in `<split>/canon_aligned/` for evaluation.
"""

from __future__ import annotations

from rawjax.methods.liteisp.alignment import align_target, demosaic_raw
from rawjax.methods.liteisp.config import ALIGNERS, check_config
from rawjax.methods.liteisp.data import dataset_root, make_data, steps_per_epoch
from rawjax.methods.liteisp.evaluation import evaluate, sample_images
from rawjax.methods.liteisp.inference import process_full_frame
from rawjax.methods.liteisp.steps import (
    init, learning_rate_schedule, make_steps)
from rawjax.train import method as method_lib

__all__ = [
    'ALIGNERS', 'align_target', 'check_config', 'dataset_root',
    'demosaic_raw', 'evaluate', 'init', 'learning_rate_schedule',
    'make_data', 'make_steps', 'process_full_frame', 'sample_images',
    'steps_per_epoch',
]


method_lib.register('liteisp', init=init, steps=make_steps,
                    make_data=make_data, evaluate=evaluate,
                    sample_images=sample_images)
