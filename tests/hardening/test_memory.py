"""Memory known before work starts: the estimate, the budget, a lower-resolution pass or a one-line refusal."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import rtstereo
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.runtime import memory
from rtstereo.runtime.memory import Budget, MemoryBudgetError, estimate_peak_bytes, parse_bytes, plan_network_size

LARGE_HW = (1200, 1800)  # 2.16 Mpx: about 115 MB for SGBM by the estimate


@pytest.fixture(scope="module")
def large_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    texture = np.random.default_rng(0).integers(0, 256, (LARGE_HW[0], LARGE_HW[1] + 8), dtype=np.uint8)
    cv2.imwrite(str(folder / "left.png"), texture[:, :-8])
    cv2.imwrite(str(folder / "right.png"), texture[:, 8:])
    return str(folder / "left.png"), str(folder / "right.png")


def test_sizes_are_parsed_and_bad_ones_refused():
    assert parse_bytes("1.5G") == 3 << 29 and parse_bytes("64KiB") == 64 << 10 and parse_bytes("100") == 100
    with pytest.raises(InputError, match="RTSTEREO_MEMORY_BUDGET='lots' not understood"):
        parse_bytes("lots")


@pytest.mark.parametrize("text", ["0", "-1G", "0.5", "inf", "-inf", "nan"])
def test_a_budget_of_no_size_is_refused(text):
    """inf raised a bare OverflowError; 0 and -1G refused every pair against "a 0 KB budget", "-1048576 KB"."""
    with pytest.raises(InputError, match=f"MEMORY_BUDGET='{text}' not understood: expected a size of at least 1 byte"):
        parse_bytes(text)


@pytest.mark.parametrize("text", ["2ib", "2i", "5 k b", "2GG", "G", "1e"])
def test_a_budget_with_letters_that_are_no_unit_is_refused(text):
    """'2ib' was read as 2 bytes: a trailing 'b' and 'i' were dropped whatever stood before them."""
    with pytest.raises(InputError, match=f"MEMORY_BUDGET='{text}' not understood: expected a size of at least 1 byte"):
        parse_bytes(text)


@pytest.mark.parametrize(
    "text, count", [("2Gi", 2 << 30), ("512MB", 512 << 20), ("1.5 GiB", 3 << 29), ("64kb", 64 << 10), ("100B", 100)]
)
def test_the_forms_of_a_budget_the_readme_names_are_read(text, count):
    assert parse_bytes(text) == count


def test_a_budget_of_spaces_is_unset_as_an_empty_one(monkeypatch):
    """RTSTEREO_MEMORY_BUDGET='' was the machine's budget and ' ' refused, where RTSTEREO_THREADS reads both as
    unset."""
    monkeypatch.setattr(memory, "_available_bytes", lambda: 1 << 30)
    for text in ("", " ", "\t"):
        monkeypatch.setenv(memory.BUDGET_ENV, text)
        assert memory.memory_budget() == Budget(int(0.8 * (1 << 30)), "80 % of the available memory")
        memory.check_budget_setting()
    monkeypatch.setenv(memory.BUDGET_ENV, " 3G ")
    assert memory.memory_budget() == Budget(3 << 30, "RTSTEREO_MEMORY_BUDGET=3G")


def test_eval_refuses_a_budget_that_is_no_size_before_any_scene(capsys, monkeypatch, tmp_path):
    """Each scene asked the budget: RTSTEREO_MEMORY_BUDGET=garbage failed every scene, wrote the results of none and
    ended with exit code 1, a usage error read as a failed run."""
    from ..conftest import run_cli, shared_path

    scenes = shared_path("data", "real", "middlebury2001")
    monkeypatch.setenv(memory.BUDGET_ENV, "garbage")
    code, out, err = run_cli(capsys, "eval", scenes, "--model", "sgbm", "--max-disp", 16, "-o", tmp_path / "o", "-q")
    assert (code, out) == (2, ""), err
    assert err == (
        "rtstereo eval: error: RTSTEREO_MEMORY_BUDGET='garbage' not understood: expected a size of at least 1 byte, "
        "such as 2G or 512M\n"
    )
    assert not (tmp_path / "o").exists()


def test_the_budget_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv(memory.BUDGET_ENV, "3G")
    assert memory.memory_budget() == Budget(3 << 30, "RTSTEREO_MEMORY_BUDGET=3G")
    monkeypatch.delenv(memory.BUDGET_ENV)
    budget = memory.memory_budget()
    assert 0 < budget.bytes < 1 << 50 and "available memory" in budget.source
    monkeypatch.setattr(memory, "_available_bytes", lambda: None)
    assert memory.memory_budget().source == "unknown available memory"


def test_estimates_grow_with_the_size_and_for_cost_volumes_with_the_range():
    small, large = (estimate_peak_bytes("rtnet-v5", "onnx", 192, hw) for hw in ((480, 640), (960, 1280)))
    assert large == 4 * small
    narrow, wide = (estimate_peak_bytes("gwcnet-gc", "network", d, (480, 640)) for d in (96, 192))
    assert wide > 1.9 * narrow
    assert estimate_peak_bytes("my-net", "network", None, (100, 100)) > estimate_peak_bytes(
        "bm", "classical", 64, (100, 100)
    )
    assert estimate_peak_bytes("sgbm", "classical", 64, (100, 100), net_hw=(50, 50)) < estimate_peak_bytes(
        "sgbm", "classical", 64, (100, 100)
    )


def test_plan_keeps_the_aspect_and_the_divisor_and_fits_the_budget():
    budget = Budget(600 << 20, "test")
    height, width = plan_network_size("rtnet-v5", "onnx", 192, (3000, 4000), 32, budget=budget)
    assert height % 32 == 0 and width % 32 == 0 and abs(width / height - 4 / 3) < 0.05
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (3000, 4000), (height, width)) <= budget.bytes
    # the largest such size: one divisor more on both sides is over the budget. By hand: the network's room is
    # 600 MiB - 32 B x 12 MP = 245.1 MB, at 560 B/px a scale of sqrt(245.1e6 / 6.72e9) = 0.191: 573x764 -> 544x736
    assert (height, width) == (544, 736)
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (3000, 4000), (height + 32, width + 32)) > budget.bytes


def test_a_network_is_estimated_at_its_padded_size():
    """rtnet-v5 pads to multiples of 32 and works there: 33x6000 ran at 64x6016 and grew the process by 225 MB, where
    the estimate at the input's size said 117 MB and let it through a budget between the two."""
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (33, 6000), size_divisor=32) == estimate_peak_bytes(
        "rtnet-v5", "onnx", 192, (33, 6000), net_hw=(64, 6016)
    )
    # 1025x1024 runs at 1056x1024: over a budget that the unpadded size would fit, it runs at 1024x1024
    unpadded = estimate_peak_bytes("rtnet-v5", "onnx", 192, (1025, 1024))
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (1025, 1024), size_divisor=32) > unpadded
    budget = Budget(unpadded, "test")
    assert plan_network_size("rtnet-v5", "onnx", 192, (1025, 1024), 32, budget=budget) == (1024, 1024)
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (1025, 1024), (1024, 1024), 32) <= budget.bytes
    # sizes already multiples of the divisor, and classical methods, are estimated as before
    assert estimate_peak_bytes("rtnet-v5", "onnx", 192, (1024, 1024), size_divisor=32) < unpadded
    assert plan_network_size("sgbm", "classical", 64, (1025, 1024), budget=Budget(60 << 20, "test")) is None


