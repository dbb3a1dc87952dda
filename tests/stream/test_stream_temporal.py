"""The temporal filter: less flicker on a static scene, no smearing of motion, bounded holding."""

from __future__ import annotations

import numpy as np
import pytest

from rtstereo.errors import InputError
from rtstereo.temporal import TemporalFilter, flicker_px, mean_flicker_px


def noisy_static(frames: int = 30, sigma_px: float = 0.3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.linspace(5, 20, 32 * 48, dtype=np.float32).reshape(32, 48)
    return [(truth + rng.normal(0, sigma_px, truth.shape)).astype(np.float32) for _ in range(frames)]


def test_flicker_of_a_static_noisy_sequence_drops():
    frames = noisy_static()
    temporal = TemporalFilter(alpha=0.3, reset_px=2.0)
    raw, filtered = mean_flicker_px(frames), mean_flicker_px([temporal(d) for d in frames])
    # Stationary noise through an EMA: the frame-to-frame change shrinks to about sqrt(alpha / (2 - alpha)).
    assert filtered < 0.5 * raw
    assert raw == pytest.approx(0.3 * 2 / np.sqrt(np.pi), rel=0.1)  # E|N(0, 2 sigma^2)|


def test_a_jump_beyond_the_reset_restarts_the_pixel_once_confirmed():
    temporal = TemporalFilter(alpha=0.3, reset_px=2.0, confirm_frames=1)
    temporal(np.full((2, 2), 10.0, np.float32))
    moved = np.array([[10.5, 30.0], [10.0, 30.0]], np.float32)
    out = temporal(moved)
    assert out[0, 0] == pytest.approx(10.15)  # noise: averaged
    assert out[0, 1] == 10.0  # a jump seen once: not trusted yet (one-frame mismatches are most flicker)
    out = temporal(np.array([[10.5, 30.0], [10.0, 10.0]], np.float32))
    assert out[0, 1] == 30.0  # it persisted: an object arrived, taken as is, no smearing
    assert out[1, 1] == 10.0  # a one-frame outlier never showed
    immediate = TemporalFilter(reset_px=2.0, confirm_frames=0)
    immediate(np.full((1, 1), 10.0, np.float32))
    assert immediate(np.full((1, 1), 30.0, np.float32))[0, 0] == 30.0


def test_single_frame_outliers_do_not_flicker():
    rng = np.random.default_rng(1)
    frames = noisy_static(frames=20, sigma_px=0.05)
    for d in frames:  # 2 % of pixels jump by 10 px for one frame, as mismatches do
        d[rng.random(d.shape) < 0.02] += 10
    temporal = TemporalFilter()
    assert mean_flicker_px([temporal(d) for d in frames]) < 0.2 * mean_flicker_px(frames)


def test_invalid_pixels_hold_their_value_for_a_few_frames_then_turn_invalid():
    temporal = TemporalFilter(hold_frames=2)
    temporal(np.array([[8.0]], np.float32))
    assert temporal(np.array([[np.nan]], np.float32))[0, 0] == 8.0
    assert temporal(np.array([[np.nan]], np.float32))[0, 0] == 8.0
    assert np.isnan(temporal(np.array([[np.nan]], np.float32))[0, 0])
    assert temporal(np.array([[4.0]], np.float32))[0, 0] == 4.0  # a new value after expiry starts afresh


def test_a_new_frame_size_restarts_and_reset_forgets():
    temporal = TemporalFilter()
    temporal(np.full((2, 2), 3.0, np.float32))
    np.testing.assert_array_equal(temporal(np.full((3, 3), 9.0, np.float32)), 9.0)
    temporal.reset()
    np.testing.assert_array_equal(temporal(np.full((3, 3), 1.0, np.float32)), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"reset_px": 0}, "reset_px"),
        ({"reset_px": float("inf")}, "reset_px"),  # was taken, and the summary JSON said Infinity
        ({"reset_px": float("nan")}, "reset_px"),
        ({"confirm_frames": -1}, "confirm_frames"),
        ({"hold_frames": -1}, "hold_frames"),
        # wrong types: a bare TypeError from a comparison, or 1.5 frames cut to 1 without a word
        ({"alpha": "0.3"}, "alpha: expected a weight of the new frame in \\(0, 1\\], got str '0.3'"),
        ({"alpha": None}, "alpha: expected .* got NoneType"),
        ({"alpha": True}, "alpha: expected .* got bool"),
        ({"reset_px": "2"}, "reset_px: expected a change in pixels > 0, got str"),
        ({"confirm_frames": 1.5}, "confirm_frames: expected a whole number of frames >= 0, got float 1.5"),
        ({"hold_frames": "2"}, "hold_frames: expected a whole number of frames >= 0, got str"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        TemporalFilter(**kwargs)


def test_numpy_numbers_are_settings():
    temporal = TemporalFilter(alpha=np.float32(0.5), reset_px=np.float64(2), confirm_frames=np.int64(0))
    assert temporal.settings() == {"alpha": 0.5, "reset_px": 2.0, "confirm_frames": 0, "hold_frames": 2}
    assert type(temporal.settings()["confirm_frames"]) is int  # written to the summary's JSON


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (np.ones((2, 4, 4), np.float32), r"one disparity map of shape \(H, W\), got shape \(2, 4, 4\)"),
        (np.ones(4, np.float32), r"got shape \(4,\)"),
        ("abc", "expected a float \\(H, W\\) disparity map, got str"),
    ],
)
def test_only_one_map_is_filtered(frame, match):
    """A batch or an image of three channels was averaged as one frame and came back 3-D."""
    with pytest.raises(InputError, match=match):
        TemporalFilter()(frame)


