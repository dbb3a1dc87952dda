"""Training augmentations (rtstereo.train.augment): geometry stays consistent, randomness is seeded.

The images are built so that the transform can be read back from them: a horizontal ramp reveals the
horizontal scale, a vertical ramp reveals a vertical shift, a smooth texture shifted by a known
disparity shows whether images and disparity were resampled together.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import warp_right_to_left

from rtstereo.errors import InputError
from rtstereo.train.augment import AugmentSettings, augment_batch

HEIGHT, WIDTH = 96, 128
GEOMETRY = AugmentSettings.geometry_only()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_texture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random colour texture ``(3, H, W)`` smooth enough for bilinear interpolation to be accurate."""
    coarse = torch.rand(1, 3, height // 4 + 2, width // 4 + 2, generator=seeded(seed))
    return F.interpolate(coarse, (height + 8, width + 8), mode="bicubic", align_corners=False)[0, :, 4:-4, 4:-4].clamp(
        0, 1
    )


def shifted_pair(batch: int = 2, disparity_px: int = 6) -> dict:
    """Right view = left view shifted by a constant disparity (a fronto-parallel textured plane)."""
    wide = torch.stack([smooth_texture(HEIGHT, WIDTH + disparity_px, seed=i) for i in range(batch)])
    # left x shows wide[x]; right x shows wide[x + d]: left x matches right x - d.
    return {
        "left": wide[..., :WIDTH].contiguous(),
        "right": wide[..., disparity_px:].contiguous(),
        "disparity": torch.full((batch, HEIGHT, WIDTH), float(disparity_px)),
        "occluded": torch.zeros(batch, HEIGHT, WIDTH, dtype=torch.bool),
    }


def ramp_batch(batch: int = 3, axis: int = -1) -> dict:
    """Images whose channels all hold the pixel coordinate along ``axis`` divided by the size."""
    size = WIDTH if axis == -1 else HEIGHT
    coords = torch.arange(size, dtype=torch.float32) / size
    ramp = coords[None, :].expand(HEIGHT, WIDTH) if axis == -1 else coords[:, None].expand(HEIGHT, WIDTH)
    image = ramp[None, None].expand(batch, 3, HEIGHT, WIDTH).contiguous()
    return {
        "left": image.clone(),
        "right": image.clone(),
        "disparity": torch.full((batch, HEIGHT, WIDTH), 5.0),
        "occluded": torch.zeros(batch, HEIGHT, WIDTH, dtype=torch.bool),
    }


# ------------------------------------------------------------------------------------------ smoke
def test_output_keeps_keys_types_and_takes_the_crop_size():
    batch = {**shifted_pair(), "name": "kept as is"}
    out = augment_batch(batch, seeded(), (64, 80))
    assert list(out) == list(batch)
    assert out["left"].shape == out["right"].shape == (2, 3, 64, 80)
    assert out["disparity"].shape == out["occluded"].shape == (2, 64, 80)
    assert out["occluded"].dtype == torch.bool and out["name"] == "kept as is"
    for view in ("left", "right"):
        assert 0.0 <= float(out[view].min()) and float(out[view].max()) <= 1.0


def test_same_generator_state_same_output_and_inputs_untouched():
    batch = shifted_pair()
    before = {key: value.clone() for key, value in batch.items()}
    first = augment_batch(batch, seeded(3), (64, 80))
    again = augment_batch(batch, seeded(3), (64, 80))
    other = augment_batch(batch, seeded(4), (64, 80))
    for key in first:
        assert torch.equal(first[key], again[key]), key
        assert torch.equal(batch[key], before[key]), key
    assert not torch.equal(first["left"], other["left"])


# -------------------------------------------------------------------------------------- geometry
def test_disparity_scales_with_the_width_including_stretch():
    settings = AugmentSettings.geometry_only(scale_log2=(-0.2, 0.5), scale_prob=1.0, stretch_prob=1.0)
    out = augment_batch(ramp_batch(), seeded(1), (64, 96), settings)
    # The ramp gains 1/WIDTH per source pixel: its slope per output pixel is 1 / (WIDTH * scale_x).
    slope = (out["left"][:, 0, :, 1:] - out["left"][:, 0, :, :-1]).mean((1, 2))
    scale_x = 1.0 / (slope * WIDTH)
    assert float((scale_x - 1).abs().max()) > 0.05  # the draw did rescale
    torch.testing.assert_close(out["disparity"].mean((1, 2)) / 5.0, scale_x, rtol=2e-3, atol=2e-3)
    assert float(out["disparity"].std((1, 2)).max()) < 1e-4  # a constant stays constant


def test_images_and_disparity_are_resampled_together():
    settings = AugmentSettings.geometry_only(scale_log2=(-0.3, 0.5), scale_prob=1.0, stretch_prob=0.5)
    out = augment_batch(shifted_pair(batch=4), seeded(2), (72, 96), settings)
    inner = (slice(None), slice(None), slice(4, -4), slice(16, -4))

    def warp_error(offset_px: float) -> float:
        warped = warp_right_to_left(out["right"], out["disparity"] + offset_px)
        return float((warped - out["left"])[inner].abs().mean())

    assert warp_error(0.0) < 0.004
    assert warp_error(0.0) < 0.3 * warp_error(1.0)


def test_crop_without_scaling_is_a_window_of_the_input():
    settings = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0)
    batch = shifted_pair()
    out = augment_batch(batch, seeded(5), (40, 50), settings)
    left, image = out["left"][0], batch["left"][0]
    windows = image.unfold(1, 40, 1).unfold(2, 50, 1)  # (3, H-39, W-49, 40, 50)
    match = (windows - left[:, None, None]).abs().amax((0, 3, 4))
    assert float(match.min()) == 0.0
    assert torch.equal(out["disparity"], torch.full((2, 40, 50), 6.0))


