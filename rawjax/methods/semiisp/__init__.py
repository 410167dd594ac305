"""SemiISP: semi-supervised learnable ISP via one-to-many sRGB-to-RAW.

Yoshimura et al., "Semi-supervised learning for learnable ISPs by
one-to-many sRGB-to-RAW" (the SemiISP paper, `shared/papers/
semi-supervised-isp-srgb2raw.txt`; spec `shared/specs/pqdynamicisp-semiisp.md`).
One registered method, 'semiisp', whose phase is chosen by `config.phase`:

  * 'isp' (phase 1): train f_ISP, the PQDynamicISP parameter network
    (`rawjax.models.PQDynamicNet`), on the labelled pairs with the Table 5
    settings (AdamW, cosine annealing to 0.001x, flips + crops; loss eq. 5,
    MSE + alpha VGG16 perceptual loss, or eq. 14's multi-scale L1 in the
    denoising case). Every step memorises the
    parameter sets it predicted (unconstrained values z) in a ring buffer of
    the last `isp.memory_size` sets: `state['memory']`, a pure pytree
    written in the jitted step and checkpointed with the rest of the state.
    Both variants (global, local) are trained together (loss summed): USQ
    and local inversion need the local one.
  * 'semi' (phase 2): train ANY registered target model
    (`config.model.name`) on mini-batches of N_r real pairs and N_p pseudo
    pairs (Table 6), with the online pseudo-data filtering loss (eqs.
    10-13). Pseudo pairs are made on the fly inside the jitted step from
    unlabelled sRGB images ('one_to_many' = eq. 9, 'deterministic', 'upi';
    optional USQ and eq. 15's noise: `pseudo`). The f_ISP parameters and
    memory are restored from phase 1's workdir (`pseudo.isp_workdir`) into
    `state['isp']` (non-trainable).
  * 'supervised' (phase 3 / the baseline): supervised training of the
    target model on real pairs only; from scratch (the supervised-only
    baseline) or from phase 2's final parameters (`supervised.init_from`,
    the fine-tuning phase).

Data: prepared arrays (`rawjax.data.datasets.arrays`) of labelled pairs
('raw' input, 'srgb' target), unlabelled sRGB images and test pairs; the
quick configs simulate them (`rawjax.data.simulated.semiisp`),
`rawjax.data.datasets.fivek.prepare_fivek` / `lol.prepare_lol` convert the
real datasets once; the unlabelled images can instead be out-of-domain
photographs (`config.data.unlabelled`: `unlabelled`). For the ISP task the 'raw' input is the demosaicked
camera RGB on the Bayer-cell grid (packed raw with its greens averaged,
`rawjax.isp.packed_to_rgb`) and the target is the sRGB rendering pooled 2x2
to the same grid, so f_ISP (a per-pixel colour/tone pipeline on 3 channels)
and any image-to-image model share one input/output layout; for
enhancement (LoL) both are sRGB images.

The modules:
  * `config`: the config checks, `phase_config` (one phase's copy);
  * `networks`: f_ISP, the target model, the optimisers;
  * `objective`: eq. 5, eqs. 10-13 (OPF), eq. 14, the per-sample losses;
  * `perceptual`: VGG16 weights for eq. 5 (torchvision's, converted);
  * `unlabelled`: the unlabelled sRGB sources;
  * `pseudo`: the memory, eq. 9's sampling, f_ISP^-1, USQ, eq. 15's noise;
  * `data`: the training batches; `state`: init and restores; `steps`: the
    per-device steps; `evaluation`: PSNR / SSIM on the test pairs;
  * `comparison`: the Tables 2/3 driver (launch/semiisp_compare.py).
Choices where the paper is silent are listed in docs/semiisp.md.
"""

from __future__ import annotations

from rawjax.methods.semiisp.comparison import compare
from rawjax.methods.semiisp.config import (
    GENERATORS, NOISE_LEVELS, PHASES, SAMPLINGS, TASKS, UNLABELLED_SOURCES,
    check_config, phase_config)
from rawjax.methods.semiisp.data import TrainData, dataset_root, make_data
from rawjax.methods.semiisp.evaluation import evaluate, predict, sample_images
from rawjax.methods.semiisp.networks import (
    isp_model, isp_variants, target_model)
from rawjax.methods.semiisp.objective import (
    isp_loss, multiscale_l1_loss, online_pseudo_filtering_loss,
    per_sample_loss, perceptual_loss)
from rawjax.methods.semiisp.pseudo import (
    UNIT_SLICES, add_pseudo_noise, generate_pseudo_pairs, inverse_luts,
    memorise, pseudo_raw, sample_sets, z_shape)
from rawjax.methods.semiisp.state import init, restore_phase
from rawjax.methods.semiisp.steps import make_steps
from rawjax.train import method as method_lib

__all__ = [
    'GENERATORS', 'METHOD', 'NOISE_LEVELS', 'PHASES', 'SAMPLINGS', 'TASKS',
    'TrainData', 'UNIT_SLICES', 'UNLABELLED_SOURCES', 'add_pseudo_noise', 'check_config',
    'compare', 'dataset_root', 'evaluate', 'generate_pseudo_pairs', 'init',
    'inverse_luts', 'isp_loss', 'isp_model', 'isp_variants', 'make_data',
    'make_steps', 'memorise', 'multiscale_l1_loss',
    'online_pseudo_filtering_loss', 'per_sample_loss', 'perceptual_loss',
    'phase_config',
    'predict', 'pseudo_raw', 'restore_phase', 'sample_images',
    'sample_sets', 'target_model', 'z_shape',
]

METHOD = method_lib.register('semiisp', init=init, steps=make_steps,
                             make_data=make_data, evaluate=evaluate,
                             sample_images=sample_images)
