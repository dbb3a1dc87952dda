"""``rtstereo eval --engine ray``: the same scores as one process, a bad scene listed."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from ..batch.conftest import SGBM_ARGS, SGBM_RESULTS, write_kitti
from ..conftest import run_cli
from .conftest import printed_warnings


def test_ray_eval_scores_like_one_process(capsys, tmp_path, ray_local):
    data = write_kitti(tmp_path / "kitti", 5, corrupt=(2,))
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "one", "-q")
    assert code == 1, err
    argv = ["eval", data, *SGBM_ARGS, "-o", tmp_path / "ray", "-q", "--engine", "ray", "--workers", 2]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and "failed: kitti/000002 (" in err and "cannot read" in err
    one, ray = (json.loads((tmp_path / d / SGBM_RESULTS).read_text()) for d in ("one", "ray"))
    for a, b in zip(one["scenes"], ray["scenes"], strict=True):
        a["metrics"].pop("time_ms"), b["metrics"].pop("time_ms")
        assert a == b
    assert one["failed"] == ray["failed"] and len(ray["scenes"]) == 4


def test_ray_eval_leaves_out_the_ground_truth_over_max_gt_disp_on_its_workers(capsys, tmp_path, ray_local):
    data = write_kitti(tmp_path / "kitti", 4)  # ground truth of 3, 4, 5 and 6 px
    argv = ["eval", data, *SGBM_ARGS, "-o", tmp_path / "ray", "-q", "--engine", "ray", "--workers", 1]
    code, _, err = run_cli(capsys, *argv, "--max-gt-disp", 5)
    assert code == 1 and "every valid pixel of ground truth" in err
    ray = json.loads((tmp_path / "ray" / "sgbm_max_disp=16_max_gt_disp=5.json").read_text())
    assert ray["max_gt_disp_px"] == 5 and [s["name"] for s in ray["scenes"]] == ["kitti/000000", "kitti/000001"]
    assert [f["name"] for f in ray["failed"]] == ["kitti/000002", "kitti/000003"]


def test_ray_eval_usage_and_engine_errors(capsys, tmp_path, ray_local, monkeypatch):
    data = write_kitti(tmp_path / "kitti", 2)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "--engine", "ray", "--workers", 0)
    assert code == 2 and "--workers must be >= 1" in err

    def broken(self):
        raise RuntimeError("a node was lost")

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", broken)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "r", "--engine", "ray")
    assert code == 2 and "the Ray pipeline stopped after 0 of 2 scenes: a node was lost" in err


def test_ctrl_c_in_a_ray_eval_is_an_interruption_not_an_engine_error(capsys, tmp_path, ray_local, monkeypatch):
    from .conftest import interrupted_in_rays_queue

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", interrupted_in_rays_queue)
    data = write_kitti(tmp_path / "kitti", 2)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "r", "--engine", "ray")
    assert code == 130 and "rtstereo eval: interrupted" in err and "Ray pipeline stopped" not in err


def test_sigterm_in_a_ray_eval_is_an_interruption(capsys, tmp_path, ray_local, monkeypatch):
    """Ray's own SIGTERM handler, in place since ray.init, exited at once with code 15."""

    def terminated(self):
        yield from ()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", terminated)
    data = write_kitti(tmp_path / "kitti", 2)
    code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / "r", "--engine", "ray")
    assert code == 130 and "rtstereo eval: interrupted" in err


def test_ray_eval_usage_error_stops_before_ray_starts(capsys, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    import rtstereo.scale.eval as ray_eval

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray started for a usage error")

    monkeypatch.setattr(ray_eval, "ray_session", no_ray)
    data = write_kitti(tmp_path / "kitti", 2)
    code, out, err = run_cli(capsys, "eval", data, "-m", "sgmb", "-o", tmp_path / "r", "-q", "--engine", "ray")
    assert code == 2 and err.startswith("rtstereo eval: error: unknown model 'sgmb'") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_ray_eval_says_what_the_workers_warned_about_as_one_process_does(capsys, tmp_path, ray_local):
    # a worker's warnings stayed in the worker (a fixed-size network's resized input, a grey view matched in grey)
    import cv2

    data = write_kitti(tmp_path / "kitti", 2)
    for path in (data / "image_2").iterdir():  # the left views grey, the right ones in colour
        cv2.imwrite(str(path), cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY))
    said = "the left image is grey and the right one in colour"
    for engine in ("local", "ray"):
        with printed_warnings():
            code, _, err = run_cli(capsys, "eval", data, *SGBM_ARGS, "-o", tmp_path / engine, "-q", "--engine", engine)
        assert code == 0 and err.count(said) == 2, (engine, err)  # once per scene, which it names
        for scene in ("kitti/000000", "kitti/000001"):
            assert err.count(f"warning: {scene}: {said}") == 1, (engine, scene, err)


