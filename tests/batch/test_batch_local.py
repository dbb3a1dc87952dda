"""The single-process batch: bad pairs reported, the rest done, resume, summaries."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import rtstereo
from rtstereo.batch import BatchJob, BatchSummary, PairOutcome, failure_reason, run_local
from rtstereo.errors import InputError, MissingDependencyError, OutputError
from rtstereo.sinks.files import output_files, outputs_complete, register_format
from rtstereo.sources.pairs import resolve_pairs


@pytest.fixture(scope="module")
def sgbm():
    return rtstereo.load("sgbm", max_disp=16)


def test_a_second_run_into_a_folder_that_a_run_writes_into_is_refused(tmp_path, sgbm, three_pairs):
    """Two runs into one folder each did every pair; with other options a pair kept files of both."""
    from rtstereo.io.atomic import folder_claimed

    job, pairs = BatchJob(output=tmp_path / "out", formats=("png16",)), resolve_pairs(*map(str, three_pairs))
    with folder_claimed(tmp_path / "out"):  # a run of this process is under way there
        with pytest.raises(InputError, match=r"out is being written by another rtstereo run \(process \d+ of this"):
            run_local(job, sgbm, pairs)
        assert not list((tmp_path / "out").glob("[!.]*"))
    assert not (tmp_path / "out").exists()  # made for the mark, and removed with it, empty
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".rtstereo-run.partial-999999999-0123abcd@far").touch()  # another machine's
    with pytest.raises(InputError, match=r"process 999999999 on far; if no run goes on there, remove .*@far\)"):
        run_local(job, sgbm, pairs)
    (tmp_path / "out" / ".rtstereo-run.partial-999999999-0123abcd@far").unlink()
    killed = tmp_path / "out" / f".rtstereo-run.partial-999999999-0123abcd@{_this_machine()}"
    killed.touch()  # a run killed here (kill -9): no such process
    assert run_local(job, sgbm, pairs).counts == {"done": 2, "skipped": 0, "failed": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".00.made-with.json", ".02.made-with.json"] + [
        "00.png",
        "02.png",
    ]  # its mark gone, and this run's


def _this_machine() -> str:
    from rtstereo.io.atomic import _HOST

    return _HOST


def test_a_bad_pair_is_reported_and_the_rest_done(tmp_path, sgbm, three_pairs):
    seen = []
    job = BatchJob(output=tmp_path / "out", formats=("png16", "json"))
    summary = run_local(job, sgbm, resolve_pairs(*map(str, three_pairs)), on_outcome=seen.append)
    assert [o.status for o in summary.outcomes] == ["done", "failed", "done"] == [o.status for o in seen]
    failed = summary.outcomes[1]
    assert failed.error.startswith("cannot read") and failed.left.endswith("01.png") and math.isnan(failed.density)
    assert summary.counts == {"done": 2, "skipped": 0, "failed": 1} and summary.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("[!.]*")) == ["00.json", "00.png", "02.json", "02.png"]
    assert summary.outcomes[0].height_px == 64 and summary.outcomes[0].density > 0.5


def test_fail_fast_stops_at_the_first_failure(tmp_path, sgbm, three_pairs):
    job = BatchJob(output=tmp_path / "out", formats=("png16",))
    summary = run_local(job, sgbm, resolve_pairs(*map(str, three_pairs)), fail_fast=True)
    assert [o.status for o in summary.outcomes] == ["done", "failed"] and summary.not_reached == 1
    assert "1 not reached (fail_fast)" in summary.report()  # the argument a Python caller gave
    assert "1 not reached (--fail-fast)" in summary.report(command_line=True)


def test_resume_skips_complete_pairs_only(tmp_path, sgbm, three_pairs):
    sources = resolve_pairs(*map(str, three_pairs))
    job = BatchJob(output=tmp_path / "out", formats=("png16", "json"))
    run_local(job, sgbm, sources)
    (tmp_path / "out" / "02.json").unlink()  # as if the run had stopped between the two files
    again = run_local(job, sgbm, sources)
    assert [o.status for o in again.outcomes] == ["skipped", "failed", "done"]
    assert "(complete outputs exist; overwrite=True redoes them)" in again.report()  # it said --overwrite
    assert "(complete outputs exist; --overwrite redoes them)" in again.report(command_line=True)
    redo = run_local(BatchJob(output=tmp_path / "out", formats=("png16", "json"), overwrite=True), sgbm, sources)
    assert [o.status for o in redo.outcomes] == ["done", "failed", "done"]


def test_a_failure_after_reading_is_reported_too(tmp_path, sgbm, three_pairs):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    summary = run_local(BatchJob(output=blocker / "out"), sgbm, resolve_pairs(*map(str, three_pairs))[:1])
    assert summary.outcomes[0].status == "failed" and "cannot create output folder" in summary.outcomes[0].error
    assert summary.outcomes[0].height_px == 64


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"output": "one.pfm", "to_file": True}, "3 pairs cannot go into one file"),
        ({"output": "out", "formats": ("png",)}, "unknown output formats png"),
        ({"output": "out", "formats": ()}, "no output formats"),
        # each pair ran the model, then failed for the calibration (as --format ply without --calib is refused)
        (
            {"output": "out", "formats": ("pfm", "ply", "depth")},
            r"^formats ply, depth need the cameras' calibration \(focal length, baseline\): give the job calibration=",
        ),
        ({"output": "out", "formats": ("depth_mm",)}, r"^format depth_mm needs the cameras' calibration"),
    ],
)
def test_outputs_no_pair_could_be_written_to_are_refused_before_any_work(tmp_path, sgbm, three_pairs, job, message):
    # One file for three pairs had each replace the one before ("3 done"); an unknown format failed every pair with
    # KeyError: 'png', and no format at all "skipped" every pair, the unreadable one too.
    job = BatchJob(**{**job, "output": tmp_path / job["output"]})
    with pytest.raises(InputError, match=message):
        run_local(job, sgbm, resolve_pairs(*map(str, three_pairs)))
    assert not (tmp_path / "one.pfm").exists() and not (tmp_path / "out").exists()


def test_the_python_engines_refuse_arguments_of_the_wrong_type_in_one_line(tmp_path, sgbm, three_pairs):
    # A model name failed every pair with "AttributeError: 'str' object has no attribute 'predict_pair'", a manifest's
    # path in place of its pairs and BatchJob(output=5) raised bare errors, and formats="png16" was read letter by
    # letter ("unknown output formats p, n, g, 1, 6").
    from rtstereo.batch import PredictorOptions
    from rtstereo.scale.predict import run_ray
    from rtstereo.sources.manifest import read_manifest

    pairs = resolve_pairs(*map(str, three_pairs))
    job = BatchJob(output=tmp_path / "out", formats=("png16",))
    image = np.zeros((32, 48, 3), np.uint8)
    refused = [
        (lambda: run_local(job, "sgbm", pairs), "predictor: expected a model from rtstereo.load"),
        (lambda: run_local(job, PredictorOptions("sgbm"), pairs), "got PredictorOptions: call its .load()"),
        (lambda: run_local(job, sgbm, "pairs.csv"), "sources: expected a list of pairs .* got str 'pairs.csv'"),
        (lambda: run_local(job, sgbm, [rtstereo.StereoPair(image, image)]), "expected PairSource items"),
        (lambda: run_ray(job, sgbm, pairs), "options: expected PredictorOptions"),
        (lambda: BatchJob(output=5), "output: expected a folder or file .* got int 5"),
        (lambda: BatchJob(output=tmp_path, formats="png16"), "formats: expected a tuple .* got str 'png16'"),
        (lambda: BatchJob(output=tmp_path, formats=None), "formats: expected a tuple .* got NoneType None"),
        (lambda: PredictorOptions("sgbm", settings=[("max_disp", 16)]), "settings: expected a dict .* got list"),
        (lambda: PredictorOptions("sgbm", fit="centre"), "^fit: expected one of resize, crop, got 'centre'$"),
        (lambda: PredictorOptions("sgbm", fit=None), "^fit: expected one of resize, crop, got None$"),
        (lambda: read_manifest(5), "manifest: expected a .csv or .parquet file .* got int"),
        # each pair failed alike before, and overwrite="no" (a true str) redid them all
        (lambda: BatchJob(output=tmp_path, lr_check_px=-1), "lr_check_px must be > 0 pixels"),
        (lambda: BatchJob(output=tmp_path, overwrite="no"), "overwrite: expected True or False, got str 'no'"),
        (lambda: BatchJob(output=tmp_path, calibration={"fx_px": 1}), "calibration: expected an rtstereo Calibration"),
        (lambda: BatchJob(output=tmp_path, rectifier="rig/maps.npz"), r"rectifier: expected a Rectifier .* got str"),
        (lambda: BatchJob(output=tmp_path, cloud=None), r"cloud: expected PointCloudOptions\(...\), got NoneType"),
        (lambda: run_local(job, sgbm, pairs, fail_fast="no"), "fail_fast: expected True or False, got str 'no'"),
        (lambda: run_local(job, sgbm, pairs, on_outcome="print"), "on_outcome: expected a function .* got str"),
    ]
    for call, message in refused:
        with pytest.raises(InputError, match=message):
            call()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("raise_interrupt", [True, False])
def test_ctrl_c_stops_a_python_batch_with_its_summary(tmp_path, sgbm, three_pairs, raise_interrupt):
    # the summary was returned: a script looping over batches went on to its next one after Ctrl-C
    from rtstereo.batch import BatchInterrupted

    class StoppedAtTheSecondPair:
        def __init__(self):
            self.calls = 0

        def predict_pair(self, pair):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return sgbm.predict_pair(pair)

    pairs = resolve_pairs(*map(str, three_pairs))
    pairs = [pairs[0], pairs[2], pairs[1]]  # the unreadable pair last: the first two are predicted
    job = BatchJob(output=tmp_path / "out", formats=("png16",))
    if raise_interrupt:
        with pytest.raises(BatchInterrupted, match="interrupted after 1 of 3 pairs") as info:
            run_local(job, StoppedAtTheSecondPair(), pairs)
        assert isinstance(info.value, KeyboardInterrupt)  # a script not looking for it stops as before
        summary = info.value.summary
    else:
        summary = run_local(job, StoppedAtTheSecondPair(), pairs, raise_interrupt=False)
    assert summary.interrupted and [o.status for o in summary.outcomes] == ["done"] and summary.listed == 3


def test_a_format_without_a_file_name_is_never_complete(tmp_path):
    register_format("test_nameless", lambda result, stem: stem)
    try:
        assert output_files(tmp_path, "a", ["png16", "test_nameless"]) is None
        assert not outputs_complete(tmp_path, "a", ["test_nameless"])
    finally:
        from rtstereo.sinks.files import FORMATS

        FORMATS.pop("test_nameless")


def test_failure_reasons_are_one_line():
    assert failure_reason(InputError("bad image\nmore")) == "bad image"
    assert failure_reason(InputError()) == "InputError"
    assert failure_reason(KeyError("k")) == "KeyError: 'k'"
    assert failure_reason(RuntimeError()) == "RuntimeError"
    # a line break in a file's name: the reason names it whole, escaped (it said "cannot read L/c")
    assert failure_reason(InputError("cannot read L/c\nd.png: damaged\nmore"), ("L/c\nd.png", "R/e.png")) == (
        "cannot read L/c\\nd.png: damaged"
    )


def _summary() -> BatchSummary:
    outcomes = [
        PairOutcome(1, "b", "l", "r", status="failed", error="cannot read"),
        PairOutcome(0, "a", "l", "r", status="done", height_px=4, width_px=6, model_ms=3.0, density=0.9),
    ]
    return BatchSummary(outcomes, listed=2, elapsed_s=0.5)


def test_summary_counts_and_rate():
    summary = _summary()
    assert [o.name for o in summary.outcomes] == ["a", "b"]
    assert summary.pairs_per_s == pytest.approx(2.0)
    assert summary.report().startswith("2 pairs: 1 done, 0 skipped, 1 failed; 3.0 ms per pair in the model, 2.00")
    assert BatchSummary([], listed=0).pairs_per_s == 0.0 and BatchSummary([], listed=0).exit_code == 0


def test_a_summarys_repr_gives_its_counts_not_every_pair():
    """print(summary) gave every PairOutcome, some 400 characters a pair: megabytes for a large batch."""
    summary = _summary()
    summary.outcomes.extend(PairOutcome(i, f"p{i}", "l", "r", status="done") for i in range(2, 1000))
    summary.listed = 1001
    assert repr(summary) == (
        "BatchSummary(listed=1001, done=999, skipped=0, failed=1, not_reached=1, elapsed_s=0.500, engine='local', "
        "workers=1, interrupted=False)"
    )


def test_summary_tables_csv_and_parquet(tmp_path):
    summary = _summary()
    text = summary.write_table(tmp_path / "s.csv").read_text().splitlines()
    assert text[0].startswith("index,name,left,right,status,error") and ",cannot read," in text[2]
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = parquet.read_table(summary.write_table(tmp_path / "sub" / "s.parquet"))
    rows = [PairOutcome.from_row(r) for r in table.to_pylist()]
    assert rows[0] == summary.outcomes[0] and rows[1].error == "cannot read" and math.isnan(rows[1].density)


def test_summary_tables_and_notes_of_names_that_are_not_utf8(tmp_path):
    """Linux names are bytes: a pair named from one that is not UTF-8 ended the batch with a UnicodeEncodeError
    traceback when the summary (and its own name) or a pair's not-written note was written."""
    import os

    from rtstereo.sinks.files import DEFAULT_FORMATS, not_written_notes, save_result

    odd = os.fsdecode(b"a\xff")
    try:
        (tmp_path / odd).touch()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes valid UTF-8 names only")
    summary = BatchSummary([PairOutcome(0, odd, f"l/{odd}.png", "r", status="done")], listed=1)
    assert b"0,a\xff,l/a\xff.png,r,done" in summary.write_table(tmp_path / f"{odd}.csv").read_bytes()
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    with summary.write_table(tmp_path / f"{odd}.parquet").open("rb") as f:
        assert parquet.read_table(f).to_pylist()[0]["left"] == "l/a\\xff.png"  # Parquet strings are UTF-8
    with pytest.warns(UserWarning):
        save_result(_far_result(), tmp_path / "out", odd, DEFAULT_FORMATS)
    assert not_written_notes(tmp_path / "out", odd, DEFAULT_FORMATS)[0].startswith(f"{odd}: disparity up to 300.2")


