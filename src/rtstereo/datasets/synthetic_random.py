"""Counter-based random numbers for the synthetic stereo generator: every scene of a batch at once.

A ``torch.Generator`` per scene would cost a Python loop (and several launched operations) per scene.
Here a random number is a hash of ``(item seed, stream, counter)``, computed for all items and all
counters in a handful of integer tensor operations, on any device, with the same values on every
device and for any batch composition: item ``i`` of a batch equals the same item rendered alone.

The hash works on 32-bit values held in int64 tensors, and every multiplier is below ``2**31``, so no
product overflows int64 (no reliance on wrapping arithmetic).
"""

from __future__ import annotations

import numpy as np

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)

MASK32 = 0xFFFFFFFF
# Odd multipliers below 2**31 for a xorshift-multiply mixer (each round is a bijection on 32 bits).
_MULTIPLIERS = (0x21F0AAAD, 0x735A2D97, 0x2C1B3C6D)
GOLDEN = 0x1E3779B9  # added between rounds, so that zero inputs do not stay zero


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit bijective integer hash of an int64 tensor whose values lie in ``[0, 2**32)``."""
    for multiplier in _MULTIPLIERS:
        x = x ^ (x >> 16)
        x = (x * multiplier) & MASK32
    return x ^ (x >> 15)


def _seed_words(seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The low and high 32-bit halves of non-negative int64 seeds."""
    return seeds & MASK32, (seeds >> 32) & MASK32


def hash_bits(seeds: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """``(B, count)`` 32-bit random integers (int64 tensor) for each of ``B`` item seeds.

    Args:
        seeds: ``(B,)`` int64, non-negative.
        stream: which independent stream (a small integer: scenes, materials, noise, ...).
        count: numbers per item.
    """
    low, high = _seed_words(seeds)
    key = mix32(low ^ mix32((high + stream * GOLDEN) & MASK32))[:, None]
    counter = torch.arange(count, device=seeds.device, dtype=torch.int64)[None, :]
    return mix32(key ^ mix32((counter + GOLDEN) & MASK32))


def uniform(seeds: torch.Tensor, stream: int, shape: tuple[int, ...], dtype=torch.float64) -> torch.Tensor:
    """Uniform numbers in ``(0, 1)``, ``(B, *shape)``, from 32 random bits each."""
    count = 1
    for size in shape:
        count *= size
    bits = hash_bits(seeds, stream, count).to(dtype)
    return ((bits + 0.5) * (1.0 / 2**32)).reshape(seeds.shape[0], *shape)


def item_seeds(seed: int, count: int, start: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Well-mixed 63-bit seeds of items ``start .. start + count - 1`` of the stream ``seed``.

    Returns:
        int64 ``(count,)``, non-negative.
    """
    seed = int(seed) & ((1 << 63) - 1)
    words = torch.tensor([seed & MASK32, seed >> 32], dtype=torch.int64, device=device)
    index = torch.arange(start, start + count, dtype=torch.int64, device=device) & MASK32
    base = mix32(words[0] ^ mix32(words[1]))
    low = mix32(base ^ mix32((index + GOLDEN) & MASK32))
    high = mix32(low ^ mix32((index * 2 + 1) & MASK32)) >> 1  # 31 bits: the seed stays non-negative
    return (high << 32) | low


def same_stream_seed(seed: int) -> int:
    """The seed below ``2**32`` whose stream of items is the one of ``seed``: :func:`item_seeds` folds a seed's
    two 32-bit halves into one 32-bit word, so there are ``2**32`` streams, each reached by one seed per high half.

    Examples:
        >>> same_stream_seed(7), same_stream_seed(2**32)
        (7, 4075032035)
        >>> bool(torch.equal(item_seeds(2**32, 3), item_seeds(4075032035, 3)))
        True
    """
    seed = int(seed) & ((1 << 63) - 1)
    # item_seeds' word is low ^ mix32(high); with a high half of 0 it is low' ^ mix32(0)
    high_word, zero_word = mix32(torch.tensor([seed >> 32, 0], dtype=torch.int64)).tolist()
    return (seed & MASK32) ^ high_word ^ zero_word


# Turning uniform draws into parameters (numpy, elementwise over the batch).
def lerp(u: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    """Uniform in ``[lo, hi]`` from uniform ``u`` in ``[0, 1]``."""
    return lo + (hi - lo) * u


def loguniform(u: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    """Log-uniform in ``[lo, hi]`` (both positive) from uniform ``u``."""
    return lo * (np.asarray(hi, dtype=np.float64) / lo) ** u


def choice(u: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Index drawn with the given probabilities (they need not sum to one)."""
    cumulative = np.cumsum(probs)
    return (u[..., None] * cumulative[-1] > cumulative[:-1]).sum(-1)
