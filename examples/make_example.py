"""Render the example stereo pair shipped with rtstereo (examples/left.png, right.png, disparity.pfm).

A small layered scene: a textured background plane and a few fronto-parallel objects, each at its
own disparity. Every layer's texture is defined in the left view's coordinates, so the right view
is rendered exactly by looking up x_left = x_right + d for each layer, back to front.

    python examples/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH = 240, 320


def texture(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth colourful multi-frequency texture evaluated at continuous coordinates (H, W) -> (H, W, 3)."""
    out = np.zeros(x.shape + (3,))
    for _ in range(24):
        fx, fy = rng.uniform(-0.35, 0.35, 2)
        phase = rng.uniform(0, 2 * np.pi)
        colour = rng.uniform(-1, 1, 3)
        out += np.sin(fx * x + fy * y + phase)[..., None] * colour
    base = rng.uniform(60, 190, 3)
    return np.clip(base + 18 * out, 0, 255)


def render(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    # layers back to front: (disparity px, shape function of left-view coordinates or None = everywhere)
    layers = [
        (6.0, None),
        (14.0, lambda x, y: ((x - 90) / 55) ** 2 + ((y - 80) / 40) ** 2 < 1),
        (22.0, lambda x, y: (np.abs(x - 220) < 45) & (np.abs(y - 150) < 60)),
        (31.0, lambda x, y: (np.abs(x - 140) < 6) & (y > 60)),  # a thin pole
    ]
    left = np.zeros((HEIGHT, WIDTH, 3))
    right = np.zeros((HEIGHT, WIDTH, 3))
    disparity = np.zeros((HEIGHT, WIDTH), np.float32)
    for d, shape in layers:
        layer_rng = np.random.default_rng(rng.integers(1 << 31))
        state = layer_rng.bit_generator.state
        tex_left = texture(layer_rng, xx, yy)
        layer_rng.bit_generator.state = state  # same texture function for the right view
        tex_right = texture(layer_rng, xx + d, yy)
        in_left = np.ones_like(xx, bool) if shape is None else shape(xx, yy)
        in_right = np.ones_like(xx, bool) if shape is None else shape(xx + d, yy)
        left[in_left] = tex_left[in_left]
        right[in_right] = tex_right[in_right]
        disparity[in_left] = d
    noise = np.random.default_rng(seed + 1)
    left = np.clip(left + noise.normal(0, 1.5, left.shape), 0, 255).astype(np.uint8)
    right = np.clip(right + noise.normal(0, 1.5, right.shape), 0, 255).astype(np.uint8)
    return left, right, disparity


def main() -> None:
    folder = Path(__file__).resolve().parent
    # The package ships the pair too (rtstereo export checks exports on it after a plain pip install); a copy of
    # this script outside a clone has no package beside it, and cv2.imwrite into a missing folder fails unsaid.
    shipped = folder.parent / "src" / "rtstereo" / "data" / "example"
    left, right, disparity = render()
    outs = [folder] + ([shipped] if shipped.is_dir() else [])
    for out in outs:
        for name, image in (("left.png", left), ("right.png", right)):
            if not cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise SystemExit(f"make_example.py: cannot write {out / name}")
    with (folder / "disparity.pfm").open("wb") as f:
        f.write(f"Pf\n{WIDTH} {HEIGHT}\n-1.0\n".encode())
        f.write(np.flipud(disparity).astype("<f4").tobytes())
    also = f" and {shipped}" if shipped in outs else f" (not {shipped}: no such folder beside this script)"
    print(f"wrote {folder}/left.png, right.png, disparity.pfm ({WIDTH}x{HEIGHT}, disparity 6..31 px){also}")


if __name__ == "__main__":
    main()
