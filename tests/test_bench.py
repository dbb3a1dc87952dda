"""``rtstereo bench``: the sweep's cases, measurements, ratios, accuracy at another resolution, outputs."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import rtstereo
from rtstereo import bench
from rtstereo.bench import (
    BenchCase,
    BenchReport,
    BenchRow,
    PeakRSS,
    ResizedPredictor,
    _add_ratios,
    _ratio,
    expand_cases,
    machine_info,
    parse_list,
    run_bench,
    synthetic_pair,
)
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.runtime.onnx import HalfOnCpuWarning
from rtstereo.text import counted
from rtstereo.types import DisparityResult

from .conftest import write_middlebury_scene

SIZE_HW = (32, 48)


def _json_notes(folder) -> list[str]:
    return json.loads((folder / "bench.json").read_text())["notes"]


@pytest.fixture
def tiny_dataset(tmp_path):
    """One Middlebury-2014-style scene: a textured pair shifted by 6 px, with its ground truth."""
    write_middlebury_scene(tmp_path / "data" / "scene", *synthetic_pair((48, 96), disparity_px=6), 6.0)
    return tmp_path / "data"


# --- cardinality: the sweep ------------------------------------------------------------------------------


def test_the_table_says_when_opencv_searched_more_than_asked():
    report = run_bench(["sgbm"], [SIZE_HW], sweeps={"max_disp": [20]}, warmup=1, runs=1, threads=1)
    assert "|20 (32 searched)|" in report.table()  # OpenCV searches a multiple of 16


def test_networks_sweep_backends_and_precisions_classical_methods_do_not():
    cases, notes = expand_cases(
        ["anynet", "sgbm"],
        [(32, 48), (64, 96)],
        {"max_disp": [16, 32]},
        ["fp32", "fp16"],
        ["torch", "onnxruntime"],
    )
    anynet = [c for c in cases if c.model == "anynet"]
    sgbm = [c for c in cases if c.model == "sgbm"]
    assert len(anynet) == 2 * 2 * 2 and {c.settings for c in anynet} == {()}
    assert len(sgbm) == 2 * 2 and {c.backend for c in sgbm} == {"opencv"} and {c.precision for c in sgbm} == {"-"}
    assert notes == ["anynet has no setting max_disp: not swept for it"]


def test_a_network_on_the_opencv_backend_only_is_noted():
    cases, notes = expand_cases(["anynet"], [SIZE_HW], {}, ["fp32"], ["opencv"])
    assert cases == [] and "anynet is a network" in notes[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backends": ["tensorrt"]}, "unknown backend 'tensorrt'"),
        ({"precisions": ["int8"]}, "unknown precision 'int8'"),
        ({"sizes": []}, "no sizes to benchmark"),
        ({"models": []}, "models: an empty list"),
        ({"precisions": []}, "precisions: an empty list"),
        ({"backends": []}, "backends: an empty list"),
        ({"sweeps": {"max_disp": []}}, "max_disp: an empty list"),
    ],
)
def test_bad_sweep_options_are_refused(kwargs, message):
    options = {
        "models": ["sgbm"],
        "sizes": [SIZE_HW],
        "sweeps": {},
        "precisions": ["fp32"],
        "backends": ["torch"],
    }
    with pytest.raises(InputError, match=message):
        expand_cases(**{**options, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"warmup": 0}, "warmup must be >= 1, got 0"),
        ({"runs": 0}, "runs must be >= 1, got 0"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"threads": "2"}, "threads: expected a whole number of threads >= 1, got str '2'"),
        ({"threads": 1.5}, "threads: expected a whole number of threads >= 1, got float 1.5"),
        ({"threads": 99999}, "threads 99999 is more than this machine can use"),
    ],
)
def test_bad_run_options_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        run_bench(["sgbm"], [SIZE_HW], **kwargs)


def test_random_weights_refuse_accuracy_only_of_the_networks_they_apply_to(tiny_dataset):
    """`bench x.onnx --random-weights --data D` was refused ("random weights means nothing"): the file has its own."""
    with pytest.raises(InputError, match=r"^accuracy \(--data\) with random weights means nothing \(anynet would"):
        run_bench(["sgbm", "anynet"], [SIZE_HW], data=[tiny_dataset], random_weights=True)
    exported = str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    report = run_bench([exported], [(48, 96)], warmup=1, runs=1, data=[tiny_dataset], random_weights=True)
    assert [(row.status, "epe" in row.accuracy) for row in report.rows] == [("ok", True)], report.rows
    assert f"--random-weights does not apply to {exported}: only a registry network" in "\n".join(report.notes)
    # bench.json records what applied (it said "random_weights": true beside that note), and what was asked
    options = report.to_json()["options"]
    assert (options["random_weights"], options["random_weights_models"], options["random_weights_asked"]) == (
        False,
        [],
        True,
    )
    assert "Random weights" not in report.table()


def test_no_help_example_gives_weights_and_random_weights():
    """`bench crestereo --weights W ... --random-weights`: the weights given are the ones it runs on."""
    from rtstereo.cli import build_parser

    epilog = build_parser().verb_parsers["bench"].epilog
    assert not [line for line in epilog.splitlines() if "--weights" in line and "--random-weights" in line], epilog


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("sgbm", [SIZE_HW]), {}, r"^models: expected a list of model names or files, e.g. \['sgbm'\], got str$"),
        ((["sgbm"], SIZE_HW), {}, r"^sizes: expected a list of \(height, width\) pairs"),
        ((["sgbm"], [("32", 48)]), {}, r"^sizes: expected whole numbers of pixels, got str '32'$"),
        ((["sgbm"], [SIZE_HW]), {"runs": "2"}, r"^runs: expected a whole number >= 1, got str '2'$"),
        ((["sgbm"], [SIZE_HW]), {"baseline": 5}, r"^baseline: expected a model name or file \(str or Path\), got int"),
        ((["sgbm"], [SIZE_HW]), {"sweeps": {"max_disp": 16}}, r"^sweeps\['max_disp'\]: expected a list of values"),
        ((["sgbm"], [SIZE_HW]), {"precisions": "fp32"}, r"^precisions: expected a list of precision names"),
        ((["sgbm"], [SIZE_HW]), {"data": "scenes"}, r"^data: expected a list of dataset folders or pairs, got str"),
    ],
)
def test_run_bench_arguments_of_the_wrong_type_are_input_errors(args, kwargs, message):
    """ "sgbm" was benched letter by letter (unknown model 's'), data="scenes" looked for a folder "s", and
    (32, 48) for sizes or runs="2" were bare TypeErrors."""
    with pytest.raises(InputError, match=message):
        run_bench(*args, warmup=1, **{"runs": 1, **kwargs})


def test_lists_parse_and_say_what_is_wrong():
    assert parse_list("480x640", str) == ["480x640"]
    with pytest.raises(InputError, match="'x' is not a valid disparity range"):
        parse_list("96,x", int, "disparity range")
    with pytest.raises(InputError, match="comma-separated list"):
        parse_list(" , ", int)


# --- feature: measurements --------------------------------------------------------------------------------


def test_sgbm_rows_are_timed_with_ratios_against_the_baseline():
    report = run_bench(["sgbm"], [SIZE_HW], sweeps={"max_disp": [16, 32]}, warmup=1, runs=3, threads=1, baseline="sgbm")
    assert [r.status for r in report.rows] == ["ok", "ok"]
    for row in report.rows:
        assert 0 < row.median_ms <= row.p90_ms and row.fps == pytest.approx(1000 / row.median_ms)
        assert row.memory_kind == "cpu rss delta" and row.peak_memory_mb >= 0
        assert row.vs_baseline == pytest.approx(1.0), "each sgbm row is its own baseline (same max_disp)"
        assert np.isnan(row.vs_torch)
    table = report.table()
    assert table.splitlines()[0].startswith(
        "|Model|Backend|Image resolution|Disparity resolution|Precision|Inference time|"
    )
    assert "|sgbm|opencv|32p (48x32)|16|-|" in table and "x sgbm time" in table


def test_a_row_that_fails_without_a_message_ends_that_row_not_the_sweep(monkeypatch):
    """MemoryError() has no text: its row's reason took the first line of none, and the IndexError ended the sweep."""
    predictor = bench._predictor

    def out_of_memory(case, *args):
        if case.model == "bm":
            raise MemoryError()
        return predictor(case, *args)

    monkeypatch.setattr(bench, "_predictor", out_of_memory)
    report = run_bench(["bm", "sgbm"], [SIZE_HW], sweeps={"max_disp": [16]}, warmup=1, runs=1, threads=1)
    assert [(r.case.model, r.status, r.reason) for r in report.rows] == [
        ("bm", "failed", "MemoryError"),
        ("sgbm", "ok", ""),
    ]


def test_a_long_reason_keeps_its_advice_in_the_table_and_whole_in_the_json_and_under_the_table(
    cli, tmp_path, monkeypatch
):
    """A skipped row's reason was cut at 160 characters (and at its first ';'): after a long path, its advice was
    lost."""
    predictor = bench._predictor
    path = "/data/" + "a" * 70 + "/" + "b" * 70 + "/net.onnx"
    advice = "bench it with --sizes 32x64; or export it with --dynamic"
    reason = f"{path} is fixed at 32x64 (HxW): {advice}"

    def fixed(case, *args):
        if case.model == "bm":
            raise InputError(reason)
        return predictor(case, *args)

    monkeypatch.setattr(bench, "_predictor", fixed)
    code, out, err = cli("bench", "bm,sgbm", "--sizes", "32x48", "--max-disp", "16", "--runs", "1", "-o", tmp_path)
    assert code == 0, err
    assert f"|skipped: .../net.onnx is fixed at 32x64 (HxW): {advice}|" in out
    written = json.loads((tmp_path / "bench.json").read_text())
    assert [row["reason"] for row in written["rows"]] == [reason, ""]
    markdown = (tmp_path / "bench.md").read_text()
    assert f"The rows not measured, with their reasons whole:\n- bm opencv 32p (48x32) -: skipped: {reason}" in markdown
    # a reason still too long without its paths is cut in its cell, and whole under the table
    rows = BenchReport.from_json(written).rows
    rows[0].reason = "x" * 150 + " cause " + "y" * 150 + " advice"
    table = BenchReport(rows, written["options"], written["machine"]).table()
    assert f"|skipped: {'x' * 64} ... (whole below) ... {'y' * 89} advice|" in table
    assert f": skipped: {rows[0].reason}" in table
    assert "reasons whole" not in BenchReport(rows[1:], written["options"], written["machine"]).table()


def test_a_value_given_twice_is_benched_once():
    """`bench default,hybrid --sizes 32x48,32x48 --max-disp 16,16` timed one configuration eight times."""
    report = run_bench(
        ["sgbm", "sgbm"], [SIZE_HW, SIZE_HW], sweeps={"max_disp": [16, 16]}, backends=["opencv", "opencv"], runs=1
    )
    assert [r.case.label for r in report.rows] == ["sgbm opencv 48x32 max_disp=16 -"]
    assert report.options["sizes_hw"] == [list(SIZE_HW)] and report.options["sweeps"] == {"max_disp": [16]}


def test_a_bar_in_a_cell_keeps_the_markdown_row_to_the_headers_columns():
    """A reason holding "|" (a path, a setting's value) split its row into more cells than the header."""
    rows = [
        BenchRow(BenchCase("runs/a|b/best.pt", "torch", (64, 96), "fp32"), status="failed", reason="cannot read x|y")
    ]
    header, _, row = BenchReport(rows=rows, options={"runs": 1, "warmup": 1}, machine={}).table().splitlines()[:3]
    columns = lambda line: len(re.split(r"(?<!\\)\|", line))  # noqa: E731 - cells between unescaped bars
    assert columns(row) == columns(header) and "failed: cannot read x\\|y" in row


