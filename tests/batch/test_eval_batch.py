"""``rtstereo eval`` survives a scene that cannot be read: it is listed, the rest scored, exit code 1."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtstereo.cli import main
from rtstereo.datasets import find_samples
from rtstereo.errors import InputError
from rtstereo.eval import evaluate

from ..conftest import refuse_json_writes
from .conftest import BATCH_HW, SGBM_ARGS, SGBM_RESULTS, write_kitti
from .test_batch_cli import run_cli


def test_eval_lists_the_bad_scene_and_scores_the_rest(capsys, tmp_path):
    data = write_kitti(tmp_path / "kitti", 3, corrupt=(1,))
    code, out, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 1
    assert "failed: kitti/000001 (" in err and "cannot read" in err and "1 scene failed: kitti/000001" in err
    results = json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())
    assert [s["name"] for s in results["scenes"]] == ["kitti/000000", "kitti/000002"]
    assert results["failed"][0]["name"] == "kitti/000001" and results["failed"][0]["error"].startswith("cannot read")


def test_eval_fails_a_scene_whose_right_view_is_a_copy_of_its_left(capsys, tmp_path):
    """A right image copied from the left was scored, 100 % wrong and 0 % dense, as a method's figures; predict refuses
    such a pair."""
    import shutil

    data = write_kitti(tmp_path / "kitti", 2)
    shutil.copy(data / "image_2" / "000001_10.png", data / "image_3" / "000001_10.png")
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 1, err
    failure = json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["failed"]
    assert [f["name"] for f in failure] == ["kitti/000001"]
    assert failure[0]["error"] == (
        f"scene kitti/000001: left {data / 'image_2' / '000001_10.png'} and right {data / 'image_3' / '000001_10.png'} "
        "are the same picture (identical pixels: one file under two names, or a copy): a stereo pair needs its two "
        "views, one per camera"
    )


def test_eval_markdown_says_why_each_failed_scene_was_not_scored(capsys, tmp_path):
    """The .md file's row of a failed scene read "failed" alone: why was in the JSON and on stderr only."""
    data = write_kitti(tmp_path / "kitti", 2, corrupt=(1,))
    assert run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")[0] == 1
    failure = json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["failed"][0]
    markdown = (tmp_path / "res" / SGBM_RESULTS).with_suffix(".md").read_text()
    assert "| kitti/000001 | failed |" in markdown
    assert markdown.endswith(f"\nNot scored:\n\n- kitti/000001 ({failure['left']}): {failure['error']}\n")
    assert failure["error"].startswith("cannot read")


class _ClosedPipe:
    """stdout whose reader went away (``eval ... | head -1``): every write fails as a closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass


def test_eval_piped_into_a_reader_that_goes_away_still_writes_its_results_and_exit_code(capsys, tmp_path, monkeypatch):
    """`eval ... | head -1` ended at the table, before the results were written, with exit code 0 and no word of the
    failed scene."""
    data = write_kitti(tmp_path / "kitti", 3, corrupt=(1,))
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    code = main(["eval", str(data), *SGBM_ARGS, "-o", str(tmp_path / "res"), "-q"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.splitlines()[-1].startswith("rtstereo eval: 1 scene failed: kitti/000001")
    results = json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())
    assert [s["name"] for s in results["scenes"]] == ["kitti/000000", "kitti/000002"]
    assert (tmp_path / "res" / SGBM_RESULTS).with_suffix(".md").is_file()


def test_eval_names_the_first_failed_scenes_in_its_summary_and_counts_the_rest_as_predict_does(
    capsys, tmp_path, monkeypatch
):
    """Every failed scene's name went into the one summary line: 400 broken frames, a line of 400 names."""
    monkeypatch.setattr("rtstereo.cli.eval.FAILURES_LISTED", 2)
    data = write_kitti(tmp_path / "kitti", 5, corrupt=(0, 1, 2, 4))
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 1
    assert err.splitlines()[-1] == (
        f"rtstereo eval: 4 scenes failed: kitti/000000, kitti/000001 and 2 more (listed in {tmp_path / 'res'}/"
        f"{SGBM_RESULTS})"
    )
    assert len(json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["failed"]) == 4


