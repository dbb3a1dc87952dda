"""The procedural stereo generator (rtstereo.datasets.synthetic) and the ``rtstereo synth`` verb.

Geometry is checked the way a stereo network uses it: warping the right view by the ground truth must
reproduce the left view on pixels marked visible, and much better than a ground truth off by half a
pixel does. Sizes are small so the module runs in seconds.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.conftest import warp_right_to_left

from rtstereo.datasets.synthetic import RenderSettings, SyntheticStereo, render_batch, render_scenes
from rtstereo.datasets.synthetic_random import item_seeds
from rtstereo.errors import InputError

CLEAN = RenderSettings.geometry_only()


def warp_error_255(batch: dict, shift_px: float = 0.0) -> torch.Tensor:
    """Per-pixel mean absolute RGB difference (0..255 units) between left and the warped right view."""
    warped = warp_right_to_left(batch["right"], batch["disparity"] + shift_px)
    return (warped - batch["left"]).abs().mean(1) * 255.0


@pytest.fixture(scope="module")
def clean_batch():
    return render_batch(4, 96, 128, seed=3, max_disp_px=48.0, settings=CLEAN)


# ------------------------------------------------------------------------------------------ smoke
def test_outputs_have_the_documented_shapes_types_and_ranges():
    batch = render_batch(2, 40, 56, seed=1, max_disp_px=24.0)
    assert list(batch) == ["left", "right", "disparity", "occluded"]
    for view in ("left", "right"):
        assert batch[view].shape == (2, 3, 40, 56) and batch[view].dtype == torch.float32
        assert 0.0 <= float(batch[view].min()) and float(batch[view].max()) <= 1.0
    assert batch["disparity"].shape == (2, 40, 56) and batch["disparity"].dtype == torch.float32
    assert batch["occluded"].shape == (2, 40, 56) and batch["occluded"].dtype == torch.bool
    assert torch.isfinite(batch["disparity"]).all()
    assert float(batch["disparity"].min()) >= 0.0 and float(batch["disparity"].max()) <= 24.0 + 1e-3


# ----------------------------------------------------------------------------------- determinism
def test_same_seed_same_batch_other_seed_other_batch():
    first = render_batch(2, 32, 48, seed=11, max_disp_px=16.0)
    again = render_batch(2, 32, 48, seed=11, max_disp_px=16.0)
    other = render_batch(2, 32, 48, seed=12, max_disp_px=16.0)
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["left"], other["left"])


def test_each_seed_from_2_32_on_has_the_stream_of_one_seed_below_2_32():
    from rtstereo.datasets.synthetic_random import same_stream_seed

    for seed in (2**32, 2**32 + 5, 3 * 2**40 + 17, 2**63 - 1, -1):
        below = same_stream_seed(seed)
        assert 0 <= below < 2**32 and torch.equal(item_seeds(seed, 4, start=9), item_seeds(below, 4, start=9)), seed
    assert [same_stream_seed(seed) for seed in (0, 7, 2**32 - 1)] == [0, 7, 2**32 - 1]


def test_dataset_item_equals_the_same_item_of_a_batch():
    batch = render_batch(3, 32, 48, seed=5, max_disp_px=16.0)
    dataset = SyntheticStereo(3, 32, 48, seed=5, max_disp_px=16.0)
    assert len(dataset) == 3
    for i in range(3):
        item = dataset[i]
        assert set(item) == set(batch) and item["left"].shape == (3, 32, 48)
        for key in batch:
            assert torch.allclose(item[key].float(), batch[key][i].float(), atol=1e-5), (i, key)
    assert torch.equal(dataset[-1]["disparity"], dataset[2]["disparity"])


def test_an_items_pixels_do_not_depend_on_the_scenes_beside_it_in_the_batch():
    # Highlights were windowed by the widest one in the batch: items 3, 5 and 8 of this batch changed by
    # an 8-bit level at a few pixels when rendered alone (so a batch split over threads changed them too).
    seeds = item_seeds(0, 16)
    whole = render_scenes(seeds, 64, 128, max_disp_px=48.0)
    for i in (3, 5, 8, 0):
        alone = render_scenes(seeds[i : i + 1], 64, 128, max_disp_px=48.0)
        for key in whole:
            assert torch.equal(alone[key][0], whole[key][i]), (i, key)


# -------------------------------------------------------------------------------------- geometry
def test_warping_the_right_view_by_the_ground_truth_reproduces_the_left_view(clean_batch):
    visible = ~clean_batch["occluded"]
    exact = warp_error_255(clean_batch)[visible]
    off_by_half = warp_error_255(clean_batch, shift_px=0.5)[visible]
    off_by_one = warp_error_255(clean_batch, shift_px=1.0)[visible]
    # The typical pixel matches to float precision; what remains is bilinear interpolation of
    # texture near the Nyquist frequency and of pixels beside depth edges, which dominates the mean
    # (exact / half-pixel-off means are 0.5-0.65 from scene to scene, so the mean bound has margin).
    assert float(exact.median()) < 0.1
    assert float(exact.median()) < 0.2 * float(off_by_half.median())
    assert float(exact.mean()) < 4.0
    assert float(exact.mean()) < 0.75 * float(off_by_half.mean()) < 0.75 * float(off_by_one.mean())


def test_occluded_pixels_do_not_match(clean_batch):
    error = warp_error_255(clean_batch)
    occluded = clean_batch["occluded"]
    assert 0.0 < float(occluded.float().mean()) < 0.9
    assert float(error[occluded].mean()) > 3 * float(error[~occluded].mean())


def test_pixels_falling_left_of_the_right_image_are_occluded(clean_batch):
    x = torch.arange(clean_batch["disparity"].shape[-1], dtype=torch.float32)
    outside = (x - clean_batch["disparity"]) < 0
    assert outside.any()
    assert clean_batch["occluded"][outside].all()


def test_a_front_surface_hides_the_background_at_its_left_edge_not_its_right_edge(clean_batch):
    disparity, occluded = clean_batch["disparity"], clean_batch["occluded"]
    x_right = torch.arange(disparity.shape[-1], dtype=torch.float32) - disparity
    count = disparity.shape[-1] - 11  # pixels x with x + 10 inside the image
    inside = x_right[..., :count] >= 2  # away from the image's left border
    step = disparity[..., 1:] - disparity[..., :-1]
    # Background pixel just left of a nearer surface that starts at the next pixel and stays nearer
    # for 10 px (wider than the jump; a thinner one would land left of the point): hidden.
    next_ten = disparity.unfold(-1, 10, 1)[..., 1 : count + 1, :].amin(-1)
    left_edge = (step[..., :count] > 3.0) & (step[..., :count] < 9.0) & inside
    left_edge &= next_ten > disparity[..., :count] + 3.0
    assert left_edge.sum() > 20
    assert float(occluded[..., :count][left_edge].float().mean()) > 0.95
    # Background pixel just right of a nearer surface: uncovered in the right view, visible unless yet
    # another surface hides it; the warp confirms the mask either way.
    right_edge = (step < -3.0) & (x_right[..., 1:] >= 2)
    assert right_edge.sum() > 20
    hidden = occluded[..., 1:][right_edge]
    assert float(hidden.float().mean()) < 0.6
    error = warp_error_255(clean_batch)[..., 1:][right_edge]
    assert float(error[~hidden].mean()) < 0.3 * float(error[hidden].mean())


def test_the_occlusion_mask_agrees_with_testing_every_layer_at_each_match():
    """Exhaustive reference: every layer evaluated at each left pixel's match ``x - d`` in the right view;
    the pixel is occluded where the nearest of them is nearer than its own disparity by more than the
    tolerance, or where the match falls left of the image. The renderer checks only the layers its two
    right pixels show (it misses surfaces under a pixel wide: 28 of 18432 pixels here); checking one of
    the two, either being its own, or a 2 px tolerance each missed 300 to 400."""
    from rtstereo.datasets.synthetic import OCCLUSION_TOLERANCE_PX
    from rtstereo.datasets.synthetic_geometry import layer_at
    from rtstereo.datasets.synthetic_scene import sample_scenes

    seeds, height, width, max_disp_px = item_seeds(7, 4), 48, 96, 32.0
    rendered = render_scenes(seeds, height, width, max_disp_px=max_disp_px)
    layers = sample_scenes(seeds, height, width, max_disp_px).layers
    n_layers = layers.data.shape[1]
    d = rendered["disparity"]
    b, k, y, x = torch.meshgrid(*(torch.arange(n) for n in (len(seeds), n_layers, height, width)), indexing="ij")
    x_right = x.float() - d[:, None]
    found = layer_at(layers, (b * n_layers + k).reshape(-1), x_right.reshape(-1), y.reshape(-1).float(), "right")
    found = found.view(len(seeds), n_layers, height, width)
    nearest = found.masked_fill((layers["active"] == 0)[:, :, None, None], float("-inf")).amax(1)
    reference = (torch.arange(width) - d < 0) | (nearest > d + OCCLUSION_TOLERANCE_PX)
    occluded = rendered["occluded"]
    assert 0.05 < float(reference.float().mean()) < 0.5
    assert not (occluded & ~reference).any()  # never hides a pixel that every layer leaves visible
    assert int((reference & ~occluded).sum()) < 0.003 * occluded.numel()


# ------------------------------------------------------------------------------------ operations
def test_the_operation_count_does_not_grow_with_the_batch():
    from rtstereo.profiling import count_operations

    render_batch(1, 32, 64, seed=0)  # first call builds the cached noise banks
    # One torch thread: the whole batch on the calling thread, as on a GPU (with more CPU threads the
    # batch is cut into one part per thread, each rendered on a thread of its own).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = count_operations(lambda: render_batch(1, 64, 128, seed=2))
        sixteen = count_operations(lambda: render_batch(16, 64, 128, seed=2))
    finally:
        torch.set_num_threads(threads)
    for count in (one, sixteen):
        assert count.total < 3000, count.total
    assert abs(sixteen.total - one.total) <= 0.1 * one.total, (one.total, sixteen.total)
    assert abs(sixteen.launched - one.launched) <= 0.1 * one.launched, (one.launched, sixteen.launched)


def test_the_operation_count_does_not_grow_with_the_number_of_objects():
    from rtstereo.datasets.synthetic import render_scenes
    from rtstereo.datasets.synthetic_random import item_seeds
    from rtstereo.datasets.synthetic_scene import sample_scenes
    from rtstereo.profiling import count_operations

    seeds = item_seeds(4, 64)
    objects = sample_scenes(seeds, 64, 128, 32.0).items["n_objects"]
    fewest, most = seeds[int(objects.argmin())], seeds[int(objects.argmax())]
    assert float(objects.max()) - float(objects.min()) >= 20
    counts = [count_operations(lambda s=s: render_scenes(s[None], 64, 128, max_disp_px=32.0)) for s in (fewest, most)]
    assert abs(counts[0].total - counts[1].total) <= 0.1 * counts[0].total, [c.total for c in counts]


# ---------------------------------------------------------------------------------- distribution
@pytest.mark.slow
def test_disparities_reach_192_px_at_640x480_and_small_ones_are_common():
    batch = render_batch(6, 480, 640, seed=0)
    disparity = batch["disparity"]
    assert float(disparity.max()) >= 0.9 * 192.0
    assert float(disparity.max()) <= 192.0 + 1e-3
    # Most real scenes are 0-64 px at this width; the generator must cover them well.
    assert float((disparity < 64).float().mean()) > 0.3


def test_disparities_fill_the_range_asked_for_at_a_small_size():
    batch = render_batch(8, 32, 48, seed=2, max_disp_px=40.0)
    per_item_max = batch["disparity"].amax((1, 2))
    assert float(per_item_max.max()) >= 0.9 * 40.0
    assert float(per_item_max.min()) < 0.6 * 40.0  # not every scene spans the full range


@pytest.mark.parametrize(("height", "width", "max_disp_px"), [(64, 128, 48.0), (16, 200, 64.0)])
def test_a_rolled_ground_plane_stays_within_the_range_asked_for(height, width, max_disp_px):
    """The ground plane's roll tilts it along x: its bottom corners reached 55 and 115 px here."""
    disparity = render_batch(4, height, width, seed=1003, max_disp_px=max_disp_px)["disparity"]
    assert float(disparity.max()) <= max_disp_px + 1e-3