def test_without_a_baseline_the_table_has_no_baseline_column():
    """Without --baseline the table carried an 'x baseline time' column of dashes, and a note about it."""
    report = run_bench(["sgbm"], [SIZE_HW], sweeps={"max_disp": [16]}, warmup=1, runs=1, threads=1)
    header, _, row, *rest = report.table().splitlines()
    assert header.endswith("|peak MiB|") and row.count("|") == header.count("|")
    assert "baseline" not in report.table()


def test_the_x_torch_time_column_is_there_only_with_a_torch_row():
    """A sweep of classical methods and ONNX files carried an 'x torch time' column of dashes, and its note."""
    report = run_bench(["sgbm", "rtnet-v5"], [(64, 96)], warmup=1, runs=1, threads=1)
    assert "x torch time" not in report.table()
    torch_row = BenchRow(BenchCase("anynet", "torch", (64, 96), "fp32"), median_ms=2.0, p90_ms=2.0, fps=500.0)
    torch_row.vs_torch = 1.0
    report.rows.append(torch_row)
    header, _, *rows = report.table().splitlines()
    assert header.endswith("|peak MiB|x torch time|") and rows[2].endswith("|1.00|")


def test_the_x_torch_time_legend_says_it_divides_by_the_torch_row_of_the_same_precision():
    """An ONNX Runtime fp16 row beside a skipped torch fp16 row read '-', though the legend named only the model
    settings: a torch fp32 row was there to divide by."""
    rows = [
        BenchRow(BenchCase("anynet", "torch", (64, 96), "fp32"), median_ms=4.0, p90_ms=4.0, fps=250.0),
        BenchRow(BenchCase("anynet", "onnxruntime", (64, 96), "fp32"), median_ms=2.0, p90_ms=2.0, fps=500.0),
        BenchRow(BenchCase("anynet", "torch", (64, 96), "fp16"), status="skipped", reason="fp16 needs --device cuda"),
        BenchRow(BenchCase("anynet", "onnxruntime", (64, 96), "fp16"), median_ms=1.0, p90_ms=1.0, fps=1000.0),
    ]
    _add_ratios(rows, None)
    assert [_ratio(row.vs_torch) for row in rows] == ["1.00", "0.50", "-", "-"]
    report = BenchReport(rows=rows, options={"runs": 1, "warmup": 1}, machine={})
    assert "torch row's with the same model settings and precision" in report.table()
    assert "; x torch time: this row's median / the (first) torch row's" in report.table()


def test_the_footer_counts_runs_warm_up_calls_and_threads_in_words():
    """The footer read 'median of 1 runs after 1 warm-up' and '1 threads'."""
    report = run_bench(["sgbm"], [SIZE_HW], sweeps={"max_disp": [16]}, warmup=1, runs=1, threads=1)
    assert "median of 1 run after 1 warm-up call, the backends" in report.table()
    assert report.table().endswith(", 1 thread.")
    report.options |= {"runs": 3, "warmup": 2, "threads": None}
    assert "median of 3 runs after 2 warm-up calls" in report.table()
    assert report.table().endswith(", default threads.")


def test_a_network_baseline_divides_each_row_by_its_row_of_the_same_backend_and_precision():
    from rtstereo.bench import BenchRow

    def row(model, backend, precision, median_ms):
        return BenchRow(BenchCase(model, backend, SIZE_HW, precision), median_ms=median_ms)

    rows = [
        row("anynet", "torch", "fp32", 200.0),
        row("anynet", "onnxruntime", "fp32", 50.0),
        row("anynet", "torch", "bf16", 400.0),
        row("gwcnet-gc", "torch", "fp32", 1000.0),
        row("gwcnet-gc", "onnxruntime", "fp32", 500.0),
        row("gwcnet-gc", "onnxruntime", "fp16", 300.0),  # no such anynet row: the closest, onnxruntime fp32
        row("sgbm", "opencv", "-", 20.0),  # nothing in common: the first anynet row
    ]
    bench._add_ratios(rows, "anynet")
    assert [r.vs_baseline for r in rows] == [1.0, 1.0, 1.0, 5.0, 10.0, 6.0, 0.1]
    assert [r.vs_torch for r in rows[:2]] == [1.0, 0.25]
    report = BenchReport(rows=rows, options={}, machine={}, baseline="anynet")
    rows[1].vs_torch = 0.0018790
    assert "|0.0019|1.00|" in report.table()  # two decimals would say 0.00


def test_torch_and_onnxruntime_rows_of_a_network_share_one_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", HalfOnCpuWarning)  # the table's note says it, not a warning per row
        report = run_bench(
            ["anynet"],
            [SIZE_HW],
            sweeps={"stage": [1]},
            precisions=["fp32", "fp16"],
            backends=["torch", "onnxruntime"],
            warmup=1,
            runs=2,
            threads=1,
            random_weights=True,
        )
    rows = {(r.case.backend, r.case.precision): r for r in report.rows}
    assert rows["torch", "fp32"].status == "ok" and rows["torch", "fp32"].vs_torch == pytest.approx(1.0)
    assert rows["onnxruntime", "fp32"].status == "ok" and rows["onnxruntime", "fp32"].vs_torch > 0
    assert rows["torch", "fp16"].status == "skipped" and "fp16 needs --device cuda" in rows["torch", "fp16"].reason
    assert rows["onnxruntime", "fp16"].status == "ok" and np.isnan(rows["onnxruntime", "fp16"].vs_torch)
    assert rows["onnxruntime", "fp32"].describe["providers"] == ["CPUExecutionProvider"]
    # The fp16 file on the CPU provider is timed but labelled: its time is not one of fp16 arithmetic
    assert rows["onnxruntime", "fp16"].caveat == "cpu" and rows["onnxruntime", "fp32"].caveat == ""
    table = report.table()
    assert "|onnxruntime|" in table and "|Half (CPU)|" in table and "|Full|" in table
    assert table.count("Half (CPU): an fp16 file on ONNX Runtime's CPU provider") == 1
    assert "time fp16 with --device cuda" in table
    assert BenchRow.from_json(rows["onnxruntime", "fp16"].to_json()).caveat == "cpu"


def test_backend_settings_are_swept_on_their_backend_rows_and_reach_the_backend(monkeypatch):
    from rtstereo.runtime import backends

    built = []
    original = backends.TorchBackend.__init__

    def spy(self, module, *args, **kwargs):
        original(self, module, *args, **kwargs)
        built.append((kwargs, self.channels_last, self.cudnn_benchmark, next(self.module.parameters())))

    monkeypatch.setattr(backends.TorchBackend, "__init__", spy)
    report = run_bench(
        ["anynet"],
        [SIZE_HW],
        sweeps={"stage": [1], "channels_last": ["true", "false"], "cudnn_benchmark": ["false"]},
        warmup=1,
        runs=2,
        threads=1,
        random_weights=True,
    )
    assert [r.case.label for r in report.rows] == [
        "anynet torch 48x32 stage=1 channels_last=true cudnn_benchmark=false fp32",
        "anynet torch 48x32 stage=1 channels_last=false cudnn_benchmark=false fp32",
    ]
    assert [r.status for r in report.rows] == ["ok", "ok"] and not report.notes
    assert [(kwargs["channels_last"], cl, bench) for kwargs, cl, bench, _ in built] == [
        (True, True, False),
        (False, False, False),
    ]
    assert built[0][3] is not built[1][3], "each variant runs its own copy of the module"
    assert report.rows[0].vs_torch == pytest.approx(1.0) and report.rows[1].vs_torch > 0
    data = report.rows[0].to_json()
    assert data["backend_settings"] == {"channels_last": True, "cudnn_benchmark": False}  # typed, not "true"
    assert BenchReport.from_json(report.to_json()).rows[0].case == report.rows[0].case
    options = report.to_json()["options"]  # anynet, given no weights, ran on random ones
    assert (options["random_weights"], options["random_weights_models"], options["random_weights_asked"]) == (
        True,
        ["anynet"],
        True,
    )
    assert "Random weights (--random-weights): anynet; timing only, their disparities mean nothing." in report.table()


def test_cuda_graphs_true_on_the_cpu_is_a_row_that_says_why_as_predict_does(cli):
    code, out, err = cli(
        "bench",
        "anynet",
        "--random-weights",
        "--sizes",
        "32x48",
        "--set",
        "stage=1",
        "--set",
        "cuda_graphs=true,auto",
        "--warmup",
        "1",
        "--runs",
        "1",
        "--threads",
        "1",
    )
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("|anynet (stage=1, cuda_graphs=")]
    assert len(lines) == 2 and "cuda_graphs=true)|" in lines[0]
    assert "skipped: cuda_graphs=true needs --device cuda (device= in Python; a CUDA graph records GPU" in lines[0]
    assert "skipped" not in lines[1] and "bench: anynet torch 48x32 stage=1 cuda_graphs=auto fp32" in err


def test_rtstereo_threads_is_the_default_of_threads_as_predicts(cli, monkeypatch):
    """--help and the README: $RTSTEREO_THREADS is --threads' default; it reached ONNX Runtime's rows alone, SGBM ran
    on every core and the footer said "default threads"."""
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--warmup", "1", "--runs", "1")
        assert code == 0, err
        assert cv2.getNumThreads() == 1 and "1 thread" in out and "default threads" not in out
    finally:
        cv2.setNumThreads(before)


def test_a_checkpoint_and_the_hybrid_are_benched_as_their_models(tmp_path):
    import torch

    from rtstereo.export.onnx_export import build_network
    from rtstereo.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    _, settings, module, _ = build_network("gwcnet-g", None, {"max_disp": 16}, random_weights=True)
    checkpoint = tmp_path / "gwcnet.pt"
    save_checkpoint(checkpoint, "gwcnet-g", settings, module.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = run_bench([str(checkpoint), "hybrid"], [(32, 96)], warmup=1, runs=1, threads=1)
    by_model = {r.case.model: r for r in report.rows}
    assert set(by_model) == {str(checkpoint), "hybrid"}
    mine = by_model[str(checkpoint)]
    assert (mine.status, mine.case.backend, mine.describe["max_disp"]) == ("ok", "torch", 16)
    hybrid = by_model["hybrid"]
    assert (hybrid.status, hybrid.case.backend, hybrid.case.precision) == ("ok", "onnxruntime", "-")
    assert hybrid.describe["network"] == "rtnet-guided" and hybrid.median_ms > 0


def test_peak_rss_sees_a_short_allocation():
    with PeakRSS() as peak:
        before = PeakRSS.current_bytes()
        block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
        block[::4096] = 2
        time.sleep(0.02)  # a few of the sampler's 2 ms periods: on a loaded machine it may not run sooner
        del block
    assert peak.peak_bytes - before >= 32 * 2**20


class _AllocatingPredictor:
    """Allocates about 95 MiB in 100 kB blocks per call and frees them, keeping a small object after each block
    (as a network's arena beside Python's own objects): glibc keeps such freed memory for reuse."""

    backend = None
    kept: list[bytearray] = []

    def predict(self, left, right):
        blocks = []
        for _ in range(1000):
            blocks.append(np.ones(100_000, np.uint8))
            self.kept.append(bytearray(600))
        time.sleep(0.05)  # several of the sampler's 2 ms periods
        del blocks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident set size read from /proc")
def test_peak_memory_counts_a_row_that_reuses_what_an_earlier_row_freed(monkeypatch):
    monkeypatch.setattr(bench, "_predictor", lambda *args: _AllocatingPredictor())
    monkeypatch.setattr(bench, "_arm", lambda predictor: None)
    rows = [BenchRow(BenchCase("fake", "torch", SIZE_HW, "-")) for _ in range(3)]
    for row in rows:
        bench._prepare(row, None, None, None, "cpu", None, 1)
    peaks = [row.peak_memory_mb for row in rows]
    assert min(peaks) >= 64, f"every row allocates 95 MiB, read {peaks}"


def test_the_network_built_for_a_models_rows_and_pytorchs_import_are_in_none_of_their_peaks(monkeypatch):
    """PyTorch's import (180 MB) and the network, built once for the rows of a model's settings, counted in the
    first of its rows only: AnyNet on torch read 217 MB at 8x8, then 1 MB at 33x17."""

    class Networks:  # as _NetworkCache: the first get builds, and keeps, what the rows share
        built = None

        def get(self, model, settings):
            if self.built is None:
                self.built = np.ones(100 * 2**20, np.uint8)
            return self.built

    def predictor(case, networks, *args):
        networks.get(case.model, {})
        return _ConstantPredictor(1.0)

    monkeypatch.setattr(bench, "_predictor", predictor)
    monkeypatch.setattr(bench, "_arm", lambda predictor: None)
    networks = Networks()
    rows = [BenchRow(BenchCase("anynet", "torch", size_hw, "fp32")) for size_hw in ((8, 8), (17, 33))]
    left = np.zeros((8, 8, 3), np.uint8)
    for row in rows:
        bench._prepare(row, left, left, networks, "cpu", None, 1)
    assert networks.built is not None
    assert [row.peak_memory_mb < 50 for row in rows] == [True, True], [row.peak_memory_mb for row in rows]


def test_a_rows_gpu_memory_and_wait_are_of_its_own_gpu(monkeypatch):
    """--device cuda:1: the wait before the timed call and the peak memory were GPU 0's (the current device)."""

    class Cuda:  # torch.cuda's calls, recorded
        calls: list[tuple[str, object]] = []

        def synchronize(self, device=None):
            self.calls.append(("synchronize", device))

        def reset_peak_memory_stats(self, device=None):
            self.calls.append(("reset_peak_memory_stats", device))

        def max_memory_allocated(self, device=None):
            self.calls.append(("max_memory_allocated", device))
            return 2**20

    monkeypatch.setattr(bench, "_cuda_torch", lambda device, backend: Cuda())
    monkeypatch.setattr(bench, "_predictor", lambda *args: _ConstantPredictor(1.0))
    monkeypatch.setattr(bench, "_arm", lambda predictor: None)
    row = BenchRow(BenchCase("fake", "torch", SIZE_HW, "-"))
    bench._prepare(row, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), None, "cuda:1", None, 1)
    assert Cuda.calls == [
        ("synchronize", "cuda:1"),
        ("reset_peak_memory_stats", "cuda:1"),
        ("max_memory_allocated", "cuda:1"),
    ]
    assert row.peak_memory_mb == 1.0 and row.memory_kind == "cuda max allocated"


