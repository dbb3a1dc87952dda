"""Procedural surface appearance for the synthetic stereo generator.

Every quantity here is a function of the *surface point* (its left-view position ``(xs, y)`` and its
disparity), never of the view, so a point has the same colour in both views (the view-dependent parts,
specular spots and the camera, live in :mod:`.synthetic_camera`).
"""

from __future__ import annotations

import math
import threading

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

from .synthetic_table import Rows, Table

PINK, SMOOTH, GRAIN, RIDGED = range(4)  # channels of the noise bank
USES_NOISE, USES_STRIPE, USES_PATTERN, USES_MARKS, USES_GRADIENT = 1, 2, 4, 8, 16  # bits of a layer's "uses" column
# The layer columns that surface_colour reads at every point.
POINT_COLUMNS = (
    *("persp_ref", "persp_floor", "cx", "cy", "grain_ou", "grain_ov", "grain_ux", "grain_uy"),
    *("mix_base", "detail2", "d_a", "d_qx", "d_b", "d_qy"),
    *(f"c{i}_{c}" for i in (0, 1) for c in "rgb"),
)
NOISE_SIZE = 1024  # texels per side of the (periodic) noise bank; a power of two
_BANKS: dict[str, torch.Tensor] = {}
_BANKS_LOCK = threading.Lock()  # items may render in parallel threads


def noise_bank(device: torch.device | str) -> torch.Tensor:
    """Four periodic noise textures in 0..1 as a table of texel corners, the same on every call (cached).

    Channels: pink (1/f amplitude spectrum, like natural images), smooth (1/f^1.6), grain (nearly
    white, for fine texture) and ridged (veins, cracks). Layers sample them with their own offset,
    rotation and scale, so scenes do not share visible texture.

    Returns:
        ``(4, N, N, 4)`` float32 from :func:`corner_texels` (``N`` = :data:`NOISE_SIZE`).
    """
    key = str(device)
    with _BANKS_LOCK:
        if key not in _BANKS:
            _BANKS[key] = corner_texels(_make_bank()).to(device)
    return _BANKS[key]


def corner_texels(bank: torch.Tensor) -> torch.Tensor:
    """The four texels a bilinear lookup reads, side by side: ``(C, N, N, 4)`` from ``(C, N + 1, N + 1)``.

    Entry ``[c, y, x]`` holds texels ``(y, x)``, ``(y, x + 1)``, ``(y + 1, x)`` and ``(y + 1, x + 1)`` of
    a periodic bank whose last row and column repeat the first (``N`` a power of two). One gathered row
    per lookup instead of four scattered reads: about 1.5x faster on a CPU, for 4x the memory (64 MiB).
    """
    corners = (bank[:, :-1, :-1], bank[:, :-1, 1:], bank[:, 1:, :-1], bank[:, 1:, 1:])
    return torch.stack(corners, -1).contiguous()