@pytest.mark.parametrize("model", ["rtnet-v5", "rtnet-guided", "hybrid"])
def test_rtnets_row_correlation_is_estimated_for_wide_pairs(model):
    """rtnet's correlation is a (h/4, w/4, w/4) product per pair: w / 16 bytes per pixel. Measured growth of the
    process (ru_maxrss) with rtnet-v5: 400x16000 7.8 GB, 100x33000 10.25 GB, where the estimate said 3.8 and 2.5 GB
    and let both through budgets they exceeded."""
    assert estimate_peak_bytes(model, "onnx", 192, (400, 16000), size_divisor=32) > 7.8e9
    assert estimate_peak_bytes(model, "onnx", 192, (100, 33000), size_divisor=32) > 10.25e9
    # widths up to the 2560 px the factors were measured at are estimated as before
    per_px = memory.BYTES_PER_PX[model] + memory.IO_BYTES_PER_PX
    assert estimate_peak_bytes(model, "onnx", 192, (480, 640), size_divisor=32) == per_px * 480 * 640
    assert estimate_peak_bytes(model, "onnx", 192, (1920, 2560), size_divisor=32) == per_px * 1920 * 2560
    # a wide pair over the budget runs at the largest size that fits
    budget = Budget(2 << 30, "test")
    height, width = plan_network_size(model, "onnx", 192, (400, 16000), 32, budget=budget)
    assert estimate_peak_bytes(model, "onnx", 192, (400, 16000), (height, width)) <= budget.bytes
    assert estimate_peak_bytes(model, "onnx", 192, (400, 16000), (height + 32, width + 32)) > budget.bytes


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (dict(input_hw=(12000, 12000)), "the inputs alone exceed the budget"),
        (dict(input_hw=(3000, 3000), fixed_size_hw=(3000, 3000)), "a fixed-shape export cannot shrink"),
        (dict(input_hw=(1500, 4000), max_disp_px=3800), "the reduced width would not exceed the range"),
    ],
)
def test_plan_refuses_in_one_line_with_what_to_do(args, why):
    with pytest.raises(MemoryBudgetError) as info:
        max_disp = args.pop("max_disp_px", 64)
        plan_network_size("sgbm", "classical", max_disp, budget=Budget(300 << 20, "test"), **args)
    message = str(info.value)
    height, width = args["input_hw"]
    assert message.startswith(f"sgbm on a {height}x{width} (HxW) pair needs about "), why
    assert "more than the 300 MB budget (test)" in message and "resize the images to at most " in message
    assert "RTSTEREO_MEMORY_BUDGET" in message and "\n" not in message
    # the size it suggests fits (it was half the size, whatever the budget)
    h, w = map(int, re.search(r"at most (\d+)x(\d+) \(HxW\)", message).groups())
    args["input_hw"] = (h, w)
    assert plan_network_size("sgbm", "classical", max_disp, budget=Budget(300 << 20, "test"), **args) is None