def test_masks_follow_the_disparity():
    batch = shifted_pair()
    column = torch.arange(WIDTH)[None, None, :].expand(2, HEIGHT, WIDTH)
    batch["disparity"] = torch.where(column < 60, 2.0, 12.0)  # a depth edge at x = 60
    batch["occluded"] = column < 60
    settings = AugmentSettings.geometry_only(scale_log2=(0.3, 0.6), scale_prob=1.0, stretch_prob=0.0)
    out = augment_batch(batch, seeded(6), (80, 110), settings)
    for disparity, occluded in zip(out["disparity"], out["occluded"]):
        scale = float(disparity.amax()) / 12.0
        near_either = ((disparity - 2.0 * scale).abs() < 1e-4) | ((disparity - 12.0 * scale).abs() < 1e-4)
        assert near_either.all()
        assert float((occluded == (disparity < 7.0 * scale)).float().mean()) > 0.99


def test_pixels_whose_match_leaves_the_cropped_right_view_are_occluded():
    """The right view is cut at the left view's columns: a match left of the cut is gone, as the
    renderer marks a match left of its right image."""
    batch = shifted_pair(disparity_px=6)
    batch["disparity"][:, :, 70:] = 14.0  # nearer on the right: its band reaches further into a crop
    settings = AugmentSettings.geometry_only(scale_log2=(0.3, 0.6), scale_prob=1.0)
    out = augment_batch(batch, seeded(7), (64, 80), settings)
    disparity, occluded = out["disparity"], out["occluded"]
    band = torch.arange(80)[None, None, :] < disparity
    assert band.sum() > 0 and bool(occluded[band].all())
    assert not bool(occluded[~band].any())  # nothing else was occluded


def test_unknown_disparities_are_not_blended_with_known_ones():
    batch = shifted_pair()
    batch["disparity"][:, :, 50:70] = 0.0  # unknown, as real datasets store it
    settings = AugmentSettings.geometry_only(scale_log2=(0.4, 0.4), scale_prob=1.0, stretch_prob=0.0)
    out = augment_batch(batch, seeded(7), (100, 150), settings)
    values = out["disparity"]
    scale = 2.0**0.4
    assert ((values == 0) | ((values - 6.0 * scale).abs() < 0.05)).all()


