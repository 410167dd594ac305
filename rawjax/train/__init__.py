"""Training: the generic loop, parallel steps, checkpoints, configs, methods.

A method (its models, losses, per-device steps, data and evaluation) lives
in `rawjax.train.<name>` and registers a `Method` with `register_method`;
the loop finds it through `config.method` (methods are imported on first
use, not here). See docs/training.md.
"""

from rawjax.train.checkpoint import Checkpointer
from rawjax.train.config import (
    BASE_SECTIONS, PARALLEL_MODES, base_config, validate_config)
from rawjax.train.loop import (
    MetricWriter, TrainingDivergedError, configure_logging,
    evaluate_checkpoint, image_grid, make_iteration, step_functions,
    train_and_evaluate, write_image_rows, write_results)
from rawjax.train.method import Method, StepFn, get_method, register_method
from rawjax.train.parallel import (
    AXIS_NAME, Parallel, define_distributed_flags,
    detect_multiprocess_environment, devices_from_config,
    initialize_distributed)
from rawjax.train.state import (
    all_finite, check_state, diagnostics, host_all_finite, to_host)
from rawjax.train.state import create as create_state

__all__ = [
    'AXIS_NAME', 'BASE_SECTIONS', 'Checkpointer', 'Method', 'MetricWriter',
    'PARALLEL_MODES', 'Parallel', 'StepFn', 'TrainingDivergedError',
    'all_finite', 'base_config', 'check_state', 'configure_logging',
    'create_state', 'define_distributed_flags',
    'detect_multiprocess_environment', 'devices_from_config', 'diagnostics',
    'evaluate_checkpoint', 'get_method', 'host_all_finite', 'image_grid',
    'initialize_distributed', 'make_iteration', 'register_method',
    'step_functions', 'to_host', 'train_and_evaluate', 'validate_config',
    'write_image_rows', 'write_results',
]
