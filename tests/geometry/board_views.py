"""Test helper (not a test module): board views rendered with a known stereo rig.

A board texture (chessboard or ChArUco) is mapped into each camera with the plane-to-image
homography ``K [r1 r2 t]`` of its pose, rendered 3x supersampled and area-averaged (anti-aliasing),
so corner detectors see realistic edges. The cameras have no lens distortion, so a homography is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtstereo.rectify import Board

SUPERSAMPLE = 3
TEXTURE_PX_PER_SQUARE = 48


@dataclass(frozen=True)
class Rig:
    """A known stereo rig: ``x_right = R @ x_left + T`` (metres), pinhole cameras without distortion."""

    k_left: np.ndarray
    k_right: np.ndarray
    rotation: np.ndarray
    translation_m: np.ndarray
    size_wh: tuple[int, int]

    @property
    def baseline_m(self) -> float:
        return float(np.linalg.norm(self.translation_m))


def default_rig() -> Rig:
    k_left = np.array([[520.0, 0, 318.0], [0, 520.0, 242.0], [0, 0, 1]])
    k_right = np.array([[515.0, 0, 325.0], [0, 515.0, 238.0], [0, 0, 1]])
    rotation = cv2.Rodrigues(np.array([0.004, -0.012, 0.008]))[0]
    return Rig(k_left, k_right, rotation, np.array([-0.12, 0.0015, 0.002]), (640, 480))


def small_rig() -> Rig:
    """A 320x240 rig, 0.1 m wide: quick to render, and small enough for a board to look small in it."""
    k_left = np.array([[260.0, 0, 158.0], [0, 260.0, 121.0], [0, 0, 1]])
    k_right = np.array([[257.0, 0, 162.0], [0, 257.0, 119.0], [0, 0, 1]])
    rotation = cv2.Rodrigues(np.array([0.004, -0.012, 0.008]))[0]
    return Rig(k_left, k_right, rotation, np.array([-0.1, 0.001, 0.002]), (320, 240))


def board_texture(board: Board, square_rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The board's texture (uint8 grey) and the 3x3 map from texture pixels to board metres (z = 0); with
    ``square_rows=(first, stop)`` a ChArUco board shows only those rows of squares (the rest white, as if covered)."""
    ppm = TEXTURE_PX_PER_SQUARE
    margin = ppm
    if board.kind == "charuco":
        width, height = board.cols * ppm + 2 * margin, board.rows * ppm + 2 * margin
        texture = board.opencv_charuco().generateImage((width, height), marginSize=margin, borderBits=1)
        origin = margin - 0.5  # the board's outer corner, where its coordinates start
        if square_rows is not None:
            texture[: margin + square_rows[0] * ppm] = 255
            texture[margin + square_rows[1] * ppm :] = 255
    else:
        squares_x, squares_y = board.cols + 1, board.rows + 1
        cells = (np.indices((squares_y, squares_x)).sum(axis=0) % 2 == 0).astype(np.uint8) * 255
        cells = 255 - cells  # the top-left square is black, as on printed boards
        texture = np.full((squares_y * ppm + 2 * margin, squares_x * ppm + 2 * margin), 255, np.uint8)
        texture[margin:-margin, margin:-margin] = np.kron(cells, np.ones((ppm, ppm), np.uint8))
        origin = margin + ppm - 0.5  # the first inner corner is the object point (0, 0)
    scale = board.square_m / ppm
    to_metres = np.array([[scale, 0, -origin * scale], [0, scale, -origin * scale], [0, 0, 1]])
    return texture, to_metres


