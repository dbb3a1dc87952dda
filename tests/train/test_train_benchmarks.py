"""The training-throughput benchmarks (benchmarks/train_throughput.py, train_prefetch_ab.py) at a tiny size:
what they measure and write, not how fast (speed targets live in the benchmarks' own runs)."""

from __future__ import annotations

import json

import pytest
from tests.conftest import BENCHMARKS
from tests.conftest import benchmark_script as _script

RECIPE = BENCHMARKS.parent / "training" / "default.yaml"


def _tiny_job(script) -> dict:
    recipe = script.read_recipe(str(RECIPE))
    recipe["settings"] = {**recipe["settings"], "max_disp": 32}  # the figures' plumbing, not their speed
    return {
        "recipe": recipe,
        "size": [32, 64],
        "batch": 1,
        "threads": 1,
        "steps": 2,
        "warmup": 1,
        "device": "cpu",
        "figures": ["end_to_end"],
        "variants": True,
        "scene_max_disp": 32.0,
    }


def test_throughput_measures_the_loop_with_the_batch_thread_the_other_way_from_its_default():
    script = _script("train_throughput")
    out = script.worker(_tiny_job(script))
    assert set(out) == {"end_to_end", "end_to_end_prefetch"}, out  # on a CPU the default makes no batch ahead
    for figure in out.values():
        assert isinstance(figure, dict) and figure["wall"] > 0, out
    machine = {"gpu": None, "cpu": "test CPU", "date": "today", "commit": "abc", "versions": {}, "cpu_count": 2}
    report = {"device": "cpu", "machine": machine, "threads": 1, "recipe": "r.yaml", "steps": 2}
    report["rows"] = [{"size": [32, 64], "batch": 1, "new": out}]
    assert "| 32x64 | 1 | end to end prefetch |" in script.markdown(report)


def test_prefetch_ab_alternates_the_two_settings_and_writes_its_tables(tmp_path):
    script = _script("train_prefetch_ab")
    argv = [
        "--size",
        "32x64",
        "--batch-size",
        "1",
        "--rounds",
        "2",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--output-dir",
        str(tmp_path),
    ]
    script.train_throughput.read_recipe = lambda path, read=script.train_throughput.read_recipe: {
        **read(path),
        "settings": {**read(path)["settings"], "max_disp": 32},
    }
    assert script.main(argv) == 0
    (report_file,) = tmp_path.glob("prefetch_ab_cpu_32x64_*.json")
    report = json.loads(report_file.read_text())
    assert [(run["round"], run["prefetch"]) for run in report["runs"]] == [(0, True), (0, False), (1, False), (1, True)]
    assert set(report["median_pairs_per_s"]) == {"prefetch", "no_prefetch"}
    assert 0 <= report["rounds_prefetch_faster"] <= 2
    assert "| on |" in report_file.with_suffix(".md").read_text()


def test_compile_ab_alternates_eager_and_compiled_steps_and_writes_its_tables(tmp_path, monkeypatch):
    import torch

    script = _script("train_compile_ab")
    compiled = []
    # Compiling takes minutes: the plumbing is checked with a compile that hands the model back.
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)
    monkeypatch.setattr(
        script.train_throughput,
        "read_recipe",
        lambda path, read=script.train_throughput.read_recipe: {
            **read(path),
            "settings": {**read(path)["settings"], "max_disp": 32},
        },
    )
    argv = ["--size", "32x64", "--batch-size", "1", "--rounds", "2", "--warmup", "1", "--output-dir", str(tmp_path)]
    assert script.main(argv) == 0
    assert len(compiled) == 1  # one of the two forms is compiled
    (report_file,) = tmp_path.glob("compile_ab_cpu_32x64_*.json")
    report = json.loads(report_file.read_text())
    forms = [(run["round"], run["form"]) for run in report["runs"]]
    assert forms == [(0, "eager"), (0, "compiled"), (1, "compiled"), (1, "eager")]
    assert all(run["cpu_s"] > 0 and run["wall_s"] > 0 for run in report["runs"])
    assert set(report["medians"]) == {"eager", "compiled"}
    text = report_file.with_suffix(".md").read_text()
    assert "| eager |" in text and "| compiled |" in text and "Eager / compiled" in text


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--batch-sizes", "0"], "--batch-sizes: expected comma-separated batch sizes >= 1, got '0'"),
        (["--batch-sizes", "8,x"], "--batch-sizes: expected comma-separated batch sizes >= 1"),
        (["--sizes", "160x"], "--sizes: expected sizes HxW such as 160x320, got '160x'"),
        (["--sizes", "0x320"], "--sizes: expected sizes HxW"),
        (["--steps", "0"], "--steps: expected a whole number >= 1, got '0'"),
        (["--baseline-steps", "two"], "--baseline-steps: expected a whole number >= 1"),
        (["--threads", "-1"], "--threads: expected a whole number >= 0"),
        (["--warmup", "1.5"], "--warmup: expected a whole number >= 0"),
        (["--device", "tpu"], "--device: expected cpu, cuda or cuda:N, got 'tpu'"),
        (["--figures", "augment,bogus"], "--figures: expected a subset of render,augment,step,end_to_end"),
    ],
)
def test_throughput_refuses_bad_options_as_usage_errors(argv, said, capsys):
    """They ran before: every figure failed in its worker, or a traceback came, and a results file of errors
    was written."""
    script = _script("train_throughput")
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(argv)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_throughput_options_are_parsed_into_values():
    script = _script("train_throughput")
    args = script.parse_args(["--sizes", "160x320, 256X512", "--batch-sizes", "1,8", "--device", "cuda:1"])
    assert args.sizes == [(160, 320), (256, 512)] and args.batch_sizes == [1, 8] and args.device == "cuda:1"
    assert script.parse_args([]).figures == ["render", "augment", "step", "end_to_end"]
    assert script.parse_args(["--figures", "augment"]).figures == ["augment"]