# ------------------------------------------------------------------------------------------ batching
def per_item_reference(batch: dict, item: int, geometry, crop_hw: tuple[int, int], invalid_below_px: float) -> dict:
    """One item of a geometry-only augmentation the slow, plain way: resize the whole pair (antialiased when
    shrinking), crop it, shift and rotate the crop window of the right view by sampling the whole resized
    image, and resample the disparity and the masks pixel by pixel."""
    height, width = batch["left"].shape[-2:]
    crop_h, crop_w = crop_hw
    new_h, new_w = int(geometry.new_h[item]), int(geometry.new_w[item])
    y0, x0 = int(geometry.y0[item]), int(geometry.x0[item])
    shift, angle = float(geometry.shift_px[item]), float(geometry.angle_rad[item])
    shrinking = new_h < height or new_w < width
    views = {
        view: F.interpolate(batch[view][item : item + 1], (new_h, new_w), mode="bilinear", antialias=shrinking)
        for view in ("left", "right")
    }
    out = {view: image[0, :, y0 : y0 + crop_h, x0 : x0 + crop_w] for view, image in views.items()}
    if shift != 0 or angle != 0:
        ys = torch.arange(crop_h, dtype=torch.float64)[:, None] - (crop_h - 1) / 2
        xs = torch.arange(crop_w, dtype=torch.float64)[None, :] - (crop_w - 1) / 2
        src_x = x0 + (crop_w - 1) / 2 + math.cos(angle) * xs - math.sin(angle) * ys
        src_y = y0 + (crop_h - 1) / 2 + math.sin(angle) * xs + math.cos(angle) * ys - shift
        grid = torch.stack([src_x * 2 / (new_w - 1) - 1, src_y * 2 / (new_h - 1) - 1], -1).float()
        out["right"] = F.grid_sample(views["right"], grid[None], padding_mode="border", align_corners=True)[0]

    def source(index: int, size: int, new_size: int) -> float:
        return min(max((index + 0.5) * (size / new_size) - 0.5, 0.0), size - 1.0)

    disparity, occluded = batch["disparity"][item].tolist(), batch["occluded"][item]
    expected = torch.zeros(crop_h, crop_w)
    expected_mask = torch.zeros(crop_h, crop_w, dtype=torch.bool)
    for i in range(crop_h):
        row = source(y0 + i, height, new_h)
        r0 = math.floor(row)
        r1, wr = min(r0 + 1, height - 1), row - r0
        for j in range(crop_w):
            col = source(x0 + j, width, new_w)
            c0 = math.floor(col)
            c1, wc = min(c0 + 1, width - 1), col - c0
            four = [disparity[r0][c0], disparity[r0][c1], disparity[r1][c0], disparity[r1][c1]]
            if max(four) - min(four) > 2.0 or min(four) <= invalid_below_px:  # an edge or an unknown: the nearest
                value = disparity[r1 if wr >= 0.5 else r0][c1 if wc >= 0.5 else c0]
            else:
                value = (1 - wr) * ((1 - wc) * four[0] + wc * four[1]) + wr * ((1 - wc) * four[2] + wc * four[3])
            expected[i, j] = value * new_w / width
            expected_mask[i, j] = occluded[min(round(row), height - 1), min(round(col), width - 1)]
    out["disparity"] = expected
    out["occluded"] = expected_mask | (torch.arange(crop_w)[None, :] < expected)
    return out