@pytest.mark.parametrize("budget", ["40M", "100M", "150M"])
def test_a_cost_volume_too_large_is_told_a_size_and_range_that_fit(budget):
    budget = Budget(parse_bytes(budget), "test")
    with pytest.raises(MemoryBudgetError) as info:  # 640x480 with 192 levels: about 1.5 GB
        plan_network_size("gwcnet-gc", "network", 192, (480, 640), 16, budget=budget)
    message = str(info.value)
    # it said "e.g. to 320x240", where 192 levels need 396 MB
    h, w, levels = map(int, re.search(r"at most (\d+)x(\d+) \(HxW\) with --max-disp (\d+)", message).groups())
    assert w % 16 == 0 and h % 16 == 0 and levels % 16 == 0 and w > levels
    assert plan_network_size("gwcnet-gc", "network", levels, (h, w), 16, budget=budget) is None
    assert plan_network_size("gwcnet-gc", "network", levels, (h + 16, w + 16), 16, budget=budget) is not None
    kept = re.search(r"keep their size with --max-disp (\d+)", message)
    if kept:
        assert plan_network_size("gwcnet-gc", "network", int(kept[1]), (480, 640), 16, budget=budget) is None


def test_a_range_beyond_the_width_is_told_the_range_that_fits_at_the_pairs_size():
    """GwcNet at --max-disp 1600000 on a 320x240 pair: every smaller size is narrower than its scaled range, and the
    line said no size fits and to choose another method, where --max-disp 320 (a disparity stays below the width)
    fits at the pair's own size."""
    budget = Budget(2 << 30, "test")
    with pytest.raises(MemoryBudgetError) as info:
        plan_network_size("gwcnet-g", "network", 1_600_000, (240, 320), 16, budget=budget)
    message = str(info.value)
    assert message.endswith(
        "lower --max-disp to at most 320 (max_disp= in Python), which fits at the pair's own "
        "size, or set RTSTEREO_MEMORY_BUDGET if the machine has more memory"
    ), message
    assert plan_network_size("gwcnet-g", "network", 320, (240, 320), 16, budget=budget) is None
    # and a range the budget bounds below the width is named as before
    with pytest.raises(MemoryBudgetError, match=r"lower --max-disp to at most (\d+) ") as info:
        plan_network_size("gwcnet-g", "network", 1_600_000, (240, 320), 16, budget=Budget(300 << 20, "test"))
    levels = int(re.search(r"at most (\d+) ", str(info.value))[1])
    assert (
        16 <= levels < 320
        and plan_network_size("gwcnet-g", "network", levels, (240, 320), 16, budget=Budget(300 << 20, "test")) is None
    )


