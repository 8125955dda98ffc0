"""g2d: the reference pipeline for Gradient-Guided Distillation (G2D, ICCV 2025)."""

__version__ = "0.1.0"
