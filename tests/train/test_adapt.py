"""The adaptation loop: configuration, hold-out split, crops, budget, scoring and the networks it takes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from adapt_helpers import write_tiny_checkpoint

from rtstereo.datasets.synthetic import RenderSettings, render_batch
from rtstereo.errors import CheckpointError, InputError, ModelNotFoundError, RtStereoError
from rtstereo.train import adapt_network
from rtstereo.train.adapt import AdaptConfig, Adapter, UserPair, adapt, fit_crop, split_holdout
from rtstereo.train.adapt_network import AdaptableNetwork, load_adaptable, save_adapted
from rtstereo.train.loop import build_network


def _pairs(count: int = 3, height: int = 64, width: int = 128, seed: int = 2) -> list[UserPair]:
    batch = render_batch(count, height, width, seed=seed, max_disp_px=16.0, settings=RenderSettings.geometry_only())
    images = {k: (batch[k].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8) for k in ("left", "right")}
    return [UserPair(f"p{i}", images["left"][i], images["right"][i]) for i in range(count)]


def _adapter(**config) -> Adapter:
    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32})
    defaults = {
        "steps": 2,
        "minutes": None,
        "crop_hw": (64, 96),
        "batch_size": 1,
        "synthetic_batch": 1,
        "synthetic_pool": 2,
    }
    return Adapter(module, spec, settings, AdaptConfig(**{**defaults, **config}))


# ------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"losses": ("photometric", "colour")}, "losses: expected one or more of"),
        ({"losses": ()}, "got none"),
        ({"weights": {"smooth": 1.0}}, "unknown term"),
        ({"weights": {"proxy": -1.0}}, "weights: expected finite weights >= 0"),
        ({"steps": None, "minutes": None}, "give a budget"),
        ({"steps": 0}, "steps: expected >= 1"),
        ({"minutes": 0.0}, "minutes: expected a finite number > 0, got 0.0"),
        ({"minutes": float("inf")}, "minutes: expected a finite number > 0, got inf"),
        ({"batch_size": 0}, "batch_size: expected >= 1"),
        ({"synthetic_batch": -1}, "synthetic_batch: expected >= 0"),
        ({"synthetic_pool": 0}, "synthetic_pool: expected >= 1"),
        ({"holdout": 1.0}, "holdout: expected a fraction"),
        ({"lr": 0.0}, "lr: expected a learning rate > 0"),
        ({"lr": float("inf")}, "lr: expected a learning rate > 0 and finite"),
        ({"max_disp": 0.0}, "max_disp: expected .* > 0 pixels"),
        ({"max_disp": float("nan")}, "max_disp: expected .* > 0 pixels"),
        ({"seed": -1}, r"seed: expected an integer from 0 to 2\^64 - 1, got -1"),
        ({"seed": 1 << 64}, r"seed: expected an integer from 0 to 2\^64 - 1, got 18446744073709551616"),  # traceback
        (
            {"losses": ("photometric",), "weights": {"consistency": 0.1}},
            r"weights: consistency=0.1 weighs a term that is not among the losses \(photometric\): add consistency",
        ),
        ({"synthetic_batch": 0, "weights": {"synthetic": 0.5}}, r"synthetic=0.5 weighs the rendered pairs, but none"),
        # From Python: a string was refused letter by letter ("got p, h, o, t, ..."), a weight "x" with a TypeError
        ({"losses": "photometric"}, r"losses: expected a tuple of term names, .* got str 'photometric'"),
        ({"weights": {"proxy": "0.2"}}, r"weights: expected a number for each term, got proxy='0.2'"),
        ({"weights": {"proxy": True}}, r"weights: expected a number for each term, got proxy=True"),
    ],
)
def test_bad_configurations_are_refused(changes, message):
    with pytest.raises(InputError, match=message):
        AdaptConfig(**changes)


def test_weights_default_per_term():
    config = AdaptConfig(weights={"proxy": 0.5})
    assert config.weight("proxy") == 0.5 and config.weight("photometric") == 1.0


def test_holdout_split_is_deterministic_and_keeps_a_training_pair():
    train, held = split_holdout(10, 0.2, seed=4)
    assert len(held) == 2 and sorted(train + held) == list(range(10))
    assert split_holdout(10, 0.2, seed=4) == (train, held)
    assert split_holdout(3, 0.01, seed=0)[1].__len__() == 1  # at least one held out
    assert split_holdout(2, 0.9, seed=0)[0].__len__() == 1  # at least one trains
    assert split_holdout(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(InputError, match="no pairs"):
        split_holdout(0, 0.1, seed=0)


def test_crop_fits_the_images_and_the_divisor():
    pairs = _pairs(1, 70, 150)
    assert fit_crop((224, 448), pairs, 32) == (64, 128)
    assert fit_crop((40, 100), pairs, 32) == (32, 96)
    with pytest.raises(InputError, match=r"pair small is 20x64 \(HxW\) pixels: .* at least 32x32"):
        fit_crop((224, 448), _pairs(1, 64, 128) + [UserPair("small", *(np.zeros((20, 64, 3), np.uint8),) * 2)], 32)
    with pytest.raises(InputError, match="crop 16x16: the network takes crops of at least 32x32"):
        fit_crop((16, 16), pairs, 32)
    thin = [UserPair("thin", *(np.zeros((20, 900, 3), np.uint8),) * 2)]  # larger than 40x40, but too low
    with pytest.raises(InputError, match="pair thin is 20x900"):
        fit_crop((224, 448), [UserPair("square", *(np.zeros((40, 40, 3), np.uint8),) * 2), *thin], 32)


# ------------------------------------------------------------------------------------------- the loop
def test_adapt_runs_its_steps_changes_weights_but_not_batch_norm_statistics():
    adapter = _adapter(steps=3, log_every=2, holdout=0.3)
    before = {k: v.clone() for k, v in adapter.model.state_dict().items()}
    lines = []
    result = adapt(adapter, _pairs(3), echo=lines.append)
    after = adapter.model.state_dict()
    assert result.steps == 3 and len(result.holdout_names) == 1 and not result.scored_on_training_pairs
    assert set(result.before) == set(result.after) == {"photometric", "lr_disagreement_px", "lr_bad1"}
    assert [r["step"] for r in result.history] == [2, 3]
    assert {"photometric", "smoothness", "proxy", "synthetic", "total"} <= set(result.history[0])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    assert all(torch.equal(before[k], after[k]) for k in before if "running_" in k)
    assert any(line.startswith("step 2 ") for line in lines)
    assert not adapter.model.training


def test_the_steps_read_no_value_from_the_device_between_progress_lines(monkeypatch):
    """Each step read every term with float(): on a GPU a wait for the step's update before the next batch's crops."""
    reads = []
    as_float = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda tensor: reads.append(1) or as_float(tensor))

    def reads_of(steps: int) -> int:
        reads.clear()
        adapt(_adapter(steps=steps, log_every=100), _pairs(2), echo=lambda _line: None)
        return len(reads)

    assert reads_of(2) == reads_of(5)  # scoring and the one progress line, whatever the steps


def test_adapt_stops_when_its_minutes_run_out_and_prints_the_last_short_group():
    ticks = itertools.count(step=20.0)  # every clock reading is 20 s later
    adapter = _adapter(steps=None, minutes=1.0, losses=("photometric", "smoothness"), synthetic_batch=0)
    lines = []
    result = adapt(adapter, _pairs(2), echo=lines.append, clock=lambda: next(ticks))
    assert 1 <= result.steps <= 3
    # The budget ended before the tenth step: that group was left unprinted.
    assert [r["step"] for r in result.history] == [result.steps]
    assert any(line.startswith(f"step {result.steps} ") for line in lines), lines


def test_progress_lines_say_the_steps_of_the_budget_and_the_time_left():
    """They said the step and the seconds so far only: nothing of how long the budget still had to run."""
    ticks = itertools.count(step=1.0)  # every clock reading is 1 s later
    adapter = _adapter(steps=4, minutes=None, log_every=2, losses=("photometric",), synthetic_batch=0)
    lines = []
    adapt(adapter, _pairs(2), echo=lines.append, clock=lambda: next(ticks))
    progress = [line for line in lines if line.startswith("step ")]
    # Step 2 logged at the 3rd reading after the start (two steps' checks, then the log): 2 steps left at 1 s each.
    assert progress[0].startswith("step 2 of 4  3 s, about 3 s left  photometric "), progress
    assert progress[1].startswith("step 4 of 4  "), progress
    assert "left" not in progress[1]


@pytest.mark.parametrize(("holdout", "said"), [(0.1, True), (0.5, False), (0.0, False)])
def test_holding_out_more_pairs_than_the_fraction_asks_is_said(holdout, said):
    """With 2 pairs, --holdout 0.1 held out one, half of them, without a word beyond "scoring 1 held-out pair"."""
    adapter = _adapter(steps=1, holdout=holdout, losses=("photometric",), synthetic_batch=0)
    lines = []
    adapt(adapter, _pairs(2), echo=lines.append)
    note = "holding out 1 of 2 pairs (50 %, not 10 %): at least one pair is scored unseen (--holdout 0 trains on all)"
    assert (note in lines) is said and any(line.startswith("holding out") for line in lines) is said, lines


def test_holding_out_fewer_pairs_than_the_fraction_asks_is_said():
    """--holdout 0.9 of 2 pairs asks for both, and one must train: one was held out without a word."""
    adapter = _adapter(steps=1, holdout=0.9, losses=("photometric",), synthetic_batch=0)
    lines = []
    result = adapt(adapter, _pairs(2), echo=lines.append)
    assert len(result.holdout_names) == 1 and len(result.train_names) == 1
    assert "holding out 1 of 2 pairs (50 %, not 90 %): at least one pair is trained on" in lines, lines


def _non_finite_at(adapter: Adapter, steps: set[int]) -> None:
    """Make the user terms of the given steps (from 1) NaN."""
    user_terms, calls = adapter.user_terms, []

    def terms(batch):
        calls.append(1)
        found = user_terms(batch)
        return {k: v * float("nan") for k, v in found.items()} if len(calls) in steps else found

    adapter.user_terms = terms


def test_steps_with_a_non_finite_loss_are_counted_and_said():
    adapter = _adapter(steps=4, log_every=2, losses=("photometric",), synthetic_batch=0)
    _non_finite_at(adapter, {2})
    lines = []
    result = adapt(adapter, _pairs(2), echo=lines.append)
    assert result.steps == 4 and result.skipped_steps == 1 and result.to_dict()["skipped_steps"] == 1
    steps = [line for line in lines if line.startswith("step ")]
    # The group's means are those of its finite steps: one skipped step made them all nan
    assert steps[0].endswith("(1 of 2 steps skipped: non-finite loss or gradient; the means leave out this line's 1)")
    assert "nan" not in steps[0] and all(np.isfinite(list(record.values())).all() for record in result.history)
    assert steps[1].endswith("(1 of 4 steps skipped: non-finite loss or gradient)")


def test_a_step_with_a_finite_loss_but_non_finite_gradients_is_skipped_not_applied():
    """A uniform crop online gave a finite loss and NaN gradients: one step made every weight NaN."""
    adapter = _adapter(steps=4, log_every=2, losses=("photometric",), synthetic_batch=0)
    user_terms, calls = adapter.user_terms, []

    def nan_gradient_at_the_second_step(batch):
        calls.append(1)
        terms = user_terms(batch)
        if len(calls) == 2:  # sqrt at 0: a value of 0, a gradient of infinity times 0
            terms["photometric"] = terms["photometric"] + torch.sqrt(terms["photometric"] * 0)
        return terms

    adapter.user_terms = nan_gradient_at_the_second_step
    lines = []
    result = adapt(adapter, _pairs(2), echo=lines.append)
    assert result.skipped_steps == 1 and any(
        line.endswith("(1 of 2 steps skipped: non-finite loss or gradient; the means leave out this line's 1)")
        for line in lines
    )
    assert all(torch.isfinite(p).all() for p in adapter.model.parameters())
    assert np.isfinite(result.after["photometric"])


def test_every_step_non_finite_is_an_error():
    adapter = _adapter(steps=50, log_every=3, losses=("photometric",), synthetic_batch=0)
    _non_finite_at(adapter, set(range(1, 51)))
    with pytest.raises(
        RtStereoError, match=r"every step so far \(3\) had a non-finite loss or gradient and changed nothing"
    ):
        adapt(adapter, _pairs(2), echo=lambda _line: None)


def test_one_pair_is_scored_on_itself_and_consistency_runs_the_network_twice():
    adapter = _adapter(steps=1, losses=("consistency",), synthetic_batch=0)
    result = adapt(adapter, _pairs(1), echo=lambda _line: None)
    assert result.scored_on_training_pairs and result.holdout_names == []
    assert "consistency" in result.history[-1]


def test_scores_are_lower_for_a_right_answer():
    """The scoring measures prefer the true disparity: a fake network returning it scores better."""
    pairs = _pairs(1, 64, 128)
    truth = render_batch(1, 64, 128, seed=2, max_disp_px=16.0, settings=RenderSettings.geometry_only())["disparity"]
    adapter = _adapter()
    adapter.predict = lambda left, right: truth
    right_answer = adapter.score(pairs)["photometric"]
    adapter.predict = lambda left, right: truth + 2.0
    assert right_answer < adapter.score(pairs)["photometric"]


# ----------------------------------------------------------------------------------- which network
def test_networks_without_trainable_weights_are_refused(tmp_path):
    with pytest.raises(InputError, match="'sgbm' is a classical method"):
        load_adaptable("sgbm")
    with pytest.raises(InputError, match="'bm' is a classical method"):
        load_adaptable("bm")
    with pytest.raises(InputError, match="exported ONNX file"):
        load_adaptable(str(tmp_path / "m.onnx"))
    with pytest.raises(InputError, match="needs its weights"):
        load_adaptable("rtnet")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        load_adaptable("rtnett")
    with pytest.raises(CheckpointError, match="model file not found: runs/nope/best.pt"):
        load_adaptable("runs/nope/best.pt")  # a path, not a mistyped name


def test_weights_given_as_a_url_are_read_as_predict_and_export_read_them(tmp_path):
    """adapt --weights file:///... (or http) built the network from the fetched file, then read the URL as a path:
    "weights file not found: file:/..."."""
    weights = write_tiny_checkpoint(tmp_path / "tiny.pt")
    network = load_adaptable("rtnet", weights.as_uri(), {"max_disp": 32})
    assert network.spec.name == "rtnet" and network.settings["max_disp"] == 32
    assert network.source == weights.as_uri()  # recorded as given


def test_packaged_network_resolves_to_its_pytorch_state_or_is_refused(monkeypatch):
    if adapt_network.packaged_network_source() is None:
        pytest.skip("needs training/default/state.pt (a source checkout)")
    network = load_adaptable("rtnet-v5")
    assert network.spec.name == "rtnet" and network.settings["full_refinement"]
    assert network.source.endswith("state.pt") and "PyTorch source" in (network.note or "")
    assert network.loss_weights == [0.5, 0.7, 0.85, 1.0]
    hybrid = load_adaptable("default")  # the hybrid: its network (rtnet-guided) is what learns
    assert hybrid.spec.name == "rtnet" and hybrid.settings["guided"]
    assert hybrid.source == load_adaptable("rtnet-guided").source != network.source
    assert "its network is adapted" in hybrid.note and "PyTorch source" in hybrid.note
    monkeypatch.setattr(adapt_network, "packaged_network_source", lambda name="rtnet-v5": None)
    with pytest.raises(InputError, match="ships as ONNX only.*: pass --model PATH/TO/state.pt"):
        load_adaptable("rtnet-v5")
    # the hybrid keeps its SGBM and hints only when its network is given as a setting; --model STATE.pt was offered
    with pytest.raises(InputError, match="ships as ONNX only.*: pass --set network=PATH/TO/training/guided/state.pt$"):
        load_adaptable("hybrid")


def test_adapted_checkpoint_loads_by_itself(tmp_path):
    import rtstereo

    adapter = _adapter(steps=1, synthetic_batch=0)
    pairs = _pairs(1)
    result = adapt(adapter, pairs, echo=lambda _line: None)
    network = AdaptableNetwork(adapter.spec, {"max_disp": 32}, adapter.model, "random", None)
    network.settings = adapter.spec.resolve_settings({"max_disp": 32})
    path = tmp_path / "adapted.pt"
    save_adapted(network, result, adapter.config, path)
    reloaded = load_adaptable(str(path))
    assert reloaded.source == str(path)
    for key, value in adapter.model.state_dict().items():
        torch.testing.assert_close(reloaded.module.state_dict()[key], value)
    disparity = rtstereo.load(str(path)).predict(pairs[0].left, pairs[0].right).disparity_px
    assert disparity.shape == pairs[0].left.shape[:2]


# ------------------------------------------------------------------------------------ a guided network
def _guided_adapter(**config) -> Adapter:
    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32, "guided": True})
    defaults = {"steps": 2, "minutes": None, "crop_hw": (64, 96), "batch_size": 2, "synthetic_batch": 1}
    return Adapter(module, spec, settings, AdaptConfig(**{**defaults, "synthetic_pool": 2, **config}), None, {})


def _record_hints(module: torch.nn.Module) -> list:
    calls = []
    module.register_forward_pre_hook(lambda _module, args: calls.append(args[2] if len(args) > 2 else None))
    return calls


def test_a_guided_network_adapts_and_is_scored_with_the_hints_the_hybrid_gives_it():
    from rtstereo.train.hints import hybrid_hint_settings, runtime_hints

    adapter = _guided_adapter(steps=2, holdout=0.3)
    assert adapter.guided and adapter.hint_settings == hybrid_hint_settings()
    assert not _adapter().guided and _adapter().hint_settings is None
    calls = _record_hints(adapter.model)
    pairs = _pairs(3)
    result = adapt(adapter, pairs, echo=lambda _line: None)
    assert result.steps == 2 and all(hints is not None for hints in calls)
    # before and after: the held-out pair and its mirror, hints of the whole images; then per step the
    # user's crops (hints cropped from their whole pair's) and a rendered batch (training's hints)
    assert len(calls) == 2 * 2 + 2 * 2
    held = pairs[int(result.holdout_names[0][1:])]
    expected = np.nan_to_num(runtime_hints(held.left, held.right, adapter.hint_settings), nan=0.0)
    np.testing.assert_array_equal(calls[0][0, 0, :64, :128].numpy(), expected)
    crops = calls[2]
    assert crops.shape == (2, 1, 64, 96) and float((crops > 0).float().mean()) > 0.2
    whole = [np.nan_to_num(runtime_hints(p.left, p.right, adapter.hint_settings), nan=0.0) for p in pairs]
    for crop in crops[:, 0].numpy():  # each crop's hints are a window of one pair's whole-frame hints
        windows = [w[y : y + 64, x : x + 96] for w in whole for y in range(1) for x in range(128 - 96 + 1)]
        assert any(np.array_equal(crop, window) for window in windows)
    assert float(adapter.model.state_dict()["guidance.to_cost.weight"].abs().max()) > 0  # the hints taught it


def test_online_steps_of_a_guided_network_get_hints_of_their_crop():
    from rtstereo.train.adapt_network import AdaptableNetwork
    from rtstereo.train.hints import hybrid_hint_settings, runtime_hints
    from rtstereo.train.online import OnlineAdapter, OnlineConfig
    from rtstereo.types import StereoPair

    torch.manual_seed(0)
    module, spec, settings = build_network("rtnet", {"max_disp": 32, "guided": True})
    network = AdaptableNetwork(spec, settings, module, "random", None, hint_settings={"uniqueness": 25})
    adapter = OnlineAdapter(network, OnlineConfig(every=1, crop_hw=(64, 96), low_priority=False, worker="thread"))
    assert adapter.adapter.hint_settings == hybrid_hint_settings({"uniqueness": 25})
    calls = _record_hints(module)
    pair = _pairs(1)[0]
    left, right = (np.ascontiguousarray(image[:, 16:112]) for image in (pair.left, pair.right))
    adapter.train_on(left, right, frame=0, frame_width=128)
    expected = runtime_hints(left, right, adapter.adapter.hint_settings, frame_width=128)
    np.testing.assert_array_equal(calls[0][0, 0].numpy(), np.nan_to_num(expected, nan=0.0))
    adapter.step(StereoPair(pair.left, pair.right))  # a whole frame: cropped, then hinted
    assert len(calls) == 2 and calls[1].shape == (1, 1, 64, 96)


def test_default_adapts_its_guided_network_with_the_hybrid_settings_it_is_given():
    if adapt_network.packaged_network_source("rtnet-guided") is None:
        pytest.skip("needs training/guided/state.pt (a source checkout)")
    network = load_adaptable("default", None, {"uniqueness": "25", "three_way": "false"})
    assert network.module.guidance is not None and "rtnet-guided" in network.note
    assert network.hint_settings["uniqueness"] == 25 and network.hint_settings["three_way"] is False
    adapter = Adapter(network.module, network.spec, network.settings, AdaptConfig(steps=1), None, network.hint_settings)
    assert adapter.guided and adapter.hint_settings["uniqueness"] == 25


# ------------------------------------------------------------------------------------- the loss terms
def test_the_total_weighs_each_term_by_its_weight():
    weights = {"photometric": 2.0, "smoothness": 0.5, "synthetic": 0.25}
    adapter = _adapter(steps=1, losses=("photometric", "smoothness"), weights=weights)
    record = adapt(adapter, _pairs(1), echo=lambda _line: None).history[-1]
    assert {"photometric", "smoothness", "synthetic", "total"} <= set(record)
    expected = sum(weight * record[name] for name, weight in weights.items())
    assert record["total"] == pytest.approx(expected, rel=1e-5)
    assert record["synthetic"] > 0 and record["total"] != pytest.approx(sum(record[n] for n in weights), rel=1e-3)


def test_the_user_terms_leave_out_the_pixels_the_prediction_hides_from_the_right_view():
    from rtstereo.train.selfsup import consistency_loss, photometric_loss, right_view_disparity, visible_in_right

    adapter = _adapter(losses=("photometric", "consistency"))
    pair = _pairs(1)[0]
    left, right = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (pair.left, pair.right))
    d = torch.full((1, 64, 128), 3.0)
    d[..., 60:] = 12.0  # a near surface from x = 60 lands at 48: it hides the far x = 52..59 (landing at 49..56)
    adapter.forward_train = lambda a, b, hints=None: [d]
    visible = visible_in_right(d)
    assert int((~visible).sum()) == 64 * 8
    terms = adapter.user_terms({"left": left, "right": right})
    torch.testing.assert_close(terms["photometric"], photometric_loss(left, right, d, mask=visible))
    assert float(terms["photometric"]) != pytest.approx(float(photometric_loss(left, right, d)), rel=1e-3)
    right_d = right_view_disparity(lambda a, b: d, left, right)
    torch.testing.assert_close(terms["consistency"], consistency_loss(d, right_d, mask=visible))
    assert float(terms["consistency"]) != pytest.approx(float(consistency_loss(d, right_d)), rel=1e-3)


def test_the_synthetic_term_by_hand_weighs_the_predictions_and_leaves_out_the_left_band():
    adapter = _adapter()
    gt = torch.full((1, 1, 8), 4.0)  # x < 4 has no match in the right view: left out
    coarse, fine = gt + 2.0, gt + 1.0  # smooth-L1 1.5 and 0.5 on the matchable pixels
    coarse[..., :4], fine[..., :4] = 50.0, 50.0
    adapter.forward_train = lambda a, b, hints=None: [coarse, fine]
    images = torch.zeros(1, 3, 1, 8)
    term = adapter.synthetic_term({"left": images, "right": images, "disparity": gt})
    assert float(term) == pytest.approx(0.5 * 1.5 + 1.0 * 0.5)  # weights 0.5 .. 1.0, coarse to fine


@pytest.mark.parametrize(
    "before, after, worse",
    [
        (2e-5, 3.9e-5, False),  # uniform grey pairs: "0.0000 -> 0.0000 (+95 %)" was called clearly worse
        (0.005, 0.0059, False),  # +18 %, but by less than the floor
        (0.005, 0.0061, True),  # +22 %, and by more than the floor
        (0.02, 0.0221, True),  # above the floor the 10 % rule is as it was
        (0.02, 0.0219, False),
        (0.0, float("nan"), True),
    ],
)
def test_a_photometric_rise_below_the_floor_is_not_clearly_worse(before, after, worse):
    from rtstereo.train.adapt import worse_scores

    found = worse_scores(
        {"photometric": before, "lr_disagreement_px": 0.5}, {"photometric": after, "lr_disagreement_px": 0.5}
    )
    assert bool(found) is worse, found


def test_labelling_threads_are_at_most_one_per_core_this_process_may_use(monkeypatch):
    """It took one per core of the machine (os.cpu_count) whatever the process was given, and --threads beyond the
    cores as many threads, each labelling a whole pair at once."""
    import os

    from rtstereo.train import adapt as adapt_module

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.delenv("RTSTEREO_THREADS", raising=False)
    assert adapt_module.labelling_threads() == 2
    monkeypatch.setenv("RTSTEREO_THREADS", "8")
    assert adapt_module.labelling_threads() == 2
    monkeypatch.setenv("RTSTEREO_THREADS", "1")
    assert adapt_module.labelling_threads() == 1


def test_a_stop_request_leaves_an_ignored_ctrl_c_ignored():
    """`rtstereo adapt ... &` in a script starts with SIGINT ignored; the Ctrl-C that stopped the script also asked
    the adaptation to stop (and a second one ended it): StopRequest took the ignored signal over."""
    import signal

    from rtstereo.train.adapt import StopRequest

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as stop:
            signal.raise_signal(signal.SIGINT)
        assert not stop.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