def test_the_batched_geometry_matches_a_per_item_reference():
    from rtstereo.train.augment import _draw_geometry, _draws

    height, width, crop_hw, size = 40, 48, (14, 18), 6
    batch = shifted_pair(batch=size)  # HEIGHT x WIDTH; cut down to a small example
    batch = {key: value[..., 10 : 10 + height, 20 : 20 + width].contiguous() for key, value in batch.items()}
    column = torch.arange(width)[None, None, :]
    batch["disparity"] = torch.where(column < 20, 3.0, 9.0) + torch.rand(size, height, width, generator=seeded(1))
    batch["disparity"][:, 5:12, 30:40] = 0.0  # unknown
    batch["occluded"] = torch.rand(size, height, width, generator=seeded(2)) < 0.3
    settings = AugmentSettings.geometry_only(
        scale_log2=(-1.0, 0.6),  # shrinking (antialiased) and enlarging
        scale_prob=0.8,
        stretch_prob=0.5,
        vertical_shift_prob=0.6,
        rotation_prob=0.6,
        rotation_deg=3.0,
    )
    for seed in range(3):
        out = augment_batch(batch, seeded(seed), crop_hw, settings)
        geometry = _draw_geometry(_draws(size, seeded(seed), settings), settings, (height, width), crop_hw)
        assert bool((geometry.new_h < height).any()) and bool((geometry.new_w > width).any())
        assert bool((geometry.angle_rad != 0).any()) and bool((geometry.angle_rad == 0).any())
        for item in range(size):
            expected = per_item_reference(batch, item, geometry, crop_hw, settings.invalid_below_px)
            for view in ("left", "right"):
                torch.testing.assert_close(out[view][item], expected[view], atol=1e-4, rtol=0)
            # Copied values (edges, unknowns) are exact; blended ones agree to float32 rounding.
            assert torch.equal(out["disparity"][item] == 0, expected["disparity"] == 0)
            torch.testing.assert_close(out["disparity"][item], expected["disparity"], atol=1e-5, rtol=0)
            assert torch.equal(out["occluded"][item], expected["occluded"])


def test_the_number_of_tensor_operations_does_not_grow_with_the_batch():
    from rtstereo.profiling import count_operations

    def launched(size: int) -> int:
        batch = shifted_pair(batch=size)  # 96x128 to 64x80: some items shrink, some grow
        return count_operations(lambda: augment_batch(batch, seeded(0), (64, 80))).launched

    counts = {size: launched(size) for size in (1, 8)}
    assert abs(counts[8] - counts[1]) <= 0.1 * counts[1], counts


def test_the_number_of_tensor_operations_does_not_grow_with_the_number_of_patches():
    from rtstereo.profiling import count_operations

    batch = shifted_pair(batch=4)

    def launched(max_patches: int) -> int:
        settings = AugmentSettings(patch_prob=1.0, max_patches=max_patches)
        # Cropped to its own size, no item shrinks: the resize's taps are two wherever the draws fall.
        return count_operations(lambda: augment_batch(batch, seeded(0), (HEIGHT, WIDTH), settings)).launched

    assert launched(1) == launched(6)


def test_a_strong_shrink_takes_no_copy_of_the_image_per_filter_tap():
    from torch.profiler import ProfilerActivity, profile

    batch = shifted_pair(batch=2)
    # 96x128 to 12x16: 17 taps per output pixel; all of them at once took 17 copies of the crop's rows.
    settings = AugmentSettings.geometry_only(scale_log2=(-3.0, -3.0), scale_prob=1.0, stretch_prob=0.0)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiled:
        augment_batch(batch, seeded(0), (12, 16), settings)
    largest = max(event.cpu_memory_usage for event in profiled.events())
    assert largest <= batch["left"].numel() * 4 // 4, largest  # a quarter of one view's bytes


def test_nan_disparities_are_unknown_and_not_blended_with_known_ones():
    """A nan (unknown, as the losses read it) is taken as the nearest value or not at all, exactly as a 0 is."""
    zero = shifted_pair()
    zero["disparity"][:, 30:50, 40:70] = 0.0
    nan = {**zero, "disparity": torch.where(zero["disparity"] == 0, math.nan, zero["disparity"])}
    settings = AugmentSettings.geometry_only(scale_log2=(0.1, 0.5), scale_prob=1.0, stretch_prob=1.0)
    with_zero = augment_batch(zero, seeded(7), (72, 96), settings)["disparity"]
    with_nan = augment_batch(nan, seeded(7), (72, 96), settings)["disparity"]
    unknown = with_zero == 0
    assert bool(unknown.any())
    assert torch.equal(with_nan.isnan(), unknown)  # no nan spread into its neighbours
    assert torch.equal(with_nan[~unknown], with_zero[~unknown])


