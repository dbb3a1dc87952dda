"""``rtstereo bench --data PAIRS --reference MODEL``: quality against speed on pairs without ground truth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rtstereo import bench_reference
from rtstereo.bench import BenchReport, run_bench, synthetic_pair
from rtstereo.bench_reference import (
    Reference,
    ReferenceMap,
    ReferenceMaps,
    compute_reference_maps,
    pairs_of,
    parse_reference,
    score_against_reference,
)
from rtstereo.cli import main
from rtstereo.errors import InputError
from rtstereo.sources.pairs import PairSource
from rtstereo.types import DisparityResult

from .conftest import write_middlebury_scene

FAST = {"warmup": 1, "runs": 1, "threads": 1}


@pytest.fixture
def pairs(tmp_path):
    """Two textured pairs without ground truth, as a user has them: lefts/ and rights/ folders."""
    for side in ("lefts", "rights"):
        (tmp_path / side).mkdir()
    for index in range(2):
        left, right = synthetic_pair((48, 96), disparity_px=6, seed=index)
        cv2.imwrite(str(tmp_path / "lefts" / f"p{index}.png"), left[:, :, ::-1])
        cv2.imwrite(str(tmp_path / "rights" / f"p{index}.png"), right[:, :, ::-1])
    return str(tmp_path / "lefts"), str(tmp_path / "rights")


class _Constant:
    """A predictor whose map is ``value`` px everywhere, at the size it is given; records the sizes."""

    def __init__(self, value: float):
        self.value = value
        self.sizes: list[tuple[int, int]] = []

    def predict(self, left, right, calibration=None):
        self.sizes.append(left.shape[:2])
        disparity = np.full(left.shape[:2], self.value, np.float32)
        return DisparityResult(disparity, {"total": 1.0, "inference": 1.0}, {})


# --- feature: the scores ---------------------------------------------------------------------------------------


def test_a_row_is_scored_at_the_references_size_with_its_disparities_scaled_by_the_width_ratio(pairs):
    """By hand: the reference says 6 px at 96x48 on the right half (nan on the left half); a row at 48x24 that
    says 3.5 px is 7 px at 96 wide (EPE 1, nothing above 1 px off), one that says 2 px is 4 px (EPE 2, every
    pixel more than 1 px off, none more than 2)."""
    reference = np.full((48, 96), 6.0, np.float32)
    reference[:, :48] = np.nan  # not scored where the reference is invalid
    maps = ReferenceMaps(
        Reference("sgbm"), [ReferenceMap(PairSource(f"{pairs[0]}/p0.png", f"{pairs[1]}/p0.png", "p"), reference)], {}
    )
    row = _Constant(3.5)
    assert score_against_reference(row, (24, 48), maps) == pytest.approx({"epe": 1.0, "bad-1": 0.0, "bad-2": 0.0})
    assert row.sizes == [(24, 48)], "the row ran at its own size, on the pair resized to it"
    assert score_against_reference(_Constant(2.0), (24, 48), maps) == pytest.approx(
        {"epe": 2.0, "bad-1": 100.0, "bad-2": 0.0}
    )


def test_the_score_is_the_mean_over_pairs_and_a_rows_invalid_pixels_count_as_wrong(pairs):
    first = np.full((48, 96), 6.0, np.float32)
    second = np.full((48, 96), 9.0, np.float32)
    source = PairSource(f"{pairs[0]}/p0.png", f"{pairs[1]}/p0.png", "p0")
    maps = ReferenceMaps(Reference("sgbm"), [ReferenceMap(source, first), ReferenceMap(source, second)], {})
    scores = score_against_reference(_Constant(6.0), (48, 96), maps)
    assert scores == pytest.approx({"epe": 1.5, "bad-1": 50.0, "bad-2": 50.0})  # 0 px and 3 px off, each pair alike
    assert score_against_reference(_Constant(np.nan), (48, 96), maps)["bad-1"] == 100.0


def test_rows_of_the_references_own_settings_and_size_score_zero_and_others_do_not(pairs):
    report = run_bench(
        ["sgbm", "bm"],
        [(48, 96), (24, 48)],
        sweeps={"max_disp": [16]},
        data=[pairs],
        reference="sgbm:max_disp=16",
        **FAST,
    )
    scores = {(r.case.model, r.case.size_hw): r.accuracy for r in report.rows}
    assert scores["sgbm", (48, 96)] == {"epe": 0.0, "bad-1": 0.0, "bad-2": 0.0}
    assert scores["bm", (48, 96)]["epe"] > 0 and scores["sgbm", (24, 48)]["epe"] > 0
    assert report.reference["pairs"] == ["p0", "p1"] and report.reference["failed"] == {}
    assert report.options["scenes"] == ["p0", "p1"]
    table = report.table()
    assert "|EPE vs ref px|bad-1 vs ref %|bad-2 vs ref %|" in table and "D1 %" not in table
    assert "sgbm max_disp=16 at each pair's own size" in table and "mean over 2 pairs" in table
    assert "resized to it, its disparities scaled by the width ratio" in table  # the 24x48 rows


def test_pairs_stretched_to_rows_of_another_aspect_ratio_are_noted(pairs):
    report = run_bench(
        ["bm"], [(48, 48), (24, 48)], sweeps={"max_disp": [16]}, data=[pairs], reference="sgbm:max_disp=16", **FAST
    )
    assert [n for n in report.notes if "stretched" in n] == [
        "2 pairs of --data are stretched to rows of another aspect ratio (p0: 96x48 run at 48x48, WxH): the scores "
        "hold (disparity runs along the width, scaled by its ratio), but the methods see distorted pairs; --sizes of "
        "the pairs' aspect ratio keep their shape"
    ]
    same_shape = run_bench(
        ["bm"], [(24, 48)], sweeps={"max_disp": [16]}, data=[pairs], reference="sgbm:max_disp=16", **FAST
    )
    assert not [n for n in same_shape.notes if "stretched" in n]


def test_the_reference_runs_once_per_pair_before_the_sweep_at_the_size_it_is_given(pairs, monkeypatch):
    counting = _Constant(4.0)
    monkeypatch.setattr(bench_reference, "reference_predictor", lambda reference, *args: (counting, reference.size_hw))
    report = run_bench(
        ["sgbm", "bm"],
        [(48, 96), (24, 48)],
        sweeps={"max_disp": [16]},
        data=[pairs],
        reference="sgbm:size=36x72",
        **FAST,
    )
    assert counting.sizes == [(36, 72), (36, 72)], "once per pair, not once per row"
    assert all(r.accuracy for r in report.rows) and report.reference["sizes_hw"] == [[36, 72], [36, 72]]
    assert report.reference["label"] == "sgbm at 72x36"


def test_a_pair_the_reference_fails_on_is_left_out_with_a_note_and_all_failing_is_refused(pairs, tmp_path):
    (tmp_path / "lefts" / "p2.png").write_text("not an image")
    (tmp_path / "rights" / "p2.png").write_text("not an image")
    report = run_bench(
        ["bm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[pairs], reference="sgbm:max_disp=16", **FAST
    )
    assert report.reference["pairs"] == ["p0", "p1"] and list(report.reference["failed"]) == ["p2"]
    assert np.isfinite(report.rows[0].accuracy["epe"])
    assert any(
        n.startswith("the reference failed on 1 pair of --data, left out of the scores (first: p2: ")
        for n in report.notes
    )
    assert "the reference failed on 1 pair, left out (first: p2: cannot read" in report.table()
    bad = (str(tmp_path / "lefts" / "p2.png"), str(tmp_path / "rights" / "p2.png"))
    with pytest.raises(
        InputError,
        match=r"^--reference sgbm max_disp=16 at each pair's own size failed on every pair .*p2: cannot read",
    ):
        run_bench(["bm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[bad], reference="sgbm:max_disp=16", **FAST)


def test_a_reference_map_without_a_valid_pixel_fails_that_pair(pairs, monkeypatch):
    monkeypatch.setattr(bench_reference, "reference_predictor", lambda reference, *args: (_Constant(np.nan), None))
    with pytest.raises(InputError, match="first: p0: its map has no valid pixel"):
        compute_reference_maps(Reference("sgbm"), pairs_of([pairs])[0])


def test_a_pair_of_one_picture_twice_fails_that_pair_by_what_it_is(pairs, tmp_path):
    """A right image copied from the left failed as "its map has no valid pixel": the reference's map of 0 everywhere,
    not the pair, was blamed."""
    import shutil

    shutil.copy(tmp_path / "lefts" / "p1.png", tmp_path / "rights" / "p1.png")
    maps = compute_reference_maps(Reference("sgbm", settings=(("max_disp", "16"),)), pairs_of([pairs])[0])
    assert [m.source.name for m in maps.maps] == ["p0"]
    assert maps.failed == {
        "p1": "left and right are the same picture (identical pixels: one file under two names, or a copy): a stereo "
        "pair needs its two views, one per camera"
    }


def test_ground_truth_of_data_is_not_used_with_a_reference_and_a_note_says_so(tmp_path):
    """A dataset with ground truth and --reference: the scores are against the reference, and the note says which."""
    # ground truth far from any map: the GT would show
    write_middlebury_scene(tmp_path / "data" / "scene", *synthetic_pair((48, 96), disparity_px=6), 40.0)
    report = run_bench(
        ["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[tmp_path / "data"], reference="sgbm:max_disp=16", **FAST
    )
    assert report.rows[0].accuracy["epe"] == 0.0
    assert "of the same pair (not ground truth)" in report.table()  # it said "(no ground truth)" of scenes with it
    assert any(
        n.startswith("1 scene of --data has ground truth, not used: the rows are scored against the reference")
        for n in report.notes
    )


def test_pairs_come_from_a_manifest_too(pairs, tmp_path):
    (tmp_path / "pairs.csv").write_text("left,right,name\nlefts/p1.png,rights/p1.png,one\n")
    found, notes = pairs_of([str(tmp_path / "pairs.csv")])
    assert [p.name for p in found] == ["one"] and notes == []


def test_a_manifests_pair_listed_again_is_scored_once_and_said_so(pairs, tmp_path):
    """read_manifest's warning said of bench "each name gets its own files of the same pair": it is scored once."""
    import warnings

    (tmp_path / "pairs.csv").write_text(
        "left,right,name\nlefts/p0.png,rights/p0.png,a\nlefts/p1.png,rights/p1.png,b\nlefts/p0.png,rights/p0.png,c\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found, notes = pairs_of([str(tmp_path / "pairs.csv")])
    assert [p.name for p in found] == ["a", "b"]
    assert notes == ["1 pair of --data listed again (first: c (as a)), scored once: each pair weighs once in the means"]


def test_a_pair_given_twice_counts_once_and_pairs_of_two_data_with_one_name_are_told_apart(pairs, tmp_path):
    """Two sequences of one layout both have a p0; the reference failing on both was counted as failing on one
    (its failures were kept by name), and one pair under two --data weighed twice in the mean."""
    other = tmp_path / "other"
    for side in ("lefts", "rights"):
        (other / side).mkdir(parents=True)
        (other / side / "p0.png").write_text("not an image")
        (tmp_path / side / "p2.png").write_text("not an image")
    found, notes = pairs_of([pairs, pairs, (str(other / "lefts"), str(other / "rights"))])
    assert [p.name for p in found] == ["p0", "p1", "p2", "p0 (2)"]
    # left out without a word before
    assert notes == [
        "3 pairs of --data listed again (first: p0 (as p0)), scored once: each pair weighs once in the means"
    ]
    report = run_bench(["bm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[pairs, (other / "lefts", other / "rights")],
                       reference="sgbm:max_disp=16", **FAST)  # fmt: skip
    assert report.reference["failed"].keys() == {"p2", "p0 (2)"} and report.reference["pairs"] == ["p0", "p1"]
    assert "the reference failed on 2 pairs" in report.table()


# --- exception: usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sgbm:max_disp", r"expected MODEL\[:KEY=VALUE,...\], got 'max_disp'"),
        (":max_disp=3", r"expected MODEL\[:KEY=VALUE,...\]"),
        ("sgbm:max_disp=3,max_disp=4", "max_disp is given twice"),
        ("sgbm:size=48", "--reference size: size '48' not understood"),
    ],
)
def test_a_reference_that_is_not_model_key_value_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_reference(text)