def test_eval_fail_fast(capsys, tmp_path):
    data = write_kitti(tmp_path / "kitti", 3, corrupt=(0,))
    code, out, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q", "--fail-fast")
    assert code == 1 and "mean (0)" in out
    # the scenes it did not score are counted, not left unsaid
    assert (
        err.strip().splitlines()[-1]
        == "rtstereo eval: --fail-fast: stopped at the first failure; 2 of 3 scenes not scored"
    )
    assert json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["scenes_listed"] == 3


def test_eval_workers_need_ray(capsys, tmp_path):
    data = write_kitti(tmp_path / "kitti", 1)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "--workers", "2")
    assert code == 2 and "apply to --engine ray only" in err


def test_evaluate_raises_without_on_error(tmp_path):
    samples = find_samples(write_kitti(tmp_path / "kitti", 2, corrupt=(0,)))
    import rtstereo

    predictor = rtstereo.load("sgbm", max_disp=16)
    with pytest.raises(InputError, match="cannot read"):
        evaluate(lambda s: predictor, samples, model="sgbm")
    report = evaluate(lambda s: predictor, samples, model="sgbm", on_error=lambda s, e: True)
    assert len(report.scenes) == 1 and report.failures[0]["name"] == "kitti/000000"


@pytest.mark.parametrize(
    ("model_args", "message"),
    [
        (["--model", "sgmb"], "unknown model 'sgmb'"),
        (["--model", "sgbm", "--set", "foo=1"], "foo"),
        (["--model", "rtnet-v5", "--max-disp", "64"], "max_disp=64"),
        (["--model", "nothere.onnx"], "nothere.onnx"),
    ],
)
def test_eval_usage_error_stops_before_scoring_and_keeps_old_results(capsys, tmp_path, model_args, message):
    data = write_kitti(tmp_path / "kitti", 2)
    res = tmp_path / "res"
    res.mkdir()
    for stem in ("sgmb", "sgbm", "sgbm_foo=1", "rtnet-v5", "nothere"):
        (res / f"{stem}.json").write_text("good results\n")
    code, out, err = run_cli(capsys, "eval", data, *model_args, "-o", res, "-q")
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rtstereo eval: error: ") and message in err, err
    assert "failed" not in err and out == ""
    assert sorted(p.name for p in res.iterdir()) == sorted(
        f"{s}.json" for s in ("sgmb", "sgbm", "sgbm_foo=1", "rtnet-v5", "nothere")
    )
    assert all(p.read_text() == "good results\n" for p in res.iterdir())


def test_eval_of_one_network_with_two_weights_files_keeps_both_results(capsys, tmp_path):
    """AnyNet's SceneFlow and KITTI files are two forms of one model, as its stages are: the second run must
    not overwrite the first one's results (each file names its weights)."""
    torch = pytest.importorskip("torch")
    from rtstereo.models.anynet import AnyNet

    data = write_kitti(tmp_path / "kitti", 1)
    res = tmp_path / "res"
    for seed, stem in ((0, "sceneflow"), (1, "kitti2012")):
        torch.manual_seed(seed)
        torch.save({"state_dict": AnyNet().state_dict()}, tmp_path / f"{stem}.tar")
        code, _, err = run_cli(
            capsys, "eval", data, "--model", "anynet", "--weights", tmp_path / f"{stem}.tar", "-o", res, "-q"
        )
        assert code == 0, err
    stage_1 = ["--weights", tmp_path / "kitti2012.tar", "--set", "stage=1"]
    code, _, err = run_cli(capsys, "eval", data, "--model", "anynet", *stage_1, "-o", res, "-q")
    assert code == 0, err
    names = ["anynet_weights=kitti2012.json", "anynet_weights=kitti2012_stage=1.json", "anynet_weights=sceneflow.json"]
    assert sorted(p.name for p in res.glob("*.json")) == names
    recorded = json.loads((res / names[-1]).read_text())["scenes"][0]["settings"]["weights"]
    assert recorded == str(tmp_path / "sceneflow.tar")


