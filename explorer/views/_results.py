"""The one cache of analysis results a view keeps: bounded, least recently used dropped first.

A view recomputes nothing it has shown recently (a click back to the last grid, target or
method redraws at once), and holds at most ``RESULTS_KEPT`` results however long it is used.

>>> cache = ResultCache(size=2)
>>> [cache.get(k, lambda k=k: k * 10) for k in (1, 2, 1, 3)]
[10, 20, 10, 30]
>>> list(cache)  # 2 was the least recently used
[1, 3]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

__all__ = ["RESULTS_KEPT", "ResultCache"]

#: results a view keeps (grids, lenses, attributions): enough to flip between a few
#: settings without recomputing, bounded so a long session does not grow
RESULTS_KEPT = 8


class ResultCache:
    """An LRU map of results by the settings they were computed for."""

    def __init__(self, size: int = RESULTS_KEPT) -> None:
        if size < 1:
            raise ValueError(f"a result cache keeps at least 1 result, got size={size}")
        self.size = size
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The result for ``key``, computed (and kept) if it is not kept already."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        value = compute()
        self._kept[key] = value
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return value

    def clear(self) -> None:
        self._kept.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._kept

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)
