"""Named-column parameter tables for the synthetic scene generator.

Every layer of every scene is one row of numbers (its shape, its disparity function, its material),
kept in one ``(B, K, C)`` tensor. The renderer needs the parameters of the layer at each of hundreds
of thousands of points (pixels, or pixels of (layer, tile) pairs); :class:`Rows` fetches them one
column at a time and only when used, which is much cheaper than gathering whole rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


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
        self._columns: torch.Tensor | None = None

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.data[..., self.index[name]]

    def columns(self) -> torch.Tensor:
        """The table as ``(C, rows)`` with contiguous columns (computed once)."""
        if self._columns is None:
            self._columns = self.data.reshape(-1, self.data.shape[-1]).t().contiguous()
        return self._columns

    def rows(self, flat_rows: torch.Tensor, trailing: int = 0, eager: bool = False) -> Rows:
        """The rows ``flat_rows`` of the table flattened to ``(rows, C)``, fetched lazily.

        Args:
            flat_rows: ``(N,)`` long indices into the flattened leading axes.
            trailing: number of size-1 axes after ``N`` in every column, so that columns
                ``(N, 1, ...)`` broadcast against per-point tensors ``(N, ...)``.
            eager: gather all columns now in one operation (best for few rows, e.g. per tile).
        """
        rows = Rows(self, flat_rows, trailing)
        if eager:
            rows._all = self.columns().index_select(1, flat_rows)
        return rows


class Rows:
    """Selected rows of a :class:`Table`; ``rows[name]`` gathers (and caches) one column."""

    def __init__(self, table: Table, flat_rows: torch.Tensor, trailing: int = 0) -> None:
        self.table, self.flat_rows, self.trailing = table, flat_rows, trailing
        self._cache: dict[str, torch.Tensor] = {}
        self._all: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.flat_rows)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            if self._all is not None:
                column = self._all[self.table.index[name]]
            else:
                column = self.table.columns()[self.table.index[name]].index_select(0, self.flat_rows)
            self._cache[name] = column.reshape(-1, *([1] * self.trailing))
        return self._cache[name]

    def subset(self, rows: torch.Tensor) -> Rows:
        """The rows at positions ``rows`` of this selection."""
        subset = Rows(self.table, self.flat_rows[rows], self.trailing)
        if self._all is not None:
            subset._all = self._all.index_select(1, rows)
        return subset


def build_table(columns: dict[str, torch.Tensor]) -> Table:
    """Stack equally shaped tensors into a :class:`Table` (float32, last axis = columns)."""
    names = list(columns)
    data = torch.stack([columns[name].to(torch.float32) for name in names], dim=-1)
    return Table(names, data)
