"""Exact layer geometry for the synthetic stereo generator: regions, disparities, inverse maps and
z-buffers.

A layer's points are named by their left-view position ``(xs, y)`` (surface coordinates). The left view
at pixel ``x`` shows surface point ``xs = x``; the right view at ``xr`` shows the point with
``xs - d(xs, y) = xr``. With the quadratic disparity of a layer this is a quadratic equation in
``xs``, solved in closed form on the branch where ``1 - dd/dx > 0`` (the only one inside the layer's
box, see :mod:`.synthetic_scene`). Visibility is a z-buffer on disparity: the nearest surface, the one
with the largest disparity, wins.

The two background layers (wall, ground) cover everything and are evaluated densely. Objects are
evaluated only on (object, tile) pairs whose boxes meet, so the cost grows with the area the objects
cover rather than with ``objects x pixels``.
"""

from __future__ import annotations

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .synthetic_table import Rows, Table

TILE = 8  # px; smaller tiles waste less work on layer boxes, larger ones cut per-pair bookkeeping
NUM_BACKGROUND = 2  # layers 0 (wall) and 1 (ground) cover the frame
KEY_LAYERS = 64  # layers per scene that the depth keys can tell apart
KEY_OFFSET = 256.0  # px added to disparities before their float bits serve as depth keys
NO_HIT = 0  # below the key of any surface
# The layer columns read at every point by layer_disparity, and by surface_x in the right view.
DISPARITY_COLUMNS = ("cx", "cy", "d_c", "d_a", "d_b", "d_qx", "d_qy")
RIGHT_VIEW_COLUMNS = ("cx", "cy", "d_c", "d_b", "d_qy", "d_inv_1ma", "curved_x")
# The layer columns that layer_covers reads at every point.
REGION_COLUMNS = ("cx", "cy", "u_x", "u_y", "v_x", "v_y", "bend_uv", "power", "wobbly", "has_cuts", "has_holes")
# The layer columns the culling of (object, tile) pairs reads, in each view.
_LEFT_TILE_TEST = (
    *("cx", "cy", "u_x", "u_y", "v_x", "v_y", "bend_uv", "power", "obb_u", "has_holes"),
    *("cut0_nx", "cut0_ny", "cut0_offset", "cut1_nx", "cut1_ny", "cut1_offset"),
)
TILE_TEST_COLUMNS = {
    "left": _LEFT_TILE_TEST,
    "right": (*_LEFT_TILE_TEST, "d_b", "d_qy", "d_c", "d_inv_1ma", "curved_x", "d_min", "d_max"),
}
# A tile whose farthest point lies at most at this superellipse level is inside the region at every
# pixel (1 % below the edge: far more than the rounding of the per-pixel test).
INTERIOR_LEVEL = 0.99
INTERIOR_MARGIN = 1e-3  # the same for the cuts, in units of the region's frame (where its radius is 1)