def test_flicker_counts_only_pixels_valid_in_both_frames():
    a = np.array([[1.0, np.nan, 3.0, 0.0]], np.float32)
    b = np.array([[2.0, 5.0, np.nan, 4.0]], np.float32)
    assert flicker_px(a, b) == 1.0
    assert flicker_px(b, a) == 1.0  # a zero (no match) in either frame leaves the pixel out
    assert np.isnan(flicker_px(a[:, 1:2], b[:, 1:2]))
    assert np.isnan(mean_flicker_px([a]))
    # the mean over consecutive frames with a common valid pixel: |2 - 1|, |4 - 5|, none, then |4 - 1|
    c, d = np.array([[1.0, np.nan]], np.float32), np.array([[np.nan, 4.0]], np.float32)
    assert mean_flicker_px([a[:, :2], b[:, :2], d, c, d[:, ::-1]]) == pytest.approx((1 + 1 + 3) / 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: flicker_px("x", np.ones((2, 2))), "previous_px must be a float"),
        (lambda: flicker_px(np.ones((2, 2)), None), "current_px must be a float"),
        (lambda: flicker_px(np.ones((2, 2)), np.ones((3, 3))), r"one shape, got \(2, 2\) and \(3, 3\)"),
        (lambda: mean_flicker_px(5), "a sequence of"),
        (lambda: mean_flicker_px([np.ones((2, 2)), np.ones((2, 3))]), r"frame 1 has shape \(2, 3\)"),
        (lambda: mean_flicker_px([np.ones((2, 2)), "b"]), "frame 1 must be a float"),
    ],
)
def test_flicker_of_what_is_no_disparity_map_is_an_input_error(call, match):
    """These were bare TypeErrors and ValueErrors from NumPy (operands could not be broadcast ...)."""
    with pytest.raises(InputError, match=match):
        call()


def test_a_change_must_last_consecutive_frames_to_restart_the_pixel():
    temporal = TemporalFilter(alpha=0.5, reset_px=2.0, confirm_frames=1)
    temporal(np.full((1, 1), 10.0, np.float32))
    assert temporal(np.full((1, 1), 30.0, np.float32))[0, 0] == 10.0  # a jump, once
    assert temporal(np.full((1, 1), 10.0, np.float32))[0, 0] == 10.0  # back: the count starts again
    assert temporal(np.full((1, 1), 30.0, np.float32))[0, 0] == 10.0  # once again, not twice in a row
    assert temporal(np.full((1, 1), 30.0, np.float32))[0, 0] == 30.0  # twice in a row: restarted