# ------------------------------------------------------------------------- right-view rectification
def test_vertical_shift_moves_the_right_view_only_by_at_most_two_pixels():
    settings = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0, vertical_shift_prob=1.0)
    batch = ramp_batch(batch=6, axis=-2)
    out = augment_batch(batch, seeded(8), (HEIGHT, WIDTH), settings)
    assert torch.equal(out["left"], batch["left"])
    assert torch.equal(out["disparity"], batch["disparity"])
    rows = slice(4, HEIGHT - 4)  # away from the replicated border
    shift_px = (batch["right"] - out["right"])[:, 0, rows].mean((1, 2)) * HEIGHT
    assert float(shift_px.abs().max()) <= 2.0 + 1e-3
    assert float(shift_px.abs().max()) > 0.2
    assert not torch.allclose(shift_px, shift_px.round(), atol=1e-3)  # sub-pixel


def test_rotation_turns_the_right_view_only():
    settings = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0, rotation_prob=1.0, rotation_deg=2.0)
    batch = ramp_batch(batch=2, axis=-1)
    out = augment_batch(batch, seeded(9), (HEIGHT, WIDTH), settings)
    assert torch.equal(out["left"], batch["left"])
    # A rotated horizontal ramp varies along the columns too: top and bottom rows differ.
    change = (out["right"][:, 0, 8] - out["right"][:, 0, -9])[:, 8:-8].abs().mean(1)
    assert float(change.min()) > 1e-3


def test_occluding_patches_cover_the_right_view_only_with_its_mean_colour():
    settings = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0, patch_prob=1.0, max_patches=1)
    batch = shifted_pair(batch=3)
    out = augment_batch(batch, seeded(10), (HEIGHT, WIDTH), settings)
    assert torch.equal(out["left"], batch["left"])
    for b in range(3):
        mean = batch["right"][b].mean((1, 2))
        filled = (out["right"][b] - mean[:, None, None]).abs().amax(0) < 1e-6
        rows, cols = filled.any(1).sum(), filled.any(0).sum()
        assert 50 <= int(rows) <= HEIGHT and 50 <= int(cols) <= 100
        assert int(filled.sum()) == int(rows) * int(cols)  # one rectangle


# ---------------------------------------------------------------------------------------- colour
def test_symmetric_jitter_treats_both_views_alike_and_asymmetric_does_not():
    texture = smooth_texture(HEIGHT, WIDTH)[None].expand(4, -1, -1, -1)
    batch = {"left": texture.clone(), "right": texture.clone(), "disparity": torch.zeros(4, HEIGHT, WIDTH)}
    base = dict(scale_prob=0.0, stretch_prob=0.0, vertical_shift_prob=0.0, rotation_prob=0.0, patch_prob=0.0)
    same = augment_batch(batch, seeded(11), (HEIGHT, WIDTH), AugmentSettings(asymmetric_prob=0.0, **base))
    assert torch.allclose(same["left"], same["right"])
    assert not torch.allclose(same["left"], texture, atol=1e-2)
    differ = augment_batch(batch, seeded(11), (HEIGHT, WIDTH), AugmentSettings(asymmetric_prob=1.0, **base))
    assert not torch.allclose(differ["left"], differ["right"], atol=1e-2)