def test_machine_info_names_the_gpu_of_the_run(monkeypatch):
    """--device cuda:1 on a machine of two different GPUs recorded GPU 0's name in bench.json and eval's JSON."""
    from types import SimpleNamespace

    cuda = SimpleNamespace(is_available=lambda: True, get_device_name=lambda index: f"GPU {index}")
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    assert machine_info("cuda:1")["gpu"] == "GPU 1"
    assert machine_info("cuda")["gpu"] == "GPU 0"


# --- feature: accuracy at the row's resolution, scored at full resolution ---------------------------------


class _ConstantPredictor:
    """Answers a constant disparity at whatever size it is given, and remembers that size."""

    def __init__(self, disparity_px: float):
        self.disparity_px = disparity_px
        self.sizes: list[tuple[int, int]] = []

    def predict(self, left, right, calibration=None):
        self.sizes.append(left.shape[:2])
        disparity = np.full(left.shape[:2], self.disparity_px, np.float32)
        disparity[0, 0] = np.nan
        return DisparityResult(disparity_px=disparity, timings_ms={"total": 1.0}, input_size_hw=left.shape[:2])


def test_lower_resolution_disparity_is_scaled_back_by_the_width_ratio():
    inner = _ConstantPredictor(3.0)
    left = np.zeros((48, 96, 3), np.uint8)
    result = ResizedPredictor(inner, (24, 32)).predict(left, left)
    assert inner.sizes == [(24, 32)]
    assert result.disparity_px.shape == (48, 96)
    assert np.nanmax(np.abs(result.disparity_px - 9.0)) < 1e-5, "3 px at width 32 is 9 px at width 96"
    assert np.isnan(result.disparity_px[0, 0]), "invalid pixels stay invalid"
    same = ResizedPredictor(inner, (48, 96)).predict(left, left)
    assert inner.sizes[-1] == (48, 96) and np.nanmax(same.disparity_px) == 3.0


def test_accuracy_rows_and_the_quality_vs_speed_plot(tiny_dataset, tmp_path):
    report = run_bench(["sgbm"], [(24, 48), (48, 96)], sweeps={"max_disp": [16]}, warmup=1, runs=2, data=[tiny_dataset])
    assert report.options["scenes"] == ["scene"]
    low, full = report.rows
    assert {"d1", "epe", "bad-2"} <= set(full.accuracy)
    assert full.accuracy["epe"] < 3.0 and low.accuracy["epe"] < 3.0, "half-width disparity was scaled back"
    written = report.save(tmp_path / "out")
    assert sorted(p.name for p in written) == ["bench.json", "bench.md", "bench.png"]
    assert (tmp_path / "out" / "bench.png").stat().st_size > 1000
    assert "D1 %" in (tmp_path / "out" / "bench.md").read_text()
    again = run_bench(["sgbm"], [(24, 48)], sweeps={"max_disp": [16]}, warmup=1, runs=1)  # no --data: no plot
    assert sorted(p.name for p in again.save(tmp_path / "out")) == ["bench.json", "bench.md"]
    assert not (tmp_path / "out" / "bench.png").exists(), "the first sweep's plot would pass for the second's"
    assert any("earlier sweep's plot" in note for note in again.notes)
    assert _json_notes(tmp_path / "out") == again.notes, "the note was printed but left out of bench.json"
    # bench.md has them under its table, as bench.json has them and stderr prints them: the table alone left them out
    notes = "".join(f"- {note}\n" for note in again.notes)
    assert (tmp_path / "out" / "bench.md").read_text() == again.table() + "\n\nNotes:\n" + notes