def test_views_differ_photometrically_only_when_asked():
    noisy = render_batch(1, 48, 64, seed=4, max_disp_px=16.0)
    clean = render_batch(1, 48, 64, seed=4, max_disp_px=16.0, settings=CLEAN)
    assert torch.equal(clean["disparity"], noisy["disparity"])
    assert torch.equal(clean["occluded"], noisy["occluded"])
    assert not torch.equal(clean["left"], noisy["left"])
    # 8-bit quantisation comes with the noise.
    assert torch.allclose(noisy["left"] * 255, (noisy["left"] * 255).round(), atol=1e-3)


def test_noise_scale_scales_the_sensor_noise_and_nothing_else():
    def render(scale):
        return render_batch(1, 48, 64, seed=6, max_disp_px=16.0, settings=RenderSettings(noise_scale=scale))

    silent, half, full = render(0.0), render(0.5), render(1.0)
    noise_free = render_batch(1, 48, 64, seed=6, max_disp_px=16.0, settings=RenderSettings(noise=False))
    assert torch.equal(silent["disparity"], full["disparity"])
    # Scale 0 leaves only the 8-bit quantisation of the noise-free image.
    assert (silent["left"] - noise_free["left"]).abs().max() <= 0.5 / 255 + 1e-6
    spread_half = float((half["left"] - silent["left"]).std())
    spread_full = float((full["left"] - silent["left"]).std())
    assert spread_full > 2 / 255  # the scene drew a visible noise level
    assert 1.6 < spread_full / spread_half < 2.4