def test_grey_conversion_and_zero_saturation_give_grey_images():
    batch = shifted_pair()
    for settings in (
        AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0, grey_prob=1.0),
        AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0, saturation=(0.0, 0.0)),
    ):
        out = augment_batch(batch, seeded(12), (HEIGHT, WIDTH), settings)
        for view in ("left", "right"):
            assert float((out[view] - out[view][:, :1]).abs().max()) < 1e-5


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("disparity"), "no 'disparity'"),
        (lambda b: b.update(right=b["right"][:, :, :-1]), "left and right"),
        (lambda b: b.update(left=b["left"][:, :2], right=b["right"][:, :2]), "left and right"),
        (lambda b: b.update(disparity=b["disparity"][:, :-1]), "disparity of shape"),
        (lambda b: b.update(occluded=b["occluded"].float()), "bool mask"),
        (lambda b: b.update(left=b["left"].numpy()), "'left' must be a torch tensor, got ndarray"),
        (lambda b: b.update(disparity=b["disparity"].tolist()), "'disparity' must be a torch tensor, got list"),
        # 8-bit views would be read as 0..255 and clipped to white by the colour steps
        (lambda b: b.update(right=(b["right"] * 255).byte()), r"'right' must be float RGB in 0..1, got torch.uint8"),
        (lambda b: b.update({key: value[:0] for key, value in b.items()}), "the batch is empty"),
    ],
)
def test_malformed_batches_raise_input_errors(change, message):
    batch = shifted_pair()
    change(batch)
    with pytest.raises(InputError, match=message):
        augment_batch(batch, seeded(), (32, 32))


@pytest.mark.parametrize("crop_hw", [(0, 32), (32.0, 48), (32.5, 48), (True, 32), (32, 48, 1), "ab", 32])
def test_bad_crop_size_raises_an_input_error(crop_hw):
    with pytest.raises(InputError, match=r"crop_hw must be \(height, width\) of positive whole sizes"):
        augment_batch(shifted_pair(), seeded(), crop_hw)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (dict(max_patches=1.5), "max_patches: expected a whole number >= 0, got float 1.5"),
        (dict(max_patches=-1), "max_patches: expected a whole number >= 0, got -1"),
        (dict(scale_prob=1.5), r"scale_prob: expected a probability in \[0, 1\], got 1.5"),
        (dict(patch_prob="0.5"), r"patch_prob: expected a probability in \[0, 1\], got str"),
        (dict(brightness=1.5), r"brightness: expected a number in \[0, 1\]"),  # negative gains: black images
        (dict(rotation_deg=math.nan), "rotation_deg: expected a number >= 0, got nan"),
        (dict(invalid_below_px=math.inf), "invalid_below_px: expected a finite number"),
        (dict(gamma=(0.0, 1.0)), r"gamma: expected a range \(low, high\) of numbers > 0"),  # x ** -1: beyond 1
        (dict(gamma=1.0), r"gamma: expected a range \(low, high\) of numbers > 0, got 1.0"),
        (dict(saturation=(-1.0, 1.0)), "saturation: expected a range"),
        (dict(patch_size_px=(50.0, 100.0, 150.0)), "patch_size_px: expected a range"),
        (dict(scale_log2=("a", 0.4)), "scale_log2: expected a range"),
    ],
)
def test_bad_settings_raise_input_errors_naming_the_setting(setting, message):
    with pytest.raises(InputError, match=message):
        AugmentSettings(**setting)


def test_settings_at_the_ends_of_their_ranges_are_taken():
    AugmentSettings(scale_prob=0, patch_prob=1, brightness=1.0, max_patches=0, saturation=(0, 0), hue=0)
    AugmentSettings.geometry_only(scale_log2=[-1, 1])


def test_a_generator_that_is_not_one_raises_an_input_error():
    with pytest.raises(InputError, match="generator must be a torch.Generator, got int"):
        augment_batch(shifted_pair(), 0, (32, 32))


def test_no_value_of_the_images_goes_back_to_the_host():
    """On a GPU each copy of a computed value to the host waits for the GPU. Tensors on the meta device
    have shapes but no values, so any such copy (``.cpu()``, ``.item()``, ``bool()``) raises there."""
    batch = {key: value.to("meta") for key, value in shifted_pair().items()}
    settings = AugmentSettings(grey_prob=0.5, asymmetric_prob=0.5, patch_prob=1.0)  # every step, for some items
    out = augment_batch(batch, seeded(), (64, 80), settings)
    assert out["left"].is_meta and out["disparity"].shape == (2, 64, 80) and out["occluded"].dtype == torch.bool


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_a_cpu_generator():
    batch = {key: value.cuda() for key, value in shifted_pair().items()}
    out = augment_batch(batch, seeded(), (64, 80))
    assert out["left"].is_cuda and out["disparity"].is_cuda and out["occluded"].is_cuda


