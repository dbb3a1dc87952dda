"""``rtstereo predict --engine ray`` on a real local Ray: the same files as one process, resume, errors."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np
import pytest

from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.io import read_disparity
from rtstereo.scale.session import pool_size

from ..batch.conftest import SGBM_ARGS, write_pairs
from ..conftest import run_cli

PAIRS = 12
CORRUPT = 5
SUMMARY = "rtstereo_summary.parquet"


@pytest.fixture(scope="module")
def dozen(tmp_path_factory):
    """Twelve 64x96 pairs, the sixth one damaged."""
    return write_pairs(tmp_path_factory.mktemp("dozen"), PAIRS, corrupt=(CORRUPT,))


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != SUMMARY)


def test_ray_writes_the_same_files_as_one_process(capsys, tmp_path, ray_local, dozen):
    left, right = dozen
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "local", *SGBM_ARGS, "-q")
    assert code == 1, err
    code, out, err = run_cli(
        capsys, "predict", left, right, "-o", tmp_path / "ray", *SGBM_ARGS, "--engine", "ray", "--workers", 2
    )
    assert code == 1, err
    assert f"{PAIRS} pairs: {PAIRS - 1} done, 0 skipped, 1 failed" in out and "(ray, 2 workers)" in out
    assert f"failed: {CORRUPT:02d} ({left / f'{CORRUPT:02d}.png'}" in err and "cannot read" in err
    local, ray = tmp_path / "local", tmp_path / "ray"
    # 4 files and the record of the options they were made with, the same: a rerun on either engine skips them
    assert _files(local) == _files(ray) and len(_files(ray)) == 5 * (PAIRS - 1)
    for name in _files(local):
        if name.endswith(".json"):
            a, b = json.loads((local / name).read_text()), json.loads((ray / name).read_text())
            a.pop("timings_ms", None), b.pop("timings_ms", None)
            assert a == b, name
        elif name.endswith(".pfm"):
            np.testing.assert_array_equal(read_disparity(local / name), read_disparity(ray / name))
        else:
            assert (local / name).read_bytes() == (ray / name).read_bytes(), name
    import pyarrow.parquet as parquet

    rows = parquet.read_table(ray / SUMMARY).to_pylist()
    assert sorted(r["index"] for r in rows) == list(range(PAIRS))
    bad = next(r for r in rows if r["status"] == "failed")
    assert bad["name"] == f"{CORRUPT:02d}" and bad["error"].startswith("cannot read")
    good = next(r for r in rows if r["status"] == "done")
    assert (good["height_px"], good["width_px"]) == (64, 96) and good["density"] > 0.5 and good["model_ms"] > 0


def test_ray_resumes_an_interrupted_run(capsys, tmp_path, ray_local, dozen):
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--format", "png16,json"]
    run_cli(capsys, *argv)
    # As a kill halfway would leave it: one pair with one of its two files, one with none.
    (tmp_path / "o" / "02.json").unlink()
    (tmp_path / "o" / "03.json").unlink()
    (tmp_path / "o" / "03.png").unlink()
    before = (tmp_path / "o" / "00.png").stat().st_mtime_ns
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and f"{PAIRS} pairs: 2 done, {PAIRS - 3} skipped" in out and ", 1 failed" in out
    assert (tmp_path / "o" / "00.png").stat().st_mtime_ns == before
    assert len(list((tmp_path / "o").glob("*.png"))) == PAIRS - 1 and not list((tmp_path / "o").glob(".*partial*"))
    code, out, _ = run_cli(capsys, *argv, "--overwrite", "--summary", tmp_path / "s.csv")
    assert f"{PAIRS - 1} done, 0 skipped, 1 failed" in out and (tmp_path / "s.csv").is_file()


def test_ray_with_nothing_left_to_do_does_not_start_workers(capsys, tmp_path, ray_local, dozen):
    left, right = dozen
    argv = ["predict", left / "00.png", right / "00.png", "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray"]
    assert run_cli(capsys, *argv)[0] == 0
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "1 pair: 0 done, 1 skipped" in out


def test_ray_fail_fast_stops_gathering(capsys, tmp_path, ray_local, dozen):
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--fail-fast", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "failed: 05" in err


def test_ray_fail_fast_stops_rays_executor_before_the_session_ends(capsys, tmp_path, ray_local, dozen, monkeypatch):
    """After --fail-fast broke off, Ray's executor ran on past ray.shutdown(): it started a new local Ray, with
    a traceback and a screen of Ray's errors."""
    import contextlib

    from rtstereo.scale import predict

    events = []
    real_iter_rows, real_session = ray_local.data.Dataset.iter_rows, predict.ray_session

    def iter_rows(self):
        try:
            yield from real_iter_rows(self)
        finally:
            events.append("executor stopped")

    @contextlib.contextmanager
    def session(address=None):
        with real_session(address) as ray:
            yield ray
        events.append("session ended")

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", iter_rows)
    monkeypatch.setattr(predict, "ray_session", session)
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--fail-fast", "-q"]
    assert run_cli(capsys, *argv)[0] == 1
    assert events == ["executor stopped", "session ended"]