def test_a_reference_value_with_commas_is_quoted_and_one_cut_at_its_comma_says_so():
    """A value with commas (ONNX Runtime's providers in order) could not be given: its comma ended it."""
    assert parse_reference("""net.onnx:providers="cuda,cpu",size=24x48""").settings == (("providers", "cuda,cpu"),)
    assert parse_reference("net.onnx:providers='cuda,cpu'").settings == (("providers", "cuda,cpu"),)
    with pytest.raises(InputError, match=r"""got 'cpu' \(commas part the settings: quote a value that holds one, """
                       r"""providers="cuda,cpu"\)$"""):  # fmt: skip
        parse_reference("net.onnx:providers=cuda,cpu")
    with pytest.raises(InputError, match="a quote is not closed"):
        parse_reference('net.onnx:providers="cuda,cpu')
    with pytest.raises(InputError, match=r"got ''$"):
        parse_reference("sgbm:max_disp=16,")


def test_a_fixed_size_reference_at_another_size_is_refused(monkeypatch):
    class Fixed(_Constant):
        fixed_size_hw = (48, 96)

    monkeypatch.setattr("rtstereo.api.load", lambda *args, **kwargs: Fixed(1.0))
    with pytest.raises(InputError, match=r"fixed at 48x96 \(HxW\): drop size= or give size=48x96"):
        bench_reference.reference_predictor(Reference("sgbm", (), (24, 48)), None, "cpu", None)
    assert bench_reference.reference_predictor(Reference("sgbm"), None, "cpu", None)[1] == (48, 96)


