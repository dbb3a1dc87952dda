"""Atomic writes: a file appears under its name only when complete."""

from __future__ import annotations

import numpy as np
import pytest

from rtstereo.errors import OutputError
from rtstereo.io import disparity
from rtstereo.io.atomic import atomic_path, publish, staging_folder
from rtstereo.sinks.files import save_single_file
from rtstereo.types import DisparityResult


def test_atomic_path_renames_on_success(tmp_path):
    with atomic_path(tmp_path / "a.pfm") as partial:
        assert partial.suffix == ".pfm" and partial.parent == tmp_path and partial.name.startswith(".a.partial-")
        partial.write_bytes(b"x")
        assert not (tmp_path / "a.pfm").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.pfm"]


def test_atomic_path_leaves_nothing_after_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(tmp_path / "a.png") as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_staging_folder_is_removed_and_publish_moves_files(tmp_path):
    with staging_folder(tmp_path / "out") as staging:
        (staging / "sub").mkdir()
        (staging / "sub" / "f.txt").write_text("done")
        final = publish(staging / "sub" / "f.txt", staging, tmp_path / "out")
    assert final == tmp_path / "out" / "sub" / "f.txt" and final.read_text() == "done"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]


def test_staging_folder_in_an_unwritable_place_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"), staging_folder(blocker / "out"):
        pass


def test_publish_onto_a_folder_is_an_output_error(tmp_path):
    (tmp_path / "out" / "f.txt").mkdir(parents=True)  # a folder where the file should go
    with staging_folder(tmp_path / "out") as staging:
        (staging / "f.txt").write_text("x")
        with pytest.raises(OutputError, match="cannot write"):
            publish(staging / "f.txt", staging, tmp_path / "out")


def test_errors_name_the_users_path_never_the_temporary_one(tmp_path, monkeypatch):
    def refuse(path, array):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(disparity, "write_pfm", refuse)
    result = DisparityResult(np.ones((4, 6), np.float32))
    with pytest.raises(OutputError) as info:
        save_single_file(result, tmp_path / "d.pfm")
    assert str(info.value) == f"cannot write {tmp_path / 'd.pfm'}: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    blocker = tmp_path / "taken.pfm"
    blocker.write_text("x")
    result = DisparityResult(np.ones((4, 6), np.float32))
    with pytest.raises(OutputError, match=f"cannot write .*: {blocker} is a file, not a folder"):
        save_single_file(result, blocker / "d.pfm")
    with pytest.raises(OutputError, match=f"cannot create output folder .*: {blocker} is a file, not a folder$"):
        with staging_folder(blocker / "out"):
            pass


def test_a_map_too_large_for_a_png_keeps_its_error_and_leaves_no_folder(tmp_path):
    from rtstereo.errors import DisparityRangeError

    result = DisparityResult(np.full((4, 6), 300.0, np.float32))
    with pytest.raises(DisparityRangeError, match=r"300\.0 px does not fit a 16-bit PNG") as info:
        save_single_file(result, tmp_path / "new" / "d.png")
    assert info.value.max_disparity_px == 300.0
    assert list(tmp_path.iterdir()) == []