def test_without_matplotlib_the_tables_are_written_and_a_note_says_why_there_is_no_plot(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bench.png").write_bytes(b"an earlier sweep's plot")
    code = main(
        [
            "bench",
            "sgbm",
            "--sizes",
            "24x48",
            "--max-disp",
            "16",
            "--warmup",
            "1",
            "--runs",
            "1",
            "--data",
            str(tiny_dataset),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bench.json", "bench.md"]
    assert "no bench.png" in err and "pip install 'rtstereo[viz]'" in err
    # every line rtstereo writes on stderr names the verb, the notes too (it was a bare 'note: no bench.png: ...')
    assert "rtstereo bench: note: no bench.png: " in err
    assert any(note.startswith("no bench.png: ") for note in _json_notes(tmp_path / "out"))
    # the earlier plot goes, and the note does not say this sweep had no accuracy: it had, without matplotlib
    assert f"removed {tmp_path / 'out' / 'bench.png'}, an earlier sweep's plot: this one could not be plotted" in err
    assert all(line.startswith("rtstereo bench: ") for line in err.splitlines() if line.strip()), err


# --- feature: outputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times_ms", "labels"),
    [
        ([0.8, 12, 150, 2500], ["1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "2000"]),
        ([0.7, 1.8, 3.1, 8.9], ["1", "2", "5", "10"]),
        ([3.1, 4.5], None),  # no decade, 2 or 5 inside: matplotlib's own steps (3.2, 3.4...), each its value
    ],
)
def test_the_plots_time_axis_labels_are_its_values_and_do_not_run_into_each_other(
    times_ms, labels, tmp_path, monkeypatch
):
    """Every minor tick was labelled: over 0.8 to 2500 ms they ran together ("40050060070080000"), and 0.7, 0.8 and
    0.9 read "1"."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # the figure kept to read its axis
    rows = [BenchRow(BenchCase("sgbm", "opencv", SIZE_HW, "-"), median_ms=ms, accuracy={"d1": 1.0}) for ms in times_ms]
    BenchReport(rows, options={}, machine={}).plot(tmp_path / "bench.png")
    (fig,) = drawn
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    ticks = [*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks()]
    shown = sorted(
        ((t.get_loc(), t.label1.get_text()) for t in ticks if low <= t.get_loc() <= high and t.label1.get_text()),
    )
    monkeypatch.undo()
    plt.close(fig)
    assert [text for _, text in shown] == labels if labels else 2 <= len(shown) <= 10
    assert all(float(text) == pytest.approx(loc) for loc, text in shown)


def test_json_records_date_commit_machine_and_versions(tmp_path):
    report = run_bench(["sgbm"], [SIZE_HW], sweeps={"max_disp": [16]}, warmup=1, runs=1)
    report.save(tmp_path)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["date"] and "commit" in data and data["machine"]["cpu"]
    assert datetime.datetime.fromisoformat(data["date"]).utcoffset() is not None  # the date says its time zone
    # sgbm ran on opencv whatever --backend said (torch, the default): the JSON says so
    assert (data["options"]["backends"], data["options"]["backends_asked"]) == (["opencv"], ["torch"])
    assert {"rtstereo", "numpy", "opencv", "onnxruntime", "python"} <= set(data["machine"]["versions"])
    row = data["rows"][0]
    assert row["model"] == "sgbm" and row["size_hw"] == list(SIZE_HW) and row["settings"] == {"max_disp": 16}
    assert row["median_ms"] > 0 and row["vs_torch"] is None
    assert BenchReport.from_json(data).table() == report.table(), "a saved report redraws the same table"


def test_json_keeps_each_timed_call_so_median_p90_and_ratios_can_be_checked(tmp_path):
    """The JSON held the median and p90 only: nothing to check them, or the baseline ratios, against."""
    report = run_bench(["sgbm", "bm"], [SIZE_HW], sweeps={"max_disp": [16]}, warmup=1, runs=4, baseline="sgbm")
    report.save(tmp_path)
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    for row in rows:
        times = row["times_ms"]
        assert len(times) == 4 and all(t > 0 for t in times)
        assert row["median_ms"] == pytest.approx(float(np.median(times)))
        assert row["p90_ms"] == pytest.approx(float(np.percentile(times, 90)))
    sgbm, bm = rows
    assert bm["vs_baseline"] == pytest.approx(np.median(bm["times_ms"]) / np.median(sgbm["times_ms"]))


def test_settings_that_were_not_swept_still_show_in_the_table():
    report = run_bench(["sgbm"], [(32, 256)], warmup=1, runs=1)
    assert "|sgbm|opencv|32p (256x32)|192|-|" in report.table()


def test_machine_info_names_the_hardware():
    info = machine_info()
    assert info["cpu"] and info["cpu_count"] >= 1 and "CPUExecutionProvider" in info["onnxruntime_providers"]


def test_machine_info_on_a_gpu_run_without_an_importable_torch_names_no_gpu(monkeypatch):
    """An .onnx file benched or evaluated with --device cuda beside a torch that cannot be imported (a broken
    install): the results file said nothing, the JSON's machine raised ImportError after the run."""
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.0")  # torch counts as installed
    monkeypatch.setitem(sys.modules, "torch", None)  # and cannot be imported
    info = machine_info("cuda")
    assert info["gpu"] is None and info["versions"]["torch"] == "2.0" and info["device"] == "cuda"


def test_a_sweep_of_onnx_models_never_imports_torch(tmp_path):
    """bench imported torch for the version in bench.json (seconds, hundreds of MB), and for --threads."""
    import subprocess
    from pathlib import Path

    import rtstereo

    code = (
        "import sys\n"
        "from rtstereo.cli import main\n"
        "argv = ['bench', 'rtnet-v5', '--sizes', '32x64', '--threads', '1', '--warmup', '1', '--runs', '1']\n"
        f"code = main([*argv, '-o', {str(tmp_path)!r}])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    src = str(Path(rtstereo.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "0 False", done.stdout + done.stderr
    versions = json.loads((tmp_path / "bench.json").read_text())["machine"]["versions"]
    assert {"onnxruntime", "torch", "onnx"} <= set(versions)  # recorded from the installation all the same


def test_case_labels_read_as_the_sweep():
    assert BenchCase("gwcnet-gc", "torch", (480, 672), "fp16", (("max_disp", 192),)).label == (
        "gwcnet-gc torch 672x480 max_disp=192 fp16"
    )


# --- the command ----------------------------------------------------------------------------------------


def test_bench_command_prints_the_table_and_writes_results(cli, tmp_path):
    code, out, err = cli(
        "bench",
        "sgbm",
        "--sizes",
        "32x48,48x64",
        "--max-disp",
        "16,32",
        "--warmup",
        "1",
        "--runs",
        "2",
        "--threads",
        "1",
        "-o",
        tmp_path,
    )
    assert code == 0, err
    assert out.count("|sgbm|opencv|") == 4 and "written:" in out
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "bench.md").is_file()
    # each row's line says how far the sweep is
    assert "rtstereo bench: sgbm opencv 48x32 max_disp=16 - (row 1 of 4)\n" in err
    assert "rtstereo bench: sgbm opencv 64x48 max_disp=32 - (row 4 of 4)\n" in err


def test_a_rows_warning_is_said_once_not_once_per_warm_up_timing_and_scoring(cli):
    """A range over half the width is warned about by each call; the sweep said it two or three times per row."""
    import sys

    def show(message, category, filename, lineno, file=None, line=None):  # as the command line prints them
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        code, _, err = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "32", "--warmup", "2", "--runs", "3")
    assert code == 0, err
    said = [line for line in err.splitlines() if "matches no pixel in the first 32 columns" in line]
    assert len(said) == 1 and said[0].startswith("rtstereo bench: warning: "), said


class _ClosedPipe:
    """stdout whose reader went away (``bench ... | head -1``): every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass


def test_bench_piped_into_a_reader_that_goes_away_still_writes_its_files_and_exit_code(capsys, tmp_path, monkeypatch):
    """Where the table met the closed pipe, the sweep ended there with exit code 0: no bench.json, and a sweep that
    measured nothing read as one that did."""
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    code = main(["bench", "sgbm", "--sizes", "32x48", "--runs", "1", "-q", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.splitlines()[-1].startswith("rtstereo bench: nothing was measured: every row was skipped or failed")
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["rows"][0]["status"] == "skipped"


def test_bench_command_without_output_writes_nothing(cli):
    code, out, _ = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--warmup", "1", "--runs", "1")
    assert code == 0 and "nothing written" in out


def test_a_sweep_that_measured_nothing_exits_with_1(cli, tmp_path):
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--runs", "1")
    assert code == 1 and "skipped: image width 48 px must exceed the searched disparities (192)" in out
    assert err.splitlines()[-1].startswith("rtstereo bench: nothing was measured: every row was skipped or failed")
    code, out, _ = cli("bench", "anynet", "--backend", "opencv", "--sizes", "32x48", "--random-weights")
    assert code == 1 and "|anynet|" not in out


def test_backend_help_says_it_chooses_the_networks_runtime_only(cli, capsys, monkeypatch):
    """--backend's help said 'default: torch' while sgbm ran on opencv and the hybrid on onnxruntime."""
    code, out, _ = cli("bench", "sgbm,hybrid", "--sizes", "32x64", "--max-disp", "16", "--backend", "torch")
    assert code == 0 and "|sgbm|opencv|" in out and "|hybrid|onnxruntime|" in out
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no word broken at a hyphen
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--backend BACKEND the networks' runtimes: torch, onnxruntime, comma-separated (default: torch); classical "
        "methods run on opencv and .onnx files, rtnet-v5 and the hybrid on onnxruntime, whatever it says"
    ) in text


def test_warmup_and_runs_help_states_the_minimum_the_command_enforces(cli, capsys, monkeypatch):
    """--warmup 0 was refused ('warmup and runs must be >= 1') while --help said only 'untimed calls first'."""
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--warmup N untimed calls first, >= 1: the first (first_ms in the JSON) builds the model" in text
    assert "--runs N timed calls, >= 1 (default: 10)" in text
    code, _, err = cli("bench", "sgbm", "--sizes", "32x64", "--warmup", "0")
    assert code == 2 and "--warmup must be >= 1, got 0" in err


def test_a_network_without_torch_is_refused_before_the_sweep_naming_the_extra_in_full(cli, monkeypatch):
    """Its every row was skipped, saying so, while the other models were timed, and the sweep exited 0 (predict
    refuses the network at once); the message had been cut at 160 characters in its cell ("... pip instal")."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError, as on a plain `pip install rtstereo`
    argv = ["--sizes", "32x48", "--max-disp", "16", "--random-weights", "--warmup", "1", "--runs", "1"]
    with monkeypatch.context() as patched:
        patched.setattr("rtstereo.bench._measure_group", lambda *a, **k: pytest.fail("swept without torch"))
        code, out, err = cli("bench", "anynet,sgbm", "--backend", "torch,onnxruntime", *argv)
    assert (code, out) == (2, "")
    assert err.startswith(
        "rtstereo bench: error: the network 'anynet' (bench times exported .onnx files without torch) needs the "
        "Python package 'torch', which is not installed"
    ), err
    assert err.endswith("Install it with: pip install 'rtstereo[torch]'\n") and err.count("\n") == 1, err
    code, out, _ = cli("bench", "sgbm,rtnet-v5", *argv)  # no network built in PyTorch: swept as before
    assert code == 0 and "|sgbm|opencv|32p (48x32)|16|" in out


@pytest.mark.parametrize("models", ["anynet", "anynet,sgbm"])
def test_a_network_without_torch_stops_the_sweep_at_once_naming_the_extra_to_install(cli, monkeypatch, models):
    """Each of the network's rows was skipped, saying so, while the others were timed: exit code 1, or 0 beside
    sgbm's rows; predict and the other verbs stop in one line (exit code 2)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError, as on a plain `pip install rtstereo`
    once = ["--warmup", "1", "--runs", "1"]
    code, out, err = cli("bench", models, "--sizes", "32x48", "--random-weights", *once)
    assert (code, out) == (2, ""), out
    # it said "exporting a network to ONNX needs ... Install it with: pip instal", cut at 160 characters
    assert err.startswith(
        "rtstereo bench: error: the network 'anynet' (bench times exported .onnx files without torch) needs the "
        "Python package 'torch', which is not installed"
    ) and err.endswith("Install it with: pip install 'rtstereo[torch]'\n"), err
    code, out, _ = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", *once)  # none to build: it runs
    assert code == 0 and "|sgbm|opencv|" in out


def test_bench_command_refuses_an_unwritable_output_before_the_sweep(cli, tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("a file")
    monkeypatch.setattr("rtstereo.bench.run_bench", lambda *a, **k: pytest.fail("swept before -o was checked"))
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "-o", tmp_path / "taken")
    assert (code, out) == (2, "")
    message = f"cannot write benchmark results to {tmp_path / 'taken'}: {tmp_path / 'taken'} is a file, not a folder"
    assert err == f"rtstereo bench: error: {message}\n"


@pytest.mark.parametrize("name", ["bench.json", "bench.md", "bench.png"])
def test_bench_command_refuses_a_folder_named_as_a_results_file_before_the_sweep(
    cli, tmp_path, monkeypatch, tiny_dataset, name
):
    """-o DIR holding a folder bench.md/ was found after the sweep: bench.json written, bench.md not, exit code 2."""
    folder = tmp_path / "results"
    (folder / name).mkdir(parents=True)
    monkeypatch.setattr("rtstereo.bench.run_bench", lambda *a, **k: pytest.fail("swept before -o was checked"))
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--data", tiny_dataset, "-o", folder)
    assert (code, out) == (2, "")
    assert err == (
        f"rtstereo bench: error: cannot write benchmark results to {folder}: {folder / name} is a folder, where "
        f"the sweep writes its {name}: move it, or give another -o\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == [name]


def test_bench_command_refuses_a_file_name_as_its_output_folder(cli, tmp_path, monkeypatch):
    """-o results.json made a folder results.json/ holding bench.json, bench.md; calibrate refuses -o rig.json."""
    monkeypatch.setattr("rtstereo.bench.run_bench", lambda *a, **k: pytest.fail("swept before -o was checked"))
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "-o", tmp_path / "results.json")
    assert (code, out) == (2, "") and not (tmp_path / "results.json").exists()
    assert err == (
        f"rtstereo bench: error: -o {tmp_path / 'results.json'} names a file, but the benchmark results are files "
        f"(bench.json, bench.md and bench.png) written into a folder: give the folder, such as -o {tmp_path}/\n"
    )
    (tmp_path / "old.json").mkdir()  # a folder that has such a name already is a folder
    from rtstereo.cli.bench import check_output_folder

    check_output_folder(tmp_path / "old.json")


def _interrupt_at_group(monkeypatch, group_index, how="Ctrl-C"):
    """Ctrl-C (or SIGTERM, ``kill``) as the sweep's configuration ``group_index`` (0-based) is being measured."""
    measure, calls = bench._measure_group, []

    def measure_or_interrupt(*args):
        calls.append(args)
        if len(calls) > group_index:
            if how == "SIGTERM":  # the handler rtstereo's main installs turns it into a KeyboardInterrupt
                signal.raise_signal(signal.SIGTERM)
            raise KeyboardInterrupt
        return measure(*args)

    monkeypatch.setattr(bench, "_measure_group", measure_or_interrupt)


def test_swept_settings_are_stored_in_their_types_not_as_the_text_given(cli, tmp_path):
    """bench.json held --set values as typed on the command line: "block_size": "5", "fill_holes": "true", while
    --max-disp gave 16; and block_size=5,5.0 were two rows of one setting."""
    argv = ["bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--warmup", "1", "--runs", "1", "--threads", "1"]
    code, out, _ = cli(*argv, "--set", "block_size=5,7,5.0", "--set", "fill_holes=true,false", "-o", tmp_path)
    assert code == 0
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["options"]["sweeps"] == {"max_disp": [16], "block_size": [5, 7], "fill_holes": [True, False]}
    assert [row["settings"] for row in written["rows"]] == [
        {"max_disp": 16, "block_size": size, "fill_holes": fill} for size in (5, 7) for fill in (True, False)
    ]
    assert "|sgbm (block_size=7, fill_holes=false)|" in out  # the table writes them as the command line does
    read = BenchReport.from_json(written)
    assert read.rows[0].case.label == "sgbm opencv 48x32 max_disp=16 block_size=5 fill_holes=true -"


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_ctrl_c_keeps_the_rows_measured_and_says_the_sweep_was_interrupted(cli, tmp_path, monkeypatch, how):
    """Ctrl-C wrote nothing: every row measured before it was lost with the sweep. A sweep stopped by kill
    (SIGTERM) said "Interrupted (Ctrl-C)" in bench.md: it says what stopped it."""
    _interrupt_at_group(monkeypatch, 2, how)
    argv = ["bench", "sgbm", "--sizes", "32x48", "--max-disp", "16,32,48", "--warmup", "1", "--runs", "1"]
    code, out, err = cli(*argv, "--threads", "1", "-o", tmp_path)
    assert code == 130
    assert out.count("|sgbm|opencv|") == 2 and f"Interrupted ({how}): 2 of 3 rows; the rest were not measured." in out
    assert err.splitlines()[-1] == (
        f"rtstereo bench: interrupted after 2 of 3 rows: the rows measured are written to {tmp_path}, the rest "
        "were not measured"
    )
    written = json.loads((tmp_path / "bench.json").read_text())
    assert (written["interrupted"], written["interrupted_by"], written["cases"]) == (True, how, 3)
    assert [row["settings"]["max_disp"] for row in written["rows"]] == [16, 32]
    assert f"Interrupted ({how}): 2 of 3 rows" in (tmp_path / "bench.md").read_text()
    assert BenchReport.from_json(written).interrupted and BenchReport.from_json(written).interrupted_by == how


def test_an_interrupted_sweep_does_not_replace_an_earlier_complete_one(cli, tmp_path, monkeypatch):
    """An interrupted sweep wrote its rows over bench.json and bench.md of an earlier complete sweep of the same -o;
    a complete sweep after it left the older bench.interrupted.* beside its own results."""
    argv = ["bench", "sgbm", "--sizes", "32x48", "--max-disp", "16,32,48", "--warmup", "1", "--runs", "1"]
    assert cli(*argv, "--threads", "1", "-o", tmp_path)[0] == 0
    complete = (tmp_path / "bench.json").read_text(), (tmp_path / "bench.md").read_text()
    measure = bench._measure_group
    _interrupt_at_group(monkeypatch, 1)
    code, _, err = cli(*argv, "--threads", "1", "-o", tmp_path)
    assert code == 130
    assert ((tmp_path / "bench.json").read_text(), (tmp_path / "bench.md").read_text()) == complete
    partial = json.loads((tmp_path / "bench.interrupted.json").read_text())
    assert partial["interrupted"] is True and len(partial["rows"]) == 1
    assert "Interrupted (Ctrl-C): 1 of 3 rows" in (tmp_path / "bench.interrupted.md").read_text()
    kept = "json holds an earlier complete sweep and is kept: this interrupted one is written as bench.interrupted.*"
    assert f"rtstereo bench: note: {tmp_path / 'bench'}.{kept}" in err
    # a second interruption replaces the first one's partial files, not the complete ones
    monkeypatch.setattr(bench, "_measure_group", measure)
    _interrupt_at_group(monkeypatch, 2)
    assert cli(*argv, "--threads", "1", "-o", tmp_path)[0] == 130
    assert len(json.loads((tmp_path / "bench.interrupted.json").read_text())["rows"]) == 2
    assert ((tmp_path / "bench.json").read_text(), (tmp_path / "bench.md").read_text()) == complete
    # a complete sweep removes the partial files, which would read as a sweep cut short after it
    monkeypatch.setattr(bench, "_measure_group", measure)
    code, _, err = cli(*argv, "--threads", "1", "-o", tmp_path)
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.md"]
    removed = f"rtstereo bench: note: removed bench.interrupted.json, bench.interrupted.md in {tmp_path}, an earlier"
    assert removed in err, err
    # bench.json holds every note printed, those of the steps after it was first written too
    assert any(note.startswith(removed[len("rtstereo bench: note: ") :]) for note in _json_notes(tmp_path))


@pytest.mark.parametrize(
    ("threads", "said"), [("0", "--threads must be >= 1, got 0"), ("99999", "at most 8 (4 per core)")]
)
def test_a_thread_count_the_machine_cannot_use_is_a_usage_error_naming_the_option(cli, monkeypatch, threads, said):
    """--threads 99999 was taken: OpenCV tried to start 99999 threads; predict refuses it as bench now does."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--runs", "1", "--threads", threads)
    assert code == 2 and out == "" and err.startswith("rtstereo bench: error: --threads "), err
    assert said in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("quiet", ["--quiet", "-q"])
def test_quiet_leaves_out_the_progress_lines_not_the_table(cli, quiet):
    """bench had no --quiet, which the other verbs have (the README: --quiet turns long work's progress off)."""
    argv = ["bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--warmup", "1", "--runs", "1", "--threads", "1"]
    code, out, err = cli(*argv)
    assert code == 0 and "rtstereo bench: sgbm opencv 48x32 max_disp=16 - (row 1 of 1)" in err
    code, quiet_out, err = cli(*argv, quiet)
    assert code == 0 and "(row 1 of 1)" not in err and "|sgbm|opencv|" in quiet_out


def test_a_full_disk_is_a_failed_run_exit_code_1_not_a_usage_error(cli, tmp_path, monkeypatch):
    """bench exited 2, its usage-error code, when bench.json could not be written for a full disk; predict's batch
    exits 1 for it (a rerun with space free succeeds)."""
    import errno

    from .conftest import refuse_json_writes

    refuse_json_writes(monkeypatch, errno.ENOSPC)
    code, _, err = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--runs", "1", "-o", tmp_path)
    assert code == 1, err
    message = f"cannot write benchmark results {tmp_path / 'bench.json'}: No space left on device"
    assert err.splitlines()[-1] == f"rtstereo bench: error: {message}"


def test_ctrl_c_before_any_row_was_measured_writes_nothing(cli, tmp_path, monkeypatch):
    _interrupt_at_group(monkeypatch, 0)
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--runs", "1", "-o", tmp_path / "results")
    assert (code, out, err.splitlines()[-1]) == (130, "", "rtstereo bench: interrupted")
    assert not (tmp_path / "results").exists()


def test_bench_help_examples_keep_their_line_continuations(cli, capsys):
    with pytest.raises(SystemExit):
        cli("bench", "--help")
    text = capsys.readouterr().out
    assert "--device cuda \\\n      --set channels_last=true,false" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sgbm", "--sizes", "32"], "expected HEIGHTxWIDTH in pixels"),
        (["sgbm", "--sizes", "32x48,0x48"], "--sizes: size 0x48 (HxW) is too small"),
        # each list named as its option, as predict names it: the lists' errors named none
        (["sgbm", "--iters", "2,x"], "error: --iters: 'x' is not a valid iteration count"),
        # no model searches 0 levels: one line (exit 2), not a table of skipped rows (exit 1)
        (["sgbm", "--max-disp", "64,0"], "error: --max-disp: '0' is not a valid disparity range (in '64,0')"),
        (["sgbm", "--max-disp", ","], "error: --max-disp: expected a comma-separated list of disparity ranges"),
        (["sgbm", "--iters", "-2"], "error: --iters: '-2' is not a valid iteration count"),
        # CREStereo, the one model with iterations, needs 2: 1 made a table of one skipped row (exit 1)
        (["sgbm", "--iters", "5,1"], "error: --iters: '1' is not a valid iteration count: no model takes fewer than 2"),
        (["sgbm", "--sizes", ","], "error: --sizes: expected a comma-separated list of sizes, got ','"),
        (["sgbm", "--set", "block_size="], "error: --set block_size: expected a comma-separated list of values"),
        (["sgbm", "--set", "block_size"], "--set expects KEY=V1,V2"),
        (["anynet,gwcnet-g", "--weights", "w.tar"], "with 2 networks (anynet, gwcnet-g) write MODEL=FILE"),
        (["anynet,sgbm", "--weights", "sgbm=w.tar"], "sgbm takes no weights file (networks do: anynet)"),
        (["anynet,sgbm", "--weights", "gwcnet-gc=w.tar"], "gwcnet-gc is not among the models benched (anynet, sgbm)"),
        # a bare file with no network to take it read "with 0 networks (none) write MODEL=FILE"
        (["sgbm,bm", "--weights", "w.tar"], "no model benched takes a weights file (sgbm, bm: networks do"),
        (["sgbm", "--baseline", "anynet", "--weights", "w.tar"], "the baseline's goes as anynet=FILE"),
        # two files for one network: the last one was timed, unsaid
        (["anynet", "--weights", "a.tar", "--weights", "b.tar"], "--weights: two files for anynet (a.tar, b.tar)"),
        (["anynet,sgbm", "-w", "anynet=a.tar", "-w", "b.tar"], "--weights: two files for anynet (a.tar, b.tar)"),
        (["sgbn"], "unknown model 'sgbn'. Did you mean: sgbm"),
        # a missing file: one line before any work, not "unknown model" or a sweep of skipped rows (exit 1)
        (["runs/nope/best.pt"], "model file not found: runs/nope/best.pt"),
        (["nope.onnx,sgbm"], "model file not found: nope.onnx"),
        (["sgbm", "--baseline", "nope.onnx"], "model file not found: nope.onnx"),  # was a row of skips
        # a missing weights file too: its network's rows were skipped, the others timed, and the run exited 0
        (["anynet,sgbm", "--weights", "anynet=nope.tar"], "--weights anynet: weights file not found: nope.tar"),
        (["anynet", "--weights", "."], "--weights anynet: . is a folder: give the checkpoint file inside it"),
        # no weights at all for a network that needs them: the same (bench anynet,sgbm exited 0)
        (["anynet,sgbm"], "model 'anynet' needs its weights: pass --weights FILE_OR_URL (anynet=FILE beside other"),
        (["sgbm", "--baseline", "gwcnet-gc"], "model 'gwcnet-gc' needs its weights: pass --weights FILE_OR_URL"),
        # a setting no model has, or a value of the wrong type: one line, not a sweep without it and a note at its end
        (["sgbm", "--set", "blok_size=5,7"], "blok_size is swept, but no model benched (sgbm) has that setting; did "),
        (["sgbm,bm", "--iters", "2"], "iters is swept, but no model benched (sgbm, bm) has that setting (they have: "),
        (["anynet", "--set", "providers=cpu"], "it is a setting of the onnxruntime backend, on which none"),
        (["sgbm", "--set", "block_size=5,x"], "setting 'block_size': expected a whole number, got 'x'"),
        (["sgbm", "--set", "refine_edges=true,maybe"], "setting 'refine_edges': expected true or false, got 'maybe'"),
        # ONNX Runtime's options too: each of its rows was skipped, saying so, and the sweep exited 0
        (
            ["rtnet-v5,sgbm", "--set", "parity=warn,true"],
            "setting 'parity': expected one of warn, refuse, off, got 'true'",
        ),
        (["rtnet-v5", "--set", "providers=gpu"], "unknown execution provider 'gpu'"),
    ],
)
def test_bench_command_reports_bad_arguments_in_one_line(cli, argv, message):
    code, _, err = cli("bench", *argv, "--runs", "1", "--warmup", "1")
    assert code == 2 and message in err and err.startswith("rtstereo bench: error:")


@pytest.mark.parametrize("role", ["model", "baseline"])
def test_a_damaged_onnx_file_is_refused_before_the_sweep_as_predict_refuses_it(cli, tmp_path, role):
    """Its rows were each skipped while sgbm's were timed, and the sweep exited with code 0."""
    damaged = tmp_path / "cut.onnx"
    damaged.write_bytes(b"not a protobuf")
    argv = ["sgbm", "--baseline", damaged] if role == "baseline" else [f"sgbm,{damaged}"]
    code, out, err = cli("bench", *argv, "--sizes", "48x96", "--max-disp", "16", "--runs", "1", "--warmup", "1")
    assert code == 2 and err.startswith("rtstereo bench: error: ONNX Runtime cannot load") and f"{damaged}" in err
    assert len(err.strip().splitlines()) == 1 and out == "", err


def test_an_onnx_file_predict_refuses_is_refused_before_the_sweep(cli, tmp_path):
    """A damaged .onnx file, or one without rtstereo's metadata, skipped each of its rows while the others were timed,
    and the sweep exited 0; predict, eval and video refuse it in one line."""
    import onnx
    from onnx import TensorProto, helper

    damaged = tmp_path / "cut.onnx"
    damaged.write_bytes(b"not a model")
    foreign = tmp_path / "foreign.onnx"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(foreign))
    for argv, message in [
        ([f"{damaged},sgbm"], f"ONNX Runtime cannot load {damaged}"),
        (["sgbm", "--baseline", str(foreign)], f"{foreign} has no rtstereo metadata"),
    ]:
        code, out, err = cli("bench", *argv, "--sizes", "32x48", "--max-disp", "16", "--runs", "1", "--warmup", "1")
        assert code == 2 and err.startswith(f"rtstereo bench: error: {message}") and "|sgbm|" not in out