def test_a_fixed_size_reference_is_named_at_its_own_size_not_each_pairs(pairs, monkeypatch):
    """The note and bench.json said "at each pair's own size" of an export that ran every pair at its own size."""

    class Fixed(_Constant):
        fixed_size_hw = (36, 72)

    fixed = Fixed(4.0)
    monkeypatch.setattr("rtstereo.api.load", lambda *args, **kwargs: fixed)
    report = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[pairs], reference="fixed.onnx", **FAST)
    assert fixed.sizes == [(36, 72), (36, 72)]
    assert report.reference["label"] == "fixed.onnx at 72x36" and report.reference["size_hw"] == [36, 72]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reference", "sgbm"], "--reference scores the rows on --data PAIRS"),
        (["--data", "{l}", "{r}"], "pairs without ground truth are scored against a reference model: add --reference"),
        (["--data", "{l}/p0.png", "{l}/p1.png", "{r}/p0.png", "--reference", "sgbm"], "got 3 values .* Quote it"),
        (["--data", "{l}", "nowhere", "--reference", "sgbm"], "--data .*lefts nowhere: right image not found"),
        (
            ["--data", "{l}", "{r}", "--reference", "sgbm:blok=3"],
            "--reference sgbm: model 'sgbm' has no setting 'blok'",
        ),
        (["--data", "{l}", "{r}", "--reference", "anynet"], "--reference anynet: model 'anynet' needs its weights"),
        (["--data", "{l}", "{r}", "--reference", "missing.onnx"], "model file not found: missing.onnx"),
        # "unknown model 'SGBM'" alone read as one of the models benched
        (["--data", "{l}", "{r}", "--reference", "SGBX"], "error: --reference SGBX: unknown model 'SGBX'"),
        (["--baseline", "SGBX"], "error: --baseline SGBX: unknown model 'SGBX'"),
    ],
)
def test_bad_reference_arguments_are_one_line_usage_errors(cli, pairs, extra, message):
    left, right = pairs
    argv = [a.format(l=left, r=right) for a in extra]
    code, out, err = cli("bench", "sgbm", "--sizes", "48x96", "--max-disp", "16", "--runs", "1", "--warmup", "1", *argv)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("rtstereo bench: reference ")]
    assert len(lines) == 1 and lines[0].startswith("rtstereo bench: error: "), err
    assert __import__("re").search(message, lines[0]), lines[0]