def test_eval_of_one_network_on_two_backends_or_precisions_keeps_each_result(capsys, tmp_path):
    """AnyNet on ONNX Runtime (or in bf16) wrote anynet_weights=....json, over its PyTorch fp32 results."""
    torch = pytest.importorskip("torch")
    from rtstereo.models.anynet import AnyNet

    data = write_kitti(tmp_path / "kitti", 1)
    res = tmp_path / "res"
    torch.manual_seed(0)
    torch.save({"state_dict": AnyNet().state_dict()}, tmp_path / "kitti2012.tar")
    model = ["--model", "anynet", "--weights", tmp_path / "kitti2012.tar", "-o", res, "-q"]
    for runtime in ([], ["--backend", "onnxruntime"], ["--precision", "bf16"]):
        code, _, err = run_cli(capsys, "eval", data, *model, *runtime)
        assert code == 0, err
    assert sorted(p.name for p in res.glob("*.json")) == [
        "anynet_weights=kitti2012.json",
        "anynet_weights=kitti2012_backend=onnxruntime.json",
        "anynet_weights=kitti2012_precision=bf16.json",
    ]
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "--precision", "bf16", "-o", res, "-q")
    assert code == 0, err
    assert (res / SGBM_RESULTS).is_file(), "a classical method has one backend and no precision"


def test_eval_of_two_runs_best_checkpoints_keeps_both_results(capsys, tmp_path):
    """Every training run writes best.pt: two runs' files must not share one results file (the run folder
    joins the name)."""
    torch = pytest.importorskip("torch")
    from rtstereo.models.anynet import AnyNet

    data = write_kitti(tmp_path / "kitti", 1)
    res = tmp_path / "res"
    for seed, run in enumerate(("run_a", "run_b")):
        torch.manual_seed(seed)
        (tmp_path / run).mkdir()
        torch.save({"state_dict": AnyNet().state_dict()}, tmp_path / run / "best.pt")
        weights = tmp_path / run / "best.pt"
        code, _, err = run_cli(capsys, "eval", data, "--model", "anynet", "--weights", weights, "-o", res, "-q")
        assert code == 0, err
    assert sorted(p.name for p in res.glob("*.json")) == [
        "anynet_weights=run_a_best.json",
        "anynet_weights=run_b_best.json",
    ]


def test_eval_of_two_rt_stereo_model_onnx_files_keeps_both_results(capsys, tmp_path):
    """RT-Stereo writes every export as model.onnx: a second one's results replaced the first's, both named
    model_backend=onnxruntime (the folder now joins the name, as for best.pt)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    data = write_kitti(tmp_path / "kitti", 1)
    height, width = BATCH_HW
    images = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, height, width]) for n in ("left", "right")]
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["left", "right"], ["d"]),
            helper.make_node("ReduceMean", ["d"], ["output"], axes=[1], keepdims=0),
        ],
        "rt-stereo",
        images,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, height, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    res = tmp_path / "res"
    for run in ("fp32", "sanitized"):
        (tmp_path / run).mkdir()
        onnx.save(model, tmp_path / run / "model.onnx")
        code, _, err = run_cli(capsys, "eval", data, "--model", tmp_path / run / "model.onnx", "-o", res, "-q")
        assert code == 0, err
    assert sorted(p.name for p in res.glob("*.json")) == [
        "fp32_model_backend=onnxruntime.json",
        "sanitized_model_backend=onnxruntime.json",
    ]


def test_eval_searches_a_range_given_with_set_as_with_max_disp(capsys, tmp_path):
    """--set max_disp=48 was replaced by each scene's own range (192 for KITTI), in results named max_disp=48."""
    data = write_kitti(tmp_path / "kitti", 1)
    for option in (["--set", "max_disp=48"], ["--max-disp", "48"]):
        code, _, err = run_cli(capsys, "eval", data, "--model", "sgbm", *option, "-o", tmp_path / option[0], "-q")
        assert code == 0, err
        scene = json.loads((tmp_path / option[0] / "sgbm_max_disp=48.json").read_text())["scenes"][0]
        assert scene["settings"]["max_disp"] == 48, option


def test_eval_results_of_other_ranges_and_iterations_keep_their_own_files(capsys, tmp_path):
    """--max-disp and --iters did not join the results' name (--set did): SGBM at each scene's range and at
    --max-disp 32, or a network at --iters 2 and 20, overwrote each other's results."""
    data = write_kitti(tmp_path / "kitti", 1)
    res = tmp_path / "res"
    runs = (["--model", "sgbm"], ["--model", "sgbm", "--max-disp", "32"], ["--model", "sgbm", "--set", "max_disp=48"])
    for model_args in runs:
        code, out, err = run_cli(capsys, "eval", data, *model_args, "-o", res, "-q")
        assert code == 0, err
    assert sorted(p.name for p in res.glob("*.json")) == ["sgbm.json", "sgbm_max_disp=32.json", "sgbm_max_disp=48.json"]
    assert json.loads((res / "sgbm_max_disp=32.json").read_text())["scenes"][0]["settings"]["max_disp"] == 32
    assert json.loads((res / "sgbm.json").read_text())["scenes"][0]["settings"]["max_disp"] != 32, "the scene's range"