def test_nothing_that_fits_is_said_so():
    with pytest.raises(MemoryBudgetError, match="no smaller size of this pair fits either: set RTSTEREO_MEMORY"):
        plan_network_size("gwcnet-gc", "network", 192, (480, 640), 16, budget=Budget(1 << 20, "test"))
    with pytest.raises(
        MemoryBudgetError, match=r"its export's fixed size 480x640 \(HxW\) does not fit: export it at a smaller"
    ):
        plan_network_size("rtnet-v5", "onnx", 192, (480, 640), 32, (480, 640), budget=Budget(10 << 20, "test"))


def test_a_large_pair_over_a_small_budget_stops_at_once(capsys, monkeypatch, large_pair):
    monkeypatch.setenv(memory.BUDGET_ENV, "40M")
    start = time.perf_counter()
    code = main(["predict", *large_pair, "--model", "sgbm", "--max-disp", "64"])
    elapsed_s = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed_s < 5
    assert err == (
        "rtstereo predict: error: sgbm on a 1200x1800 (HxW) pair needs about 115 MB, more than the 40 MB budget "
        "(RTSTEREO_MEMORY_BUDGET=40M): resize the images to at most 706x1060 (HxW), the largest size that fits, or set "
        "RTSTEREO_MEMORY_BUDGET if the machine has more memory\n"
    )


def test_a_budget_under_a_kilobyte_is_said_in_bytes():
    """RTSTEREO_MEMORY_BUDGET=500 was refused against "the 0 KB budget"."""
    with pytest.raises(MemoryBudgetError, match=r"needs about 189 KB, more than the 500 B budget \(a test\)"):
        plan_network_size("sgbm", "classical", 16, (48, 72), budget=Budget(500, "a test"))
    assert memory.format_bytes_apart(600, 500) == ("600 B", "500 B")
    assert memory.format_bytes_apart(2000, 1000) == ("2 KB", "1000 B")


def test_a_budget_is_said_as_given_not_rounded_to_a_whole_number():
    """RTSTEREO_MEMORY_BUDGET=1.5K was said as "the 2 KB budget", 1.25G as "1.2 GB"."""
    with pytest.raises(MemoryBudgetError, match=r"needs about 189 KB, more than the 1\.5 KB budget \(a test\)"):
        plan_network_size("sgbm", "classical", 16, (48, 72), budget=Budget(memory.parse_bytes("1.5K"), "a test"))
    assert memory.format_bytes_apart(3 * 2**30, memory.parse_bytes("1.25G")) == ("3.0 GB", "1.25 GB")
    assert memory.format_bytes_apart(3 * 2**30, memory.parse_bytes("2.5M")) == ("3.0 GB", "2.5 MB")
    assert memory.format_bytes_apart(3 * 2**30, 512 * 2**20) == ("3.0 GB", "512 MB")  # whole numbers stay whole
    assert memory.format_bytes_apart(3 * 2**30, 16.123 * 2**30) == ("3.0 GB", "16.1 GB")  # 0.5 % is enough


def test_an_estimate_just_over_the_budget_is_not_said_to_equal_it():
    """The hybrid on a 64x128 pair (5.1 MB) against a 5 MB budget: "needs about 5 MB, more than the 5 MB budget"."""
    with pytest.raises(MemoryBudgetError, match=r"needs about 5\.1 MB, more than the 5\.0 MB budget \(test\)"):
        plan_network_size("hybrid", "hybrid", 192, (64, 128), 32, budget=Budget(5 << 20, "test"))
    with pytest.raises(MemoryBudgetError, match=r"needs about 1\.5 GB, more than the 100 MB budget \(test\)"):
        plan_network_size("gwcnet-gc", "network", 192, (480, 640), 16, budget=Budget(100 << 20, "test"))