def test_summary_table_errors(tmp_path, monkeypatch):
    summary = _summary()
    with pytest.raises(OutputError, match="expected a .parquet or .csv"):
        summary.write_table(tmp_path / "s.json")
    with pytest.raises(InputError, match=r"summary: expected a .parquet or .csv file name \(str or Path\), got int"):
        summary.write_table(5)  # a bare TypeError before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:  # it said "[Errno 17] File exists: '.../file'"
        summary.write_table(blocker / "s.csv")
    assert str(info.value) == f"cannot write the summary {blocker / 's.csv'}: {blocker} is a file, not a folder"
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"rtstereo\[scale\]"):
        summary.write_table(tmp_path / "s.parquet")


def _far_result():
    import numpy as np

    from rtstereo.types import DisparityResult

    disparity = np.full((6, 320), 300.25, np.float32)  # a width it fits in: its match lies inside the right view
    return DisparityResult(disparity, settings={"max_disp": 320})


def test_a_disparity_beyond_png16_skips_the_png_and_writes_the_other_formats(tmp_path):
    from rtstereo.sinks.files import DEFAULT_FORMATS, save_result

    with pytest.warns(UserWarning, match=r"far: disparity up to 300\.2 px does not fit a 16-bit PNG .*--format"):
        written = save_result(_far_result(), tmp_path, "far", DEFAULT_FORMATS)
    names = ["far.json", "far.pfm", "far.png-not-written.txt", "far_color.png"]
    assert sorted(p.name for p in written) == names == sorted(p.name for p in tmp_path.iterdir())
    assert "300.2 px does not fit a 16-bit PNG" in (tmp_path / "far.png-not-written.txt").read_text()