def test_eval_makes_one_predictor_per_range_and_none_left_unused(monkeypatch, capsys, tmp_path):
    """The usage check made a predictor with the run's own settings, which no scene used when each scene searches its
    own range: for the hybrid, a session of its network opened for nothing."""
    import rtstereo.cli.eval as eval_cli

    made, make = [], eval_cli.predictor_from_args
    monkeypatch.setattr(eval_cli, "predictor_from_args", lambda args, **kw: made.append(kw) or make(args, **kw))
    code, _, err = run_cli(capsys, "eval", write_kitti(tmp_path / "kitti", 2), "--model", "sgbm", "-o", tmp_path, "-q")
    assert code == 0, err
    assert made == [{"max_disp": 80}], "one predictor, for the range both scenes search (192 px, within 96 px)"


def test_eval_names_results_after_iters(monkeypatch, capsys, tmp_path):
    """--iters joins the name as --set iters= does (the network is stood in for: the name is the point)."""
    import rtstereo.cli.eval as eval_cli
    from rtstereo.eval import EvalReport

    monkeypatch.setattr(eval_cli, "predictor_from_args", lambda args, **kw: object())
    monkeypatch.setattr(eval_cli, "evaluate", lambda *a, **kw: EvalReport(model=kw["model"]))
    data = write_kitti(tmp_path / "kitti", 1)
    for iters in (["--iters", "2"], ["--iters", "20"], ["--set", "iters=2"]):
        code, _, err = run_cli(capsys, "eval", data, "--model", "crestereo", *iters, "-o", tmp_path / "res", "-q")
        assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "res").glob("*.json"))
    assert names == ["crestereo_iters=2.json", "crestereo_iters=20.json"], "--set iters=2 shares --iters 2's file"


def test_eval_times_each_scene_after_a_warm_up_run(tmp_path):
    """The first scene's ms held the first call's warm-up (84 ms against 22 ms on every later scene)."""
    import types

    samples = find_samples(write_kitti(tmp_path / "kitti", 3))
    calls = []

    class FirstCallSlow:
        def predict(self, left, right):
            calls.append(left.shape)
            disparity_px = np.full(left.shape[:2], 3.0, np.float32)
            return types.SimpleNamespace(
                disparity_px=disparity_px, settings={}, timings_ms={"total": 84.0 if len(calls) == 1 else 22.0}
            )

    predictor = FirstCallSlow()
    report = evaluate(lambda s: predictor, samples, model="slow-start")
    assert [s.metrics["time_ms"] for s in report.scenes] == [22.0, 22.0, 22.0]
    assert len(calls) == 4, "one warm-up run for the predictor, not one per scene"


def test_eval_warms_up_again_for_each_new_image_size(tmp_path):
    """A first call at a new size holds ONNX Runtime's memory planning for that shape (up to 2.4x a later
    call's time): the first scene of each size carried it in its ms."""
    import types

    folder = write_kitti(tmp_path / "kitti", 3)
    for sub in ("image_2", "image_3", "disp_occ_0"):  # the middle scene is narrower
        path = folder / sub / "000001_10.png"
        cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :-16])
    seen: set[tuple[int, ...]] = set()
    calls = []

    class FirstCallPerSizeSlow:
        def predict(self, left, right):
            calls.append(left.shape)
            first = left.shape not in seen
            seen.add(left.shape)
            disparity_px = np.full(left.shape[:2], 3.0, np.float32)
            return types.SimpleNamespace(
                disparity_px=disparity_px, settings={}, timings_ms={"total": 84.0 if first else 22.0}
            )

    predictor = FirstCallPerSizeSlow()
    report = evaluate(lambda s: predictor, find_samples(folder), model="slow-per-size")
    assert [s.size_hw[1] for s in report.scenes] == [BATCH_HW[1], BATCH_HW[1] - 16, BATCH_HW[1]]
    assert [s.metrics["time_ms"] for s in report.scenes] == [22.0, 22.0, 22.0]
    assert len(calls) == 5, "one warm-up run per size, not one per scene"


