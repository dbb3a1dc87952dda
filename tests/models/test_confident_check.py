"""The hybrid's second look at SGBM's confident pixels: the candidates, their measures, the selector,
its fit and the setting."""

from __future__ import annotations

import numpy as np
import pytest

import rtstereo
from rtstereo.errors import InputError
from rtstereo.runtime.confident_check import (
    CHECK_FEATURE_NAMES,
    DISAGREE_PX,
    NETWORK_LOGIT_MARGIN,
    ConfidentSelector,
    check_candidates,
    check_confident,
    packaged_check,
    prepare_check,
)
from rtstereo.runtime.hole_choice import FEATURE_NAMES, HoleSelector, learned_fusion, prepare_holes

from .conftest import plane_and_hole, random_selector_weights, shifted_pair


def wrong_patch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A textured plane at 8 px whose confident map says 13 px in a 10x20 patch; the network says 8
    everywhere but one column (nan) and a band of 8.6 px (within the 1 px SGBM and the network may differ)."""
    left, right, confident = plane_and_hole(8)
    confident[40:50, 20:40] = 13.0
    network = np.full(confident.shape, 8.0, np.float32)
    network[:, 100] = np.nan
    network[10:12] = 8.6
    return left, right, confident, network


def selector_by(name: str, weight: float, bias: float = 0.0) -> ConfidentSelector:
    """A one-unit selector whose log-odds grow with one measure (nearly linear: tanh of a small input)."""
    hidden = np.zeros((1, len(CHECK_FEATURE_NAMES)), np.float32)
    hidden[0, CHECK_FEATURE_NAMES.index(name)] = 0.01
    return ConfidentSelector(
        {
            "features": CHECK_FEATURE_NAMES,
            "hidden_weight": hidden,
            "hidden_bias": np.zeros(1),
            "output_weight": np.array([weight / 0.01]),
            "output_bias": bias,
        }
    )


# -------------------------------------------------------------------------------------- candidates
def test_the_candidates_are_the_confident_pixels_where_the_network_differs_by_more_than_a_pixel():
    left, right, confident, network = wrong_patch()
    prepared = prepare_check(right, prepare_holes(left, right, confident))
    candidates = check_candidates(network, prepared, 64.0)
    with np.errstate(invalid="ignore"):
        expected = np.flatnonzero(np.isfinite(confident) & (np.abs(confident - network) > DISAGREE_PX))
    np.testing.assert_array_equal(candidates.points, expected)  # row-major; not the 8.6 band, not the nan column
    assert len(expected) == 10 * 20  # the wrong patch, nothing else
    assert candidates.features.shape == (len(expected), len(CHECK_FEATURE_NAMES))
    assert np.isfinite(candidates.features).all()
    np.testing.assert_array_equal(candidates.sgbm, 13.0)
    np.testing.assert_array_equal(candidates.network, 8.0)
    difference = candidates.features[:, CHECK_FEATURE_NAMES.index("sgbm_minus_network")]
    np.testing.assert_allclose(difference, 5.0 / 8.0)
    # The true disparity (the network's) matches the views better than the patch's: every cost says so.
    for name in ("cost_contrast", "grey_contrast", "derivative_contrast", "zero_mean_contrast"):
        assert (candidates.features[:, CHECK_FEATURE_NAMES.index(name)] > 0).mean() > 0.9, name


def test_the_hole_choices_maps_give_the_same_measures_as_fresh_ones():
    left, right, confident, network = wrong_patch()
    holes = prepare_holes(left, right, confident)
    prepared = prepare_check(right, holes)
    _, candidates = learned_fusion(left, right, confident, network, 64.0, prepared=holes)
    reused = check_candidates(network, prepared, 64.0, maps=candidates.maps)
    fresh = check_candidates(network, prepared, 64.0)
    np.testing.assert_array_equal(reused.features, fresh.features)


# ---------------------------------------------------------------------------------------- the check
def test_the_network_replaces_sgbm_only_where_the_selector_is_sure_enough():
    left, right, confident, network = wrong_patch()
    fused = np.where(np.isfinite(confident), confident, network).astype(np.float32)
    prepared = prepare_check(right, prepare_holes(left, right, confident))
    # Log-odds = 10 x cost contrast: the patch (contrast near 1) clears the margin, nothing else is a candidate.
    checked = check_confident(fused, network, prepared, 64.0, selector=selector_by("cost_contrast", 10.0))
    np.testing.assert_array_equal(checked[40:50, 20:40], 8.0)
    outside = np.ones(fused.shape, bool)
    outside[40:50, 20:40] = False
    np.testing.assert_array_equal(checked[outside], fused[outside])
    # Log-odds just under the margin: SGBM stays.
    unsure = selector_by("cost_contrast", 0.0, bias=NETWORK_LOGIT_MARGIN - 0.01)
    np.testing.assert_array_equal(check_confident(fused, network, prepared, 64.0, selector=unsure), fused)


def test_the_packaged_check_records_its_fit_and_beats_sgbm_and_the_cost_rule_on_held_out_scenes():
    selector = packaged_check()
    assert selector.hidden_weight.shape[1] == len(CHECK_FEATURE_NAMES)
    meta = selector.meta
    assert meta["decisive_pixels"] > 100_000 and "rendered pairs" in meta["fit_on"]
    always_sgbm = 1.0 - meta["network_right_share"]
    assert meta["held_out_accuracy"] > max(meta["held_out_cost_rule_accuracy"], always_sgbm) + 0.05


def test_a_hole_selector_file_is_not_taken_for_the_check(tmp_path):
    HoleSelector(random_selector_weights(FEATURE_NAMES)).save(tmp_path / "holes.json")
    with pytest.raises(InputError, match="confident check: its features"):
        ConfidentSelector.load(tmp_path / "holes.json")


# ------------------------------------------------------------------------------------ in the hybrid
@pytest.mark.parametrize(
    ("hole_choice", "network"), [(True, "rtnet-guided"), (False, "rtnet-guided"), (True, "rtnet-v5")]
)
def test_the_setting_changes_only_confident_pixels_where_the_network_disagrees(hole_choice, network):
    from rtstereo.runtime.hybrid import confident_matches
    from rtstereo.types import StereoPair

    left, right = shifted_pair()
    # A poorer match, the right view darker: SGBM's confident values and the network disagree here and there
    right = (np.roll(right, 3, axis=0) * 0.6).astype(np.uint8)
    settings = dict(max_disp=40, hole_choice=hole_choice, network=network)
    plain = rtstereo.load("hybrid", **settings, check_confident=False)
    checked = rtstereo.load("hybrid", **settings, check_confident=True)
    before, after = plain.predict(left, right), checked.predict(left, right)
    assert after.settings["check_confident"] is True and before.settings["check_confident"] is False
    confident = confident_matches(left, right, plain.settings, 40.0)
    hints = confident if plain.guided else None  # an unguided network runs beside SGBM and the preparation
    network = plain.network.predict_pair(StereoPair(left, right), hints=hints).disparity_px
    changed = before.disparity_px != after.disparity_px
    assert changed.any()
    assert np.isfinite(confident[changed]).all() and (np.abs(confident - network)[changed] > DISAGREE_PX).all()
    np.testing.assert_array_equal(after.disparity_px[changed], network[changed])


def test_the_fitting_command_writes_a_check_the_hybrid_can_use(tmp_path, capsys):
    pytest.importorskip("torch")
    from rtstereo.train.hole_selector import main

    out = tmp_path / "check.json"
    arguments = ["--which", "confident", "--pairs", "2", "--held-out", "1", "--size", "64x128", "--max-disp", "24"]
    assert main([*arguments, "--hidden", "4", "-o", str(out)]) == 0
    selector = ConfidentSelector.load(out)
    assert selector.meta["decisive_pixels"] > 0 and 0.0 <= selector.meta["network_right_share"] <= 1.0
    assert 0.0 <= selector.meta["held_out_network_right_share"] <= 1.0
    assert "2/2 pairs" in capsys.readouterr().err
    left, right, confident, network = wrong_patch()
    prepared = prepare_check(right, prepare_holes(left, right, confident))
    checked = check_confident(confident, network, prepared, 64.0, selector=selector)
    assert checked.shape == confident.shape and np.isnan(checked[:, 60:80]).all()  # holes are not its business
    with pytest.raises(SystemExit):
        main(["--which", "both"])