def test_a_restarted_pixel_must_confirm_its_next_change_afresh():
    temporal = TemporalFilter(alpha=0.5, reset_px=2.0, confirm_frames=1)
    temporal(np.full((1, 1), 10.0, np.float32))
    temporal(np.full((1, 1), 30.0, np.float32))
    assert temporal(np.full((1, 1), 30.0, np.float32))[0, 0] == 30.0  # restarted
    assert temporal(np.full((1, 1), 50.0, np.float32))[0, 0] == 30.0  # a new jump, seen once: held
    assert temporal(np.full((1, 1), 50.0, np.float32))[0, 0] == 50.0


def test_a_change_of_exactly_reset_px_is_noise_and_averaged():
    temporal = TemporalFilter(alpha=0.5, reset_px=2.0, confirm_frames=0)
    temporal(np.full((1, 2), 10.0, np.float32))
    # |12 - 10| = 2 is not beyond reset_px: averaged to 11; |12.5 - 10| is: taken at once (confirm 0)
    assert temporal(np.array([[12.0, 12.5]], np.float32)).tolist() == [[11.0, 12.5]]


def test_two_unrelated_jumps_in_a_row_are_two_mismatches_not_a_change():
    """10, then 30, then 50: the second jump counted as the first one persisting, so the pixel restarted at 50 and
    showed it (and the next frame's 10 was a jump from there): flicker where the scene holds still."""
    temporal = TemporalFilter(alpha=0.5, reset_px=2.0, confirm_frames=1)
    temporal(np.full((1, 3), 10.0, np.float32))
    assert temporal(np.array([[30.0, 30.0, 30.0]], np.float32)).tolist() == [[10.0, 10.0, 10.0]]
    # 50: unrelated to 30; 31: keeps to it, a change confirmed; 5: below the average where 30 was above it
    assert temporal(np.array([[50.0, 31.0, 5.0]], np.float32)).tolist() == [[10.0, 31.0, 10.0]]
    assert temporal(np.array([[10.0, 31.0, 10.0]], np.float32)).tolist() == [[10.0, 31.0, 10.0]]


def test_mismatches_on_consecutive_frames_show_less_than_before():
    rng = np.random.default_rng(2)
    truth = np.linspace(10, 40, 32 * 48, dtype=np.float32).reshape(32, 48)
    frames = []
    for _ in range(30):  # 20 % of the pixels mismatched each frame, anywhere in 0..64 px
        d = (truth + rng.normal(0, 0.2, truth.shape)).astype(np.float32)
        wrong = rng.random(truth.shape) < 0.2
        d[wrong] = rng.uniform(0, 64, int(wrong.sum()))
        frames.append(d)
    temporal = TemporalFilter()
    shown = [temporal(d) for d in frames][5:]
    bad = np.mean([np.mean(np.abs(d - truth) > 3) for d in shown])
    assert bad < 0.04  # 6.8 % of the pixels showed a mismatch when two in a row restarted the pixel (2.4 % now)
    assert mean_flicker_px(shown) < 0.7  # 1.27 px then, 0.45 px now


def test_an_object_approaching_faster_than_reset_px_per_frame_is_still_followed():
    temporal = TemporalFilter(alpha=0.3, reset_px=2.0, confirm_frames=1)
    temporal(np.full((1, 1), 10.0, np.float32))
    shown = [float(temporal(np.full((1, 1), v, np.float32))[0, 0]) for v in (13, 16, 19, 22, 25, 28, 28)]
    assert shown[-1] == 28.0 and max(shown) == 28.0  # steps of 3 px keep to a change of 6 px (within half of it)