def test_a_broken_pipeline_is_an_engine_error(capsys, tmp_path, ray_local, dozen, monkeypatch):
    def broken(self):
        raise RuntimeError("a node was lost\ndetails")

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", broken)
    left, right = dozen
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray")
    assert code == 2 and "the Ray pipeline stopped after 0 of 12 pairs: a node was lost; rerun" in err


@pytest.mark.parametrize("how", ["KeyboardInterrupt", "inside Ray's queue", "SIGTERM"])
def test_ctrl_c_is_an_interrupted_run_not_an_engine_error(capsys, tmp_path, ray_local, dozen, monkeypatch, how):
    """SIGTERM met Ray's own handler (in place since ray.init), which exited at once: no count, no summary."""
    from .conftest import interrupted_in_rays_queue

    def interrupted(self):
        yield from ()
        if how == "KeyboardInterrupt":
            raise KeyboardInterrupt
        if how == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        interrupted_in_rays_queue(self)

    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", interrupted)
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 130 and err.startswith("rtstereo predict: interrupted after 0 of 12 pairs"), err
    assert (tmp_path / "o" / SUMMARY).is_file()


def test_an_unreachable_cluster_is_one_line(capsys, tmp_path, ray_local, dozen, monkeypatch):
    def refuse(**kwargs):
        raise ConnectionError(f"could not connect to {kwargs['address']}")

    monkeypatch.setattr(ray_local, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_local, "init", refuse)
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--ray-address", "auto"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "cannot start or reach the Ray cluster at auto: could not connect to auto" in err


@pytest.mark.parametrize("flag", ["--ray-address", "RAY_ADDRESS"])
def test_a_cluster_address_where_nothing_listens_is_refused_at_once(capsys, tmp_path, monkeypatch, flag):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytest.importorskip("ray")
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    monkeypatch.setattr("ray.init", lambda **kwargs: pytest.fail("ray.init would retry for minutes"))
    address = f"127.0.0.1:{port}"
    if flag == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", address)
    left, right = write_pairs(tmp_path / "in", 2)
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "-q"]
    code, _, err = run_cli(capsys, *argv, *(["--ray-address", address] if flag != "RAY_ADDRESS" else []))
    assert code == 2 and f"cannot reach the Ray cluster at {address}: nothing answers" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before the output folder was made (it was left there, empty)


def test_missing_ray_names_the_extra(capsys, tmp_path, monkeypatch):
    from ..batch.conftest import write_pairs

    left, right = write_pairs(tmp_path / "in", 2)
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    code, _, err = run_cli(capsys, "predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray")
    assert code == 2 and "pip install 'rtstereo[scale]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before the output folder was made


def test_pool_size():
    assert pool_size(2, 0, 2, False) == pool_size(2, 0, None, False).__class__(2, 1, 0.75, 0)
    assert pool_size(2, 0, None, False).workers == 1 and pool_size(2, 0, None, False).threads == 2
    assert pool_size(16, 0, 4, False).cpus == 3 and pool_size(4, 2, None, True).gpus == 1
    assert pool_size(4, 1, 2, True).gpus == 0.5
    with pytest.raises(InputError, match="has no GPU"):
        pool_size(4, 0, None, True)


@pytest.mark.parametrize("cluster_cpus", [1, 2, 3, 16])
def test_the_cpu_shares_of_the_pool_leave_room_for_reading(cluster_cpus):
    """Shares were rounded to the nearest hundredth: 200 workers on 2 CPUs reserved 200 x 0.01 = 2 CPUs, so the
    decoding tasks never found room and the run hung; 400 reserved none (round(0.00375, 2) = 0)."""
    from rtstereo.scale.session import DECODE_CPUS

    for workers in range(1, 75 * cluster_cpus + 1):
        size = pool_size(cluster_cpus, 0, workers, False)
        assert 0 < size.cpus and workers * size.cpus + DECODE_CPUS <= cluster_cpus + 1e-9, (workers, size)
    assert pool_size(2, 0, 4, False).cpus == 0.37 and pool_size(2, 0, 150, False).cpus == 0.01
    with pytest.raises(InputError, match=r"--workers 151: the Ray cluster's 2 CPU\(s\) take at most 150 workers"):
        pool_size(2, 0, 151, False)