def test_eval_warms_a_classical_method_up_once_not_at_each_size(tmp_path):
    """OpenCV has no set-up per image size (SGBM's first call at a new size took 0.98x its second): warming it up
    again at each size ran SGBM twice on every scene of a new size, for nothing."""
    import rtstereo

    folder = write_kitti(tmp_path / "kitti", 3)
    for sub in ("image_2", "image_3", "disp_occ_0"):  # the middle scene is narrower
        path = folder / sub / "000001_10.png"
        cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :-16])
    predictor, calls = rtstereo.load("sgbm", max_disp=16), []
    predict = predictor.predict
    predictor.predict = lambda left, right: calls.append(left.shape) or predict(left, right)
    report = evaluate(lambda s: predictor, find_samples(folder), model="sgbm")
    assert [s.size_hw[1] for s in report.scenes] == [BATCH_HW[1], BATCH_HW[1] - 16, BATCH_HW[1]]
    assert len(calls) == 4, "one warm-up run for the predictor, then one per scene"


def test_ctrl_c_keeps_the_scenes_scored_before_it(tmp_path):
    import types

    from rtstereo.eval import EvalInterrupted

    samples = find_samples(write_kitti(tmp_path / "kitti", 4))
    calls = []

    class InterruptedAtTheThirdScene:
        def predict(self, left, right):
            calls.append(left.shape)
            if len(calls) == 4:  # the warm-up run, then one per scene
                raise KeyboardInterrupt
            return types.SimpleNamespace(
                disparity_px=np.full(left.shape[:2], 3.0, np.float32), settings={}, timings_ms={"total": 1.0}
            )

    predictor = InterruptedAtTheThirdScene()
    with pytest.raises(EvalInterrupted, match="interrupted after 2 of 4 scenes") as info:
        evaluate(lambda s: predictor, samples, model="stops")
    assert isinstance(info.value, KeyboardInterrupt)  # a script not looking for it stops as before
    report = info.value.report
    assert [s.name for s in report.scenes] == ["kitti/000000", "kitti/000001"]
    assert report.interrupted and report.listed == 4
    assert report.to_json()["interrupted"] is True and report.to_json()["scenes_listed"] == 4


def test_evaluate_names_the_scenes_it_skips_for_want_of_ground_truth(tmp_path):
    import types

    samples = find_samples(write_kitti(tmp_path / "kitti", 2))
    samples[1] = dataclasses.replace(samples[1], gt_path=None)

    class Constant:
        def predict(self, left, right):
            return types.SimpleNamespace(
                disparity_px=np.full(left.shape[:2], 3.0, np.float32), settings={}, timings_ms={"total": 1.0}
            )

    report = evaluate(lambda s: Constant(), samples, model="constant")
    assert [s.name for s in report.scenes] == ["kitti/000000"]
    assert report.without_ground_truth == ["kitti/000001"] and report.to_json()["without_ground_truth"] == [
        "kitti/000001"
    ]


@pytest.mark.parametrize(("interrupted_at", "how"), [(0, "Ctrl-C"), (2, "Ctrl-C"), (2, "SIGTERM")])
def test_eval_cli_interrupted_writes_the_scenes_scored_or_nothing(capsys, tmp_path, monkeypatch, interrupted_at, how):
    """An eval stopped by kill (SIGTERM) said "Interrupted (Ctrl-C)" in its Markdown: it says what stopped it."""
    import rtstereo.eval

    score_sample = rtstereo.eval.score_sample
    scored = []

    def interrupted(*args, **kwargs):
        if len(scored) == interrupted_at:
            if how == "SIGTERM":  # the handler rtstereo's main installs turns it into a KeyboardInterrupt
                signal.raise_signal(signal.SIGTERM)
            raise KeyboardInterrupt
        scored.append(args[1].name)
        return score_sample(*args, **kwargs)

    monkeypatch.setattr(rtstereo.eval, "score_sample", interrupted)
    data = write_kitti(tmp_path / "kitti", 3)
    code, out, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 130
    if interrupted_at == 0:  # nothing scored: nothing written over an earlier run's results
        assert err.strip().splitlines()[-1] == "rtstereo eval: interrupted" and not (tmp_path / "res").exists()
        return
    assert "mean (2)" in out
    results = json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())
    assert [s["name"] for s in results["scenes"]] == scored == ["kitti/000000", "kitti/000001"]
    assert results["interrupted"] is True and results["interrupted_by"] == how and results["scenes_listed"] == 3
    markdown = (tmp_path / "res" / SGBM_RESULTS).with_suffix(".md").read_text()
    assert markdown.endswith(f"\nInterrupted ({how}): 2 of 3 scenes; the rest were not scored.\n")
    assert err.strip().splitlines()[-1] == (
        f"rtstereo eval: interrupted after 2 of 3 scenes: the scenes scored are written to "
        f'{tmp_path / "res" / SGBM_RESULTS} ("interrupted": true), the rest were not scored'
    )