# --- the prepared GPU check (benchmarks/bench_networks.py gpu), dry-run on the CPU ---------------------


def _bench_networks(monkeypatch, tmp_path, *argv):
    """Run ``benchmarks/bench_networks.py`` in this process (its globals: threads, RTSTEREO_THREADS)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_networks.py"
    spec = importlib.util.spec_from_file_location("bench_networks_under_test", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    monkeypatch.setenv("RTSTEREO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    monkeypatch.setattr(sys, "argv", ["bench_networks.py", *map(str, argv)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module.main()
    return json.loads((tmp_path / "out" / "gpu_check.json").read_text())


@pytest.mark.slow
def test_the_gpu_check_runs_end_to_end_on_the_cpu_at_tiny_sizes(monkeypatch, tmp_path):
    out = tmp_path / "out"
    argv = ["gpu", "--device", "cpu", "--quick", "--threads", "1", "--shared", tmp_path / "none", "-o", out]
    summary = _bench_networks(monkeypatch, tmp_path, *argv)
    assert summary["dry_run"] and [p["status"] for p in summary["parts"]] == ["measured"] * 4
    targets = {t["target"]: t for t in summary["targets"]}
    assert [t["required_fps"] for t in summary["targets"]] == [100.0, 40.0, 200.0, 100.0]
    assert all(t["measured_fps"] > 0 for t in targets.values()), targets
    assert targets["GwcNet-gc 480x672, 192 levels, fp16"]["row"] == "gwcnet-gc torch 48x32 max_disp=16 bf16"
    networks = json.loads((out / "gpu_networks.json").read_text())
    rows = {(r["model"], r["backend"], r["precision"]): r for r in networks["rows"]}
    assert {model for model, _, _ in rows} == {
        "rtnet-v5 (PyTorch state)",
        "rtnet-v5",
        "hybrid",  # also `default`
        "anynet",
        "crestereo",
    }
    assert all(r["status"] == "ok" for r in rows.values()), [(k, r["reason"]) for k, r in rows.items()]
    assert rows["crestereo", "torch", "fp32"]["settings"] == {"iters": 2}
    table = (out / "gpu_networks.md").read_text()
    assert "anynet: random (timing only)" in networks["notes"][-1] and "crestereo: random (timing only)" in table
    assert "rtnet-v5 (PyTorch state): trained (training/default/state.pt)" in table
    seed = json.loads((out / "gpu_gwcnet-gc_seed_table.json").read_text())
    assert [(r["precision"], r["status"]) for r in seed["rows"]] == [("bf16", "ok"), ("fp32", "ok")]
    onnx = json.loads((out / "gpu_gwcnet-gc_seed_table_onnxruntime.json").read_text())
    assert [(r["backend"], r["status"]) for r in onnx["rows"]] == [("onnxruntime", "ok")]
    parity = json.loads((out / "gpu_fp16_vs_fp32.json").read_text())
    assert parity["half"] == "bf16" and [r["model"] for r in parity["rows"]] == ["rtnet-v5 (PyTorch state)"]
    assert "| default at 720p | 64x32 | 200 |" in (out / "gpu_check.md").read_text()


@pytest.mark.slow
def test_the_gpu_checks_tables_of_networks_with_weights_files_say_nothing_of_random_weights(
    monkeypatch, tmp_path, shared
):
    """The seed's table said "--random-weights does not apply to gwcnet-gc" beside its weights file, and the networks'
    table the same of AnyNet and CREStereo: the check asked for random weights whatever files it had."""
    root = shared("fixtures", "golden").parents[1]
    shared("weights", "anynet", "anynet_kitti2015.tar")
    out = tmp_path / "out"
    argv = ["gpu", "--device", "cpu", "--quick", "--threads", "1", "--shared", root, "-o", out]
    summary = _bench_networks(monkeypatch, tmp_path, *argv)
    assert [p["status"] for p in summary["parts"]] == ["measured"] * 4
    for name in ("gpu_gwcnet-gc_seed_table", "gpu_gwcnet-gc_seed_table_onnxruntime", "gpu_networks"):
        table = (out / f"{name}.md").read_text()
        assert "does not apply" not in table, table
        assert all(r["status"] == "ok" for r in json.loads((out / f"{name}.json").read_text())["rows"]), name


def test_the_gpu_check_leaves_out_what_would_start_after_its_budget(monkeypatch, tmp_path):
    argv = [
        "gpu",
        "--device",
        "cpu",
        "--quick",
        "--budget-s",
        "-1",
        "--shared",
        tmp_path / "none",
        "-o",
        tmp_path / "out",
    ]
    summary = _bench_networks(monkeypatch, tmp_path, *argv)
    assert [p["status"].split(":")[0] for p in summary["parts"]] == ["left out"] * 4
    assert all(t["measured_fps"] is None and t["why_none"] == "not measured" for t in summary["targets"])


def test_rows_of_a_settings_sweep_say_which_setting_they_ran():
    report = run_bench(["sgbm"], [(32, 256)], sweeps={"block_size": [3, 5]}, warmup=1, runs=1)
    table = report.table()
    assert "|sgbm (block_size=3)|opencv|" in table and "|sgbm (block_size=5)|opencv|" in table


@pytest.mark.filterwarnings("ignore::rtstereo.runtime.predictor.SmallInputWarning")  # tiny sizes on purpose
def test_the_post_processing_switches_every_model_takes_are_swept_on_each_model(tmp_path):
    import torch

    from rtstereo.export.onnx_export import build_network
    from rtstereo.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    _, settings, module, _ = build_network("rtnet", None, {"max_disp": 32}, random_weights=True)
    checkpoint = tmp_path / "rtnet.pt"
    save_checkpoint(checkpoint, "rtnet", settings, module.state_dict())
    sweeps = {"refine_edges": ["true", "false"]}
    cases, notes = expand_cases([str(checkpoint), "sgbm", "m.onnx"], [SIZE_HW], sweeps, ["fp32"], ["torch"])
    assert notes == [] and len(cases) == 6
    assert {c.settings for c in cases} == {(("refine_edges", True),), (("refine_edges", False),)}  # typed
    networks = bench._NetworkCache({}, random_weights=False)
    for case in cases[:4]:  # the checkpoint's and sgbm's rows: the switch reaches the predictor that is timed
        predictor = bench._predictor(case, networks, "cpu", 1)
        assert predictor.refine_edges is dict(case.settings)["refine_edges"], case.label
    report = run_bench([str(checkpoint), "sgbm"], [(32, 256)], sweeps=sweeps, warmup=1, runs=1, threads=1)
    assert [r.status for r in report.rows] == ["ok"] * 4, report.table()


def test_a_packaged_networks_row_reads_its_files_precision_as_the_file_given_by_path_does():
    """rtnet-v5 read "-" in the Precision column, the cell of SGBM, and "Full" given as its .onnx file's path."""
    path = str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    report = run_bench(["rtnet-v5", path, "hybrid", "sgbm"], [(64, 512)], warmup=1, runs=1, threads=1)
    assert [row.status for row in report.rows] == ["ok"] * 4, report.table()
    table = report.table()
    for model in ("rtnet-v5", path):
        assert f"|{model}|onnxruntime|64p (512x64)|192|Full|" in table, table
    assert "|hybrid|onnxruntime|64p (512x64)|192 (128 searched)|Full|" in table, table
    assert "|sgbm|opencv|64p (512x64)|192|-|" in table, table


