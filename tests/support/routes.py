"""Requests for every route of the template, so tests over all routes need no list of their own."""

from __future__ import annotations

import re

from goodsdrop_local.template import Route

_PARAMETER = re.compile(r"\{([^}+]+)\+?\}")


def path_parameters(route: Route) -> dict[str, str]:
    """The values `concrete_path` puts into the route's path parameters."""
    return {name: f"probe-{name}" for name in _PARAMETER.findall(route.path)}


def concrete_path(route: Route) -> str:
    """A path the route matches: each `{name}` becomes `probe-name`."""
    return _PARAMETER.sub(lambda m: f"probe-{m.group(1)}", route.path)


def probe_body(route: Route) -> bytes | None:
    """An empty JSON object for methods that carry a body."""
    return b"{}" if route.method in ("POST", "PUT", "PATCH") else None
