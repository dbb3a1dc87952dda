"""Inputs: image pairs from files, folders, globs and URLs (video and cameras in later modules)."""