def render_view(
    texture: np.ndarray,
    to_metres: np.ndarray,
    k: np.ndarray,
    rotation: np.ndarray,
    translation_m: np.ndarray,
    size_wh: tuple[int, int],
    rng: np.random.Generator,
    distortion: np.ndarray | None = None,
) -> np.ndarray:
    """One camera's uint8 RGB image of the board at pose ``(rotation, translation_m)``; with ``distortion`` (OpenCV's
    ``k1 k2 p1 p2 k3``), through a lens with that distortion: the pinhole image, rendered on a canvas wide enough for
    what the distortion draws in, is sampled where each pixel's undistorted position lies."""
    if distortion is not None:
        width, height = size_wh
        pad = width // 4
        padded = k.copy()
        padded[:2, 2] += pad
        ideal = render_view(
            texture, to_metres, padded, rotation, translation_m, (width + 2 * pad, height + 2 * pad), rng
        )
        pixels = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).reshape(-1, 1, 2)
        undistorted = cv2.undistortPoints(pixels.astype(np.float64), k, distortion, P=padded).reshape(height, width, 2)
        maps = undistorted.astype(np.float32)
        return cv2.remap(ideal, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderValue=(110, 110, 110))
    plane_to_image = k @ np.column_stack([rotation[:, 0], rotation[:, 1], translation_m])
    s = SUPERSAMPLE
    to_super = np.array([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]])  # pixel centres stay aligned
    homography = to_super @ plane_to_image @ to_metres
    width, height = size_wh
    big = cv2.warpPerspective(
        texture,
        homography,
        (width * s, height * s),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=110,
    )
    grey = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    grey += rng.normal(0, 2.0, grey.shape)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def render_stereo_views(
    board: Board,
    count: int,
    rig: Rig | None = None,
    seed: int = 0,
    tilt_rad: float = 0.5,
    square_rows: tuple[int, int] | None = None,
    distance_m: tuple[float, float] = (0.55, 0.9),
    spread: float = 1.0,
    distortion: tuple[np.ndarray, np.ndarray] | None = None,
):
    """``count`` pairs of views of ``board`` by ``rig`` with the whole board inside both images, turned by up
    to ``tilt_rad`` about the x and y axes (half that about z), its centre ``distance_m`` away and moved across
    the images by ``spread`` times the usual range (0: always in one place); ``square_rows`` as in
    :func:`board_texture`; ``distortion``: the left and right lenses' (:func:`render_view`; the board is kept
    inside the images as the pinhole cameras see it, which a barrel distortion keeps inside).

    Returns:
        ``(lefts, rights, rig)``.
    """
    rig = rig or default_rig()
    rng = np.random.default_rng(seed)
    texture, to_metres = board_texture(board, square_rows)
    h_tex, w_tex = texture.shape
    outline = to_metres @ np.array([[0, 0, 1], [w_tex, 0, 1], [0, h_tex, 1], [w_tex, h_tex, 1]]).T
    outline = np.column_stack([outline[0], outline[1], np.zeros(4)])
    centre = outline.mean(axis=0)
    lefts, rights = [], []
    while len(lefts) < count:
        rotation = cv2.Rodrigues(rng.uniform(-tilt_rad, tilt_rad, 3) * np.array([1, 1, 0.5]))[0]
        distance = rng.uniform(*distance_m)
        offset = np.array([-0.035 + spread * rng.uniform(-0.085, 0.085), spread * rng.uniform(-0.08, 0.08), distance])
        translation = offset - rotation @ centre  # puts the board's centre at ``offset``
        inside = True
        for k, rot, trans in (
            (rig.k_left, np.eye(3), np.zeros(3)),
            (rig.k_right, rig.rotation, rig.translation_m),
        ):
            cam = (rot @ (rotation @ outline.T + translation[:, None])) + trans[:, None]
            pix = (k @ cam)[:2] / cam[2]
            inside &= bool(
                (cam[2] > 0).all()
                and (pix[0] > 5).all()
                and (pix[0] < rig.size_wh[0] - 5).all()
                and (pix[1] > 5).all()
                and (pix[1] < rig.size_wh[1] - 5).all()
            )
        if not inside:
            continue
        lenses = (None, None) if distortion is None else distortion
        lefts.append(render_view(texture, to_metres, rig.k_left, rotation, translation, rig.size_wh, rng, lenses[0]))
        right_rotation = rig.rotation @ rotation
        right_translation = rig.rotation @ translation + rig.translation_m
        rights.append(
            render_view(texture, to_metres, rig.k_right, right_rotation, right_translation, rig.size_wh, rng, lenses[1])
        )
    return lefts, rights, rig
