"""Readers and writers: images, disparity maps (16-bit PNG, PFM, npy), downloads."""

from .disparity import colorize, read_disparity, write_disparity
from .images import read_grey, read_image, write_image
from .pfm import read_pfm, write_pfm

__all__ = [
    "colorize",
    "read_disparity",
    "write_disparity",
    "read_grey",
    "read_image",
    "write_image",
    "read_pfm",
    "write_pfm",
]