def test_the_hybrids_network_file_gives_its_row_its_own_precision(tmp_path):
    """hybrid --set network=FILE read "Full" whatever the file held: an int8 export's row too."""
    onnx = pytest.importorskip("onnx")
    from rtstereo.runtime.onnx import METADATA_KEY

    model = onnx.load(str(Path(rtstereo.__file__).parent / "weights" / "rtnet-guided.onnx"))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps({**json.loads(entry.value), "precision": "int8"})  # as an --int8 export says
    onnx.save(model, str(tmp_path / "guided8.onnx"))
    report = run_bench(
        ["hybrid"], [(64, 512)], sweeps={"network": [str(tmp_path / "guided8.onnx")]}, warmup=1, runs=1, threads=1
    )
    assert [row.status for row in report.rows] == ["ok"], report.table()
    assert report.rows[0].file_precision == "int8"
    assert f"|hybrid (network={tmp_path / 'guided8.onnx'})|onnxruntime|64p (512x64)|" in report.table()
    assert "|int8|" in report.table(), report.table()


def test_a_two_pass_exports_file_that_predict_refuses_is_refused_before_the_sweep(cli, tmp_path, monkeypatch):
    """Its first pass alone, or its refinement model moved without it: each row was skipped while the others were
    timed, and `bench cre_init.onnx,sgbm` exited 0, where predict refuses both files."""
    onnx = pytest.importorskip("onnx")
    from rtstereo.runtime.onnx import METADATA_KEY

    def stamped(name: str, **contract) -> Path:  # a copy of a packaged file, labelled as a two-pass export's file
        model = onnx.load(str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx"))
        entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
        entry.value = json.dumps({**json.loads(entry.value), **contract})
        onnx.save(model, str(tmp_path / name))
        return tmp_path / name

    init = stamped("cre_init.onnx", role="init")
    refine = stamped("moved.onnx", role="refine", companion="moved_init.onnx")
    monkeypatch.setattr("rtstereo.bench._measure_group", lambda *a, **k: pytest.fail("swept a file predict refuses"))
    code, out, err = cli("bench", f"{init},sgbm", "--sizes", "32x64", "--warmup", "1", "--runs", "1")
    assert (code, out) == (2, "")
    assert err == (
        f"rtstereo bench: error: {init} is the half-size first pass of a two-pass export; load the refinement model "
        "beside it (cre.onnx), which runs both\n"
    )
    code, out, err = cli("bench", "sgbm", "--baseline", refine, "--sizes", "32x64", "--warmup", "1", "--runs", "1")
    assert (code, out) == (2, "")
    assert err == (
        f"rtstereo bench: error: {refine} is the refinement model of a two-pass export, and its half-size first pass "
        f"{tmp_path / 'moved_init.onnx'} is missing beside it: keep the two files together, or export again\n"
    )


def test_a_fixed_size_onnx_file_is_benched_at_its_own_size_only(tmp_path):
    pytest.importorskip("onnx")
    from rtstereo.export.onnx_export import build_network, export_onnx

    spec, settings, module, _ = build_network("anynet", None, {}, random_weights=True)
    path = export_onnx(spec, settings, module, (32, 64), tmp_path / "anynet.onnx").path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "resized to the fixed size" warning: nothing is resized
        report = run_bench([str(path)], [(32, 64), (64, 128)], warmup=1, runs=1, threads=1)
    own, other = report.rows
    assert own.status == "ok" and own.case.size_hw == (32, 64)
    # The file's own precision is its row's (it read "-", beside the note's "slower than Full")
    assert own.file_precision == "fp32" and f"|{path}|onnxruntime|32p (64x32)|200|Full|" in report.table()
    assert BenchRow.from_json(own.to_json()).file_precision == "fp32"
    assert other.status == "skipped" and np.isnan(other.median_ms)
    advice = "bench it with --sizes 32x64, or export it with --dynamic for any size"
    assert other.reason == f"{path} is fixed at 32x64 (HxW): {advice}"
    assert f"|{path}|onnxruntime|64p (128x64)|-|Full|skipped: " in report.table()  # its precision too: it read "-"


def test_a_fixed_size_onnx_files_accuracy_is_evals_as_its_predictor_resizes_the_scenes(tiny_dataset, tmp_path):
    """bench resized each scene to a fixed-size export's size itself and post-processed the map there, where predict
    and eval let the predictor resize and post-process at the scene's size: one file, one scene, two figures (D1 6.2
    against eval's 7.1 % on Tsukuba), and no word of which procedure each used."""
    pytest.importorskip("onnx")
    from rtstereo.api import load
    from rtstereo.datasets import find_samples
    from rtstereo.eval import evaluate
    from rtstereo.export.onnx_export import build_network, export_onnx

    spec, settings, module, _ = build_network("anynet", None, {}, random_weights=True)
    path = str(export_onnx(spec, settings, module, (32, 64), tmp_path / "anynet.onnx").path)
    report = run_bench(
        [path], [(32, 64)], sweeps={"refine_edges": [True]}, warmup=1, runs=1, threads=1, data=[tiny_dataset]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resized to the file's size: said, and the point here
        predictor = load(path, settings={"refine_edges": True})
        evaluated = evaluate(lambda _sample: predictor, find_samples(tiny_dataset), path)
    assert report.rows[0].status == "ok", report.table()
    for key in ("epe", "d1", "bad-2"):
        assert report.rows[0].accuracy[key] == pytest.approx(float(evaluated.mean[key]), abs=1e-6), key
    assert [n for n in report.notes if "scored as predict and eval run it" in n] == [
        f"{path}: fixed in size, scored as predict and eval run it: the predictor resizes each scene and "
        "post-processes the map at the scene's size (eval gives these figures)"
    ]


def test_rows_of_another_size_than_a_scene_say_how_they_are_scored(tiny_dataset):
    report = run_bench(["sgbm"], [(24, 48), (48, 96)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    assert [n for n in report.notes if n.startswith("rows of another size")] == [
        "rows of another size than a scene (scene: 48x96 at 24x48, HxW) are scored by resizing the pair to the row's "
        "size, running and post-processing it there, and resizing its map to the ground truth's size, its "
        "disparities scaled by the width ratio"
    ]
    same = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    assert not [n for n in same.notes if n.startswith("rows of another size")]


def test_without_sizes_a_fixed_size_onnx_file_is_benched_at_its_own_size(tmp_path, cli):
    pytest.importorskip("onnx")
    from rtstereo.export.onnx_export import build_network, export_onnx

    spec, settings, module, _ = build_network("anynet", None, {}, random_weights=True)
    path = export_onnx(spec, settings, module, (32, 64), tmp_path / "anynet.onnx").path
    # Without --sizes it ran at the default 480x640 only, a skipped row, and the sweep exited with code 1.
    code, out, err = cli("bench", f"{path},sgbm", "--runs", 1, "--warmup", 1, "-o", tmp_path / "b")
    assert code == 0, err
    rows = json.loads((tmp_path / "b" / "bench.json").read_text())["rows"]
    assert [(r["model"], r["size_hw"], r["status"]) for r in rows] == [
        (str(path), [32, 64], "ok"),
        ("sgbm", [480, 640], "ok"),  # the default size for what is not fixed
    ]
    code, out, err = cli("bench", path, "--sizes", "64x128", "--runs", 1, "--warmup", 1)
    assert code == 1 and "is fixed at 32x64 (HxW)" in out  # a size asked for is kept


@pytest.mark.parametrize(
    ("file_precision", "caveat", "cell"),
    [("fp32", "", "Full"), ("fp16", "", "Half"), ("int8", "", "int8"), ("fp16", "cpu", "Half (CPU)"), ("", "", "-")],
)
def test_an_exported_files_row_reads_the_files_own_precision(file_precision, caveat, cell):
    from rtstereo.bench import _precision_cell

    row = BenchRow(BenchCase("m.onnx", "onnxruntime", (32, 64), "-"), file_precision=file_precision, caveat=caveat)
    assert _precision_cell(row) == cell  # an fp16 file on a GPU read "-"


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:0", "cuda:²"])
def test_a_device_no_backend_knows_is_refused(cli, device):
    code, out, err = cli("bench", "sgbm", "--sizes", "32x48", "--device", device)
    assert code == 2 and out == ""
    assert err == f"rtstereo bench: error: device must be cpu or cuda[:N], got '{device}'\n"


def test_cuda_without_a_gpu_is_refused_in_one_line_before_any_row(cli, monkeypatch):
    import onnxruntime
    import torch

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = cli("bench", "anynet,sgbm", "--random-weights", "--sizes", "32x48", "--device", "cuda")
    assert code == 2 and out == ""
    assert err == (
        "rtstereo bench: error: --device cuda: no CUDA GPU here (PyTorch sees none, and onnxruntime has only "
        "CPUExecutionProvider); bench on the CPU with --device cpu\n"
    )


@pytest.mark.parametrize("models", ["rtnet-v5,sgbm", "hybrid"])
def test_cuda_on_a_sweep_of_onnx_models_asks_onnx_runtime_alone_and_names_its_gpu_build(cli, monkeypatch, models):
    """It asked PyTorch (importing it) and said "PyTorch sees none"; where PyTorch saw a GPU, it let the sweep
    start, every ONNX row then refused one by one. predict names the onnxruntime-gpu build."""
    import onnxruntime
    import torch

    def asked(*args):
        raise AssertionError("PyTorch was asked about GPUs for ONNX rows")

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", asked)
    monkeypatch.setattr(torch.cuda, "device_count", asked)
    code, out, err = cli("bench", models, "--sizes", "32x48", "--device", "cuda")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(
        "rtstereo bench: error: --device cuda with ONNX Runtime needs its CUDA or TensorRT provider, which this "
        "onnxruntime build lacks (it has: CPUExecutionProvider). Install the GPU build (pip uninstall -y onnxruntime "
        "onnxruntime-gpu && pip install onnxruntime-gpu)"
    ), err


def test_cuda_n_beyond_the_gpus_there_are_is_refused(monkeypatch):
    import onnxruntime
    import torch

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"--device cuda:1: PyTorch sees 1 CUDA GPU, cuda:0$"):
        run_bench(["sgbm"], [SIZE_HW], device="cuda:1")


def _without_ground_truth(folder):
    """A KITTI 2012 testing-split frame: colored_0 and colored_1, no disp_occ."""
    left, right = synthetic_pair((48, 96), disparity_px=6)
    for side, image in (("colored_0", left), ("colored_1", right)):
        (folder / side).mkdir(parents=True)
        cv2.imwrite(str(folder / side / "000000_10.png"), image[:, :, ::-1])
    return folder


def test_data_without_ground_truth_is_refused_rather_than_benched_without_accuracy(tmp_path):
    testing = _without_ground_truth(tmp_path / "testing")
    with pytest.raises(InputError, match=r"^--data .*testing: no scene with ground truth \(1 found without\)"):
        run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, warmup=1, runs=1, data=[testing])


def test_scenes_of_data_without_ground_truth_are_left_out_with_a_note(tiny_dataset):
    _without_ground_truth(tiny_dataset / "testing")
    report = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, warmup=1, runs=1, data=[tiny_dataset])
    assert report.options["scenes"] == ["scene"] and np.isfinite(report.rows[0].accuracy["epe"])
    assert report.notes == ["1 scene of --data without ground truth left out of the accuracy"]


def test_scenes_stretched_to_rows_of_another_aspect_ratio_are_noted_as_pairs_against_a_reference_are(tiny_dataset):
    """--data with ground truth at --sizes of another aspect ratio (KITTI's 1241x376 at 480x640) stretched the scenes
    without a word, where --reference's pairs got a note."""
    report = run_bench(["sgbm"], [(48, 48), (24, 48)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    assert [n for n in report.notes if "stretched" in n] == [
        "1 scene of --data is stretched to rows of another aspect ratio (scene: 96x48 run at 48x48, WxH): the scores "
        "hold (disparity runs along the width, scaled by its ratio), but the methods see distorted pairs; --sizes of "
        "the scenes' aspect ratio keep their shape"
    ]
    same_shape = run_bench(["sgbm"], [(24, 48)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    assert not [n for n in same_shape.notes if "stretched" in n]


def test_a_scene_that_cannot_be_scored_is_left_out_with_a_note_not_every_rows_timing(tiny_dataset, cli):
    """One damaged image in --data skipped every row ("cannot read ..."), their timings with them, and the sweep
    ended "nothing was measured" (exit code 1); eval leaves such a scene out and scores the rest."""
    import shutil

    shutil.copytree(tiny_dataset / "scene", tiny_dataset / "broken")
    (tiny_dataset / "broken" / "im1.png").write_bytes(b"not a png")
    report = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    (row,) = report.rows
    assert row.status == "ok" and np.isfinite(row.median_ms) and row.accuracy["epe"] < 1.0
    assert report.notes == [
        "1 scene of --data could not be scored, left out of the accuracy of the rows it failed in (first: broken: "
        f"cannot read {tiny_dataset / 'broken' / 'im1.png'}: not an image OpenCV can decode, or the file is damaged)"
    ]
    shutil.rmtree(tiny_dataset / "scene")  # no scene left to score: the row says why
    code, out, err = cli("bench", "sgbm", "--sizes", "48x96", "--max-disp", "16", "--runs", "1", "--data", tiny_dataset)
    assert code == 1 and "|skipped: cannot read " in out and "nothing was measured" in err


def test_classical_rows_scored_at_their_default_range_say_that_eval_searches_each_scenes_own(tiny_dataset):
    """bench --data gave SGBM on Tsukuba D1 16.6 % (192 px), eval 3.2 % (the scene's 16 px), and neither said why."""
    report = run_bench(["sgbm", "hybrid"], [(48, 96)], runs=1, data=[tiny_dataset])
    # the hybrid's SGBM searches a quarter of the width at most, 32 px at 96 (rounded up to 16s): it read "192 px"
    assert report.notes == [
        "sgbm (192 px), hybrid (32 px: its SGBM searches a quarter of the width at most) searched their default "
        "disparity range on every scene of --data, as timed; eval searches each scene's own range, so its figures "
        "differ (eval --max-disp N gives these; --max-disp here sweeps the range)"
    ]
    assert "|hybrid|onnxruntime|48p (96x48)|192 (32 searched)|" in report.table()
    swept = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, runs=1, data=[tiny_dataset])
    assert swept.notes == []


def test_a_setting_swept_twice_is_refused_not_overwritten(cli):
    """``--set uniqueness=5 --set uniqueness=10`` kept only 10 without a word; ``--max-disp 16 --set
    max_disp=32`` kept only 32."""
    code, _, err = cli("bench", "sgbm", "--sizes", "32x48", "--set", "uniqueness=5", "--set", "uniqueness=10")
    assert code == 2 and "uniqueness is already swept (--set uniqueness)" in err
    code, _, err = cli("bench", "sgbm", "--sizes", "32x48", "--max-disp", "16", "--set", "max_disp=32")
    assert code == 2 and "max_disp is already swept (--max-disp)" in err


def test_a_checkpoint_is_taken_as_the_baseline_as_it_is_as_a_model(tmp_path):
    """--baseline runs/x/best.pt was refused as an unknown model, though the checkpoint benches as a model."""
    import torch

    from rtstereo.export.onnx_export import build_network
    from rtstereo.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    _, settings, module, _ = build_network("gwcnet-g", None, {"max_disp": 16}, random_weights=True)
    checkpoint = tmp_path / "gwcnet.pt"
    save_checkpoint(checkpoint, "gwcnet-g", settings, module.state_dict())
    report = run_bench(
        ["sgbm"], [(32, 96)], sweeps={"max_disp": [16]}, warmup=1, runs=1, threads=1, baseline=str(checkpoint)
    )
    assert report.baseline == str(checkpoint)
    rows = {r.case.model: r for r in report.rows}
    assert set(rows) == {"sgbm", str(checkpoint)} and all(r.status == "ok" for r in rows.values())
    assert rows[str(checkpoint)].vs_baseline == 1.0
    assert rows["sgbm"].vs_baseline == pytest.approx(rows["sgbm"].median_ms / rows[str(checkpoint)].median_ms)


def test_a_baseline_file_written_another_way_than_its_model_is_benched_once(monkeypatch):
    """`bench x.onnx --baseline ./x.onnx` timed the file twice, as two models, each row its own baseline."""
    from pathlib import Path

    import rtstereo

    folder = Path(rtstereo.__file__).parent / "weights"
    monkeypatch.chdir(folder)
    report = run_bench(
        [str(folder / "rtnet-v5.onnx")], [(64, 96)], warmup=1, runs=1, threads=1, baseline="./rtnet-v5.onnx"
    )
    assert report.baseline == str(folder / "rtnet-v5.onnx")
    assert [(r.case.model, r.status, r.vs_baseline) for r in report.rows] == [(report.baseline, "ok", 1.0)]


def test_threads_swept_with_set_beside_an_exported_file_are_refused_for_threads():
    """`bench x.onnx --set threads=1,2` noted that the file has no setting threads and timed it once, on the
    threads --threads gave (or the default); threads are --threads N for every model."""
    from pathlib import Path

    import rtstereo

    path = str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    with pytest.raises(InputError, match="has that setting: CPU threads are an option of their own, --threads N"):
        expand_cases([path], [(64, 96)], {"threads": ["1", "2"]}, ["fp32"], ["torch"])


def test_a_precision_an_onnx_model_does_not_run_in_is_noted():
    """`bench x.onnx,rtnet-v5 --precision fp16` timed both in fp32, their rows reading "Full", and said nothing."""
    from pathlib import Path

    import rtstereo

    path = str(Path(rtstereo.__file__).parent / "weights" / "rtnet-v5.onnx")
    cases, notes = expand_cases([path, "rtnet-v5", "sgbm"], [(64, 96)], {}, ["fp16", "fp32"], ["torch"])
    assert [(c.model, c.precision) for c in cases] == [(path, "-"), ("rtnet-v5", "-"), ("sgbm", "-")]
    assert notes == [
        f"{path} is an exported file: its precision (fp32) is fixed in it, --precision fp16 is not timed for it",
        "rtnet-v5 runs its packaged fp32 file: --precision fp16 is not timed for it",
    ]
    assert expand_cases([path, "rtnet-v5"], [(64, 96)], {}, ["fp32"], ["torch"])[1] == []


def test_a_file_written_two_ways_in_the_models_is_benched_once(monkeypatch):
    """`bench x.onnx,./x.onnx` timed the one file twice, as two models."""
    from pathlib import Path

    import rtstereo

    folder = Path(rtstereo.__file__).parent / "weights"
    monkeypatch.chdir(folder)
    report = run_bench(["rtnet-v5.onnx", "./rtnet-v5.onnx", str(folder / "rtnet-v5.onnx")], [(64, 96)], runs=1)
    assert report.options["models"] == ["rtnet-v5.onnx"]
    assert [(r.case.model, r.status) for r in report.rows] == [("rtnet-v5.onnx", "ok")]


def test_the_baseline_network_takes_its_weights_as_model_file(cli, tmp_path):
    """--baseline anynet --weights anynet=W was refused: anynet was "not among the models benched"."""
    import torch

    from rtstereo.models.anynet import AnyNet

    torch.manual_seed(0)
    torch.save({"state_dict": AnyNet().state_dict()}, tmp_path / "a.tar")
    size = ["--sizes", "32x64", "--max-disp", "16", "--runs", "1", "--warmup", "1", "--threads", "1"]
    code, out, err = cli("bench", "sgbm", *size, "--baseline", "anynet", "--weights", f"anynet={tmp_path / 'a.tar'}")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("|anynet|") or line.startswith("|sgbm|")]
    assert len(rows) == 2 and all("skipped" not in row for row in rows)
    assert rows[1].startswith("|anynet|torch|") and rows[1].endswith("|1.00|1.00|")


def test_the_table_says_which_baseline_row_divides_a_row_without_the_swept_range():
    """AnyNet beside SGBM at --max-disp 64,192: its x sgbm time divides by the first sgbm row, said nowhere."""
    from rtstereo.bench import BenchRow

    rows = [
        BenchRow(BenchCase("anynet", "torch", SIZE_HW, "fp32"), median_ms=100.0),
        BenchRow(BenchCase("sgbm", "opencv", SIZE_HW, "-", (("max_disp", 64),)), median_ms=10.0),
        BenchRow(BenchCase("sgbm", "opencv", SIZE_HW, "-", (("max_disp", 192),)), median_ms=20.0),
    ]
    bench._add_ratios(rows, "sgbm")
    assert [r.vs_baseline for r in rows] == [10.0, 1.0, 1.0]
    table = BenchReport(rows=rows, options={}, machine={}, baseline="sgbm").table()
    assert "else the first of its rows that fits best, in the order of the sweep" in table


def test_the_table_says_why_a_row_has_no_baseline_ratio():
    """A row whose size the baseline has no measured row of read "-" under x sgbm time, and nothing said why: an
    export fixed at 96x128 beside SGBM at the default 480x640, or SGBM skipped where the width is under its range."""
    from rtstereo.bench import BenchRow

    rows = [
        BenchRow(BenchCase("net.onnx", "onnxruntime", (96, 128), "-"), median_ms=5.0),
        BenchRow(BenchCase("net.onnx", "onnxruntime", (64, 96), "-"), median_ms=3.0),
        BenchRow(BenchCase("sgbm", "opencv", (64, 96), "-"), status="skipped", reason="image width 96 px ..."),
        BenchRow(BenchCase("sgbm", "opencv", (480, 640), "-"), median_ms=100.0),
    ]
    bench._add_ratios(rows, "sgbm")
    assert np.isnan(rows[0].vs_baseline) and np.isnan(rows[1].vs_baseline)
    table = BenchReport(rows=rows, options={}, machine={}, baseline="sgbm").table()
    assert (
        "x sgbm time: none for the rows of 96p (128x96), where sgbm did not run at that size; 64p (96x64), where "
        "sgbm's row was skipped." in table.splitlines()
    )
    rows[:3] = [BenchRow(BenchCase("anynet", "torch", (480, 640), "fp32"), median_ms=50.0)]
    bench._add_ratios(rows, "sgbm")
    assert "none for the rows" not in BenchReport(rows=rows, options={}, machine={}, baseline="sgbm").table()


def test_a_torch_row_records_pytorchs_threads_as_an_onnx_runtime_row_records_its_own():
    """bench.json held ONNX Runtime's thread count (its session's) but not PyTorch's, and bench.md said "default"."""
    import torch

    report = run_bench(["anynet"], [SIZE_HW], sweeps={"stage": [1]}, warmup=1, runs=1, random_weights=True)
    (row,) = report.rows
    assert row.status == "ok" and row.describe["threads"] == torch.get_num_threads()
    assert BenchRow.from_json(row.to_json()).describe["threads"] == torch.get_num_threads()
    assert f"default threads (PyTorch's: {torch.get_num_threads()})." in report.table()
    report.options["threads"] = torch.get_num_threads()  # as --threads N says: not said twice
    assert f", {counted(torch.get_num_threads(), 'thread')}." in report.table()


def test_the_plot_marks_rows_by_their_tables_precision_and_packaged_networks_are_not_called_classical():
    """rtnet-v5 and the hybrid (precision "-", as classical methods) were drawn with the marker the plot's
    axis named "D classical", and an exported fp16 file's rows as classical too."""
    case = lambda model, backend, precision: BenchCase(model, backend, (48, 96), precision, ())  # noqa: E731
    exported = BenchRow(case("net_fp16.onnx", "onnxruntime", "-"), file_precision="fp16")
    rows = [
        BenchRow(case("anynet", "torch", "fp32")),
        BenchRow(case("anynet", "torch", "bf16")),
        exported,
        BenchRow(case("rtnet-v5", "onnxruntime", "-")),
        BenchRow(case("sgbm", "opencv", "-")),
    ]
    assert [bench.plot_marker(row) for row in rows] == ["o", "^", "s", "D", "D"]
    assert "D no precision to choose (classical, packaged ONNX)" in bench.PLOT_MARKERS_SAID


def test_a_warning_of_a_rows_run_on_data_is_said_once_not_once_per_scene(tiny_dataset):
    """eval names the scene of each warning; bench runs every scene of --data at the row's size, so that the same
    warning (the unmatched band of a range over half the width) came again with each scene's name."""
    import shutil

    from rtstereo.models.sgbm import UnmatchedBandWarning

    shutil.copytree(tiny_dataset / "scene", tiny_dataset / "second")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [64]}, warmup=1, runs=1, data=[tiny_dataset])
    said = {str(w.message) for w in caught if w.category is UnmatchedBandWarning}
    assert said and not [m for m in said if m.startswith(("scene: ", "second: "))], said


def test_results_that_cannot_be_written_say_why_in_words(tmp_path, monkeypatch):
    """A folder under a file said "[Errno 20] Not a directory: 'taken/out'"; an earlier plot that cannot be removed
    said "[Errno 13] Permission denied: '.../bench.png'"."""
    from pathlib import Path

    from rtstereo.errors import OutputError

    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        BenchReport(rows=[], options={}, machine={}).save(blocker / "out")
    assert str(info.value) == f"cannot write benchmark results to {blocker / 'out'}: {blocker} is a file, not a folder"
    plot = tmp_path / "bench.png"
    plot.write_bytes(b"an earlier sweep's")

    def refuse(path, missing_ok=False):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(OutputError) as info:
        BenchReport(rows=[], options={}, machine={}).save(tmp_path)
    assert str(info.value) == f"cannot remove the earlier sweep's {plot}: Permission denied"


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        # OpenCV's "Insufficient memory" traceback while the timing pair was made
        ("100000x100000", "--sizes 100000x100000: a pair of this size needs at least 298.0 GB before any method runs"),
        # OpenCV's "Can't parse 'dsize'" traceback
        ("480x640,3000000000x100", "--sizes 3000000000x100: a side beyond 2147483647 px (2^31 - 1)"),
    ],
)
def test_bench_refuses_a_size_no_memory_holds_before_making_its_pair(cli, monkeypatch, sizes, message):
    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "1G")
    monkeypatch.setattr(bench, "timing_pair", lambda size_hw: pytest.fail(f"a pair of {size_hw} was made"))
    code, out, err = cli("bench", "sgbm", "--sizes", sizes)
    assert code == 2 and out == "", out
    assert err.startswith(f"rtstereo bench: error: {message}") and err.count("\n") == 1, err
    assert "give a smaller size" in err, err