def test_eval_cli_interrupted_keeps_an_earlier_complete_result(capsys, tmp_path, monkeypatch):
    """An interrupted eval wrote its partial results over a complete run's JSON and Markdown of the same name; a
    complete run after it left the older NAME.interrupted.json and .md beside its own results."""
    import rtstereo.eval

    data = write_kitti(tmp_path / "kitti", 3)
    assert run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")[0] == 0
    complete_json = tmp_path / "res" / SGBM_RESULTS
    complete = complete_json.read_text(), complete_json.with_suffix(".md").read_text()
    score_sample, scored = rtstereo.eval.score_sample, []

    def interrupted(*args, **kwargs):
        if len(scored) == 1:
            raise KeyboardInterrupt
        scored.append(args[1].name)
        return score_sample(*args, **kwargs)

    monkeypatch.setattr(rtstereo.eval, "score_sample", interrupted)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 130
    assert (complete_json.read_text(), complete_json.with_suffix(".md").read_text()) == complete
    partial = tmp_path / "res" / SGBM_RESULTS.replace(".json", ".interrupted.json")
    assert json.loads(partial.read_text())["interrupted"] is True
    markdown = partial.with_suffix(".md").read_text()
    assert markdown.endswith("Interrupted (Ctrl-C): 1 of 3 scenes; the rest were not scored.\n")
    assert err.strip().splitlines()[-1] == (
        f'rtstereo eval: interrupted after 1 of 3 scenes: the scenes scored are written to {partial} ("interrupted": '
        f"true) (the complete results of an earlier run, {complete_json}, are kept), the rest were not scored"
    )
    monkeypatch.setattr(rtstereo.eval, "score_sample", score_sample)
    assert run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")[0] == 0
    assert not partial.exists() and not partial.with_suffix(".md").exists()  # they read as a run cut short after it
    assert complete_json.is_file() and complete_json.with_suffix(".md").is_file()


def test_eval_fail_fast_keeps_an_earlier_complete_result(capsys, tmp_path, monkeypatch):
    """A run --fail-fast stopped at a failed scene wrote its partial results over a complete run's JSON and Markdown
    of the same name (an interrupted run's go beside them): they go to NAME.stopped.json and .md, removed by the
    next complete run."""
    import rtstereo.eval

    data = write_kitti(tmp_path / "kitti", 3)
    assert run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")[0] == 0
    complete_json = tmp_path / "res" / SGBM_RESULTS
    complete = complete_json.read_text(), complete_json.with_suffix(".md").read_text()
    assert json.loads(complete[0])["stopped_at_failure"] is False
    score_sample = rtstereo.eval.score_sample

    def failing(*args, **kwargs):
        if args[1].name == "kitti/000001":
            raise InputError("cannot read kitti/000001: damaged")
        return score_sample(*args, **kwargs)

    monkeypatch.setattr(rtstereo.eval, "score_sample", failing)
    for _ in range(2):  # the second partial run replaces the first's partial files, not the complete ones
        code, out, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q", "--fail-fast")
        assert code == 1 and "mean (1)" in out
        assert (complete_json.read_text(), complete_json.with_suffix(".md").read_text()) == complete
        partial = tmp_path / "res" / SGBM_RESULTS.replace(".json", ".stopped.json")
        results = json.loads(partial.read_text())
        assert results["stopped_at_failure"] is True and results["interrupted"] is False
        assert [s["name"] for s in results["scenes"]] == ["kitti/000000"] and results["scenes_listed"] == 3
        markdown = partial.with_suffix(".md").read_text()
        assert markdown.endswith(
            "Stopped at the first failure (--fail-fast): 2 of 3 scenes; the rest were not scored.\n"
        )
        assert f"results: {partial} {partial.with_suffix('.md')}" in out
        assert err.strip().splitlines()[-1] == (
            "rtstereo eval: --fail-fast: stopped at the first failure; 1 of 3 scenes not scored (the complete "
            f"results of an earlier run, {complete_json}, are kept)"
        )
    monkeypatch.setattr(rtstereo.eval, "score_sample", score_sample)
    assert run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q", "--fail-fast")[0] == 0
    assert not partial.exists() and not partial.with_suffix(".md").exists()  # they read as a run cut short after it
    assert json.loads(complete_json.read_text())["stopped_at_failure"] is False


