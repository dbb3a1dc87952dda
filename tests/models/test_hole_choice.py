"""How the hybrid fills SGBM's holes: the measures, the learned selector, its fit, and the setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rtstereo
from rtstereo.errors import InputError, OutputError
from rtstereo.models.sgbm import fill_holes_rowwise
from rtstereo.runtime.hole_choice import (
    FEATURE_NAMES,
    HoleSelector,
    choose_in_holes,
    hole_candidates,
    packaged_selector,
    row_ends,
)

from .conftest import plane_and_hole, random_selector_weights, shifted_pair


# ------------------------------------------------------------------------------------------- measures
def test_the_row_ends_give_the_row_wise_fill():
    rng = np.random.default_rng(0)
    confident = rng.uniform(0, 50, (40, 70)).astype(np.float32)
    confident[rng.random(confident.shape) < 0.6] = np.nan
    confident[7] = np.nan  # a row without a confident pixel
    left, right, to_left, to_right = row_ends(confident)
    np.testing.assert_array_equal(np.fmin(left, right), fill_holes_rowwise(confident))
    y, x = 3, 20
    row = confident[y]
    before = [i for i in range(x + 1) if np.isfinite(row[i])]
    after = [i for i in range(x, 70) if np.isfinite(row[i])]
    assert to_left[y, x] == (x - before[-1] if before else 70) and to_right[y, x] == (after[0] - x if after else 70)
    assert np.isnan(left[7]).all() and (to_left[7] == 70).all()


def test_the_row_ends_match_a_walk_along_each_row():
    rng = np.random.default_rng(1)
    confident = rng.uniform(0, 50, (6, 23)).astype(np.float32)
    confident[rng.random(confident.shape) < 0.5] = np.nan
    confident[2] = np.nan  # no confident pixel
    confident[3] = 9.0  # no hole
    confident[4, :5] = confident[4, -5:] = np.nan  # runs at both ends of the row
    ends = row_ends(confident)
    ys, xs = np.nonzero(rng.random(confident.shape) < 0.3)
    at_points = row_ends(confident, ys, xs)
    for y, x in np.ndindex(confident.shape):
        row = confident[y]
        before = [i for i in range(x + 1) if np.isfinite(row[i])]
        after = [i for i in range(x, 23) if np.isfinite(row[i])]
        expected = (
            row[before[-1]] if before else np.nan,
            row[after[0]] if after else np.nan,
            x - before[-1] if before else 23,
            after[0] - x if after else 23,
        )
        np.testing.assert_array_equal([values[y, x] for values in ends], expected)
    for values, values_at_points in zip(ends, at_points, strict=True):
        np.testing.assert_array_equal(values[ys, xs], values_at_points)


def test_every_hole_pixel_gets_finite_measures_in_row_major_order():
    left, right, confident = plane_and_hole(8)
    confident[5] = np.nan
    network = np.full(confident.shape, 14.0, np.float32)
    network[:, 70] = np.nan
    candidates = hole_candidates(left, right, confident, network, 64.0)
    holes = ~np.isfinite(confident)
    assert candidates.features.shape == (holes.sum(), len(FEATURE_NAMES))
    assert np.isfinite(candidates.features).all()
    ys, xs = np.nonzero(holes)
    left_band = candidates.features[:, FEATURE_NAMES.index("left_band")]
    np.testing.assert_allclose(left_band, np.minimum(xs / 64.0, 1.0), rtol=1e-6)
    difference = candidates.features[:, FEATURE_NAMES.index("fill_minus_network")]
    inside = (ys != 5) & (xs != 70)
    np.testing.assert_allclose(difference[inside], (8.0 - 14.0) / 8.0)  # the fill is 8 px, the network 14 px
    np.testing.assert_array_equal(candidates.fill[5], network[5])  # no confident pixel in the row: no fill


# -------------------------------------------------------------------------------------- the choices
@pytest.mark.parametrize("by", ["learned", "cost"])
def test_a_network_far_off_in_a_textured_hole_gives_way_to_the_fill(by):
    left, right, confident = plane_and_hole(8)
    network = np.full(confident.shape, 14.0, np.float32)
    fused = choose_in_holes(left, right, confident, network, by=by, search_px=40.0)
    assert (fused[:, 62:78] == 8.0).mean() > 0.95
    np.testing.assert_array_equal(fused[:, :60], 8.0)


@pytest.mark.parametrize("by", ["learned", "cost"])
def test_a_right_network_is_kept_where_the_fill_is_wrong(by):
    left, right, confident = plane_and_hole(8)
    confident[:, :60] = 3.0  # confident but wrong left of the hole, and the fill takes the smaller side
    network = np.full(confident.shape, 8.0, np.float32)
    fused = choose_in_holes(left, right, confident, network, by=by, search_px=40.0)
    assert (fused[:, 64:76] == 8.0).mean() > 0.9
    np.testing.assert_array_equal(fused[:, :60], 3.0)  # confident pixels are never changed


@pytest.mark.parametrize("by", ["learned", "cost"])
def test_an_invalid_network_value_takes_the_fill_and_a_row_without_matches_keeps_the_network(by):
    left, right, confident = plane_and_hole(8)
    confident[5] = np.nan
    network = np.full(confident.shape, 14.0, np.float32)
    network[:, 70] = np.nan
    fused = choose_in_holes(left, right, confident, network, by=by)
    np.testing.assert_array_equal(np.delete(fused[5], 70), 14.0)
    assert np.isnan(fused[5, 70])
    np.testing.assert_array_equal(fused[10:, 70], 8.0)


@pytest.mark.parametrize("prefers", ["network", "fill"])
def test_the_learned_rule_takes_what_its_selector_prefers_and_the_fill_where_the_network_is_invalid(prefers):
    left, right, confident = plane_and_hole(8)
    network = np.full(confident.shape, 14.0, np.float32)  # the fill is 8 px: SGBM's plane on both sides
    network[:, 70] = np.nan
    weights = {
        "features": FEATURE_NAMES,
        "hidden_weight": [[0.0] * len(FEATURE_NAMES)],
        "hidden_bias": [0.0],
        "output_weight": [0.0],
        "output_bias": -5.0 if prefers == "network" else 5.0,  # log-odds that the fill is right, everywhere
    }
    fused = choose_in_holes(left, right, confident, network, by="learned", selector=HoleSelector(weights))
    hole = fused[:, 60:80]
    np.testing.assert_array_equal(np.delete(hole, 10, axis=1), 14.0 if prefers == "network" else 8.0)
    np.testing.assert_array_equal(hole[:, 10], 8.0)  # the network's nan is never chosen
    np.testing.assert_array_equal(np.delete(fused, np.s_[60:80], axis=1), 8.0)  # the confident pixels stay


def test_an_unknown_rule_is_refused():
    left, right, confident = plane_and_hole(8)
    with pytest.raises(InputError, match="learned, cost"):
        choose_in_holes(left, right, confident, confident, by="oracle")
    with pytest.raises(InputError, match="choose_by"):
        rtstereo.load("hybrid", choose_by="oracle")


def test_the_setting_reaches_the_fusion():
    left, right = shifted_pair()
    right = np.roll(right, 3, axis=0)  # a poorer match: more holes, where the rules can differ
    maps = {by: rtstereo.load("hybrid", choose_by=by).predict(left, right) for by in ("learned", "cost")}
    assert all(result.settings["choose_by"] == by for by, result in maps.items())
    assert not np.array_equal(maps["learned"].disparity_px, maps["cost"].disparity_px, equal_nan=True)


# --------------------------------------------------------------------------------------- the selector
def test_the_packaged_selector_records_its_fit_and_beats_the_cost_rule_on_held_out_scenes():
    selector = packaged_selector()
    assert selector.hidden_weight.shape[1] == len(FEATURE_NAMES)
    meta = selector.meta
    assert meta["decisive_pixels"] > 100_000 and "rendered pairs" in meta["fit_on"]
    # On rendered pairs it never saw, it picks the right answer more often than the lower cost does.
    assert meta["held_out_accuracy"] > meta["held_out_cost_rule_accuracy"] + 0.03


def test_a_selector_is_saved_atomically(tmp_path, monkeypatch):
    # written in place, an interrupted save left a truncated file under the real name (and an OSError)
    selector = HoleSelector(random_selector_weights(FEATURE_NAMES))
    (tmp_path / "s.json").write_text("earlier")

    def interrupted(path, data, *args, **kwargs):
        Path.write_bytes(path, data[:10].encode())
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        selector.save(tmp_path / "s.json")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"] and (tmp_path / "s.json").read_text() == "earlier"
    with pytest.raises(OutputError, match=f"cannot write the hole selector {tmp_path / 'no' / 's.json'}"):
        selector.save(tmp_path / "no" / "s.json")


def test_a_selector_saves_and_loads_and_refuses_malformed_files(tmp_path):
    rng = np.random.default_rng(1)
    weights = {**random_selector_weights(FEATURE_NAMES), "note": "kept"}
    selector = HoleSelector(weights)
    selector.save(tmp_path / "s.json")
    again = HoleSelector.load(tmp_path / "s.json")
    x = rng.normal(size=(10, len(FEATURE_NAMES))).astype(np.float32)
    np.testing.assert_allclose(again.logits(x), selector.logits(x), rtol=1e-6)
    assert again.meta == {"note": "kept"}
    with pytest.raises(InputError, match="cannot read"):
        HoleSelector.load(tmp_path / "missing.json")
    (tmp_path / "partial.json").write_text(json.dumps({"features": list(FEATURE_NAMES)}))
    with pytest.raises(InputError, match="expected a JSON object"):
        HoleSelector.load(tmp_path / "partial.json")
    with pytest.raises(InputError, match="not this version's"):
        HoleSelector({**weights, "features": FEATURE_NAMES[:-1]})
    with pytest.raises(InputError, match="one hidden layer"):
        HoleSelector({**weights, "output_weight": np.ones(3)})


def test_the_fit_learns_a_rule_and_is_deterministic():
    torch = pytest.importorskip("torch")  # noqa: F841
    from rtstereo.train.hole_selector import accuracy, fit

    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, len(FEATURE_NAMES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 3] * x[:, 4]) < 0.2  # not linear: the hidden layer is needed
    first, second = fit(x, y, hidden=8, steps=150), fit(x, y, hidden=8, steps=150)
    assert accuracy(first, x, y) > 0.95
    np.testing.assert_array_equal(first.hidden_weight, second.hidden_weight)


def test_the_fitting_command_writes_a_selector_the_hybrid_can_use(tmp_path, capsys):
    pytest.importorskip("torch")
    from rtstereo.train.hole_selector import main

    out = tmp_path / "selector.json"
    assert (
        main(
            ["--pairs", "2", "--held-out", "1", "--size", "64x128", "--max-disp", "24", "--hidden", "4", "-o", str(out)]
        )
        == 0
    )
    selector = HoleSelector.load(out)
    assert selector.meta["decisive_pixels"] > 0 and 0.0 <= selector.meta["held_out_accuracy"] <= 1.0
    assert "2/2 pairs" in capsys.readouterr().err
    left, right, confident = plane_and_hole(8)
    fused = choose_in_holes(left, right, confident, np.full(confident.shape, 14.0, np.float32), selector=selector)
    assert np.isfinite(fused).all()
    with pytest.raises(SystemExit):
        main(["--size", "big"])


@pytest.mark.parametrize("network", ["rtnet-guided", "rtnet-v5"])
def test_the_hybrid_fuses_as_the_hole_choice_alone_does(network):
    # An unguided network runs beside SGBM and the hole preparation (on the worker thread); a guided one
    # after SGBM, the preparation after it. The fused map is the same as choose_in_holes gives.
    from rtstereo.runtime.hybrid import confident_matches
    from rtstereo.types import StereoPair

    left, right = shifted_pair()
    right = np.roll(right, 2, axis=0)
    hybrid = rtstereo.load("hybrid", network=network, max_disp=40, check_confident=False)
    assert hybrid.settings["choose_by"] == "learned"  # the default
    fused = hybrid.predict(left, right).disparity_px
    confident = confident_matches(left, right, hybrid.settings, 40.0)
    hints = confident if hybrid.guided else None
    alone = hybrid.network.predict_pair(StereoPair(left, right), hints=hints).disparity_px
    expected = choose_in_holes(left, right, confident, alone, search_px=40.0)
    np.testing.assert_array_equal(fused, expected)


def test_a_preparation_of_another_map_is_refused():
    from rtstereo.runtime.hole_choice import prepare_holes

    left, right, confident = plane_and_hole(8)
    prepared = prepare_holes(left, right, confident)
    network = np.full(confident.shape, 8.0, np.float32)
    with pytest.raises(ValueError, match="another confident map"):
        hole_candidates(left, right, confident.copy(), network, 40.0, prepared=prepared)
    same = hole_candidates(left, right, confident, network, 40.0, prepared=prepared)
    fresh = hole_candidates(left, right, confident, network, 40.0)
    np.testing.assert_array_equal(same.features, fresh.features)


def test_fitting_a_selector_gives_its_size_height_first(tmp_path, capsys):
    # "rendering and matching 1 pairs at 96x64" for --size 64x96, and the same in the file's fit_on
    from rtstereo.train.hole_selector import main

    out = tmp_path / "selector.json"
    argv = ["--pairs", "1", "--held-out", "0", "--size", "64x96", "--max-disp", "16", "--hidden", "2", "-o", str(out)]
    assert main(argv) == 0
    assert "rendering and matching 1 pairs at 64x96 (HxW) ..." in capsys.readouterr().err
    assert json.loads(out.read_text())["fit_on"].startswith("1 rendered pairs at 64x96 (HxW), max_disp 16 px")