def test_each_colour_step_does_what_it_says():
    texture = 0.3 + 0.4 * smooth_texture(HEIGHT, WIDTH)[None].expand(3, -1, -1, -1)  # no clipping
    batch = {"left": texture.clone(), "right": texture.clone(), "disparity": torch.zeros(3, HEIGHT, WIDTH)}
    off = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0)
    luma = torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]

    def run(**colour):
        settings = AugmentSettings(**{**off.__dict__, **colour})
        return augment_batch(batch, seeded(13), (HEIGHT, WIDTH), settings)["left"]

    ratio = run(brightness=0.4) / texture  # a gain per item
    assert float((ratio - ratio.mean((1, 2, 3), keepdim=True)).abs().max()) < 1e-4
    assert float((ratio.mean((1, 2, 3)) - 1).abs().max()) > 0.01
    contrast = run(contrast=0.3)
    torch.testing.assert_close((contrast * luma).sum(1).mean((1, 2)), (texture * luma).sum(1).mean((1, 2)))
    hue = run(hue=0.16)  # turns the chroma, keeps the luma (YIQ's Y)
    torch.testing.assert_close((hue * luma).sum(1), (texture * luma).sum(1), atol=2e-3, rtol=0)
    assert float((hue - texture).abs().max()) > 0.01


def test_disparity_resampling_by_hand():
    from rtstereo.train.augment import _resample_disparity

    def resample(d, rows, cols):  # one item: the helper takes batches
        return _resample_disparity(d[None], rows[None], cols[None], 0.0)[0]

    d = torch.tensor([[1.0, 1.5, 2.0], [2.0, 1.0, 0.0]])
    rows, cols = torch.tensor([0.25, 0.75], dtype=torch.float64), torch.tensor([0.5, 1.25, 1.75], dtype=torch.float64)
    # columns 0..1 are smooth (spread 1): bilinear, 1 + 0.5 * 0.5 = 1.25 on row 0, 1.5 on row 1, then by row;
    # columns 1..2 hold an unknown 0: the nearest of the four, unknown or not
    expected = [[1.25 + 0.25 * 0.25, 1.5, 2.0], [1.25 + 0.75 * 0.25, 1.0, 0.0]]
    torch.testing.assert_close(resample(d, rows, cols), torch.tensor(expected))
    # a depth edge (spread over 2 px) takes the nearest; a spread of exactly 2 px is blended
    half = torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.25, 0.75], dtype=torch.float64)
    assert resample(torch.tensor([[1.0, 3.5]]), *half).tolist() == [[1.0, 3.5]]
    assert resample(torch.tensor([[1.0, 3.0]]), *half).tolist() == [[1.5, 2.5]]


def test_source_grid_maps_pixel_centres():
    from rtstereo.train.augment import _source_grid

    # upscaling 4 -> 8 px: output centre k + 0.5 is source centre (k + 0.5) / 2, clamped to the image
    expected = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]
    assert _source_grid(4, 8, 0, 8).tolist() == expected
    assert _source_grid(4, 8, 3, 2).tolist() == expected[3:5]


def test_every_crop_position_is_drawn_including_the_last():
    settings = AugmentSettings.geometry_only(scale_prob=0.0, stretch_prob=0.0)
    batch = shifted_pair(batch=1)
    seen = set()
    for seed in range(24):
        left = augment_batch(batch, seeded(seed), (HEIGHT - 1, WIDTH - 1), settings)["left"][0]
        for y0 in (0, 1):
            for x0 in (0, 1):
                if torch.equal(left, batch["left"][0, :, y0 : y0 + HEIGHT - 1, x0 : x0 + WIDTH - 1]):
                    seen.add((y0, x0))
    assert seen == {(0, 0), (0, 1), (1, 0), (1, 1)}