def test_eval_cli_on_a_full_disk_exits_1_not_the_usage_errors_2(capsys, tmp_path, monkeypatch):
    """A full disk when the results were written exited 2, as a usage error does; predict's batch exits 1 for it."""
    import errno

    refuse_json_writes(monkeypatch, errno.EDQUOT)
    data = write_kitti(tmp_path / "kitti", 2)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 1, err
    message = f"cannot write evaluation results {tmp_path / 'res' / SGBM_RESULTS}: Disk quota exceeded"
    assert err.splitlines()[-1] == f"rtstereo eval: error: {message}"


def test_eval_cli_stopped_by_sigterm_keeps_the_scenes_scored(tmp_path):
    """`kill` (a job scheduler's stop) ended eval at once, with nothing written; now it stops as Ctrl-C does."""
    import os
    import subprocess
    import sys

    data = write_kitti(tmp_path / "kitti", 3)
    script = (
        "import os, signal, sys\n"
        "import rtstereo.eval as e\n"
        "score, calls = e.score_sample, []\n"
        "def killed_at_the_second(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return score(*args, **kwargs)\n"
        "e.score_sample = killed_at_the_second\n"
        "from rtstereo.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["eval", str(data), *map(str, SGBM_ARGS), "-o", str(tmp_path / "res"), "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 130, done.stderr
    assert "rtstereo eval: interrupted after 1 of 3 scenes" in done.stderr
    assert json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["interrupted"] is True


def _fixed_size_onnx(path, size_hw):
    """An rtstereo export fixed at ``size_hw`` whose disparity is 2 px everywhere."""
    import onnx
    from onnx import TensorProto, helper

    from rtstereo.runtime.onnx import METADATA_KEY, OnnxContract

    image = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, *size_hw]) for name in ("left", "right")]
    nodes = [
        helper.make_node("ReduceMean", ["left"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["right"], ["other"], axes=[1], keepdims=0),
        helper.make_node("Add", ["mean", "other"], ["sum"]),
        helper.make_node("Mul", ["sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "two"], ["disparity"]),
    ]
    constants = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in (("zero", 0.0), ("two", 2.0))]
    output = helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, *size_hw])
    model = helper.make_model(
        helper.make_graph(nodes, "fixed", image, [output], constants), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    contract = OnnxContract("toy-net", {"max_disp": 16}, "unit", 8, size_hw)
    helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.save_model(model, str(path))
    return path


def test_eval_reports_the_size_a_fixed_size_model_ran_at(capsys, tmp_path):
    """Scenes resized for a fixed-size export were scored as if the model had seen them: the warning was the only
    trace, and --quiet or a saved report had none."""
    data = write_kitti(tmp_path / "kitti", 1)
    model = _fixed_size_onnx(tmp_path / "fixed.onnx", (32, 48))  # half the scenes' 64x96
    code, out, err = run_cli(capsys, "eval", data, "--model", model, "-o", tmp_path / "res", "-q")
    assert code == 0, err
    assert "kitti/000000  64x96 (ran at 32x48)" in out and "size (HxW)" in out.splitlines()[0]
    # its range of 16 px at 48 px of width is 32 px of the scene's 96 (it read "16")
    assert re.search(r"64x96 \(ran at 32x48\) +32 \(16 at 32x48\) ", out), out
    scene = json.loads((tmp_path / "res" / "fixed_backend=onnxruntime.json").read_text())["scenes"][0]
    assert scene["size_hw"] == [64, 96] and scene["ran_at_hw"] == [32, 48]
    assert "| 64x96 (ran at 32x48) |" in (tmp_path / "res" / "fixed_backend=onnxruntime.md").read_text()
    code, out, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "res", "-q")
    assert code == 0 and "ran at" not in out
    assert "ran_at_hw" not in json.loads((tmp_path / "res" / SGBM_RESULTS).read_text())["scenes"][0]