@pytest.mark.parametrize("cluster_gpus", [1, 2, 3, 4])
def test_the_gpu_shares_of_the_pool_fit_on_the_clusters_gpus(cluster_gpus):
    """Shares were rounded to the nearest hundredth: 6 actors on one GPU asked for 6 x 0.17 = 1.02 GPUs,
    and Ray never started the sixth (the pool waited on it)."""
    assert pool_size(16, 1, 6, True).gpus == 0.16
    assert pool_size(16, 2, 3, True).gpus == 0.66
    for workers in range(1, 25):
        size = pool_size(64, cluster_gpus, workers, True)
        assert 0 < size.gpus <= 1 and workers * size.gpus <= cluster_gpus, (workers, size)
    assert pool_size(16, 1, 100, True).gpus == 0.01
    with pytest.raises(InputError, match=r"--workers 101 with --device cuda: .* 1 GPU\(s\) take at most 100 workers"):
        pool_size(16, 1, 101, True)  # was 0.0 GPU each: the actors would have run without one


def test_an_interrupt_counts_the_pairs_workers_wrote_whose_reports_had_not_come_back(
    capsys, tmp_path, ray_local, dozen, monkeypatch
):
    """Ctrl-C while reports wait in Ray's queues: the workers had written every readable pair, 2 reported."""
    from .conftest import ctrl_c_after_two_reports

    ctrl_c_after_two_reports(monkeypatch, ray_local)
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "-q"]
    code, _, err = run_cli(capsys, *argv)
    written = len(list((tmp_path / "o").glob("*.pfm")))
    assert code == 130 and written == PAIRS - 1
    assert f"interrupted after {PAIRS - 1} of {PAIRS} pairs: {PAIRS - 1} written" in err, err
    import pyarrow.parquet as parquet

    rows = parquet.read_table(tmp_path / "o" / SUMMARY).to_pylist()
    assert sum(r["status"] == "done" for r in rows) == PAIRS - 1
    # --overwrite: an earlier run's files are not taken for this run's
    monkeypatch.setattr(ray_local.data.Dataset, "iter_rows", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 130 and f"interrupted after 0 of {PAIRS} pairs: 0 written" in err, err


def test_a_ray_run_removes_the_staging_folder_a_killed_worker_left(capsys, tmp_path, ray_local, dozen):
    from ..io.test_atomic import _killed_mid_write

    left, right = dozen
    (tmp_path / "o").mkdir()
    _killed_mid_write(tmp_path / "o")
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "-q"]
    assert run_cli(capsys, *argv)[0] == 1
    assert not list((tmp_path / "o").glob(".*partial*"))


def test_a_pair_that_kills_its_worker_fails_alone(tmp_path, ray_local, dozen):
    """Ray retried a task whose worker died without end: one pair that killed its worker (out of memory, a crash)
    every time held the whole batch, restarting workers forever. The pairs Ray had queued on the same worker (two or
    more per worker) died with it on each try, and failed with it: one worker, so that they would be queued on it."""
    from dataclasses import dataclass
    from pathlib import Path

    from rtstereo.batch import BatchJob, PredictorOptions
    from rtstereo.scale.predict import run_ray
    from rtstereo.sources.pairs import resolve_pairs

    from .conftest import alarm_after

    driver = os.getpid()

    @dataclass(frozen=True)
    class DyingOn03(PredictorOptions):  # defined here, so that Ray sends the class itself to the workers
        def load(self):
            inner = PredictorOptions.load(self)

            class Dying:
                def __getattr__(self, name):
                    return getattr(inner, name)

                def predict_pair(self, pair):
                    if pair.name == "03" and os.getpid() != driver:
                        time.sleep(1)  # the next pairs are queued on this worker meanwhile
                        os._exit(3)  # as the memory killer ends a worker
                    return inner.predict_pair(pair)

            return Dying()

    left, right = dozen
    job = BatchJob(output=Path(tmp_path / "o"), formats=("png16",))
    with alarm_after(150):
        summary = run_ray(job, DyingOn03("sgbm", settings={"max_disp": 16}), resolve_pairs(left, right), workers=1)
    died = "no result: the Ray worker given this pair died on each of its 3 tries (out of memory, or a crash)"
    failed = {o.name: o.error for o in summary.failures}
    assert failed.pop("03") == died and failed.pop(f"{CORRUPT:02d}").startswith("cannot read"), summary.failures
    assert not failed and not summary.interrupted, failed
    done = summary.counts["done"]
    assert done == PAIRS - 2 and len(list((tmp_path / "o").glob("*.png"))) == done


