"""Named-column parameter tables for the synthetic scene generator.

Every layer of every scene is one row of numbers (its shape, its disparity function, its material),
kept in one ``(B, K, C)`` tensor. The renderer needs the parameters of the layer at each of hundreds
of thousands of points (pixels, or pixels of (layer, tile) pairs); :class:`Rows` fetches them one
column at a time and only when used, which is much cheaper than gathering whole rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import torch_missing

try:
    import torch
except ImportError as exc:  # one line naming the extra to install, not "No module named 'torch'"
    torch_missing(__name__, exc)


class Table:
    """A float tensor ``(..., C)`` whose last axis has names.

    Args:
        names: one name per column.
        data: tensor ``(..., len(names))``.
    """

    def __init__(self, names: Iterable[str], data: torch.Tensor) -> None:
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        assert data.shape[-1] == len(self.names), (data.shape, len(self.names))
        self.data = data
        self._columns: tuple[torch.Tensor, ...] | None = None
        self._packed: dict[tuple[str, ...], torch.Tensor] = {}
        self._unbound: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, name: str) -> torch.Tensor:
        if self._unbound is None:  # all columns as views in one operation, not one select per access
            self._unbound = self.data.unbind(-1)
        return self._unbound[self.index[name]]

    def columns(self) -> tuple[torch.Tensor, ...]:
        """The table's columns, each contiguous over the flattened leading axes (computed once)."""
        if self._columns is None:
            self._columns = self.data.reshape(-1, self.data.shape[-1]).t().contiguous().unbind(0)
        return self._columns

    def packed(self, names: tuple[str, ...]) -> torch.Tensor:
        """The named columns stacked, ``(len(names), rows)`` (computed once per tuple of names)."""
        if names not in self._packed:
            columns = self.columns()
            self._packed[names] = torch.stack([columns[self.index[name]] for name in names])
        return self._packed[names]

    def rows(self, flat_rows: torch.Tensor, trailing: int = 0, shape: tuple[int, ...] | None = None) -> Rows:
        """The rows ``flat_rows`` of the table flattened to ``(rows, C)``, fetched lazily.

        Args:
            flat_rows: ``(N,)`` long indices into the flattened leading axes.
            trailing: number of size-1 axes after ``N`` in every column, so that columns
                ``(N, 1, ...)`` broadcast against per-point tensors ``(N, ...)``.
            shape: the shape of every column instead (``N`` elements, e.g. ``(B, H * W)`` for the
                pixels of a batch, so that per-scene columns ``(B, 1)`` broadcast against them).
        """
        return Rows(self, flat_rows, trailing, shape)


class Rows:
    """Selected rows of a :class:`Table`; ``rows[name]`` gathers (and caches) one column, one operation."""

    def __init__(
        self, table: Table, flat_rows: torch.Tensor, trailing: int = 0, shape: tuple[int, ...] | None = None
    ) -> None:
        self.table, self.flat_rows, self.trailing = table, flat_rows, trailing
        self.shape = shape if shape is not None else (-1, *([1] * trailing))
        self._cache: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.flat_rows)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            # index_select on the flat rows is several times faster than take() with a shaped index.
            column = self.table.columns()[self.table.index[name]].index_select(0, self.flat_rows)
            self._cache[name] = column.view(self.shape) if self.shape != (-1,) else column
        return self._cache[name]

    def prefetch(self, *names: str) -> Rows:
        """Gather the named columns not fetched yet in one operation (``rows[name]`` then reads them).

        Two launched operations instead of one per column. (Fewer operations; but at a million points
        it saves no time: the columns are written all at once, and are no longer in the cache when used.)
        """
        missing = tuple(dict.fromkeys(name for name in names if name not in self._cache))
        if len(missing) > 1:
            gathered = self.table.packed(missing).index_select(1, self.flat_rows)
            if self.shape != (-1,):
                gathered = gathered.view(len(missing), *self.shape)
            self._cache.update(zip(missing, gathered.unbind(0), strict=True))
        return self

    def codes(self, name: str) -> torch.Tensor:
        """A column of small non-negative integers (below 256) as uint8: a quarter of the memory traffic."""
        codes = self.table.columns()[self.table.index[name]].to(torch.uint8).index_select(0, self.flat_rows)
        return codes.view(self.shape) if self.shape != (-1,) else codes

    def column(self, name: str) -> torch.Tensor:
        """``self[name]`` as ``(N, 1)``, to broadcast against points laid out ``(rows, points per row)``."""
        return self[name].reshape(-1, 1)

    def subset(self, points: torch.Tensor, per_row: int = 1) -> Rows:
        """The rows of the points at flat positions ``points``, as flat columns ``(M,)``.

        Args:
            points: flat positions among the points these rows serve.
            per_row: points per row (each row serves ``per_row`` consecutive points, e.g. the pixels of
                an (object, tile) pair); 1 when there is one row per point.
        """
        rows = points // per_row if per_row > 1 else points
        return Rows(self.table, self.flat_rows.reshape(-1).index_select(0, rows))


def build_table(columns: dict[str, np.ndarray]) -> Table:
    """Stack equally shaped arrays into a :class:`Table` (float32, last axis = columns)."""
    names = list(columns)
    data = np.stack([np.asarray(columns[name], dtype=np.float32) for name in names], axis=-1)
    return Table(names, torch.from_numpy(data))