def test_eval_of_a_checkpoint_and_its_onnx_file_keeps_both_results(capsys, tmp_path):
    """`adapt -o mycam.onnx` writes mycam.pt beside it: eval of each wrote rtstereo-eval/mycam.json (and .md), the
    second replacing the first without a word."""
    pytest.importorskip("torch")
    data = write_kitti(tmp_path / "kitti", 1)
    checkpoint = tmp_path / "mycam.pt"
    checkpoint.write_bytes((Path(__file__).parents[2] / "training" / "default" / "state.pt").read_bytes())
    res = tmp_path / "res"
    for model in (checkpoint, _fixed_size_onnx(tmp_path / "mycam.onnx", (32, 48))):
        code, _, err = run_cli(capsys, "eval", data, "--model", model, "-o", res, "-q")
        assert code == 0, err
    assert sorted(p.name for p in res.iterdir()) == [
        "mycam.json",
        "mycam.md",
        "mycam_backend=onnxruntime.json",
        "mycam_backend=onnxruntime.md",
    ]
    assert json.loads((res / "mycam.json").read_text())["model"] == str(checkpoint)


def test_eval_of_a_packaged_onnx_network_names_its_results_after_the_model_alone(capsys, tmp_path):
    """rtnet-v5, which runs on ONNX Runtime only, wrote rtnet-v5_backend=onnxruntime.json, named as if another backend
    had been asked, where only an .onnx file needs the backend in its name (beside its checkpoint's results)."""
    data = write_kitti(tmp_path / "kitti", 1)
    code, out, err = run_cli(capsys, "eval", data, "--model", "rtnet-v5", "-o", tmp_path / "res", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["rtnet-v5.json", "rtnet-v5.md"]


def test_eval_says_the_hybrids_network_ran_resized_not_the_hybrid(capsys, tmp_path):
    """The hybrid with a fixed-size network read "(ran at 48x32)" (WxH then) though its SGBM ran at the scene's size."""
    data = write_kitti(tmp_path / "kitti", 1)
    network = _fixed_size_onnx(tmp_path / "fixed.onnx", (32, 48))
    argv = ["--model", "hybrid", "--set", f"network={network}", "--max-disp", "16", "-o", tmp_path / "res", "-q"]
    code, out, err = run_cli(capsys, "eval", data, *argv)
    assert code == 0, err
    assert re.search(r"64x96 \(its network ran at 32x48\) +16 ", out), out  # SGBM's range, at the scene's size


def test_the_density_column_says_a_map_with_a_few_holes_is_not_complete():
    """7 holes in 76800 pixels read "100.0" in the table, as a complete map does; predict's line says 99.99 %."""
    from rtstereo.eval import EvalReport, SceneResult

    holes = SceneResult("holes", "kitti", (240, 320), {}, {"density": 100 * (1 - 7 / 76800)})
    whole = SceneResult("whole", "kitti", (240, 320), {}, {"density": 100.0})
    rows = {line.split()[0]: line.split()[-2] for line in EvalReport("m", [holes, whole]).table().splitlines()[1:3]}
    assert rows == {"holes": "99.99", "whole": "100.0"}  # the column before ms


def test_what_loading_a_classical_method_warns_about_is_said_once_not_for_each_scenes_range(capsys, tmp_path, recwarn):
    """SGBM, loaded again for each scene's own range, said "precision 'bf16' applies to networks only" once more
    for each, with the scene's name in front, as if the scene had caused it. (Warnings: printed as lines by the
    command, recorded here, as pytest records them.)"""
    data = write_kitti(tmp_path / "kitti", 2)
    code, _, err = run_cli(capsys, "eval", data, "--model", "sgbm", "--precision", "bf16", "-o", tmp_path / "r", "-q")
    assert code == 0, err
    said = [str(w.message) for w in recwarn.list if "precision 'bf16' applies to networks only" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("sgbm runs on the CPU"), said
