"""rawjax: differentiable camera image signal processing in JAX."""

__version__ = '0.1.0'