def test_what_the_model_warns_about_is_said_once_not_once_per_worker_or_range(capsys, tmp_path, ray_local):
    """A warning about the model itself, given as each worker (or each scene's range) loaded it, was said again
    with the name of the scene that loaded it: once per worker with --engine ray, once per range in one process."""
    data = write_kitti(tmp_path / "kitti", 4)
    said = "sgbm runs on the CPU in OpenCV's own arithmetic"
    for engine, extra in (("local", []), ("ray", ["--workers", 2])):
        for max_disp in (["--max-disp", 16], []):  # one predictor per worker; one per scene's range
            argv = ["eval", data, "--model", "sgbm", *max_disp, "--precision", "fp16", "-o", tmp_path / engine, "-q"]
            with printed_warnings():
                code, _, err = run_cli(capsys, *argv, "--engine", engine, *extra)
            assert code == 0 and err.count(said) == 1 and f"warning: {said}" in err, (engine, max_disp, err)


def test_a_scene_that_kills_its_worker_fails_alone(tmp_path, ray_local):
    """Ray retried a task whose worker died without end: one scene that killed its worker held the whole run."""
    from dataclasses import fields

    from rtstereo.batch import PredictorOptions
    from rtstereo.datasets import Sample, find_samples
    from rtstereo.scale.eval import run_ray_eval

    from .conftest import alarm_after

    driver = os.getpid()

    class Dying(Sample):  # defined here, so that Ray sends the class itself to the workers
        def load(self):
            if os.getpid() != driver:
                time.sleep(1)  # the next scenes are queued on this worker meanwhile
                os._exit(3)  # as the memory killer ends a worker
            return super().load()

    samples = find_samples(write_kitti(tmp_path / "kitti", 3))
    samples[1] = Dying(**{f.name: getattr(samples[1], f.name) for f in fields(Sample)})
    with alarm_after(150):
        report = run_ray_eval(samples, PredictorOptions("sgbm", settings={"max_disp": 16}), "sgbm", workers=1)
    died = {f["name"]: f["error"] for f in report.failures}
    assert died[samples[1].name].startswith("no result: the Ray worker given this scene died on each of its 3 tries")
    # The scenes Ray had queued on the same worker died with it on each try too (one worker: they were queued on it).
    assert list(died) == [samples[1].name] and len(report.scenes) == 2, died


def test_ctrl_c_while_ray_shuts_down_after_the_last_scene_is_no_interruption(capsys, tmp_path, ray_local, monkeypatch):
    """Ray takes seconds to shut down once the bar has reached its end: Ctrl-C then said only "interrupted" (exit code
    130) and wrote no results, for a run whose every scene was scored."""
    import rtstereo.scale.eval as ray_eval

    from .conftest import ctrl_c_at_shutdown

    ctrl_c_at_shutdown(monkeypatch, ray_eval)
    data = write_kitti(tmp_path / "kitti", 2)
    argv = ["eval", data, *SGBM_ARGS, "-o", tmp_path / "ray", "-q", "--engine", "ray", "--workers", 2]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "interrupted" not in err + out, (out, err)
    assert len(json.loads((tmp_path / "ray" / SGBM_RESULTS).read_text())["scenes"]) == 2


def test_a_relative_dataset_folder_is_read_where_the_caller_is_not_where_ray_started(tmp_path, ray_local, monkeypatch):
    """A Ray started in another folder runs its workers there: samples made by hand with relative paths failed,
    "not found" (find_samples gives absolute paths)."""
    import dataclasses
    from pathlib import Path

    from rtstereo.batch import PredictorOptions
    from rtstereo.datasets import find_samples
    from rtstereo.scale.eval import run_ray_eval

    write_kitti(tmp_path / "kitti", 2)
    monkeypatch.chdir(tmp_path)  # Ray runs in the folder pytest started in

    def relative(sample):
        names = [f.name for f in dataclasses.fields(sample) if f.name.endswith("_path")]
        paths = {n: Path(getattr(sample, n)).relative_to(tmp_path) for n in names if getattr(sample, n) is not None}
        return dataclasses.replace(sample, **paths)

    samples = [relative(sample) for sample in find_samples("kitti")]
    assert not samples[0].left_path.is_absolute()
    report = run_ray_eval(samples, PredictorOptions("sgbm", settings={"max_disp": 16}), "sgbm", workers=1)
    assert report.failures == [] and len(report.scenes) == 2
    assert [scene.left_path for scene in report.scenes] == [str(sample.left_path) for sample in samples]  # as given


def test_what_loading_a_classical_method_warns_about_is_said_once_on_ray_too(capsys, tmp_path, ray_local):
    """The workers loaded SGBM for each scene's own range and said "precision 'bf16' applies to networks only" once
    more for each scene, with its name in front, after the driver's own load had said it."""
    data = write_kitti(tmp_path / "kitti", 2)
    for engine in ("local", "ray"):
        argv = ["eval", data, "--model", "sgbm", "--precision", "bf16", "-o", tmp_path / engine, "-q"]
        with printed_warnings():
            code, _, err = run_cli(capsys, *argv, "--engine", engine)
        assert code == 0 and err.count("precision 'bf16' applies to networks only") == 1, (engine, err)
