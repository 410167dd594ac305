"""Training: the engine every method plugs into.

The generic loop, parallel steps, the one gradient-update helper, state,
checkpoints and configs. A method (a paper's models, objective, steps and
tables) is a package `rawjax.methods.<paper>` that registers a `Method` with
`register_method`; the loop finds it through `config.method` (methods are
imported on first use, not here). See docs/training.md and docs/design.md.
"""

from rawjax.train.checkpoint import (
    CheckpointCorruptError, CheckpointSaveError, Checkpointer)
from rawjax.train.config import (
    BASE_SECTIONS, PARALLEL_MODES, base_config, validate_config)
from rawjax.train.loop import (
    MetricWriter, TrainingDivergedError, configure_logging,
    evaluate_checkpoint, make_iteration, step_functions, train_and_evaluate)
from rawjax.train.method import Method, StepFn, get_method, register_method
from rawjax.train.parallel import (
    AXIS_NAME, Parallel, define_distributed_flags,
    detect_multiprocess_environment, devices_from_config,
    initialize_distributed)
from rawjax.train.steps import (
    Update, apply_gradients, gradient_update, pmean, raw_key,
    warmup_cosine_schedule)
from rawjax.train.state import (
    all_finite, check_state, diagnostics, host_all_finite, to_host)
from rawjax.train.state import create as create_state

__all__ = [
    'AXIS_NAME', 'BASE_SECTIONS', 'CheckpointCorruptError',
    'CheckpointSaveError', 'Checkpointer', 'Method', 'MetricWriter',
    'PARALLEL_MODES', 'Parallel', 'StepFn', 'TrainingDivergedError',
    'all_finite', 'base_config', 'check_state', 'configure_logging',
    'create_state', 'define_distributed_flags',
    'detect_multiprocess_environment', 'devices_from_config', 'diagnostics',
    'evaluate_checkpoint', 'get_method', 'gradient_update',
    'host_all_finite', 'initialize_distributed', 'make_iteration', 'pmean',
    'raw_key', 'register_method', 'step_functions', 'to_host',
    'train_and_evaluate', 'Update', 'apply_gradients', 'validate_config',
    'warmup_cosine_schedule',
]
