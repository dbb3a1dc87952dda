"""Inputs: image pairs (files, folders, globs, URLs), two videos, side-by-side videos and URLs, stereo cameras."""
