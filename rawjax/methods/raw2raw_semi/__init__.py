"""Semi-supervised raw-to-raw mapping (Afifi & Abuolaim, BMVC 2021).

Two U-Net encoder-decoders, (E_A, D_A) for camera A and (E_B, D_B) for
camera B (`rawjax.models.UNet`), trained together on

  * unpaired images of each camera: reconstruction, eq. 3;
  * a few pixel-aligned anchor pairs: the anchor loss between the outputs of
    every encoder block, eq. 4, and the decoder-swap mapping loss, eq. 5;

with L = L_r + L_a + L_m (eq. 6), Adam (lr 1e-4, betas 0.9 / 0.999). Each
term has a weight in `config.loss` (0 switches it off: the ablation rows of
Table 1). Registers the training method 'raw2raw_semi'
(configs/raw2raw_semi.py). The modules, one concept each:

  * `objective`: eqs. 3-6 and the forward passes that feed them;
  * `config`: the checked config values, the U-Net and Adam;
  * `data`: the training stream (unpaired patches of both cameras plus
    anchor pairs; the simulated dataset is `rawjax.data.simulated.raw2raw`);
  * `steps`: the train state and the per-device step;
  * `inference`: the decoder swap D_B(E_A(x)) with Deep-WB's post-fit;
  * `evaluation`: Tables 1 and 2 beside the calibration baselines
    (`rawjax.eval.raw2raw`).

The choices where the paper is silent are in docs/raw2raw_semi.md.
"""

from __future__ import annotations

from rawjax.methods.raw2raw_semi.config import model, optimizer
from rawjax.methods.raw2raw_semi.data import TrainData, make_data
from rawjax.methods.raw2raw_semi.evaluation import evaluate
from rawjax.methods.raw2raw_semi.inference import (
    apply_postfit, network_size, resize, sample_images, swap, translate)
from rawjax.methods.raw2raw_semi.steps import init, make_steps
from rawjax.train import method as method_lib

__all__ = [
    'TrainData', 'apply_postfit', 'evaluate', 'init', 'make_data',
    'make_steps', 'model', 'network_size', 'optimizer', 'resize',
    'sample_images', 'swap', 'translate',
]


method_lib.register('raw2raw_semi', init=init, steps=make_steps,
                    make_data=make_data, evaluate=evaluate,
                    sample_images=sample_images)
