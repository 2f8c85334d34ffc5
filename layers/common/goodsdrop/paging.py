"""Paging of list documents: the bounds of `page`/`size` and the contract's list document.

`goodsdrop.http.page_params(app)` reads `page` and `size` from a request within these bounds;
the domain builds its answer with `page_body`.
"""

from __future__ import annotations

from typing import Any

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000


def page_body(items: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    """The contract's list document."""
    return {"items": items, "page": page, "size": size, "total": total}