def test_a_row_the_memory_budget_ran_smaller_says_the_size_it_ran_at(monkeypatch):
    """A 288x384 row that the budget ran at 224x288 was labelled 288x384 in the table and JSON; only a warning on
    stderr said otherwise."""
    from rtstereo.runtime.predictor import ResizeWarning

    monkeypatch.setenv("RTSTEREO_MEMORY_BUDGET", "40M")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResizeWarning)
        report = run_bench(["rtnet-v5", "hybrid", "sgbm"], [(288, 384)], runs=1)
    network, hybrid, sgbm = report.rows
    assert network.ran_at_hw == [224, 288] and network.to_json()["ran_at_hw"] == [224, 288]
    assert BenchRow.from_json(network.to_json()).ran_at_hw == [224, 288]
    assert hybrid.ran_at_hw == [192, 256] and sgbm.ran_at_hw is None and "ran_at_hw" not in sgbm.to_json()
    assert BenchRow.from_json(sgbm.to_json()).ran_at_hw is None
    table = report.table()
    assert "|rtnet-v5|onnxruntime|288p (384x288), ran at 224p (288x224)|192|" in table
    assert "|hybrid|onnxruntime|288p (384x288), its network ran at 192p (256x192)|" in table
    assert "|sgbm|opencv|288p (384x288)|192|" in table


