"""Cost volumes built without Python loops over disparities: same values, operation counts fixed.

The reference functions here are the plain per-disparity loops the networks used before; the
batched volumes must equal them, and the forward's operation count (``count_operations``) must not
grow with the disparity range.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from rtstereo.models import get_spec, list_models  # noqa: E402
from rtstereo.models.anynet import AnyNet, full_cost_volume  # noqa: E402
from rtstereo.models.crestereo_parts import local_correlation  # noqa: E402
from rtstereo.models.gwcnet import build_concat_volume, build_gwc_volume, groupwise_correlation  # noqa: E402
from rtstereo.models.registry import import_object  # noqa: E402
from rtstereo.models.volumes import banded_correlation, matched_columns, shifted_right  # noqa: E402
from rtstereo.profiling import count_operations  # noqa: E402

# (max_disp at which to count, a larger one); rtnet needs multiples of 32.
MAX_DISP_PAIRS = {"gwcnet-g": (48, 192), "gwcnet-gc": (48, 192), "rtnet": (64, 192)}
# Operations may differ by a handful (e.g. a branch for an edge case), never by the disparity count.
COUNT_SLACK = 4
NETWORKS_WITH_MAX_DISP = [
    name for name in list_models() if get_spec(name).kind == "network" and "max_disp" in get_spec(name).defaults
]


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


def _shift(x, d):
    """``x[..., col - d]``, zero where ``col < d`` (also when ``d`` exceeds the width)."""
    if d == 0:
        return x
    width = x.shape[-1]
    if d >= width:
        return torch.zeros_like(x)
    return F.pad(x[..., : width - d], (d, 0))


def _reference_gwc(left, right, num_disp, num_groups):
    levels = [groupwise_correlation(left, _shift(right, d), num_groups) for d in range(num_disp)]
    mask = matched_columns(left.shape[-1], num_disp, left)  # the left side is 0 where x < d as well
    return torch.stack(levels, dim=2) * mask.view(1, 1, num_disp, 1, -1)


def _reference_concat(left, right, num_disp):
    columns = torch.arange(left.shape[-1])
    levels = [torch.cat((left * (columns >= d), _shift(right, d)), dim=1) for d in range(num_disp)]
    return torch.stack(levels, dim=2)


def _reference_l1(left, right, num_disp):
    return torch.stack([(left - _shift(right, d)).abs().sum(1) for d in range(num_disp)], dim=1)


def _reference_local(left, right, small_patch):
    n, c, h, w = left.shape
    pad_y, pad_x = (1, 1) if small_patch else (0, 4)
    padded = F.pad(right, (pad_x, pad_x, pad_y, pad_y), mode="replicate")
    corrs = []
    for dy in range(2 * pad_y + 1):
        for dx in range(2 * pad_x + 1):
            product = left * padded[:, :, dy : dy + h, dx : dx + w]
            corrs.append(product.reshape(n, 4, c // 4, h, w).mean(2))
    return torch.stack(corrs, dim=2).reshape(n, 36, h, w)


# --- feature: the batched volumes equal the per-disparity loops ----------------------------------------


def test_shifted_right_matches_slicing():
    right = torch.randn(2, 3, 4, 9)
    shifted = shifted_right(right, 12)  # more levels than columns: the extra ones are all zero
    assert shifted.shape == (2, 3, 4, 12, 9)
    for d in range(12):
        torch.testing.assert_close(shifted[:, :, :, d], _shift(right, d), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("channels", "groups", "width", "num_disp"),
    [(320, 40, 40, 12), (320, 40, 37, 12), (80, 40, 13, 48), (16, 2, 9, 4), (12, 3, 5, 5)],
)
def test_gwc_volume_matches_the_loop(channels, groups, width, num_disp):
    left, right = torch.randn(2, channels, 3, width), torch.randn(2, channels, 3, width)
    volume = build_gwc_volume(left, right, num_disp, groups)
    assert volume.shape == (2, groups, num_disp, 3, width)
    torch.testing.assert_close(volume, _reference_gwc(left, right, num_disp, groups), rtol=0, atol=1e-5)


def test_gwc_and_concat_volume_gradients_match_the_loop():
    """Training backpropagates through the volumes: the gradients must agree too."""
    left = torch.randn(1, 24, 3, 11, requires_grad=True)
    right = torch.randn(1, 24, 3, 11, requires_grad=True)
    weights = torch.randn(1, 8 + 48, 6, 3, 11)

    def gradients(gwc, concat):
        volume = torch.cat((gwc(left, right, 6, 8), concat(left, right, 6)), dim=1)
        return torch.autograd.grad((volume * weights).sum(), (left, right))

    batched = gradients(build_gwc_volume, build_concat_volume)
    looped = gradients(_reference_gwc, _reference_concat)
    for ours, theirs in zip(batched, looped, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_banded_correlation_is_zero_without_a_match():
    features = torch.rand(1, 8, 2, 6) + 0.5
    volume = banded_correlation(features, features, 10, 2)
    columns = torch.arange(6).view(1, 6)
    levels = torch.arange(10).view(10, 1)
    unmatched = (columns < levels).view(1, 1, 10, 1, 6).expand_as(volume)
    assert torch.all(volume[unmatched] == 0)
    assert torch.all(volume[~unmatched] > 0)


@pytest.mark.parametrize(("width", "num_disp"), [(20, 6), (5, 8)])
def test_concat_volume_matches_the_loop(width, num_disp):
    left, right = torch.randn(2, 12, 3, width), torch.randn(2, 12, 3, width)
    volume = build_concat_volume(left, right, num_disp)
    assert volume.shape == (2, 24, num_disp, 3, width)
    torch.testing.assert_close(volume, _reference_concat(left, right, num_disp), rtol=0, atol=0)


@pytest.mark.parametrize(("width", "num_disp"), [(16, 12), (8, 12)])
def test_anynet_l1_volume_matches_the_loop(width, num_disp):
    left, right = torch.randn(2, 8, 4, width), torch.randn(2, 8, 4, width)
    torch.testing.assert_close(
        full_cost_volume(left, right, num_disp), _reference_l1(left, right, num_disp), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("small_patch", [False, True])
def test_crestereo_local_correlation_matches_the_loop(small_patch):
    left, right = torch.randn(2, 256, 5, 11), torch.randn(2, 256, 5, 11)
    torch.testing.assert_close(
        local_correlation(left, right, small_patch), _reference_local(left, right, small_patch), rtol=0, atol=1e-6
    )


# --- cardinality: operation counts do not grow with the disparity range -----------------------------------


def _forward_count(module, height=64, width=128):
    left, right = torch.randn(1, 3, height, width), torch.randn(1, 3, height, width)
    module.eval()
    with torch.no_grad():
        return count_operations(lambda: module(left, right))


def test_every_network_with_a_max_disp_is_covered():
    assert set(NETWORKS_WITH_MAX_DISP) <= set(MAX_DISP_PAIRS), "add the new network to MAX_DISP_PAIRS"


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS_WITH_MAX_DISP)
def test_forward_operation_count_does_not_grow_with_max_disp(name):
    spec = get_spec(name)
    counts = []
    for max_disp in MAX_DISP_PAIRS[name]:
        torch.manual_seed(0)
        module = import_object(spec.builder)(spec.resolve_settings({"max_disp": max_disp}))
        counts.append(_forward_count(module))
    small, large = counts
    assert abs(large.total - small.total) <= COUNT_SLACK, (small.total, large.total)
    assert abs(large.launched - small.launched) <= COUNT_SLACK, (small.launched, large.launched)


def test_anynet_operation_count_does_not_grow_with_its_first_stage_levels():
    small, large = (_forward_count(AnyNet(max_disp_list=(levels, 3, 3))) for levels in (12, 48))
    assert large.total == small.total and large.launched == small.launched


@pytest.mark.parametrize(
    "build",
    [
        lambda d: build_gwc_volume(torch.randn(1, 320, 4, 40), torch.randn(1, 320, 4, 40), d, 40),
        lambda d: build_concat_volume(torch.randn(1, 12, 4, 40), torch.randn(1, 12, 4, 40), d),
        lambda d: full_cost_volume(torch.randn(1, 8, 4, 40), torch.randn(1, 8, 4, 40), d),
    ],
    ids=["gwc", "concat", "anynet-l1"],
)
def test_volume_operation_count_is_the_same_for_12_and_48_levels(build):
    small, large = (count_operations(lambda d=d: build(d)) for d in (12, 48))
    assert small.by_name == large.by_name