def _make_bank() -> torch.Tensor:
    """The noise bank ``(4, N + 1, N + 1)`` on the CPU, from a fixed seed: random phases, power-law
    amplitude spectra. The last row and column repeat the first (period ``N``)."""
    generator = torch.Generator().manual_seed(20240521)
    n = NOISE_SIZE
    fy = torch.fft.fftfreq(n, d=1.0 / n)[:, None]
    fx = torch.fft.rfftfreq(n, d=1.0 / n)[None, :]
    radius = torch.sqrt(fx * fx + fy * fy).clamp(min=1.0)
    exponents = torch.tensor([1.0, 1.6, 0.3, 1.2])[:, None, None]
    spectrum = torch.randn(4, n, n // 2 + 1, dtype=torch.complex64, generator=generator)
    spectrum = spectrum * radius ** (-exponents)
    spectrum[:, 0, 0] = 0
    field = torch.fft.irfft2(spectrum, s=(n, n))
    field = (field - field.mean((1, 2), keepdim=True)) / field.std((1, 2), keepdim=True)
    bank = (0.5 + 0.2 * field).clamp(0.0, 1.0)
    bank[3] = (1.0 - field[3].abs() / 2.5).clamp(0.0, 1.0) ** 3  # ridges where the field crosses 0
    bank = torch.cat([bank, bank[:, :1]], 1)
    return torch.cat([bank, bank[:, :, :1]], 2).contiguous()


def sample_noise(bank: torch.Tensor, channel: torch.Tensor | int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear, wrapping lookup of noise channel ``channel`` at texel coordinates ``(u, v)``.

    Args:
        bank: ``(C, N, N, 4)`` texel corners from :func:`noise_bank` or :func:`corner_texels`.
        channel: channel per point (float or long tensor of the shape of ``u``), or one int.
        u, v: texel coordinates, any shape (any real values; the bank is periodic).

    Returns:
        Values in 0..1, the shape of ``u``.
    """
    period = bank.shape[1]
    assert period & (period - 1) == 0, f"the bank's period must be a power of two, got {period}"
    u0, v0 = torch.floor(u), torch.floor(v)
    tu, tv = (u - u0).reshape(-1), (v - v0).reshape(-1)
    if isinstance(channel, torch.Tensor):
        channel = channel.int()
    # The period is a power of two: wrapping is a bit mask of the integer texel (negative ones too),
    # exact for any coordinate, where a float remainder can round up to the period itself. int32
    # indices (the bank has fewer than 2^31 texels) move half the bytes of int64 ones.
    texel = (v0.int() & (period - 1)).mul_(period).add_(u0.int() & (period - 1)).add_(channel * (period * period))
    corners = bank.reshape(-1, 4).index_select(0, texel.reshape(-1))
    top = torch.lerp(corners[:, 0], corners[:, 1], tu)
    bottom = torch.lerp(corners[:, 2], corners[:, 3], tu)
    return torch.lerp(top, bottom, tv).reshape(u.shape)


def _band(t: torch.Tensor, duty: torch.Tensor, cycles_per_px: torch.Tensor) -> torch.Tensor:
    """Anti-aliased periodic band: 1 on the first ``duty`` of each period of ``t``, with 1 px edges."""
    # The fraction of a period by floor, not torch.frac: frac keeps the sign, and where the phase is below -100 (fine
    # stripes far left of or above a layer's centre on a wide image) the bands vanished behind a hard line.
    shifted = t - duty / 2 + 100.5
    distance = (shifted - torch.floor(shifted) - 0.5).abs()  # to the band centre, in periods
    return torch.clamp((duty / 2 - distance) / cycles_per_px.clamp(min=1e-4) + 0.5, 0.0, 1.0)


def _hash(a: torch.Tensor, b: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """31-bit integer hash of integer tensors (deterministic, platform independent)."""
    h = (a * 73856093) ^ (b * 19349663) ^ (seed * 83492791)
    for _ in range(2):
        h = h & 0x7FFFFFFF
        h = ((h ^ (h >> 13)) * 1274126177) & 0x7FFFFFFF
        h = h ^ (h >> 16)
    return h


def _text_marks(p: Rows, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Lines of glyphs from a 3x5 pixel font, with word gaps: text-like marks in 0..1 (1 = ink).

    Glyph bitmaps are magnified bilinearly and thresholded with a ramp about one screen pixel wide,
    as font rasterisers do, so the marks are anti-aliased (no aliasing that differs between views).
    """
    u = p["mark_cos"] * sx + p["mark_sin"] * sy
    v = p["mark_cos"] * sy - p["mark_sin"] * sx
    cell_w = p["mark_cell"]
    cell_h = 1.7 * cell_w
    line_h = 1.35 * cell_h
    col, row = torch.floor(u / cell_w), torch.floor(v / line_h)
    fu, fv = u / cell_w - col, (v - row * line_h) / cell_h
    seed = p["mark_seed"].long()
    h = _hash(col.long(), row.long(), seed)
    glyph = _hash(h, seed, seed + 1)
    # Glyph pixel centres at integer (gx, gy), 0..2 x 0..4, inside a margin of the cell.
    gx, gy = (fu - 0.15) / 0.7 * 3 - 0.5, (fv - 0.1) / 0.8 * 5 - 0.5
    gx0, gy0 = torch.floor(gx), torch.floor(gy)
    tx, ty = gx - gx0, gy - gy0
    gx0, gy0 = gx0.long(), gy0.long()

    def bit(ix, iy):
        inside = (ix >= 0) & (ix < 3) & (iy >= 0) & (iy < 5)
        return (((glyph >> (iy.clamp(0, 4) * 3 + ix.clamp(0, 2))) & 1) * inside).float()

    top = torch.lerp(bit(gx0, gy0), bit(gx0 + 1, gy0), tx)
    bottom = torch.lerp(bit(gx0, gy0 + 1), bit(gx0 + 1, gy0 + 1), tx)
    coverage = torch.lerp(top, bottom, ty)
    glyph_px = (cell_w * (0.7 / 3)).clamp(min=1.0)  # screen pixels per glyph pixel
    ink = ((coverage - 0.5) * glyph_px + 0.5).clamp(0.0, 1.0)
    written = (h % 1000).float() < p["mark_density"] * 1000
    return ink * written


def _where_used(uses: torch.Tensor, component: int) -> torch.Tensor:
    """Flat positions of the points whose layer uses a component (its bit set in ``uses``; possibly none)."""
    return (uses & component).nonzero().squeeze(1)


def surface_colour(
    p: Rows, items: Rows | Table, bank: torch.Tensor, xs: torch.Tensor, y: torch.Tensor, d: torch.Tensor
) -> torch.Tensor:
    """Linear RGB of surface points, before any camera effect.

    Args:
        p: parameters of each point's layer, columns of the points' shape ``S`` (e.g. ``(B, H * W)``).
        items: per-scene settings of each point's scene, columns that broadcast against ``S`` (e.g.
            ``(B, 1)``).
        bank: noise bank ``(4, T, T, 4)`` from :func:`noise_bank`.
        xs, y: surface coordinates (left-view position), broadcasting to ``S``.
        d: disparity of the points ``S``, px.

    Returns:
        ``(3, *S)`` float32, roughly 0..1.
    """
    p.prefetch(*POINT_COLUMNS)
    # Perspective-correct texture coordinates: on a surface, distance ~ 1 / disparity.
    perspective = p["persp_ref"] / torch.maximum(d, p["persp_floor"])
    dx, dy = xs - p["cx"], y - p["cy"]
    sx, sy = dx * perspective, dy * perspective
    flat_sx, flat_sy, flat_rate = sx.reshape(-1), sy.reshape(-1), perspective.reshape(-1)

    # Every point gets fine grain (its strength may be small, never zero); the other components are
    # computed only on the points whose layer uses them (the same operations whatever their number,
    # so the count of launched operations does not depend on the scenes).
    grain_u = torch.addcmul(p["grain_ou"], p["grain_ux"], sx).addcmul_(p["grain_uy"], sy)
    grain_v = torch.addcmul(p["grain_ov"], p["grain_uy"], sx, value=-1.0).addcmul_(p["grain_ux"], sy)
    grain = sample_noise(bank, GRAIN, grain_u, grain_v)
    uses = p.codes("uses").reshape(-1)
    # mix = mix_base + w_grad * gradient + detail2 * grain, added in that order; w_grad is 0 on the
    # layers without a gradient (a tenth of them), where the first sum is mix_base itself.
    mix = p["mix_base"].clone()
    flat_mix = mix.view(-1)
    at = _where_used(uses, USES_GRADIENT)
    q = p.subset(at).prefetch("grad_x", "grad_y", "w_grad", "mix_base")
    ax, ay = flat_sx.index_select(0, at), flat_sy.index_select(0, at)
    gradient = (q["grad_x"] * ax).add_(0.5).addcmul_(q["grad_y"], ay).clamp_(0.0, 1.0)
    flat_mix.index_copy_(0, at, torch.addcmul(q["mix_base"], q["w_grad"], gradient))
    mix.addcmul_(p["detail2"], grain)

    at = _where_used(uses, USES_NOISE)
    q, ax, ay = p.subset(at), flat_sx.index_select(0, at), flat_sy.index_select(0, at)
    q.prefetch("noise_channel", "noise_ou", "noise_ov", "noise_ux", "noise_uy", "w_noise")
    noise = sample_noise(
        bank,
        q["noise_channel"],
        torch.addcmul(q["noise_ou"], q["noise_ux"], ax).addcmul_(q["noise_uy"], ay),
        torch.addcmul(q["noise_ov"], q["noise_uy"], ax, value=-1.0).addcmul_(q["noise_ux"], ay),
    )
    flat_mix.index_add_(0, at, q["w_noise"] * noise)

    at = _where_used(uses, USES_STRIPE)
    q, ax, ay = p.subset(at), flat_sx.index_select(0, at), flat_sy.index_select(0, at)
    q.prefetch("stripe_phase", "stripe_x", "stripe_y", "stripe_duty", "stripe_freq", "stripe_soft", "w_stripe")
    phase = torch.addcmul(q["stripe_phase"], q["stripe_x"], ax).addcmul_(q["stripe_y"], ay)
    hard = _band(phase, q["stripe_duty"], q["stripe_freq"] * flat_rate.index_select(0, at))
    soft = 0.5 + 0.5 * torch.sin(2 * math.pi * phase)
    flat_mix.index_add_(0, at, q["w_stripe"] * torch.lerp(hard, soft, q["stripe_soft"]))

    at = _where_used(uses, USES_PATTERN)
    q, ax, ay, rate = (
        p.subset(at),
        flat_sx.index_select(0, at),
        flat_sy.index_select(0, at),
        flat_rate.index_select(0, at),
    )
    q.prefetch(
        *("pattern_vx", "pattern_vy", "pattern_ux", "pattern_uy", "pattern_brick", "pattern_duty"),
        *("pattern_freq_u", "pattern_freq_v", "pattern_checker", "w_pattern"),
    )
    pv = (q["pattern_vx"] * ax).addcmul_(q["pattern_vy"], ay)
    pu = (q["pattern_ux"] * ax).addcmul_(q["pattern_uy"], ay).addcmul_(q["pattern_brick"], torch.floor(pv))
    band_u = _band(pu, q["pattern_duty"], q["pattern_freq_u"] * rate)
    band_v = _band(pv, q["pattern_duty"], q["pattern_freq_v"] * rate)
    checker = band_u + band_v - 2 * band_u * band_v
    pattern = torch.lerp(torch.maximum(band_u, band_v), checker, q["pattern_checker"])
    flat_mix.index_add_(0, at, q["w_pattern"] * pattern)

    mix = mix.clamp_(0.0, 1.0)
    rgb = torch.empty((3, *mix.shape), device=mix.device)
    for index, c in enumerate("rgb"):
        torch.lerp(p[f"c0_{c}"], p[f"c1_{c}"], mix, out=rgb[index])

    at = _where_used(uses, USES_MARKS)
    q = p.subset(at).prefetch(
        *("mark_cos", "mark_sin", "mark_cell", "mark_seed", "mark_density", "mark_r", "mark_g", "mark_b")
    )
    ink = _text_marks(q, flat_sx.index_select(0, at), flat_sy.index_select(0, at))
    mark_rgb = torch.stack([q[f"mark_{c}"] for c in "rgb"])
    flat_rgb = rgb.view(3, -1)
    flat_rgb.index_copy_(1, at, torch.lerp(flat_rgb.index_select(1, at), mark_rgb, ink))

    # Shading, a function of the surface point: Lambert-like from the orientation (the disparity
    # gradient), a linear illumination gradient and a broad pool of light. (The scene's tint is in
    # the layers' colours.)
    slope_x = torch.addcmul(p["d_a"], p["d_qx"], dx, value=2.0)
    slope_y = torch.addcmul(p["d_b"], p["d_qy"], dy, value=2.0)
    shade = slope_x.mul_(items["light_x"]).add_(1.0).addcmul_(slope_y, items["light_y"]).clamp_(0.3, 1.7)
    pool_x, pool_y = xs - items["light_cx"], y - items["light_cy"]
    pool = (pool_x * pool_x).addcmul_(pool_y, pool_y).mul_(items["light_inv_r2"]).add_(1.0).reciprocal_()
    light = (pool_x * items["light_gx"]).add_(1.0).addcmul_(pool_y, items["light_gy"])
    light = light.addcmul_(pool, items["light_pool"]).clamp_(min=0.2)
    return rgb.mul_(shade.mul_(light))
