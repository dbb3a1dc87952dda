"""Outputs: disparity files, previews and sidecars (video and 3D outputs in later modules)."""