def test_a_large_pair_over_a_tight_budget_runs_at_a_lower_resolution(monkeypatch, large_pair, tmp_path):
    monkeypatch.setenv(memory.BUDGET_ENV, "80M")
    from rtstereo.runtime.predictor import ResizeWarning

    # On a terminal the warning is one "rtstereo predict: warning: ..." line (test_messages checks the format).
    with pytest.warns(
        ResizeWarning, match=r"sgbm on 1200x1800 \(HxW\) would need more memory than the budget: it runs at "
    ):
        code = main(["predict", *large_pair, "--model", "sgbm", "--max-disp", "64", "-o", str(tmp_path / "d.npy")])
    assert code == 0
    disparity = np.load(tmp_path / "d.npy")
    assert disparity.shape == LARGE_HW
    assert np.nanmedian(disparity) == pytest.approx(8, abs=1.5)  # rescaled back to the input's pixels


def test_the_predictor_records_the_reduced_size(monkeypatch):
    monkeypatch.setenv(memory.BUDGET_ENV, "12M")
    image = np.random.default_rng(1).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    with pytest.warns(rtstereo.runtime.predictor.ResizeWarning, match="runs at"):
        result = rtstereo.load("sgbm", max_disp=32).predict(image, image)
    assert result.input_size_hw == (400, 600) and result.network_size_hw[1] < 600
    assert result.disparity_px.shape == (400, 600)


def test_memory_kept_for_reuse_is_handed_back_before_a_pair_is_run_smaller(monkeypatch):
    """A model loaded for the CPU keeps the memory the process frees (keep_freed_memory), which the system counts as
    used: a pair after a large one would have been run smaller than alone; that memory is handed back first."""
    budgets = iter([Budget(1 << 30, "before"), Budget(4 << 30, "after")])
    released = []
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)
    monkeypatch.setattr(memory, "memory_budget", lambda: next(budgets))
    monkeypatch.setattr(memory, "release_freed_memory", lambda: released.append(True) or True)
    assert plan_network_size("rtnet-v5", "onnx", 192, (1920, 2560), 32) is None
    assert released == [True]
    # a budget given, or nothing handed back: planned as before
    monkeypatch.setattr(memory, "release_freed_memory", lambda: False)
    budgets = iter([Budget(1 << 30, "before"), Budget(4 << 30, "after")])
    assert plan_network_size("rtnet-v5", "onnx", 192, (1920, 2560), 32) is not None


def test_keeping_freed_memory_can_be_declined_from_the_environment():
    """Loading a model changes process-wide settings of malloc; an application that tunes malloc itself must be
    able to say no: with RTSTEREO_KEEP_FREED_MEMORY=0 no mallopt call is made, and the call says so."""
    script = (
        "import ctypes\n"
        "calls = []\n"
        "class Libc:\n"
        "    def mallopt(self, *args):\n"
        "        calls.append(args)\n"
        "        return 1\n"
        "ctypes.CDLL = lambda name: Libc()\n"
        "from rtstereo.runtime import heap\n"
        "print(heap.keep_freed_memory(), len(calls))\n"
    )
    env = {**os.environ, "RTSTEREO_KEEP_FREED_MEMORY": "0"}
    declined = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert declined.stdout.split() == ["False", "0"], declined.stderr
    env["RTSTEREO_KEEP_FREED_MEMORY"] = "1"
    kept = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    expected = "True" if sys.platform == "linux" and platform.libc_ver()[0] == "glibc" else "False"
    assert kept.stdout.split()[0] == expected, kept.stderr


@pytest.mark.parametrize("value, wanted", [("false", False), ("Off", False), ("no", False), (" 0 ", False), ("", True)])
def test_keeping_freed_memory_is_declined_by_any_word_for_no(monkeypatch, value, wanted):
    """RTSTEREO_KEEP_FREED_MEMORY=false (or no, off) kept the freed memory, unsaid: only "0" declined."""
    from rtstereo.runtime import heap

    monkeypatch.setenv(heap.KEEP_ENV, value)
    assert heap._keep_wanted() is wanted