@pytest.mark.parametrize("model, stage, shown", [("anynet", 3, "200"), ("/x/anynet.onnx", 1, "176"), ("bm", None, "-")])
def test_an_anynet_rows_disparity_range_is_its_architectures(model, stage, shown):
    """AnyNet's range is no setting: its rows read "-", though its stage fixes it (200 px at stage 3)."""
    describe = {} if stage is None else {"stage": stage}
    row = BenchRow(BenchCase(model, "onnxruntime", (64, 96), "-"), describe=describe)
    assert bench._levels(row) == shown


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--runs", "0"], "--runs must be >= 1, got 0"),  # it was "warmup and runs must be >= 1, got warmup=2, runs=0"
        (["--warmup", "0"], "--warmup must be >= 1, got 0"),
        (["--runs", "1.5"], "argument --runs: expected a whole number, got '1.5' (see `rtstereo bench --help`)"),
        (["--warmup", "x"], "argument --warmup: expected a whole number, got 'x' (see `rtstereo bench --help`)"),
    ],
)
def test_a_count_of_calls_out_of_range_names_its_option(cli, capsys, argv, message):
    try:
        code, out, err = cli("bench", "sgbm", "--sizes", "32x48", *argv)
    except SystemExit as exc:  # argparse's own refusal
        captured = capsys.readouterr()
        code, out, err = exc.code, captured.out, captured.err
    assert (code, out) == (2, "") and err == f"rtstereo bench: error: {message}\n"