def test_a_gpu_index_is_refused_with_ray():
    """Ray shows each worker only the GPU it gave it, as cuda:0: with --device cuda:1 every worker failed to load."""
    from types import SimpleNamespace

    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.session import needs_gpu

    network = SimpleNamespace(spec=SimpleNamespace(kind="torch"))
    assert needs_gpu(PredictorOptions("rtnet", device="cuda:0"), network)
    with pytest.raises(InputError, match=r"^--device cuda:1 with --engine ray: Ray chooses each worker's GPU .* give "):
        needs_gpu(PredictorOptions("rtnet", device="cuda:1"), network)
    sgbm = SimpleNamespace(spec=SimpleNamespace(kind="classical"))
    assert not needs_gpu(PredictorOptions("sgbm", device="cuda:1"), sgbm)  # it runs on the CPU, as with cuda


def test_a_classical_method_on_cuda_is_sized_by_cpus(capsys, tmp_path, ray_local, dozen):
    """SGBM runs on the CPU whatever --device says (one process warns and runs): with --engine ray its workers were
    refused on a machine without GPUs ("the Ray cluster has no GPU"), and took a GPU each on one with them."""
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--device", "cuda", "--engine", "ray", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "has no GPU" not in err and "failed: 05" in err, err
    assert len(list((tmp_path / "o").glob("*.pfm"))) == PAIRS - 1
    from types import SimpleNamespace

    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.session import needs_gpu

    options = PredictorOptions("sgbm", device="cuda")
    assert not needs_gpu(options, options.load())
    network = SimpleNamespace(spec=SimpleNamespace(kind="torch"))
    assert needs_gpu(PredictorOptions("rtnet", device="cuda"), network)  # a network's workers each take a GPU


def test_relative_paths_are_read_and_written_where_the_caller_is_not_where_ray_started(
    tmp_path, ray_local, dozen, monkeypatch
):
    """A Ray started in another folder (ray.init() elsewhere, a cluster) runs its workers there: the README's Python
    block, run after the Ray tests, failed every pair with "image not found: lefts/a.png"."""
    from pathlib import Path

    from rtstereo.batch import BatchJob, PredictorOptions
    from rtstereo.scale.predict import run_ray
    from rtstereo.sources.pairs import PairSource

    lefts, rights = dozen
    monkeypatch.chdir(lefts.parent)  # Ray runs in the folder pytest started in
    pairs = [PairSource(f"L/{i:02d}.png", f"R/{i:02d}.png", f"{i:02d}") for i in (0, 1)]
    job = BatchJob(output=Path("out"), formats=("png16",))
    summary = run_ray(job, PredictorOptions("sgbm", settings={"max_disp": 16}), pairs, workers=1)
    assert [o.status for o in summary.outcomes] == ["done", "done"], [o.error for o in summary.outcomes]
    assert [(o.left, o.right) for o in summary.outcomes] == [(p.left, p.right) for p in pairs]  # as given
    assert sorted(p.name for p in (lefts.parent / "out").glob("[!.]*")) == ["00.png", "01.png"]
    summary = run_ray(job, PredictorOptions("sgbm", settings={"max_disp": 16}), pairs, workers=1)
    assert [o.status for o in summary.outcomes] == ["skipped", "skipped"]  # the same folder, seen from here
    # errors name the files as given, as one process names them (they named the workers' absolute paths)
    (lefts.parent / "out" / "02.png").mkdir()
    bad = [PairSource(f"L/{i:02d}.png", f"R/{i:02d}.png", f"{i:02d}") for i in (CORRUPT, 2)]
    summary = run_ray(job, PredictorOptions("sgbm", settings={"max_disp": 16}), bad, workers=1)
    assert sorted(o.error.split(":")[0] for o in summary.outcomes) == [
        f"cannot read L/{CORRUPT:02d}.png",
        "cannot write out/02.png",
    ], [o.error for o in summary.outcomes]