def test_the_command_writes_the_scores_against_the_reference(cli, pairs, tmp_path):
    left, right = pairs
    code, out, err = cli(
        "bench", "sgbm,bm", "--sizes", "48x96,24x48", "--max-disp", "16", "--runs", "1", "--warmup", "1",
        "--data", f"{left}/*.png", f"{right}/*.png", "--reference", "sgbm:max_disp=16,fill_holes=on,refine_edges=no",
        "-o", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    assert "rtstereo bench: reference sgbm: pair 1 of 2 (p0)" in err, "the reference's work shows progress too"
    assert "|EPE vs ref px|" in out and "|sgbm|opencv|48p (96x48)|16|-|" in out
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    # typed as the model takes them: they were the text given, "16", "on", "no"
    settings = {"max_disp": 16, "fill_holes": True, "refine_edges": False}
    assert data["reference"]["model"] == "sgbm" and data["reference"]["settings"] == settings
    assert data["reference"]["label"] == "sgbm max_disp=16 fill_holes=true refine_edges=false at each pair's own size"
    assert data["rows"][0]["accuracy"] == {"epe": 0.0, "bad-1": 0.0, "bad-2": 0.0}
    assert BenchReport.from_json(data).table() == (tmp_path / "out" / "bench.md").read_text().rstrip("\n")


def test_a_dataset_folder_whose_name_ends_in_csv_is_a_dataset_not_a_manifest(tmp_path):
    write_middlebury_scene(tmp_path / "runs.csv" / "scene", *synthetic_pair((48, 96), disparity_px=6), 6.0)
    report = run_bench(["sgbm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[tmp_path / "runs.csv"], **FAST)
    assert report.options["scenes"] == ["scene"] and "d1" in report.rows[0].accuracy


def test_two_dataset_folders_after_one_data_are_not_taken_for_left_right(tmp_path, pairs):
    """``--data real validation`` read the two dataset roots as a pair's camera folders: 'pairs without ground truth
    are scored against a reference model', or with --reference 'left folder real holds no images'."""
    for name in ("real", "validation"):
        (tmp_path / name / "scene").mkdir(parents=True)
    two = (str(tmp_path / "real"), str(tmp_path / "validation"))
    expected = r"two values after one --data are LEFT RIGHT.*write --data .*real --data .*validation$"
    with pytest.raises(InputError, match=expected):
        run_bench(["sgbm"], [(48, 96)], data=[two], **FAST)
    with pytest.raises(InputError, match=expected):
        run_bench(["sgbm"], [(48, 96)], data=[two], reference="sgbm", **FAST)
    assert len(pairs_of([pairs])[0]) == 2, "camera folders with their images are LEFT RIGHT"


def test_the_help_says_data_takes_a_folder_or_left_right(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert stop.value.code == 0 and "[--data DIR|LEFT [RIGHT ...]]" in out and "--reference MODEL[:KEY=V,...]" in out


def test_a_model_written_after_data_is_still_the_model(capsys, tmp_path, monkeypatch):
    """`--data` takes one or two values, so `bench --data D sgbm` gave argparse `sgbm` as its second value and
    stopped with "model required"; before --data took pairs that command ran sgbm on D."""
    seen = {}

    def fake_run_bench(models, sizes, **kwargs):
        seen["models"], seen["data"] = models, kwargs.get("data")
        raise KeyboardInterrupt  # stop there: what was parsed is the point

    monkeypatch.setattr("rtstereo.bench.run_bench", fake_run_bench)
    assert main(["bench", "--data", str(tmp_path), "sgbm", "--sizes", "32x32"]) == 130
    assert seen == {"models": ["sgbm"], "data": [str(tmp_path)]}
    assert main(["bench", "--data", str(tmp_path), "--sizes", "32x32"]) == 2
    assert "give the model(s) to time first" in capsys.readouterr().err


def test_a_fixed_size_reference_is_labelled_with_the_size_it_ran_at(pairs, monkeypatch):
    class Fixed(_Constant):
        fixed_size_hw = (24, 48)

    monkeypatch.setattr("rtstereo.api.load", lambda *args, **kwargs: Fixed(1.0))
    maps = compute_reference_maps(Reference("crestereo_init_iter5_24x48.onnx"), pairs_of([pairs])[0])
    assert maps.reference.label == "crestereo_init_iter5_24x48.onnx at 48x24", "not 'at each pair's own size'"
    assert maps.to_json()["size_hw"] == [24, 48] and maps.to_json()["sizes_hw"] == [[24, 48], [24, 48]]


def test_the_stretch_note_compares_sizes_with_the_pairs_own_not_the_references(pairs):
    """With the reference at a size of another aspect ratio, the note named the reference's map as the pair
    (p0: 48x48 run at 96x48) and called the rows of the pairs' own shape stretched."""
    report = run_bench(
        ["bm"], [(48, 96)], sweeps={"max_disp": [16]}, data=[pairs], reference="sgbm:max_disp=16,size=48x48", **FAST
    )
    assert [n for n in report.notes if "stretched" in n] == [
        "2 pairs of --data are stretched to the reference's size of another aspect ratio (p0: 96x48 run at 48x48, "
        "WxH): the scores hold (disparity runs along the width, scaled by its ratio), but the methods see distorted "
        "pairs; --sizes and a size= (or a fixed-size file) of the pairs' aspect ratio keep their shape"
    ]
    both = run_bench(
        ["bm"],
        [(24, 48), (48, 48)],
        sweeps={"max_disp": [16]},
        data=[pairs],
        reference="sgbm:max_disp=16,size=48x48",
        **FAST,
    )
    assert [n.split(" (")[0] for n in both.notes if "stretched" in n] == [
        "2 pairs of --data are stretched to the reference's size and rows of another aspect ratio"
    ]


def test_a_rows_warning_is_said_once_though_the_row_runs_for_its_time_and_its_score(cli, pairs):
    """sgbm's unmatched-band warning came twice per row: once when it was timed, again when it was scored."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):  # as the command line prints them
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    left, right = pairs
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        code, _, err = cli(
            "bench", "sgbm", "--sizes", "48x96", "--max-disp", "64", "--runs", "1", "--warmup", "1",
            "--data", left, right, "--reference", "sgbm:max_disp=16",
        )  # fmt: skip
    assert code == 0
    assert err.count("sgbm matches no pixel in the first 64 columns") == 1, err


def test_a_folder_of_one_cameras_images_says_both_sides_are_needed(capsys, tmp_path):
    """A plain folder of images (no dataset layout) was pointed to `rtstereo eval --help` alone."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((32, 48, 3), np.uint8))
    code = main(["bench", "sgbm", "--sizes", "32x48", "--runs", "1", "--data", str(folder), "--reference", "bm"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--data {folder}: no stereo dataset of a known layout under {folder}" in err
    assert "give both cameras: --data LEFT RIGHT" in err