# inf rendered images of two grey levels without a word, and 1e200 failed squared with an OverflowError
@pytest.mark.parametrize("scale", [-0.1, float("nan"), float("inf"), 1e200, True, "0.5"])
def test_noise_scale_must_be_a_number_at_least_0(scale):
    with pytest.raises(InputError, match="noise_scale"):
        RenderSettings(noise_scale=scale)


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        # cut to a whole number without a word: seed 1.5 rendered the pairs of seed 1
        ({"seed": 1.5}, "seed: expected an integer, got 1.5"),
        ({"seed": "1"}, "seed: expected an integer, got '1'"),
        ({"seed": True}, "seed: expected an integer, got True"),
        ({"height": 8}, "height"),
        ({"width": 10}, "width"),
        ({"max_disp_px": 0.0}, "max_disp_px"),
        ({"max_disp_px": float("inf")}, "max_disp_px: expected a positive, finite"),  # an IndexError deep inside
        ({"max_disp_px": float("nan")}, "max_disp_px"),
        ({"max_disp_px": "8"}, "max_disp_px"),
        ({"height": 32.0}, "height"),
        ({"width": True}, "width"),
    ],
)
def test_bad_arguments_raise_input_errors(kwargs, message):
    args = {"batch_size": 1, "height": 32, "width": 32, "seed": 0, "max_disp_px": 8.0, **kwargs}
    with pytest.raises(InputError, match=message):
        render_batch(args.pop("batch_size"), args.pop("height"), args.pop("width"), **args)


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([1.5, 2.7], "float"),  # rendered the scenes of seeds 1 and 2 without a word
        (torch.tensor([[1, 2]]), r"shape \(1, 2\)"),  # failed deep in the renderer on mismatched sizes
        ([True], "bool"),
        (7, r"shape \(\)"),
        (["a"], "seeds"),
    ],
)
def test_render_scenes_refuses_seeds_that_are_not_a_list_of_integers(seeds, message):
    with pytest.raises(InputError, match=message):
        render_scenes(seeds, 32, 32, max_disp_px=8.0)


@pytest.mark.parametrize("name", ["photometric", "specular", "noise", "blur"])
def test_render_settings_switches_must_be_true_or_false(name):
    with pytest.raises(InputError, match=f"{name}: expected True or False, got 'false'"):
        RenderSettings(**{name: "false"})  # a non-empty string is true: it switched the effect on


def test_render_settings_of_another_type_are_refused():
    with pytest.raises(InputError, match="settings: expected a RenderSettings or None"):
        render_batch(1, 32, 32, seed=0, max_disp_px=8.0, settings={"noise": False})


def test_render_scenes_takes_integer_seeds_in_any_form():
    expected = render_scenes(torch.tensor([3, 9]), 32, 32, max_disp_px=8.0)["disparity"]
    for seeds in ([3, 9], np.array([3, 9], dtype=np.uint32), torch.tensor([3, 9], dtype=torch.int32)):
        assert torch.equal(render_scenes(seeds, 32, 32, max_disp_px=8.0)["disparity"], expected)
    assert render_scenes([], 32, 32)["left"].shape == (0, 3, 32, 32)


def test_numpy_sizes_and_ranges_render_as_python_ones():
    """np.int64(32), as sizes computed with numpy are, was refused: 'expected an integer of at least 16 px'."""
    expected = render_batch(1, 16, 32, seed=3, max_disp_px=8.0)
    batch = render_batch(np.int64(1), np.int64(16), np.int32(32), seed=3, max_disp_px=np.float32(8.0))
    for key, value in expected.items():
        torch.testing.assert_close(batch[key], value, rtol=0, atol=0)
    item = SyntheticStereo(2, np.int64(16), np.int64(32), seed=3, max_disp_px=8.0)[0]
    torch.testing.assert_close(item["left"], expected["left"][0], rtol=0, atol=0)
    # the length and the index too: a numpy count was refused ('length: expected a non-negative integer')
    dataset = SyntheticStereo(np.int64(2), 16, 32, seed=3, max_disp_px=8.0)
    assert len(dataset) == 2 and type(len(dataset)) is int
    torch.testing.assert_close(dataset[np.int64(0)]["left"], expected["left"][0], rtol=0, atol=0)


def test_dataset_rejects_bad_length_and_index():
    with pytest.raises(InputError, match="length"):
        SyntheticStereo(-1, 32, 32)
    with pytest.raises(InputError, match="height"):
        SyntheticStereo(2, 4, 32)
    with pytest.raises(IndexError):
        SyntheticStereo(2, 32, 32)[2]
    with pytest.raises(InputError, match="seed: expected an integer, got 1.9"):
        SyntheticStereo(2, 32, 32, seed=1.9)
    with pytest.raises(InputError, match="length: expected a non-negative integer, got True"):
        SyntheticStereo(True, 32, 32)  # was a dataset of 1 item
    for index in (slice(0, 2), 1.0, True):  # a slice failed comparing it with an int; 1.0 and True passed as 1
        with pytest.raises(TypeError, match="indexed by an integer"):
            SyntheticStereo(2, 32, 32)[index]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_renders_the_same_scene_geometry():
    cpu = render_batch(2, 64, 96, seed=9, max_disp_px=32.0, settings=CLEAN)
    gpu = render_batch(2, 64, 96, seed=9, max_disp_px=32.0, settings=CLEAN, device="cuda")
    assert torch.allclose(gpu["disparity"].cpu(), cpu["disparity"], atol=1e-3)
    assert float((gpu["occluded"].cpu() != cpu["occluded"]).float().mean()) < 0.01


# ----------------------------------------------------------------------------------- synth verb
def _synth_parser():
    from rtstereo.cli import synth

    parser = argparse.ArgumentParser(prog="rtstereo")
    synth.register(parser.add_subparsers(dest="verb"))
    return parser


def test_a_second_ctrl_c_waits_for_the_parts_being_rendered(monkeypatch):
    """Ctrl-C, then Ctrl-C again while the parts rendered on threads were awaited: render_scenes raised while a
    thread was still inside torch, and `rtstereo synth` aborted as Python finalized ("terminate called without an
    active exception"). The first part raises Ctrl-C's interrupt; the second, slower, sends the second one."""
    import signal
    import threading
    import time

    from rtstereo.datasets import synthetic

    rendering, finished = threading.Event(), threading.Event()

    def render_part(seeds, *args):
        if int(seeds[0]) == 0:
            rendering.wait(5.0)
            raise KeyboardInterrupt  # as main's wait on it receives Ctrl-C
        rendering.set()
        time.sleep(0.2)  # the main thread is in the pool's wait by now
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C again
        time.sleep(0.3)
        finished.set()
        return {}  # not used: the first part's interrupt ends the call

    monkeypatch.setattr(synthetic, "_render_seeds", render_part)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            render_scenes([0, 1], 16, 32, max_disp_px=8.0)
        assert finished.is_set()  # no thread of the renderer is left running
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_synth_help_says_what_it_does_with_a_folder_that_holds_pairs():
    """--help named one refusal (another renderer version): a rerun's resume, and the other refusals, were untold."""
    text = " ".join(_synth_parser()._subparsers._group_actions[0].choices["synth"].format_help().split())
    assert "The same command again goes on where a stopped run ended" in text
    assert "(other settings, another version of the renderer) or pairs from N on is refused, never overwritten" in text


