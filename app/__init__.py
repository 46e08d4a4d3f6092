"""Nentang: a multi-tenant reference platform for Vietnam's shared government digital platforms."""

__version__ = "0.1.0"