def layer_disparity(p: Rows | Table, xs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Disparity (px) of the layer surface at surface coordinates ``(xs, y)``."""
    if isinstance(p, Rows):
        p.prefetch(*DISPARITY_COLUMNS)
    dx, dy = xs - p["cx"], y - p["cy"]
    return p["d_c"] + dx * (p["d_a"] + p["d_qx"] * dx) + dy * (p["d_b"] + p["d_qy"] * dy)


def surface_x(
    p: Rows | Table, qx: torch.Tensor, y: torch.Tensor, view: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Surface x seen at view position ``(qx, y)``.

    The left view sees ``xs = qx``. The right view solves ``xs - d(xs, y) = qx``:
    ``-qx t^2 + (1 - a) t + c0 = 0`` with ``t = xs - cx``. Planar layers (``qx = 0``, most of them) take
    the linear solution ``-c0 / (1 - a)`` everywhere; the rows of curved layers are then solved again on
    the rising branch, in the cancellation-free form ``-2 c0 / (B + sqrt(B^2 - 4 A c0))``.

    Args:
        p: one row per point, or per block of points (columns ``(N, 1, ...)`` against ``(N, ...)``).
        qx, y: view positions.
        view: ``"left"`` or ``"right"``.

    Returns:
        ``(xs, found)``; ``found`` is False where the surface never reaches ``qx``, or None in the left view.
    """
    if view == "left":
        return qx, None
    if isinstance(p, Rows):
        p.prefetch(*RIGHT_VIEW_COLUMNS)
    dy = y - p["cy"]
    offset = qx + (p["d_c"] - p["cx"] + dy * (p["d_b"] + p["d_qy"] * dy))  # = -c0
    xs = torch.addcmul(p["cx"], offset, p["d_inv_1ma"])
    shape, rows = xs.shape, len(p)
    found = torch.ones(shape, dtype=torch.bool, device=xs.device)
    curved = _rows_with(p, "curved_x")
    q = p.subset(curved).prefetch("d_a", "d_qx", "cx")
    offset = _by_row(offset.expand(shape), rows).index_select(0, curved)
    b_coef = 1.0 - q.column("d_a")  # >= 0.4 (MAX_X_SLOPE)
    discriminant = b_coef * b_coef - 4.0 * q.column("d_qx") * offset
    t = 2.0 * offset / (b_coef + torch.sqrt(discriminant.clamp(min=0.0)))
    _by_row(xs, rows).index_copy_(0, curved, q.column("cx") + t)
    _by_row(found, rows).index_copy_(0, curved, discriminant >= 0)
    return xs, found


def _by_row(points: torch.Tensor, rows: int) -> torch.Tensor:
    """``points`` as ``(rows, points per row)`` (a view where the layout allows; any shape when empty)."""
    return points.reshape(rows, points.numel() // rows if rows else 1)


def _rows_with(p: Rows, name: str) -> torch.Tensor:
    """Indices of the rows of ``p`` whose layer has the flag ``name`` set (possibly none)."""
    return (p[name].reshape(-1) > 0).nonzero().squeeze(1)


POWERS = (1.0, 2.0, 4.0, 8.0)  # the superellipse powers a layer can draw


def power_groups(power: torch.Tensor, last: torch.Tensor | None = None) -> tuple[torch.Tensor, list[int]]:
    """An order of rows that sorts them by superellipse power, and the number of rows of each power.

    Args:
        power: ``(N,)`` powers, each one of :data:`POWERS`.
        last: ``(N,)`` bool, rows to put after all the others (themselves sorted by power), or None.

    Returns:
        ``(order, counts)``: ``power[order]`` is sorted (first the rows not ``last``, then the others);
        ``counts[i]`` rows have power ``POWERS[i]`` (and, with ``last``, ``counts[4 + i]`` rows of the
        last ones).
    """
    code = (power >= 2).long() + (power >= 4).long() + (power >= 8).long()
    if last is not None:
        code = code.add_(last.long(), alpha=len(POWERS))
    groups = len(POWERS) * (1 if last is None else 2)
    return torch.argsort(code, stable=True), torch.bincount(code, minlength=groups).tolist()


def _superellipse_level(
    power: torch.Tensor, u: torch.Tensor, v: torch.Tensor, groups: list[int] | None = None
) -> torch.Tensor:
    """``|u|^p + |v|^p`` for per-row powers ``p`` in {1, 2, 4, 8}, by repeated squaring.

    With ``groups`` (row counts of each power, rows sorted by power, see :func:`power_groups`) each
    run of rows computes its own power only, instead of every power at every point.
    """
    if groups is None:
        uu, vv = u * u, v * v
        uu2, vv2 = uu * uu, vv * vv
        level = torch.where(power >= 8, uu2 * uu2 + vv2 * vv2, uu2 + vv2)
        level = torch.where(power == 2, uu + vv, level)
        return torch.where(power == 1, u.abs() + v.abs(), level)
    level, start = torch.empty(torch.broadcast_shapes(u.shape, v.shape), device=u.device), 0
    for squarings, count in enumerate(groups):
        uu, vv = u[start : start + count], v[start : start + count]
        if squarings == 0:
            uu, vv = uu.abs(), vv.abs()
        else:  # squared in place after the first product: no temporary per squaring
            uu, vv = uu * uu, vv * vv
            for _ in range(squarings - 1):
                uu, vv = uu.mul_(uu), vv.mul_(vv)
        torch.add(uu, vv, out=level[start : start + count])
        start += count
    return level


def layer_covers(
    p: Rows, xs: torch.Tensor, y: torch.Tensor, groups: list[int] | None = None, backgrounds: bool = True
) -> torch.Tensor:
    """Whether surface points ``(xs, y)`` belong to their layer's region (bool, broadcast shape).

    An object's region is a superellipse ``|u|^p + |v|^p <= 1`` in its rotated, scaled and bent frame
    ``(u, v)``; wobbly outlines, straight cuts and lattices of holes are evaluated only on the rows
    whose layer has them (the same operations run whatever their number, possibly none). The
    background layers cover everything.

    Args:
        p: one row per point, or per block of points (columns ``(N, 1, ...)`` against points
            ``(N, ...)``).
        xs, y: surface coordinates of the points.
        groups: rows sorted by power, with these counts (see :func:`power_groups`); None if unsorted.
        backgrounds: whether some rows may be background layers (False: objects only, whose regions
            are tested point by point).
    """
    p.prefetch(*REGION_COLUMNS, *(("full",) if backgrounds else ()))
    dx, dy = xs - p["cx"], y - p["cy"]
    u = p["u_x"] * dx + p["u_y"] * dy
    v = p["v_x"] * dx + p["v_y"] * dy
    shape = torch.broadcast_shapes(u.shape, v.shape)
    # Points as (rows, points per row): the extras below select whole rows, without per-point indices.
    rows = len(p)
    # (v is a new tensor or a copy either way: the bend below may write into it.)
    u, v = _by_row(u.expand(shape), rows), _by_row(v.expand(shape), rows)

    bent = (p["bend_uv"].reshape(-1) != 0).nonzero().squeeze(1)  # wires
    bent_u = u.index_select(0, bent)
    v.index_copy_(0, bent, v.index_select(0, bent) - p.subset(bent).column("bend_uv") * bent_u * bent_u)
    level = _superellipse_level(p["power"].reshape(rows, 1), u, v, groups)
    inside = level <= 1.0

    # Low harmonics of the polar angle scale the level: a wobbly outline, no trigonometry needed.
    wobbly = _rows_with(p, "wobbly")
    q = p.subset(wobbly).prefetch("wobble2_c", "wobble2_s", "wobble3_c", "wobble3_s")
    su, sv = u.index_select(0, wobbly), v.index_select(0, wobbly)
    uu, vv = su * su, sv * sv
    r2 = (uu + vv).clamp(min=1e-12)
    cos2, sin2 = (uu - vv) / r2, 2 * su * sv / r2
    r3 = r2 * r2.sqrt()
    cos3, sin3 = su * (uu - 3 * vv) / r3, sv * (3 * uu - vv) / r3
    wobble = q.column("wobble2_c") * cos2 + q.column("wobble2_s") * sin2
    wobble = wobble + q.column("wobble3_c") * cos3 + q.column("wobble3_s") * sin3
    inside.index_copy_(0, wobbly, level.index_select(0, wobbly) * (1.0 + wobble) <= 1.0)

    cut = _rows_with(p, "has_cuts")
    q = p.subset(cut).prefetch("cut0_nx", "cut0_ny", "cut0_offset", "cut1_nx", "cut1_ny", "cut1_offset")
    su, sv = u.index_select(0, cut), v.index_select(0, cut)
    keep = (q.column("cut0_nx") * su + q.column("cut0_ny") * sv <= q.column("cut0_offset")) & (
        q.column("cut1_nx") * su + q.column("cut1_ny") * sv <= q.column("cut1_offset")
    )
    inside.index_copy_(0, cut, inside.index_select(0, cut) & keep)

    holed = _rows_with(p, "has_holes")
    q = p.subset(holed).prefetch(
        *("hole_freq_u", "hole_phase_u", "hole_duty_u", "hole_freq_v", "hole_phase_v", "hole_duty_v")
    )
    su, sv = u.index_select(0, holed), v.index_select(0, holed)
    hole_u = torch.frac(su * q.column("hole_freq_u") + q.column("hole_phase_u") + 100.0) > q.column("hole_duty_u")
    hole_v = torch.frac(sv * q.column("hole_freq_v") + q.column("hole_phase_v") + 100.0) > q.column("hole_duty_v")
    inside.index_copy_(0, holed, inside.index_select(0, holed) & ~(hole_u & hole_v))

    inside = inside.reshape(shape)
    return inside | (p["full"] > 0) if backgrounds else inside


def layer_at(layers: Table, flat_layer: torch.Tensor, qx: torch.Tensor, y: torch.Tensor, view: str) -> torch.Tensor:
    """Disparity of given layers at given view positions, ``-inf`` where the layer is not there.

    Args:
        layers: table ``(B, K, C)``.
        flat_layer: ``b * K + k`` for each point ``(N,)``.
        qx, y: view position of each point ``(N,)``.
        view: ``"left"`` or ``"right"``.
    """
    p = layers.rows(flat_layer)
    xs, found = surface_x(p, qx, y, view)
    hit = layer_covers(p, xs, y)
    if found is not None:
        hit &= found
    return torch.where(hit, layer_disparity(p, xs, y), float("-inf"))


def _background_key(layers: Table, height: int, width: int, view: str) -> torch.Tensor:
    """Depth keys of the nearer of the wall and ground planes over the ``(B, H, W)`` grid.

    Both are planar with ``d = g(y) + a (xs - cx)``; in the right view ``xs - d = x`` gives
    ``d = (g(y) + a (x - cx)) / (1 - a)``. Either way a row term plus a column term.
    """
    device = layers.data.device
    x = torch.arange(width, device=device, dtype=torch.float32)[None, None, :]
    y = torch.arange(height, device=device, dtype=torch.float32)[None, :, None]
    best = None
    for k in range(NUM_BACKGROUND):
        p = Table(layers.names, layers.data[:, k, None, None, :])
        dy = y - p["cy"]
        row = p["d_c"] + dy * (p["d_b"] + p["d_qy"] * dy)
        column = p["d_a"] * (x - p["cx"])
        if view == "right":
            row, column = row * p["d_inv_1ma"], column * p["d_inv_1ma"]
        key = _depth_key(row + column, k)
        if k > 0:  # the wall (layer 0) is in every scene, the ground plane not: NO_HIT (0) where absent
            key = key.mul_(p["active"] > 0)
        best = key if best is None else torch.maximum(best, key, out=best)
    return best


def _object_tiles(
    layers: Table, tiles_y: int, tiles_x: int, tile: int, view: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (item, object, tile row, tile column) that may meet, as four ``(N,)`` long index tensors
    (in row-major order; objects counted from 0, without the background layers), and whether the
    object surely covers every pixel centre of the tile (``(N,)`` bool; a conservative test).

    A tile is kept when it meets the object's axis-aligned box and when the box that bounds its
    surface points in the region frame ``(u, v)`` may reach the region: the superellipse level of the
    box's point nearest to the centre is at most the level any wobble allows (bends widen the box by
    their sag over it). In the right view a tile sees the surface points ``xs`` of ``xs - d = x``:
    for layers planar along x they are bounded tile by tile, for curved ones by the layer's whole
    disparity range. Every test is conservative: a tile whose pixels meet the object is never dropped.
    The box test runs on the whole ``(B, K - 2, Ty, Tx)`` grid; the region test, a few times its cost,
    only on the tiles that meet a box (a small part of the grid).
    """
    device = layers.data.device
    objects = Table(layers.names, layers.data[:, NUM_BACKGROUND:, None, None, :])
    half = (tile - 1) / 2.0
    centre_x = (torch.arange(tiles_x, device=device, dtype=torch.float32) * tile + half)[None, None, None, :]
    centre_y = (torch.arange(tiles_y, device=device, dtype=torch.float32) * tile + half)[None, None, :, None]
    centre_x, half_x = _tile_x_bounds(objects, centre_x, centre_y, half, view)
    meets_x = (objects["box_x0"] <= centre_x + half_x) & (objects["box_x1"] >= centre_x - half_x)
    meets = meets_x & (objects["box_y0"] <= centre_y + half) & (objects["box_y1"] >= centre_y - half)
    b, k, ty, tx = (meets & (objects["active"] > 0)).nonzero(as_tuple=True)

    # The same quantities at the tiles that meet a box, one per tile.
    rows = Table(layers.names, layers.data[:, NUM_BACKGROUND:].reshape(-1, layers.data.shape[-1]))
    p = rows.rows(b * objects.data.shape[1] + k).prefetch(*TILE_TEST_COLUMNS[view])
    centre_x = tx.to(torch.float32) * tile + half
    centre_y = ty.to(torch.float32) * tile + half
    centre_x, half_x = _tile_x_bounds(p, centre_x, centre_y, half, view)
    dx, dy = centre_x - p["cx"], centre_y - p["cy"]
    u = p["u_x"] * dx + p["u_y"] * dy
    v = p["v_x"] * dx + p["v_y"] * dy
    half_u = half_x * p["u_x"].abs() + half * p["u_y"].abs()
    half_v = half_x * p["v_x"].abs() + half * p["v_y"].abs()
    bend = p["bend_uv"]
    v = v - bend * u * u  # the bent frame: v - bend u^2 moves by at most |bend| (2 |u| hu + hu^2) over the box
    half_v = half_v + bend.abs() * (2 * u.abs() * half_u + half_u * half_u)
    nearest_u, nearest_v = (u.abs() - half_u).clamp(min=0.0), (v.abs() - half_v).clamp(min=0.0)
    # A wobbly outline reaches level obb_u = 1 / (1 - wobble amplitudes); a small margin for rounding.
    reachable = _superellipse_level(p["power"], nearest_u, nearest_v) <= p["obb_u"] * 1.001 + 1e-3
    # Inside the region at every point of the tile: the box's farthest point is inside the superellipse
    # shrunk by the deepest wobble (level (1 + w) <= 1 with |w| <= 1 - 1 / obb_u), with a margin for
    # rounding, and on the kept side of both cuts over the whole box; on an object without holes or
    # bend (and, in the right view, planar along x, so that the bound on xs holds and every point is found).
    plain = (p["has_holes"] == 0) & (bend == 0)
    if view == "right":
        plain &= p["curved_x"] == 0
    far = _superellipse_level(p["power"], u.abs() + half_u, v.abs() + half_v)
    far = far * (2.0 - 1.0 / p["obb_u"]) <= INTERIOR_LEVEL
    for cut in ("cut0", "cut1"):
        nx, ny = p[f"{cut}_nx"], p[f"{cut}_ny"]
        reach = nx * u + ny * v + nx.abs() * half_u + ny.abs() * half_v
        far &= reach <= p[f"{cut}_offset"] - INTERIOR_MARGIN
    kept = reachable.nonzero().squeeze(1)
    b, k, ty, tx, inside = (t.index_select(0, kept) for t in (b, k, ty, tx, plain & far))
    return b, k, ty, tx, inside


def _tile_x_bounds(
    p: Rows | Table, centre_x: torch.Tensor, centre_y: torch.Tensor, half: float, view: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and half-width in ``xs`` of the surface points a tile sees (both broadcast against tiles).

    In the left view the tile's own; in the right view, for a layer planar along x,
    ``xs = cx + (x - cx + d_c + dy (b + qy dy)) / (1 - a)``: over the tile ``xs`` moves by at most
    ``half / (1 - a)`` with x and ``half |b + 2 qy dy| + qy half^2`` (over ``1 - a``) with y; for a curved
    layer, the tile widened by the layer's disparity range.
    """
    half_x = torch.full_like(p["cx"], half)
    if view == "right":
        dy = centre_y - p["cy"]
        rising = p["d_b"] + 2 * p["d_qy"] * dy
        row = p["d_c"] - p["cx"] + dy * (p["d_b"] + p["d_qy"] * dy)
        planar_x = p["cx"] + (centre_x + row) * p["d_inv_1ma"]
        planar_half = half * p["d_inv_1ma"] * (1 + rising.abs() + p["d_qy"].abs() * half)
        curved = p["curved_x"] > 0
        centre_x = torch.where(curved, centre_x + (p["d_min"] + p["d_max"]) / 2, planar_x)
        half_x = torch.where(curved, half_x + (p["d_max"] - p["d_min"]) / 2, planar_half)
    return centre_x, half_x


def zbuffer(layers: Table, height: int, width: int, view: str, tile: int = TILE):
    """Nearest layer at every pixel centre of one view.

    Every (object, tile) pair of the whole batch whose boxes meet is evaluated in one pass; a
    max-reduction of depth keys per pixel keeps the nearest surface.

    Args:
        layers: table ``(B, K, C)``.
        height, width: image size.
        view: ``"left"`` or ``"right"``.
        tile: tile size in px for culling.

    Returns:
        ``(B, H, W)`` uint8: index of the layer with the largest disparity at each pixel.
    """
    batch, n_layers = layers.data.shape[:2]
    assert n_layers <= KEY_LAYERS, n_layers
    device = layers.data.device
    tiles_y, tiles_x = -(-height // tile), -(-width // tile)

    b, k, ty, tx, interior = _object_tiles(layers, tiles_y, tiles_x, tile, view)
    k = k + NUM_BACKGROUND
    # Pairs sorted by their object's superellipse power, those inside the region at every pixel last:
    # the region test runs on the others only, each power on its own run.
    power = layers.columns()[layers.index["power"]].index_select(0, b * n_layers + k)
    order, counts = power_groups(power, last=interior)
    groups, edge_pairs = counts[: len(POWERS)], sum(counts[: len(POWERS)])
    b, k, ty, tx = (t.index_select(0, order) for t in (b, k, ty, tx))
    slot = (b * tiles_y + ty) * tiles_x + tx
    offsets = torch.arange(tile, device=device, dtype=torch.float32)
    area = tile * tile

    # One int32 depth key per pixel of every tile (see _depth_key), tiles laid out contiguously.
    background = _background_key(layers, tiles_y * tile, tiles_x * tile, view)
    # (A new tensor: the reshape of the transposed view copies, and the background keys are not used again.)
    best = background.reshape(batch, tiles_y, tile, tiles_x, tile).transpose(2, 3).reshape(-1)
    p = layers.rows(b * n_layers + k, trailing=2)
    qx = (tx * tile).float()[:, None, None] + offsets[None, None, :]
    y = (ty * tile).float()[:, None, None] + offsets[None, :, None]
    xs, found = surface_x(p, qx, y, view)
    hit = torch.ones((len(b), tile, tile), dtype=torch.bool, device=device)
    edge = Rows(p.table, p.flat_rows[:edge_pairs], trailing=2)
    hit[:edge_pairs] = layer_covers(edge, xs[:edge_pairs], y[:edge_pairs], groups, backgrounds=False)
    if found is not None:
        hit &= found
        d = xs - qx  # the right view sees the point xs at qx = xs - d
    else:
        d = layer_disparity(p, xs, y).expand(-1, tile, tile)
    key = _depth_key(d, k.int()[:, None, None]).mul_(hit)  # NO_HIT (0) where the layer is not there
    # Each pair's 64 keys go to its tile's 64 slots (the index of a tile's row, broadcast: no copy).
    best.view(-1, area).scatter_reduce_(0, slot[:, None].expand(-1, area), key.reshape(-1, area), "amax")
    best = best.view(batch, tiles_y, tiles_x, tile, tile).transpose(2, 3)
    best = best.reshape(batch, tiles_y * tile, tiles_x * tile)[:, :height, :width]  # a view
    # The layer bits, read in pixel order and written contiguous in one pass, as uint8: an eighth of the
    # bytes of int64 for the look-ups of the occlusion test (layer indices are below KEY_LAYERS).
    winner = torch.empty((batch, height, width), dtype=torch.uint8, device=device)
    return torch.bitwise_and(best, KEY_LAYERS - 1, out=winner)


def _depth_key(d: torch.Tensor, layer: torch.Tensor | int) -> torch.Tensor:
    """int32 key ordered like the disparity ``d``, ties broken by the layer index.

    The bits of a positive float32 are ordered like its value; ``d + 256`` is positive for every
    surface that can be seen (only the ground plane above the horizon, hidden by the wall, goes lower).
    The low 6 mantissa bits make room for the layer: keys tell disparities apart to ~2e-3 px below
    256 px, which only matters where two surfaces intersect.
    """
    bits = (d + KEY_OFFSET).clamp_(min=1.0).view(torch.int32)
    return bits.bitwise_and_(~(KEY_LAYERS - 1)).bitwise_or_(layer)
