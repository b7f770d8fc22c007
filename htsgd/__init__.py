"""htsgd: heavy-tailed SGD makes wide networks compressible (Wan et al., ICML 2024), reproduced."""

__version__ = "0.2.0"