def test_quiet_means_no_line_of_rays_own_on_stderr(capfd, tmp_path, ray_local, dozen):
    """Ray's driver printed its C++ core's notices on stderr besides its log file, with -q too
    ("[2026-12-06 13:11:15,472 E 26819 26819] core_worker.cc:2465: Actor with class name: ...")."""
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--workers", "2", "-q"]
    assert main([str(a) for a in argv]) == 1
    out, err = capfd.readouterr()
    assert err.splitlines() == [
        f"rtstereo predict: failed: {CORRUPT:02d} ({left}/{CORRUPT:02d}.png, {right}/{CORRUPT:02d}.png): cannot read "
        f"{left}/{CORRUPT:02d}.png: not an image OpenCV can decode, or the file is damaged",
        f"rtstereo predict: 1 pair failed: {CORRUPT:02d} (details: {tmp_path / 'o'}/{SUMMARY})",
    ], err
    assert out == ""


def test_only_rays_own_lines_are_dropped_from_stderr(capfd):
    """What else is said on stderr meanwhile passes, an unfinished progress line at once, and Ray's fatal lines."""
    import threading

    from rtstereo.io.quiet import hold_native_output, native_lines_dropped
    from rtstereo.scale.session import RAY_NATIVE_LOG_LINE

    ray_line = b"[2026-12-06 13:11:15,472 E 26819 26819] core_worker.cc:2465: Actor with class name: 'X'\n"
    fatal = b"[2026-12-06 13:11:15,472 F 26819 26819] core_worker.cc:1: Check failed\n"
    previous = hold_native_output(True)
    try:
        with native_lines_dropped(RAY_NATIVE_LOG_LINE):
            os.write(2, b"predict (ray):  50%\r")
            time.sleep(0.2)
            shown_at_once = capfd.readouterr().err
            for text in (ray_line, b"[a line of ours]\n", fatal, ray_line[:30]):
                os.write(2, text)
            rest = threading.Thread(target=os.write, args=(2, ray_line[30:] + b"done\n"))  # as Ray's threads write
            rest.start()
            rest.join()
    finally:
        hold_native_output(previous)
    assert shown_at_once == "predict (ray):  50%\r"
    assert capfd.readouterr().err == "[a line of ours]\n" + fatal.decode() + "done\n"


def test_ctrl_c_while_ray_shuts_down_after_the_last_pair_keeps_the_summary(
    capsys, tmp_path, ray_local, dozen, monkeypatch
):
    """Ray takes seconds to shut down once the bar has reached its end: Ctrl-C then said only "interrupted" (exit code
    130), with no count and no summary table, for a run whose every pair was written."""
    import rtstereo.scale.predict as ray_predict

    from .conftest import ctrl_c_at_shutdown

    ctrl_c_at_shutdown(monkeypatch, ray_predict)
    left, right = dozen
    argv = ["predict", left, right, "-o", tmp_path / "o", *SGBM_ARGS, "--engine", "ray", "--workers", "2", "-q"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "interrupted" not in err and f"1 pair failed: {CORRUPT:02d}" in err, err
    assert (tmp_path / "o" / SUMMARY).is_file() and len(list((tmp_path / "o").glob("*.pfm"))) == PAIRS - 1


def test_ray_keeps_a_colour_left_views_colours_beside_a_grey_right_view(capsys, tmp_path, ray_local):
    """The workers got the views matched in grey: the point clouds of a colour and a mono camera came out grey."""
    import cv2

    from rtstereo.sinks.pointcloud import read_ply

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (48, 88), dtype=np.uint8), (3, 3), 0)
    for side in ("l", "r"):
        (tmp_path / side).mkdir()
    cv2.imwrite(str(tmp_path / "l" / "0.png"), np.dstack([texture[:, 6:70], 255 - texture[:, 6:70], texture[:, 6:70]]))
    cv2.imwrite(str(tmp_path / "r" / "0.png"), texture[:, :64])
    calibration = tmp_path / "calib.json"
    calibration.write_text(
        '{"fx_px": 100, "fy_px": 100, "cx0_px": 31.5, "cx1_px": 31.5, "cy_px": 23.5, "baseline_m": 0.1}'
    )
    code, _, err = run_cli(
        capsys, "predict", tmp_path / "l", tmp_path / "r", "-o", tmp_path / "o", *SGBM_ARGS,
        "--calib", calibration, "--format", "ply", "--engine", "ray", "--workers", 1, "-q",
    )  # fmt: skip
    assert code == 0, err
    assert err.count("matched in grey") == 1, err
    _, colours = read_ply(tmp_path / "o" / "0.ply")
    assert len(colours) > 1000 and (colours[:, 0] != colours[:, 1]).mean() > 0.9