def test_keeping_freed_memory_set_to_no_switch_is_refused_in_one_line(capsys, monkeypatch, tmp_path):
    from rtstereo.runtime import heap

    from ..conftest import make_textured_pair, run_cli

    paths = [tmp_path / "l.png", tmp_path / "r.png"]
    for path, image in zip(paths, make_textured_pair(32, 48)):
        cv2.imwrite(str(path), image)
    monkeypatch.setattr(heap, "_MALLOC_TUNED", [])  # asked again, as in a new process
    monkeypatch.setenv(heap.KEEP_ENV, "maybe")
    code, out, err = run_cli(capsys, "predict", *paths, "--model", "sgbm", "--max-disp", 16, "-o", tmp_path / "o")
    assert (code, out) == (2, ""), err
    assert err == (
        "rtstereo predict: error: RTSTEREO_KEEP_FREED_MEMORY must be 0 or 1 (false or true, no or yes, off or on), "
        "got 'maybe'\n"
    )
    assert not (tmp_path / "o").exists()


GOLDEN = os.path.join("fixtures", "golden")
BEFORE_LOAD_CASES = [
    ("sgbm", {}, None),
    ("sgbm", {"max_disp": 17}, None),  # searched as 32
    ("bm", {"max_disp": "40", "fill_left_border": True}, None),  # a --set string; a switch every model takes
    ("rtnet-v5", {}, None),
    ("rtnet-guided", {"max_disp": 192}, None),
    ("default", {"max_disp": 64}, None),  # SGBM's range; the plan is its network's
    ("hybrid", {"network": "rtnet-guided", "threads": 1}, None),
    ("gwcnet-g", {"max_disp": 48}, ("gwcnet-g_maxdisp48.ckpt",)),
    ("anynet", {}, ("..", "..", "weights", "anynet", "anynet_sceneflow.tar")),
    ("crestereo", {"iters": 2}, ("crestereo_random.pth",)),
]


@pytest.mark.filterwarnings("ignore:rtnet-guided is a guided network")
@pytest.mark.parametrize("model, settings, weights", BEFORE_LOAD_CASES, ids=lambda v: str(v) if v else "-")
def test_the_plan_known_before_loading_is_the_loaded_models(model, settings, weights, monkeypatch):
    """video and live ask the memory budget before they load the model (seconds with torch), from the registry: the
    plan must be the loaded predictor's, refusals in the same words, at every size and budget."""
    from ..conftest import shared_path

    weights_path = str(shared_path(*GOLDEN.split(os.sep), *weights)) if weights else None
    early = rtstereo.api.memory_plan_before_load(model, settings)
    assert early is not None
    loaded = rtstereo.load(model, weights=weights_path, settings=settings)
    seen = set()
    for budget in ("300K", "40M", "100M", "2G"):
        monkeypatch.setenv(memory.BUDGET_ENV, budget)
        for size_hw in ((48, 72), (480, 640), (1200, 1800), (2000, 3000), (100, 16000)):
            outcomes = []
            for plan in (early, loaded.memory_plan):
                try:
                    outcomes.append(plan(size_hw))
                except MemoryBudgetError as exc:
                    outcomes.append(str(exc))
            assert outcomes[0] == outcomes[1], (budget, size_hw, outcomes)
            seen.add(type(outcomes[0]))
    assert seen == {type(None), tuple, str}  # run as asked, run smaller, refused: each compared


@pytest.mark.parametrize(
    "model, settings, backend",
    [
        ("nets/m.onnx", {}, None),  # a file: an export may fix its size
        ("hybrid", {"network": "rtnet-v5"}, None),  # another network than its own
        ("gwcnet-g", {}, "onnxruntime"),  # another backend than its own
        ("rtnet-v5", {"max_disp": 64}, None),  # load refuses it, and says why
        ("sgbm", {"max_disp": "many"}, None),
        ("no-such-model", {}, None),
        (5, {}, None),  # of types load refuses: os.fspath's TypeError, settings.items()'s AttributeError
        ("sgbm", "max_disp=64", None),
    ],
)
def test_no_plan_before_loading_where_only_the_loaded_model_knows_it(model, settings, backend):
    assert rtstereo.api.memory_plan_before_load(model, settings, backend) is None
