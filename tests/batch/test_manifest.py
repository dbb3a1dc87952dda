"""Manifests: CSV and Parquet tables of left,right[,name], and every way one can be wrong."""

from __future__ import annotations

import sys

import pytest

from rtstereo.errors import InputError, MissingDependencyError
from rtstereo.sinks.files import check_pair_name
from rtstereo.sources.manifest import read_manifest


def test_csv_paths_are_relative_to_the_manifest_and_urls_kept(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("Left,Right,Name\ncam0/a.png,cam1/a.png,seq/a\nhttps://x/l.png,/abs/r.png,b\n\n")
    pairs = read_manifest(manifest)
    assert [(p.left, p.right, p.name) for p in pairs] == [
        (str(tmp_path / "cam0/a.png"), str(tmp_path / "cam1/a.png"), "seq/a"),
        ("https://x/l.png", "/abs/r.png", "b"),
    ]


def test_names_default_to_the_left_stems_then_their_paths_then_numbers_when_they_collide(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right\nx/a.png,y/a.png\nz/a.png,w/a.png\n")
    assert [p.name for p in read_manifest(manifest)] == ["x/a", "z/a"]
    manifest.write_text("left,right\nx/a.png,y/a.png\nx/a.jpg,w/a.png\n")  # one path but for the suffix
    assert [p.name for p in read_manifest(manifest)] == ["00000_a", "00001_a"]


def test_parquet_manifest(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["a/l.png"], "right": ["a/r.png"], "extra": [1]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    (pair,) = read_manifest(tmp_path / "pairs.parquet")
    assert pair.left == str(tmp_path / "a/l.png") and pair.name == "l"


def test_a_parquet_name_column_of_numbers_names_pair_zero_too(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["a/0.png", "a/1.png"], "right": ["b/0.png", "b/1.png"], "name": [0, 1]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    assert [p.name for p in read_manifest(tmp_path / "pairs.parquet")] == ["0", "1"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("pairs.txt", "left,right\na,b\n", "expected a .csv or .parquet"),
        ("pairs.csv", None, "manifest not found"),
        ("pairs.csv", "left,right\n", "lists no pairs"),
        ("pairs.csv", "left,right\na.png,\n", "must both name an image"),
        ("pairs.csv", "left,other\na.png,b.png\n", "has no right column"),
        ("pairs.csv", "", "has no left or right column (found: nothing)"),
        ("pairs.csv", "left,right,name\na.png,b.png,x\nc.png,d.png,\n", "filled on some rows only"),
        ("pairs.csv", "left,right,name\na.png,b.png,x\nc.png,d.png,x\n", "pair name(s) x repeat"),
        ("pairs.csv", "left,right,name\na.png,b.png,../x\n", "would not stay inside"),
        ("pairs.csv", "left,right,name\na.png,b.png,seq/x\nc.png,d.png,seq//x/\n", "pair name(s) seq/x repeat"),
        ("pairs.csv", "left,right,LEFT\na.png,b.png,c.png\n", "has left more than once"),
        ("pairs.csv", b"left,right\n\xff\xfe,b\n", "cannot read manifest"),
        ("pairs.parquet", b"not parquet", "cannot read manifest"),
    ],
)
def test_bad_manifests_are_input_errors(tmp_path, name, content, message):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(path)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "pairs.parquet").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"rtstereo\[scale\]"):
        read_manifest(tmp_path / "pairs.parquet")


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "would not stay"), ("/abs", "would not stay"), ("a/../b", "would not stay"), ("a/.hidden", "with '.'")],
)
def test_pair_names_stay_inside_the_output_folder(name, message):
    with pytest.raises(InputError, match=message):
        check_pair_name(name)


def test_a_parquet_manifest_with_a_column_twice_in_two_cases_is_an_input_error(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    table = pyarrow.table({"left": ["l.png"], "right": ["r.png"], "name": ["a"], "NAME": ["b"]})
    parquet.write_table(table, tmp_path / "pairs.parquet")
    with pytest.raises(InputError, match="has name more than once"):
        read_manifest(tmp_path / "pairs.parquet")


def test_pair_names_are_given_in_one_written_form():
    assert check_pair_name("seq//a/") == "seq/a"


def test_a_misspelt_column_and_cells_beyond_the_header_are_warned_about(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("left,right,nmae,timestamp\na.png,b.png,x,1\nc.png,d.png,y,2,e.png\ng.png,h.png,z,3,\n")
    with pytest.warns(UserWarning) as caught:
        pairs = read_manifest(manifest)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert "column nmae (did you mean name?) is ignored" in messages[0]  # timestamp is the user's own: not named
    assert "pair(s) 2 have more cells than the header's columns" in messages[1]  # pair 3's trailing comma: silent
    assert [p.name for p in pairs] == ["a", "c", "g"]