def test_synth_quiet_prints_no_progress_bar_or_summary(tmp_path, capsys):
    """synth showed a progress bar that nothing turned off: --quiet does, as on the other long verbs."""
    from rtstereo.cli import main

    assert main(["synth", "1", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "16", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(list((tmp_path / "s" / "RGB_cleanpass" / "left").iterdir())) == 1


def test_synth_resumed_counts_its_progress_from_the_pairs_there_not_as_rendered_at_once(tmp_path, capsys):
    """The pairs already there were one update at the start: a resumed run's rate read millions of pairs/s."""
    import re

    from rtstereo.cli import main

    argv = ["synth", "2", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "16", "--batch-size", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([argv[0], "4", *argv[2:]]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rtstereo synth:")]
    assert lines[0].split("|")[-1].startswith(" 2/4 "), lines  # not 0/4: the two pairs there were not rendered
    rates = [float(rate) for line in lines for rate in re.findall(r"([\d.]+)pair/s", line)]
    assert rates and max(rates) < 1000, lines


def test_synth_interrupted_ends_with_its_interrupted_line_not_a_stale_progress_bar(tmp_path, capsys, monkeypatch):
    """The bar was closed only when Python freed it, after "interrupted", which it then hid."""
    import rtstereo.datasets.synthetic as synthetic
    from rtstereo.cli import main

    render, calls = synthetic.render_scenes, []

    def interrupted_at_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return render(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_scenes", interrupted_at_the_second_batch)
    argv = ["synth", "4", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "16", "--batch-size", "2"]
    assert main(argv) == 130
    # what is on disk and what to do: it said "interrupted" alone
    said = f"rtstereo synth: interrupted: 2 of 4 pairs in {tmp_path / 's'}, each complete; the same command goes on"
    assert capsys.readouterr().err.endswith(f"\n{said} from there\n")


def test_synth_stops_on_sigterm_as_on_ctrl_c_leaving_no_partial_file(tmp_path, capsys, monkeypatch):
    """`kill PID` (a job scheduler's stop) ended the process at once, a hidden partial image left behind."""
    from tests.conftest import sigterm_at_call, sigterm_stand_in

    import rtstereo.io.images as images
    from rtstereo.cli import main

    sigterm_at_call(monkeypatch, images, "write_image", 3)  # at the third image
    argv = ["synth", "4", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "16", "--batch-size", "2"]
    with sigterm_stand_in():
        assert main(argv) == 130
    assert capsys.readouterr().err.endswith(
        f"\nrtstereo synth: interrupted: 0 of 4 pairs in {tmp_path / 's'}, each "
        "complete; the same command goes on from there\n"
    )
    files = sorted(p.relative_to(tmp_path / "s").as_posix() for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert not [name for name in files if "partial" in name], files
    # SIGTERM came while the first pair's left image, written last, was being written: none of its files stays
    assert files == ["synth.json"], files


def test_synth_stopped_by_a_full_disk_leaves_only_whole_pairs_and_a_rerun_finishes(tmp_path, capsys, monkeypatch):
    """A pair cut short left its right image, disparity and mask: eval listed it as a scene and failed on it
    ("the left image ... is missing", exit code 1), train left it out with a warning."""
    import errno

    import rtstereo.io.images as images
    from rtstereo.cli import main
    from rtstereo.datasets import find_samples

    write, calls = images._write_bytes, []

    def full_at_the_second_left_image(path, data):
        calls.append(path)
        if len(calls) == 6:  # pair 0: mask, right and left images; pair 1: mask, right image, then its left
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(path, data)

    monkeypatch.setattr(images, "_write_bytes", full_at_the_second_left_image)
    argv = ["synth", "3", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "16", "-q"]
    assert main(argv) == 1
    left = tmp_path / "s" / "RGB_cleanpass" / "left" / "000001.png"
    assert capsys.readouterr().err == (
        f"rtstereo synth: error: cannot write {left}: No space left on device; 1 of 3 pairs in {tmp_path / 's'}, "
        "each complete: the same command goes on from there once it can write\n"
    )
    files = sorted(p.relative_to(tmp_path / "s").as_posix() for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert not [name for name in files if "000001" in name or "000002" in name], files
    samples = find_samples(tmp_path / "s")
    assert [sample.name for sample in samples] == ["s/000000"] and samples[0].problem is None
    monkeypatch.setattr(images, "_write_bytes", write)
    assert main(argv) == 0
    assert [sample.problem for sample in find_samples(tmp_path / "s")] == [None, None, None]


def test_synth_verb_writes_a_sceneflow_folder_that_reads_back(tmp_path):
    from rtstereo.datasets import find_samples
    from rtstereo.io.images import read_image
    from rtstereo.io.pfm import read_pfm

    out = tmp_path / "synth"
    args = _synth_parser().parse_args(
        [
            "synth",
            "3",
            "-o",
            str(out),
            "--size",
            "32x48",
            "--seed",
            "7",
            "--max-disp",
            "16",
            "--batch-size",
            "2",
        ]
    )
    assert args.func(args) == 0
    for sub in ("RGB_cleanpass/left", "RGB_cleanpass/right", "disparity/left", "occlusion/left"):
        assert len(list((out / sub).iterdir())) == 3, sub
    expected = SyntheticStereo(3, 32, 48, seed=7, max_disp_px=16.0)[2]
    disparity = read_pfm(out / "disparity/left/000002.pfm")
    np.testing.assert_allclose(disparity, expected["disparity"].numpy(), atol=1e-4)
    left = read_image(out / "RGB_cleanpass/left/000002.png")
    assert left.shape == (32, 48, 3)
    np.testing.assert_allclose(left, (expected["left"].permute(1, 2, 0).numpy() * 255).round(), atol=1)
    occlusion = read_image(out / "occlusion/left/000002.png")
    assert set(np.unique(occlusion)) <= {0, 255}
    np.testing.assert_array_equal(occlusion[..., 0] == 255, expected["occluded"].numpy())
    samples = find_samples(out)
    assert len(samples) == 3 and samples[0].dataset == "sceneflow"


def test_synth_verb_files_by_hand_pfm_bytes_and_images_that_agree_with_the_disparity(tmp_path):
    """The written files read without rtstereo's readers: the PFM's header, byte order and row order by hand,
    the images against the disparity by warping, at a size that is no multiple of 8."""
    import cv2

    from rtstereo.cli import main

    out = tmp_path / "s"
    argv = ["synth", "3", "-o", str(out), "--size", "63x97", "--max-disp", "24", "--seed", "1", "-q"]
    assert main(argv) == 0
    rows, columns = np.mgrid[0:63, 0:97].astype(np.float32)
    for index in range(3):
        raw = (out / "disparity" / "left" / f"{index:06d}.pfm").read_bytes()
        header = b"Pf\n97 63\n-1.0\n"  # one channel, width height, negative scale: little-endian
        assert raw.startswith(header) and len(raw) == len(header) + 63 * 97 * 4, raw[:20]
        disparity = np.frombuffer(raw[len(header) :], "<f4").reshape(63, 97)[::-1]  # stored bottom row first
        expected = SyntheticStereo(3, 63, 97, seed=1, max_disp_px=24.0)[index]
        np.testing.assert_array_equal(disparity, expected["disparity"].numpy())
        left, right = (
            cv2.imread(str(out / "RGB_cleanpass" / view / f"{index:06d}.png")).astype(np.float32)
            for view in ("left", "right")
        )
        mask = cv2.imread(str(out / "occlusion" / "left" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (63, 97) and set(np.unique(mask)) <= {0, 255}
        occluded = mask == 255
        assert 0 < occluded.mean() < 0.5

        # the right view sampled at x - d (and a pixel off), against the left view
        error = {
            shift: np.abs(cv2.remap(right, columns - disparity - shift, rows, cv2.INTER_LINEAR) - left).mean(2)
            for shift in (-1.0, 0.0, 1.0)
        }
        # Sensor noise of 5-20 grey levels is in both views: the means tell, single pixels do not.
        visible = error[0.0][~occluded].mean()
        assert visible < 0.5 * error[0.0][occluded].mean(), index
        assert visible < min(error[-1.0][~occluded].mean(), error[1.0][~occluded].mean()), index


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["synth", "2", "-o", "X", "--size", "32"], "--size"),
        (["synth", "2", "-o", "X", "--size", "8x8"], "--size"),
        (["synth", "0", "-o", "X"], "N"),
        (["synth", "2", "-o", "X", "--batch-size", "0"], "--batch-size"),
        (["synth", "2", "-o", "X", "--seed", "-1"], "--seed: expected a whole number from 0 to 2"),  # = 2^63 - 1
        (["synth", "2", "-o", "X", "--seed", str(2**63)], "--seed: expected a whole number from 0 to 2"),  # = 0
        # 2^32 wrote the set of seed 4075032035, each seed from 2^32 on the set of one below it
        (["synth", "2", "-o", "X", "--seed", str(2**32)], "got 4294967296, whose pairs are those of --seed 4075032035"),
        (["synth", "2", "-o", "X", "--max-disp", "0"], "--max-disp"),
        (["synth", "2", "-o", "X", "--max-disp", "nan"], "--max-disp"),
        (["synth", "2", "-o", "X", "--device", "banana"], r"device must be cpu or cuda\[:N\], got 'banana'"),
    ],
)
def test_synth_verb_refuses_bad_arguments(tmp_path, argv, message):
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    args = _synth_parser().parse_args(argv)
    with pytest.raises(InputError, match=message):
        args.func(args)
    assert not (tmp_path / "X").exists()  # refused before anything is written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_synth_verb_refuses_cuda_without_a_gpu_in_one_line(tmp_path, monkeypatch, capsys):
    import rtstereo.cli

    monkeypatch.setattr(rtstereo.cli, "VERBS", ["synth"])
    assert rtstereo.cli.main(["synth", "1", "-o", str(tmp_path / "s"), "--size", "16x16", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and "Traceback" not in err


@pytest.mark.parametrize("under", ["taken/s", "taken/s/deeper"])
def test_synth_verb_under_a_file_names_the_file_in_the_way(tmp_path, capsys, under):
    """It said "cannot write to .../s: [Errno 20] Not a directory: '.../s/RGB_cleanpass/left'" after its warnings."""
    from rtstereo.cli import main

    (tmp_path / "taken").write_text("not a folder")
    output = tmp_path / under
    assert main(["synth", "1", "-o", str(output), "--size", "32x48", "--max-disp", "64"]) == 2
    err = capsys.readouterr().err
    assert err == f"rtstereo synth: error: -o {output}: {tmp_path / 'taken'} is a file, not a folder\n", err


@pytest.mark.parametrize("under", ["link", "link/s"])
def test_synth_verb_through_a_link_to_nothing_names_the_link(tmp_path, capsys, under):
    """It said "cannot write to .../link: File exists", of a path that does not exist."""
    from rtstereo.cli import main

    (tmp_path / "link").symlink_to(tmp_path / "gone" / "set")
    output = tmp_path / under
    assert main(["synth", "1", "-o", str(output), "--size", "32x48", "--max-disp", "8"]) == 2
    said = f"-o {output}: {tmp_path / 'link'} is a link to {tmp_path / 'gone' / 'set'}, which does not exist"
    assert capsys.readouterr().err == f"rtstereo synth: error: {said}\n"
    assert not (tmp_path / "gone").exists()


def test_synth_verb_refuses_a_folder_whose_other_pairs_would_stay(tmp_path):
    from rtstereo.errors import OutputError

    def synth(*extra):
        args = _synth_parser().parse_args(["synth", *extra, "-o", str(tmp_path / "s"), "--size", "16x32"])
        return args.func(args)

    assert synth("2", "--max-disp", "4") == 0
    assert synth("3", "--max-disp", "4") == 0  # the same set, extended
    with pytest.raises(OutputError, match="already holds 3 pairs of this set, up to pair 2; writing 1"):
        synth("1", "--max-disp", "4")
    with pytest.raises(OutputError, match=r"other settings \(seed 0 -> 5\)"):  # not the count, which may grow
        synth("4", "--max-disp", "4", "--seed", "5")
    assert len(list((tmp_path / "s" / "RGB_cleanpass" / "left").iterdir())) == 3
    (tmp_path / "other" / "RGB_cleanpass" / "left").mkdir(parents=True)
    (tmp_path / "other" / "RGB_cleanpass" / "left" / "a.png").write_bytes(b"")
    args = _synth_parser().parse_args(["synth", "1", "-o", str(tmp_path / "other"), "--size", "16x32"])
    with pytest.raises(OutputError, match="holds images .* and no synth.json telling which set they are"):
        args.func(args)
    # a set of its own whose synth.json was removed: it said the images were not written by rtstereo synth
    (tmp_path / "s" / "synth.json").unlink()
    with pytest.raises(OutputError, match="holds images .* and no synth.json telling which set they are") as info:
        synth("3", "--max-disp", "4")
    assert "did not write" not in str(info.value)


@pytest.mark.parametrize(
    ("folder", "name", "said"),
    [
        (("RGB_cleanpass", "right"), "000001.png", "images"),
        (("disparity", "left"), "000000.pfm", "files"),
        (("occlusion", "left"), "000000.png", "files"),
    ],
)
def test_synth_verb_refuses_a_folder_holding_another_sets_files_without_left_images(tmp_path, folder, name, said):
    """Another set's right images or disparity maps, with no left image and no synth.json, were overwritten."""
    from rtstereo.errors import OutputError

    theirs = tmp_path.joinpath("set", *folder, name)
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"theirs")
    args = _synth_parser().parse_args(["synth", "2", "-o", str(tmp_path / "set"), "--size", "16x32"])
    with pytest.raises(OutputError, match=f"holds {said} .*{folder[-1]}.* and no synth.json"):
        args.func(args)
    assert theirs.read_bytes() == b"theirs"
    assert not (tmp_path / "set" / "synth.json").exists()


def test_synth_verb_writes_another_set_into_a_folder_that_holds_no_pair_yet(tmp_path, monkeypatch):
    """A run stopped before its first file (Ctrl+C on a wrong --size) left synth.json alone: the corrected
    command was refused, 'its pairs would stay mixed with the new ones', with no pair there."""
    import json

    import rtstereo.datasets.synthetic as synthetic
    from rtstereo.errors import OutputError

    def synth(size, seed="0"):
        argv = ["synth", "1", "-o", str(tmp_path / "s"), "--size", size, "--max-disp", "4", "--seed", seed, "-q"]
        args = _synth_parser().parse_args(argv)
        return args.func(args)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "render_scenes", stopped)
    assert synth("32x48") == 130
    monkeypatch.undo()
    assert synth("16x32") == 0
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["size_hw"] == [16, 32]
    (tmp_path / "s" / "RGB_cleanpass" / "left" / "000000.png").unlink()  # the other files of pair 0 stay
    with pytest.raises(OutputError, match=r"other settings \(seed 0 -> 1\)"):
        synth("16x32", seed="1")


def test_synth_verb_records_the_renderer_version_and_refuses_another(tmp_path, monkeypatch):
    import json

    import rtstereo
    import rtstereo.datasets.synthetic as synthetic
    from rtstereo.errors import OutputError

    def synth(count):
        args = _synth_parser().parse_args(["synth", count, "-o", str(tmp_path / "s"), "--size", "16x32"])
        return args.func(args)

    assert synth("1") == 0
    written = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert written["renderer_version"] == synthetic.RENDERER_VERSION
    assert written["rtstereo_version"] == rtstereo.__version__
    monkeypatch.setattr(synthetic, "RENDERER_VERSION", synthetic.RENDERER_VERSION + 1)
    with pytest.raises(OutputError, match=rf"renderer version {written['renderer_version']} \(rtstereo "):
        synth("2")  # resuming would mix the two renderers' pairs
    del written["renderer_version"]  # a folder written before the version was recorded
    (tmp_path / "s" / "synth.json").write_text(json.dumps(written))
    with pytest.raises(OutputError, match="from before synth.json recorded it"):
        synth("2")
    assert len(list((tmp_path / "s" / "RGB_cleanpass" / "left").iterdir())) == 1


def test_synth_verb_records_the_devices_and_warns_when_a_resume_renders_elsewhere(tmp_path, monkeypatch, capsys):
    import json

    import rtstereo.cli.synth as synth_verb

    def synth(count, device="cpu"):
        args = _synth_parser().parse_args(
            ["synth", count, "-o", str(tmp_path / "s"), "--size", "16x32", "--max-disp", "4", "--device", device]
        )
        return args.func(args)

    assert synth("1", "cpu:0") == 0  # the CPU by another name: recorded, and compared, as cpu
    assert synth("1") == 0
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["devices"] == ["cpu"]
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setattr(synth_verb, "_device_name", lambda device: "cuda:0 (a GPU)")
    assert synth("2") == 0  # not refused: the same scenes, up to the last bits of float arithmetic
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["devices"] == ["cpu", "cuda:0 (a GPU)"]
    err = capsys.readouterr().err
    assert "warning: the 1 pair already in" in err and "were rendered on cpu, the others now on cuda:0 (a GPU)" in err
    assert synth("3") == 0  # the same device as last time: nothing to say
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["devices"] == ["cpu", "cuda:0 (a GPU)"]
    assert "warning" not in capsys.readouterr().err


def test_synth_the_same_command_on_a_whole_set_writes_nothing(tmp_path, monkeypatch, capsys):
    """A whole set on a read-only disk: the same command again (a job making sure its data is there) was refused,
    'cannot write to DIR: Read-only file system', as it wrote synth.json again; on a GPU it warned of a device that
    rendered nothing, and recorded it."""
    import errno
    import json

    import rtstereo.cli.synth as synth_verb
    from rtstereo.cli import main

    out = tmp_path / "s"
    argv = ["synth", "2", "-o", str(out), "--size", "16x32", "--max-disp", "4"]
    assert main(argv) == 0
    capsys.readouterr()
    record = (out / "synth.json").read_bytes()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(synth_verb, "atomic_path", read_only)
    monkeypatch.setattr(synth_verb, "_device_name", lambda device: "cuda:0 (a GPU)")
    monkeypatch.setattr("rtstereo.__version__", "9.9.9")  # the pairs stay those of the version recorded
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote 0 pairs of 16x32 to {out} (2 already there)\n"
    assert "warning" not in captured.err and "error" not in captured.err, captured.err
    assert (out / "synth.json").read_bytes() == record and json.loads(record)["devices"] == ["cpu"]
    assert main([argv[0], "3", *argv[2:]]) == 2  # a pair to write: the disk's refusal is said
    assert capsys.readouterr().err.endswith(f"error: cannot write to {out}: Read-only file system\n")


def test_synth_verb_renders_a_huge_set_a_batch_at_a_time_with_names_that_sort(tmp_path, monkeypatch):
    """N = 1 000 001 built every pair's seed before the first batch, and pair 1 000 000 was named 1000000.png
    beside 999999.png (which sorts after it)."""
    import rtstereo.cli.synth as synth_verb
    import rtstereo.datasets.synthetic as synthetic
    import rtstereo.datasets.synthetic_random as synthetic_random
    from rtstereo.errors import OutputError

    assert [synth_verb.name_digits(n) for n in (1, 1_000_000, 1_000_001, 10_000_001)] == [6, 6, 7, 8]
    seeds_made: list[int] = []
    item_seeds = synthetic_random.item_seeds

    def counting_seeds(seed, count, *args, **kwargs):
        seeds_made.append(count)
        return item_seeds(seed, count, *args, **kwargs)

    render = synthetic.render_scenes

    def one_batch_only(seeds, *args, **kwargs):
        if render_calls:
            raise KeyboardInterrupt
        render_calls.append(len(seeds))
        return render(seeds, *args, **kwargs)

    render_calls: list[int] = []
    monkeypatch.setattr(synthetic_random, "item_seeds", counting_seeds)
    monkeypatch.setattr(synthetic, "render_scenes", one_batch_only)
    argv = ["synth", "1000001", "-o", str(tmp_path / "big"), "--size", "16x32", "--batch-size", "2", "-q"]
    args = _synth_parser().parse_args(argv)
    assert args.func(args) == 130
    assert max(seeds_made) == 2, seeds_made  # the batch's seeds, not a million of them
    assert sorted(p.name for p in (tmp_path / "big" / "RGB_cleanpass" / "left").iterdir()) == [
        "0000000.png",
        "0000001.png",
    ]
    # A set of 6-digit names cannot grow past a million pairs: the new names would not sort with the old.
    monkeypatch.setattr(synthetic, "render_scenes", render)
    small = ["synth", "2", "-o", str(tmp_path / "small"), "--size", "16x32", "--max-disp", "4", "-q"]
    args = _synth_parser().parse_args(small)
    assert args.func(args) == 0
    args = _synth_parser().parse_args([*small[:1], "1000001", *small[2:]])
    with pytest.raises(
        OutputError,
        match=r"named with 6 digits \(00000[01].png\); 1000001 pairs are named with 7, .* give an N of 1 to 1000000",
    ):
        args.func(args)
    args = _synth_parser().parse_args([*small[:1], str(2**32 + 1), *small[2:]])
    with pytest.raises(InputError, match=r"N: at most 4294967296 pairs"):
        args.func(args)


def test_synth_verb_goes_on_where_an_interrupted_run_stopped(tmp_path, monkeypatch):
    import rtstereo.datasets.synthetic as synthetic

    def synth(folder, count):
        argv = ["synth", count, "-o", str(tmp_path / folder), "--size", "16x32", "--max-disp", "4", "--batch-size", "2"]
        args = _synth_parser().parse_args(argv)
        return args.func(args)

    assert synth("whole", "3") == 0
    render = synthetic.render_scenes
    rendered: list[int] = []

    def counting(seeds, *args, **kwargs):
        if rendered and stop:
            raise KeyboardInterrupt
        rendered.append(len(seeds))
        return render(seeds, *args, **kwargs)

    monkeypatch.setattr(synthetic, "render_scenes", counting)
    stop = True
    assert synth("cut", "6") == 130  # stopped after its first batch: 2 of the 6 pairs its synth.json names
    stop, rendered = False, []
    assert synth("cut", "3") == 0  # fewer than synth.json's 6, but no pair beyond them was written
    assert rendered == [1]  # pair 2 alone: pairs 0 and 1 are there
    for path in sorted((tmp_path / "whole").rglob("*.*")):
        assert path.read_bytes() == (tmp_path / "cut" / path.relative_to(tmp_path / "whole")).read_bytes(), path


def test_synth_verb_resumed_after_a_kill_removes_the_files_it_left_half_written(tmp_path):
    """kill -9 (or the memory killer) leaves hidden partial files, which eval listed as a scene after the rerun."""
    import socket

    from rtstereo.datasets import find_samples

    out = tmp_path / "s"
    argv = ["synth", "1", "-o", str(out), "--size", "16x32", "--max-disp", "4", "-q"]
    args = _synth_parser().parse_args(argv)
    assert args.func(args) == 0
    host = socket.gethostname().split(".")[0]
    dead = 2**22 + 12345  # above Linux's pid_max default: no such process
    stale = [out / "RGB_cleanpass" / view / f".000001.partial-{dead}-0123abcd@{host}.png" for view in ("left", "right")]
    stale.append(out / "disparity" / "left" / f".000001.partial-{dead}-0123abcd@{host}.pfm")
    for path in stale:
        path.write_bytes(b"half")
    args = _synth_parser().parse_args([*argv[:1], "2", *argv[2:]])
    assert args.func(args) == 0
    assert not [path for path in stale if path.exists()]
    assert [sample.name for sample in find_samples(out)] == ["s/000000", "s/000001"]


def test_synth_verb_runs_through_the_console_entry_point(tmp_path, monkeypatch, capsys):
    import rtstereo.cli

    monkeypatch.setattr(rtstereo.cli, "VERBS", ["synth"])
    code = rtstereo.cli.main(["synth", "1", "-o", str(tmp_path / "s"), "--size", "16x16", "--max-disp", "4"])
    assert code == 0
    assert "wrote 1 pair of 16x16" in capsys.readouterr().out  # it said "1 pairs"
    assert rtstereo.cli.main(["synth", "1", "-o", str(tmp_path / "s"), "--size", "bad"]) == 2


def test_noise_lookup_stays_in_the_bank_for_tiny_negative_coordinates():
    """float32 remainder(-1e-9, period) rounds to period; this once crashed 1 render in ~3000."""
    from rtstereo.datasets.synthetic_texture import corner_texels, sample_noise

    bank = torch.rand(2, 9, 9)
    bank[:, -1, :] = bank[:, 0, :]  # periodic, as noise_bank makes it: the last texel repeats the first
    bank[:, :, -1] = bank[:, :, 0]
    u = torch.tensor([-1e-9, -1e-7, 0.0, 7.999999])
    values = sample_noise(corner_texels(bank), 1, u, u.clone())
    assert torch.isfinite(values).all()
    assert values[0] == pytest.approx(bank[1, 0, 0].item(), abs=1e-5)


def test_noise_lookup_is_bilinear_and_periodic():
    from rtstereo.datasets.synthetic_texture import corner_texels, sample_noise

    bank = torch.rand(3, 9, 9)
    bank[:, -1, :] = bank[:, 0, :]
    bank[:, :, -1] = bank[:, :, 0]
    u = torch.tensor([2.25, 2.25 + 8, 2.25 - 16, 7.5])
    v = torch.tensor([5.5, 5.5 - 8, 5.5 + 24, 7.75])
    values = sample_noise(corner_texels(bank), torch.tensor([2.0, 2.0, 2.0, 0.0]), u, v)
    # Texels (x 2..3, y 5..6) of channel 2, weights 0.75/0.25 along x and 0.5/0.5 along y.
    expected = 0.5 * (0.75 * bank[2, 5, 2] + 0.25 * bank[2, 5, 3]) + 0.5 * (0.75 * bank[2, 6, 2] + 0.25 * bank[2, 6, 3])
    assert values[:3] == pytest.approx([expected.item()] * 3, abs=1e-5)
    # Across the wrap: x between texels 7 and 8 (= 0), y between 7 and 8.
    top = 0.5 * (bank[0, 7, 7] + bank[0, 7, 0])
    bottom = 0.5 * (bank[0, 0, 7] + bank[0, 0, 0])
    assert values[3].item() == pytest.approx((0.25 * top + 0.75 * bottom).item(), abs=1e-5)


def test_stripe_bands_repeat_at_any_phase_far_below_zero_too():
    """torch.frac keeps the sign: below a phase of -100 periods (fine stripes far from a layer's centre on a wide
    image) every band was 0, the stripes cut off along a line."""
    from rtstereo.datasets.synthetic_texture import _band

    phase = torch.linspace(-0.5, 0.5, 41, dtype=torch.float32)
    duty, cycles_per_px = torch.tensor(0.3), torch.tensor(0.1)
    one_period = _band(phase, duty, cycles_per_px)
    assert float(one_period.min()) == 0.0 and float(one_period.max()) == 1.0
    for periods in (-400, -101, -100, 37, 400):
        torch.testing.assert_close(_band(phase + periods, duty, cycles_per_px), one_period, atol=2e-3, rtol=0)


def test_lens_blur_is_a_gaussian_with_replicated_edges_per_image():
    from rtstereo.datasets.synthetic_camera import _blur_weights, _gaussian_blur

    image = torch.rand(3, 3, 20, 33)
    sigma = torch.tensor([0.3, 0.9, 1.375])
    blurred = _gaussian_blur(image, sigma)
    weights = _blur_weights(sigma)
    radius = (weights.shape[1] - 1) // 2
    for item in range(3):  # reference: pad by repeating the edge, then a separable convolution
        padded = F.pad(image[item : item + 1], (radius,) * 4, mode="replicate")
        kernel = weights[item]
        rows = F.conv2d(padded.transpose(0, 1), kernel.view(1, 1, 1, -1))
        expected = F.conv2d(rows, kernel.view(1, 1, -1, 1)).transpose(0, 1)
        torch.testing.assert_close(blurred[item : item + 1], expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("view", ["left", "right"])
def test_the_z_buffer_shows_the_nearest_layer_found_by_testing_every_layer_at_every_pixel(view):
    """The tile culling drops no (object, tile) pair that shows the object."""
    from rtstereo.datasets.synthetic_geometry import layer_at, zbuffer
    from rtstereo.datasets.synthetic_scene import sample_scenes

    batch, height, width = 3, 40, 64
    layers = sample_scenes(torch.tensor([5, 17, 29]), height, width, 32.0).layers
    n_layers = layers.data.shape[1]
    b, k, y, x = torch.meshgrid(*(torch.arange(n) for n in (batch, n_layers, height, width)), indexing="ij")
    found = layer_at(layers, (b * n_layers + k).reshape(-1), x.reshape(-1).float(), y.reshape(-1).float(), view)
    found = found.view(batch, n_layers, height, width)
    found = found.masked_fill((layers["active"] == 0)[:, :, None, None], float("-inf"))
    nearest, second = found.topk(2, dim=1).values.unbind(1)
    clear = nearest > second + 0.01  # ties are broken by a key rounded to ~2e-3 px
    assert float(clear.float().mean()) > 0.9
    winner = zbuffer(layers, height, width, view)
    assert torch.equal(winner[clear], found.argmax(1)[clear])


@pytest.mark.parametrize("view", ["left", "right"])
def test_tiles_taken_as_inside_an_object_are_covered_at_every_pixel(view):
    """The z-buffer skips the region test on these tiles, so the test that picks them must be conservative."""
    from rtstereo.datasets.synthetic_geometry import NUM_BACKGROUND, _object_tiles, layer_covers, surface_x
    from rtstereo.datasets.synthetic_random import item_seeds
    from rtstereo.datasets.synthetic_scene import sample_scenes

    tile, height, width = 8, 96, 200
    layers = sample_scenes(item_seeds(3, 12), height, width, 64.0).layers
    n_layers = layers.data.shape[1]
    b, k, ty, tx, inside = _object_tiles(layers, -(-height // tile), -(-width // tile), tile, view)
    assert 0.1 < float(inside.float().mean()) < 1.0
    b, k, ty, tx = (t[inside] for t in (b, k, ty, tx))
    p = layers.rows(b * n_layers + k + NUM_BACKGROUND, trailing=2)
    offsets = torch.arange(tile, dtype=torch.float32)
    qx = (tx * tile).float()[:, None, None] + offsets[None, None, :]
    y = (ty * tile).float()[:, None, None] + offsets[None, :, None]
    xs, found = surface_x(p, qx, y, view)
    covered = layer_covers(p, xs, y)
    assert bool(covered.all()) and (found is None or bool(found.all()))


def test_superellipse_powers_grouped_by_row_match_the_per_point_choice():
    from rtstereo.datasets.synthetic_geometry import POWERS, _superellipse_level, power_groups

    power = torch.tensor(POWERS)[torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(0))]
    u, v = torch.randn(50, 7), torch.randn(50, 7)
    order, groups = power_groups(power)
    assert sum(groups) == 50 and torch.equal(power[order], power.sort().values)
    grouped = _superellipse_level(None, u[order], v[order], groups)
    torch.testing.assert_close(grouped, _superellipse_level(power[order, None], u[order], v[order]))
    torch.testing.assert_close(grouped[:, 0], u[order, 0].abs() ** power[order] + v[order, 0].abs() ** power[order])


def test_sensor_noise_rows_are_distinct_standard_normal_fields():
    from rtstereo.datasets.synthetic_camera import sensor_noise

    keys = torch.tensor([12345, 67890])
    field = sensor_noise((2, 3, 64, 96), keys, torch.device("cpu"))
    assert torch.equal(field, sensor_noise((2, 3, 64, 96), keys, torch.device("cpu")))
    assert abs(float(field.mean())) < 0.05 and abs(float(field.std()) - 1.0) < 0.05
    rows = field.reshape(-1, 96)
    # No row repeats another (shifted copies would put the same noise at two places).
    assert float(torch.corrcoef(rows).fill_diagonal_(0).abs().max()) < 0.6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_cpu_renderer_keeps_freed_memory_for_reuse():
    import platform

    from rtstereo.datasets.synthetic import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc")
    assert keep_freed_memory() and keep_freed_memory()  # set once, then reported


def test_layer_lookups_accept_no_points():
    """The occlusion check may have no pixel to look at (and the z-buffer no object tile)."""
    from rtstereo.datasets.synthetic_geometry import layer_at
    from rtstereo.datasets.synthetic_scene import sample_scenes

    layers = sample_scenes([1], 32, 48, 16.0).layers
    none = torch.zeros(0)
    for view in ("left", "right"):
        assert layer_at(layers, torch.zeros(0, dtype=torch.long), none, none, view).shape == (0,)


def test_regression_seed_that_crashed_the_renderer():
    item = SyntheticStereo(8, 128, 256, seed=140737488355527, max_disp_px=96.0)[2]
    assert torch.isfinite(item["disparity"]).all()


def test_synth_warns_when_the_range_reaches_the_image_width(tmp_path, capsys):
    args = _synth_parser().parse_args(["synth", "1", "-o", str(tmp_path / "s"), "--size", "32x48", "--max-disp", "48"])
    assert args.func(args) == 0
    assert "warning: --max-disp 48 is not below the image width (48 px)" in capsys.readouterr().err


def test_synth_refuses_an_unwritable_output_before_warning_about_the_range(tmp_path, capsys):
    """The range warning came first, over an output that could not be written at all."""
    from rtstereo.cli import main

    (tmp_path / "file").write_text("not a folder")
    argv = ["synth", "1", "-o", str(tmp_path / "file" / "s"), "--size", "16x32", "--max-disp", "48"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rtstereo synth: error: -o {tmp_path / 'file' / 's'}: ") and "warning" not in err


def test_synth_refuses_a_batch_beyond_the_memory_budget_before_writing_anything(tmp_path, capsys, monkeypatch):
    """--size 100000x100000 was ended by the kernel's memory killer, with no message and a synth.json left."""
    from rtstereo.cli import main

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "10M")
    out = tmp_path / "s"
    assert main(["synth", "2", "-o", str(out), "--size", "64x128", "--max-disp", "32", "--batch-size", "2", "-q"]) == 0
    assert main(["synth", "6", "-o", str(out), "--size", "64x128", "--batch-size", "5"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo synth: error: --size 64x128 at --batch-size 5 needs about 12 MB to render, more than the 10 MB "
        "budget (RTSTEREO_MEMORY_BUDGET=10M): give --batch-size 4 or less\n"
    )
    assert main(["synth", "5", "-o", str(out), "--size", "64x128", "--batch-size", "64"]) == 2
    assert "at 5 pairs per batch (N = 5) needs about 12 MB" in capsys.readouterr().err
    assert main(["synth", "1", "-o", str(tmp_path / "big"), "--size", "256x256"]) == 2
    assert capsys.readouterr().err.endswith("budget (RTSTEREO_MEMORY_BUDGET=10M): give a smaller --size\n")
    assert not (tmp_path / "big").exists()
    # A batch never holds more than the N pairs asked for: 3 pairs at once fit, however large --batch-size is.
    assert main(["synth", "3", "-o", str(out), "--size", "64x128", "--max-disp", "32", "--batch-size", "64", "-q"]) == 0


def test_synth_batch_beyond_the_gpus_memory_is_one_line_and_a_smaller_batch_goes_on(tmp_path, capsys, monkeypatch):
    """torch's OutOfMemoryError (--device cuda, whose memory the budget check does not weigh) was a traceback."""
    import rtstereo.datasets.synthetic as synthetic
    from rtstereo.cli import main

    render = synthetic.render_scenes

    def out_of_memory_at_four(seeds, *args, **kwargs):
        if len(seeds) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return render(seeds, *args, **kwargs)

    monkeypatch.setattr(synthetic, "render_scenes", out_of_memory_at_four)
    argv = ["synth", "6", "-o", str(tmp_path / "s"), "--size", "16x32", "--max-disp", "4", "-q"]
    assert main([*argv, "--batch-size", "2"]) == 0
    assert main([argv[0], "9", *argv[2:], "--batch-size", "4"]) == 2
    assert capsys.readouterr().err == (
        "rtstereo synth: error: --size 16x32 at --batch-size 4 does not fit in the memory of cpu: give a smaller "
        "--batch-size (the 6 pairs written stay: the command goes on from there)\n"
    )
    assert main([argv[0], "9", *argv[2:], "--batch-size", "2"]) == 0
    assert len(list((tmp_path / "s" / "RGB_cleanpass" / "left").iterdir())) == 9


def test_synth_verb_with_a_file_where_a_folder_of_the_set_goes_names_it(tmp_path):
    """It said "cannot write to set: [Errno 20] Not a directory: 'set/disparity/left'"."""
    from rtstereo.errors import OutputError

    root = tmp_path / "set"
    blocker = root / "disparity"  # a file where the set's disparity folder goes
    root.mkdir()
    blocker.write_text("x")
    args = _synth_parser().parse_args(["synth", "1", "-o", str(root), "--size", "16x32", "--max-disp", "4", "-q"])
    with pytest.raises(OutputError) as info:
        args.func(args)
    assert str(info.value) == f"cannot write to {root}: {blocker} is a file, not a folder"


def test_synth_takes_a_batch_size_beyond_2_to_the_63_as_all_n_pairs_at_once(tmp_path):
    """--batch-size 10^20 ended in islice's ValueError traceback; a batch holds at most the N pairs asked for."""
    from rtstereo.cli import main

    out = tmp_path / "s"
    argv = ["synth", "2", "-o", str(out), "--size", "16x32", "--max-disp", "4", "--batch-size", str(10**20), "-q"]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "RGB_cleanpass" / "left").iterdir()) == ["000000.png", "000001.png"]
