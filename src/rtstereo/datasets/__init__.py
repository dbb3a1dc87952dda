"""Stereo datasets: readers for the usual benchmarks (and, with torch, the synthetic generator)."""

from .readers import LAYOUTS, Sample, find_samples

__all__ = ["LAYOUTS", "Sample", "find_samples"]
