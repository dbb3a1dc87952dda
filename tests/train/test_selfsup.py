"""Self-supervised losses on generated pairs with exact disparity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtstereo.datasets.synthetic import RenderSettings, render_batch
from rtstereo.errors import InputError
from rtstereo.train.proxy import proxy_disparity
from rtstereo.train.selfsup import (
    consistency_error,
    consistency_loss,
    normalize_exposure,
    photometric_error,
    photometric_loss,
    proxy_loss,
    right_view_disparity,
    smoothness_loss,
    visible_in_right,
    warp_right_to_left,
)


@pytest.fixture(scope="module")
def scenes():
    """Two 48x96 rendered pairs, views differing by geometry alone, and two with unequal exposure."""
    clean = render_batch(2, 48, 96, seed=3, max_disp_px=12.0, settings=RenderSettings.geometry_only())
    exposed = render_batch(
        2, 48, 96, seed=3, max_disp_px=12.0, settings=RenderSettings(specular=False, noise=False, blur=False)
    )
    return clean, exposed


def _visible(batch):
    return ~batch["occluded"]


# ------------------------------------------------------------------------------------------- warping
def test_warp_moves_a_shifted_image_back(textured_pair):
    left, right = (torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255 for im in textured_pair)
    disparity = torch.full((1, left.shape[2], left.shape[3]), 4.0)
    warped, inside = warp_right_to_left(right, disparity)
    assert inside[0, :, :4].sum() == 0 and inside[0, :, 4:].all()
    torch.testing.assert_close(warped[..., 4:], left[..., 4:], atol=1e-5, rtol=0)


def test_warp_keeps_matches_on_the_last_column_inside():
    """A match landing exactly on the first or last column is inside; one a pixel beyond is not."""
    right = torch.arange(5.0).view(1, 1, 1, 5)
    _, inside = warp_right_to_left(right, torch.zeros(1, 1, 5))
    assert inside.tolist() == [[[True, True, True, True, True]]]
    warped, inside = warp_right_to_left(right, torch.full((1, 1, 5), -1.0))  # x - d = x + 1
    assert inside.tolist() == [[[True, True, True, True, False]]]
    assert warped[0, 0, 0, :4].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_warp_shape_errors():
    with pytest.raises(InputError, match=r"right: expected \(N, C, H, W\)"):
        warp_right_to_left(torch.zeros(3, 4, 5), torch.zeros(1, 4, 5))
    with pytest.raises(InputError, match=r"disparity: expected shape \(N, H, W\) = \(1, 4, 5\)"):
        warp_right_to_left(torch.zeros(1, 3, 4, 5), torch.zeros(1, 4, 6))


# -------------------------------------------------------------------------------------- photometric
@pytest.mark.parametrize("which", ["clean", "exposed"])
def test_photometric_is_least_at_the_true_disparity(scenes, which):
    batch = scenes[0] if which == "clean" else scenes[1]
    left, right, truth = batch["left"], batch["right"], batch["disparity"]
    mask = _visible(batch)
    at_truth = float(photometric_loss(left, right, truth, mask))
    error, inside = photometric_error(left, right, truth)
    if which == "clean":  # near zero but at depth edges (3x3 windows span them)
        assert float(error[mask & inside].median()) < 0.03
    for shift in (-1.0, 1.0):
        assert float(photometric_loss(left, right, truth + shift, mask)) > 1.2 * at_truth
    for shift in (-0.5, 0.5):
        assert float(photometric_loss(left, right, truth + shift, mask)) > at_truth


def test_photometric_error_is_near_zero_at_the_truth_with_a_wide_band_of_unmatched_pixels():
    """Up to a quarter of each left view has no match (and the right view holds as much the left lacks):
    normalising each whole view would shift one against the other and leave an error everywhere."""
    batch = render_batch(2, 48, 96, seed=3, max_disp_px=24.0, settings=RenderSettings.geometry_only())
    left, right, truth, visible = batch["left"], batch["right"], batch["disparity"], _visible(batch)
    error, inside = photometric_error(left, right, truth, mask=visible)
    assert float(error[visible & inside].median()) < 0.005  # 0.029 with whole-view statistics
    assert float(photometric_loss(left, right, truth + 1.0, visible)) > 1.6 * float(
        photometric_loss(left, right, truth, visible)
    )


def test_photometric_error_of_a_grey_level_of_sensor_noise_is_small(scenes):
    """SSIM's luminance term divides by local means: on zero-mean images, noise of one grey level cost as
    much as a wrong match (0.038 on average)."""
    left = scenes[0]["left"]
    noise = torch.randn(left.shape, generator=torch.Generator().manual_seed(0)) / 255
    error, _ = photometric_error(left, left + noise, torch.zeros(left.shape[0], *left.shape[2:]))
    assert float(error.mean()) < 0.015


def test_exposure_is_normalised_by_the_masked_pixels():
    image = torch.tensor([[[[1.0, 2.0, 3.0, 100.0]]]])
    mask = torch.tensor([[[True, True, True, False]]])
    # mean 2 and standard deviation 1 (as torch.std: over n - 1) of the masked pixels
    expected = torch.tensor([[[[-1.0, 0.0, 1.0, 98.0]]]])
    torch.testing.assert_close(normalize_exposure(image, mask), expected, atol=0.1, rtol=1e-3)
    assert torch.isfinite(normalize_exposure(image, torch.zeros_like(mask))).all()


def test_photometric_ignores_a_global_exposure_change(scenes):
    batch = scenes[0]
    left, right, truth = batch["left"], batch["right"], batch["disparity"]
    plain = photometric_loss(left, right, truth)
    darker = photometric_loss(left, 0.6 * right + 0.1, truth)
    torch.testing.assert_close(plain, darker, atol=1e-3, rtol=0)
    torch.testing.assert_close(normalize_exposure(right).mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5, rtol=0)


def test_photometric_mask_and_outside_pixels(scenes):
    batch = scenes[0]
    left, right, truth = batch["left"], batch["right"], batch["disparity"]
    error, inside = photometric_error(left, right, truth)
    assert error.shape == inside.shape == truth.shape
    # a mask keeping only pixels with a large error raises the mean; an empty mask gives 0, not nan
    worst = error > error.median()
    assert float(photometric_loss(left, right, truth, worst & inside)) > float(photometric_loss(left, right, truth))
    assert float(photometric_loss(left, right, truth, torch.zeros_like(worst))) == 0.0
    # a disparity pointing every pixel outside the right image counts nothing
    assert float(photometric_loss(left, right, truth + 500.0)) == 0.0


def test_photometric_has_a_gradient(scenes):
    batch = scenes[0]
    disparity = (batch["disparity"] + 0.7).requires_grad_(True)
    photometric_loss(batch["left"], batch["right"], disparity, _visible(batch)).backward()
    assert disparity.grad is not None and float(disparity.grad.abs().sum()) > 0


def test_photometric_errors(scenes):
    batch = scenes[0]
    left, right, truth = batch["left"], batch["right"], batch["disparity"]
    with pytest.raises(InputError, match="one shape"):
        photometric_loss(left, right[..., :-1], truth)
    with pytest.raises(InputError, match="disparity: expected shape"):
        photometric_loss(left, right, truth[:1])
    with pytest.raises(InputError, match="mask: expected a bool tensor"):
        photometric_loss(left, right, truth, truth)
    with pytest.raises(InputError, match="ssim_weight"):
        photometric_error(left, right, truth, ssim_weight=1.5)


# --------------------------------------------------------------------------------------- smoothness
def test_smoothness_prefers_the_truth_to_a_noisy_one_and_steps_at_edges(scenes):
    batch = scenes[0]
    left, truth = batch["left"], batch["disparity"]
    noisy = truth + torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    assert float(smoothness_loss(truth, left)) < float(smoothness_loss(noisy, left))
    # normalised by its mean: scaling the disparity changes nothing
    torch.testing.assert_close(smoothness_loss(3 * truth, left), smoothness_loss(truth, left))
    # a disparity step costs less where the image has an edge at the same place
    step = torch.ones(1, 8, 8)
    step[..., 4:] = 2.0
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0
    assert float(smoothness_loss(step, edge)) < float(smoothness_loss(step, torch.zeros(1, 3, 8, 8)))


def test_smoothness_by_hand_vertical_terms_and_per_image_normalisation():
    # image 0: rows [1, 1] and [3, 3], mean 2 -> [0.5, 0.5], [1.5, 1.5]: no x step, a y step of 1 on two
    # columns; image 1 is constant (no step). Each image is divided by its own mean.
    d = torch.tensor([[[1.0, 1.0], [3.0, 3.0]], [[5.0, 5.0], [5.0, 5.0]]])
    flat = torch.zeros(2, 3, 2, 2)
    # grad_y has 2 x 1 x 2 entries: two of 1 (image 0), two of 0: mean 0.5; grad_x is all 0
    assert float(smoothness_loss(d, flat)) == pytest.approx(0.5)
    # an image edge of 1 grey level across the same rows weighs the y step by exp(-1)
    edge = flat.clone()
    edge[:, :, 1, :] = 1.0
    assert float(smoothness_loss(d, edge)) == pytest.approx(0.5 * math.exp(-1.0))


def test_smoothness_errors():
    with pytest.raises(InputError, match=r"image: expected \(N, C, H, W\)"):
        smoothness_loss(torch.ones(1, 4, 4), torch.ones(4, 4))
    with pytest.raises(InputError, match="disparity: expected shape"):
        smoothness_loss(torch.ones(1, 4, 5), torch.ones(1, 3, 4, 4))


# ---------------------------------------------------------------------------------------- consistency
def test_consistency_is_zero_for_agreeing_views_and_one_per_pixel_shift():
    # a slanted plane: d_left(x) = 2 + x / 8; its right view has d_right(x_r) with x_r = x - d_left(x)
    width = 64
    x = torch.arange(width, dtype=torch.float32)
    d_left = (2 + x / 8).expand(1, 4, width).contiguous()
    # invert x_r = x - (2 + x/8) = 7x/8 - 2  ->  x = 8 (x_r + 2) / 7, d_right = 2 + x / 8
    d_right = (2 + (8 * (x + 2) / 7) / 8).expand(1, 4, width).contiguous()
    assert float(consistency_loss(d_left, d_right)) < 1e-4
    assert float(consistency_loss(d_left + 1.0, d_right)) == pytest.approx(1.0, abs=0.2)
    error, inside = consistency_error(d_left, d_right)
    mask = torch.zeros_like(inside)
    assert error.shape == (1, 4, width)
    assert float(consistency_loss(d_left + 1.0, d_right, mask)) == 0.0


def test_consistency_errors():
    with pytest.raises(InputError, match="one shape"):
        consistency_loss(torch.ones(1, 4, 4), torch.ones(1, 4, 5))
    with pytest.raises(InputError, match="mask: expected a bool tensor"):
        consistency_loss(torch.ones(1, 4, 4), torch.ones(1, 4, 4), torch.ones(1, 4, 4))


def test_right_view_disparity_mirrors_and_swaps(textured_pair):
    left, right = (torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255 for im in textured_pair)
    calls = []

    def predict(a, b):
        calls.append((a, b))
        return torch.arange(a.shape[-1], dtype=torch.float32).expand(1, a.shape[2], a.shape[3])

    out = right_view_disparity(predict, left, right)
    torch.testing.assert_close(calls[0][0], right.flip(-1))
    torch.testing.assert_close(calls[0][1], left.flip(-1))
    assert out[0, 0, 0] == left.shape[-1] - 1  # mirrored back
    with pytest.raises(InputError, match="one shape"):
        right_view_disparity(predict, left, right[..., 1:])


def test_right_view_of_a_constant_shift_matches_the_left_view(textured_pair):
    """With an oracle matcher, the mirrored-swapped prediction of a constant shift is that shift."""
    left, right = (torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255 for im in textured_pair)

    def oracle(a, b):  # best of integer shifts by photometric error, per image
        errors = [photometric_loss(a, b, torch.full((1, a.shape[2], a.shape[3]), float(d))) for d in range(8)]
        return torch.full((1, a.shape[2], a.shape[3]), float(int(torch.stack(errors).argmin())))

    right_d = right_view_disparity(oracle, left, right)
    assert float(right_d.mean()) == 4.0
    assert float(consistency_loss(oracle(left, right), right_d)) == 0.0


# -------------------------------------------------------------------------------------------- proxy
def test_proxy_labels_from_sgbm_are_learned_at_the_truth(scenes):
    batch = render_batch(1, 96, 160, seed=5, max_disp_px=20.0, settings=RenderSettings.geometry_only())
    left, right = ((batch[k][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for k in ("left", "right"))
    labels = torch.from_numpy(proxy_disparity(left, right, max_disp=32))[None]
    truth = batch["disparity"]
    assert torch.isfinite(labels).any()
    at_truth = float(proxy_loss(truth, labels))
    assert at_truth < float(proxy_loss(truth + 1.0, labels))
    assert float(proxy_loss(truth, torch.full_like(truth, float("nan")))) == 0.0


def test_proxy_loss_by_hand_skips_zero_and_nan_labels():
    prediction = torch.tensor([[[2.0, 9.0, 3.0, 7.0, 4.5]]])
    labels = torch.tensor([[[2.0, 0.0, 4.0, float("nan"), 4.0]]])
    # labelled: x = 0 (error 0), x = 2 (|1| - 0.5 = 0.5), x = 4 (0.5 * 0.5^2 = 0.125): mean 0.625 / 3
    assert float(proxy_loss(prediction, labels)) == pytest.approx(0.625 / 3)
    assert float(proxy_loss(prediction, torch.zeros_like(labels))) == 0.0


def test_proxy_loss_errors():
    with pytest.raises(InputError, match="proxy labels"):
        proxy_loss(torch.ones(1, 4, 4), torch.ones(1, 4, 5))


# ------------------------------------------------------------------------------- zero at the truth
def test_every_data_term_is_zero_at_the_true_disparity_and_not_one_pixel_off():
    """A pure shift (right = left rolled by d: both views hold the same pixels, so exposure normalisation
    treats them alike): photometric error, left-right disagreement and proxy loss are 0 at d."""
    rng = np.random.default_rng(0)
    left = torch.from_numpy(rng.random((1, 3, 24, 48), dtype=np.float32))
    d = 5
    right = torch.roll(left, shifts=-d, dims=-1)  # right[x] = left[x + d]: left x matches right x - d
    truth = torch.full((1, 24, 48), float(d))
    matched = torch.zeros(1, 24, 48, dtype=torch.bool)
    matched[..., d + 1 :] = True  # 3x3 windows of these pixels see only matched columns
    assert float(photometric_loss(left, right, truth, matched)) < 1e-5
    assert float(consistency_loss(truth, truth)) < 1e-6  # grid_sample's rounding
    assert float(proxy_loss(truth, truth)) == 0.0
    for wrong in (truth - 1.0, truth + 1.0):
        assert float(photometric_loss(left, right, wrong, matched)) > 0.1
        assert float(consistency_loss(wrong, truth)) > 0.5
        assert float(proxy_loss(wrong, truth)) > 0.4


# ------------------------------------------------------------------------------------------ occlusion
def test_visible_in_right_finds_the_renderers_occluded_pixels():
    """From the true disparity alone, the pixels hidden from the right camera agree with the renderer's
    exact occlusion mask (which tests each point against the surfaces around its match)."""
    batch = render_batch(4, 64, 128, seed=11, max_disp_px=32.0, settings=RenderSettings.geometry_only())
    d = batch["disparity"]
    in_frame = (torch.arange(d.shape[-1]) - d) >= 0
    truth = batch["occluded"] & in_frame
    found = ~visible_in_right(d) & in_frame
    assert int(truth.sum()) > 500  # the scenes do hide something
    both = int((truth & found).sum())
    assert both / int(truth.sum()) > 0.7  # recall
    assert both / int(found.sum()) > 0.7  # precision


def test_visible_in_right_on_a_step_and_its_tolerance():
    d = torch.tensor([[[2.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0]]])  # landings x - d: -2 -1 0 1 | -1 0 1
    # x = 2 and 3 land where the near surface does; x = 1 ties with its edge, within the tolerance.
    assert visible_in_right(d, 0.5).tolist() == [[[True, True, False, False, True, True, True]]]
    assert visible_in_right(d, 1.5).tolist() == [[[True, True, True, False, True, True, True]]]
    assert visible_in_right(torch.full((1, 2, 5), 3.0)).all()  # a plane hides nothing
    # A wobble smaller than the tolerance hides nothing; a larger one does.
    wobble = torch.tensor([[[3.0, 4.2, 3.0, 4.2, 3.0]]])  # landings -3 -3.2 -1 -1.2 1
    assert visible_in_right(wobble, 0.5).all()
    assert not visible_in_right(wobble, 0.0).all()
    with pytest.raises(InputError, match="expected"):
        visible_in_right(torch.zeros(2, 3))


def test_visible_in_right_carries_no_gradient():
    d = torch.full((1, 4, 8), 2.0, requires_grad=True)
    assert not visible_in_right(d).requires_grad


@pytest.mark.parametrize("level", [0.5, 0.0])  # grey, black
def test_every_term_has_finite_gradients_on_a_uniform_pair(level):
    """A uniform pair gave a finite photometric loss and NaN gradients: the exposure normalisation took the square root
    of a variance of 0, whose gradient is infinite (times 0: NaN); online, every step on a grey frame was skipped."""
    left = torch.full((2, 3, 16, 24), level)
    right = left.clone()
    disparity = torch.full((2, 16, 24), 2.0, requires_grad=True)
    mask = torch.ones(2, 16, 24, dtype=torch.bool)
    terms = {
        "photometric": photometric_loss(left, right, disparity),
        "photometric masked": photometric_loss(left, right, disparity, mask),
        "smoothness": smoothness_loss(disparity, left),
        "consistency": consistency_loss(disparity, disparity.detach() + 0.5),
        "proxy": proxy_loss(disparity, torch.full((2, 16, 24), 3.0)),
    }
    for name, term in terms.items():
        (gradient,) = torch.autograd.grad(term, disparity)
        assert torch.isfinite(term) and torch.isfinite(gradient).all(), name
    image = left.clone().requires_grad_(True)
    for mask_or_none in (None, mask):
        (gradient,) = torch.autograd.grad(normalize_exposure(image, mask_or_none).sum(), image)
        assert torch.isfinite(gradient).all()
    assert float(terms["photometric"]) == 0.0  # a uniform pair matches itself everywhere