def test_a_pair_left_without_its_png16_is_complete_and_resumed_with_its_warning(tmp_path):
    from rtstereo.sinks.files import DEFAULT_FORMATS, not_written_notes, save_result

    with pytest.warns(UserWarning):
        save_result(_far_result(), tmp_path, "seq/far", DEFAULT_FORMATS)
    assert outputs_complete(tmp_path, "seq/far", DEFAULT_FORMATS)
    assert not outputs_complete(tmp_path, "seq/far", ("pfm", "npy"))  # a format never tried is still missing
    assert not_written_notes(tmp_path, "seq/far", DEFAULT_FORMATS)[0].startswith("seq/far: disparity up to 300.2")


def test_a_png16_written_again_replaces_the_note_and_the_other_way_round(tmp_path):
    import numpy as np

    from rtstereo.sinks.files import save_result
    from rtstereo.types import DisparityResult

    with pytest.warns(UserWarning):
        save_result(_far_result(), tmp_path, "a", ("png16", "pfm"))
    near = DisparityResult(np.full((6, 8), 12.5, np.float32), settings={"max_disp": 64})
    save_result(near, tmp_path, "a", ("png16", "pfm"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pfm", "a.png"]
    with pytest.warns(UserWarning):
        save_result(_far_result(), tmp_path, "a", ("png16", "pfm"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pfm", "a.png-not-written.txt"]


def test_a_batch_records_the_png16_warning_and_resume_skips_the_pair(tmp_path, monkeypatch):
    from rtstereo.sources.pairs import PairSource

    class Far:  # a predictor whose maps a 16-bit PNG cannot hold
        def predict_pair(self, pair):
            return _far_result()

    monkeypatch.setattr(PairSource, "load", lambda self, index: _tiny_pair())
    sources = [PairSource("l.png", "r.png", "far")]
    job = BatchJob(output=tmp_path / "out", formats=("png16", "json"))
    first = run_local(job, Far(), sources)
    assert first.outcomes[0].status == "done" and "300.2 px does not fit a 16-bit PNG" in first.outcomes[0].warning
    again = run_local(job, Far(), sources)
    assert again.outcomes[0].status == "skipped" and again.outcomes[0].warning == first.outcomes[0].warning


def _tiny_pair():
    import numpy as np

    from rtstereo.types import StereoPair

    image = np.zeros((6, 8, 3), np.uint8)
    return StereoPair(image, image + 1)  # two views: one picture twice is refused


def test_a_disparity_beyond_png16_fails_a_png16_only_output_naming_format(tmp_path):
    from rtstereo.sinks.files import save_result

    with pytest.raises(OutputError, match=r"does not fit a 16-bit PNG .*far\.png not written.*--format"):
        save_result(_far_result(), tmp_path, "far", ("png16",))
    assert list(tmp_path.iterdir()) == []


def test_glb_is_written_without_trimesh(tmp_path, sgbm, three_pairs, monkeypatch):
    """A job with glb was refused without trimesh, which the GLB writer no longer uses."""
    monkeypatch.setitem(sys.modules, "trimesh", None)  # as if it were not installed
    calibration = rtstereo.Calibration(100, 100, 31.5, 31.5, 23.5, 0.1)
    job = BatchJob(output=tmp_path / "out", formats=("glb",), calibration=calibration)
    run_local(job, sgbm, resolve_pairs(*map(str, three_pairs)))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.glb")) == ["00.glb", "02.glb"]  # 01 is damaged
