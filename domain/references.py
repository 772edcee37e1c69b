"""Cross-references between items in markdown, and the rendered (HTML) view.

A reference is ``{item:<gid>}`` or ``{item:<gid>:<fallback-url>}``. The rules:

- references are found by a markdown-it-py inline rule, so a reference
  inside a code span or a code block is text, not a reference, and a
  backslash before ``{`` escapes it;
- a fallback URL must be an absolute ``http``/``https`` URL; a local change
  whose markdown holds any other fallback (``javascript:``, ``data:``, ...)
  is refused (``check``), and a received transaction with one renders it as
  an unresolved reference, never as a link;
- rendering links a reference to this node's copy when ``resolve`` knows
  the item, else to the fallback URL, else marks it unresolved;
- markdown is rendered with raw HTML disabled and every piece of user text
  (link text, titles, URLs) escaped, so neither the markdown nor a title
  nor a URL can inject markup; markdown-it itself refuses ``javascript:``
  and similar link targets in ordinary markdown links.

Everything here is pure: the caller passes the resolver.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline

from domain.errors import DomainError

_REFERENCE = re.compile(
    r"\{item:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"(?::([^\s{}]{1,2048}))?\}"
)
_TOKEN = "item_reference"
MARKER = "{item:"


class InvalidReference(DomainError):
    """A cross-reference whose fallback URL is not an absolute http(s) URL."""

    status = 422
    type = "invalid-reference"
    title = "Invalid cross-reference"


@dataclass(frozen=True, slots=True)
class Reference:
    gid: str
    fallback: str | None = None  # as written; see safe_fallback()


@dataclass(frozen=True, slots=True)
class Target:
    """This node's copy of a referenced item."""

    href: str
    title: str


@dataclass(frozen=True, slots=True)
class Resolution:
    gid: str
    status: str  # local | fallback | unresolved
    href: str | None


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    references: list[Resolution]


def safe_fallback(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL with a host, else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def extract(markdown: str) -> list[Reference]:
    """The references in a markdown text, in order (repeats included)."""
    if MARKER not in markdown:
        return []
    found: list[Reference] = []
    for token in _parser().parse(markdown):
        for child in token.children or ():
            if child.type == _TOKEN:
                found.append(Reference(child.meta["gid"], child.meta["fallback"]))
    return found


def targets(markdown: str) -> set[str]:
    """The gids a markdown text refers to."""
    return {reference.gid for reference in extract(markdown)}


def check(markdown: str) -> None:
    """Refuse a markdown text whose references have a fallback that is not http(s)."""
    for reference in extract(markdown):
        if reference.fallback is not None and safe_fallback(reference.fallback) is None:
            raise InvalidReference(
                f"the fallback URL of the reference to item {reference.gid} must be an absolute "
                f"http or https URL, not {reference.fallback[:80]!r}"
            )


def render(markdown: str, resolve: Callable[[Sequence[str]], dict[str, Target]]) -> Rendered:
    """HTML of a markdown text, its references resolved by ``resolve(gids) -> {gid: Target}``."""
    parser = _parser()
    env: dict[str, Any] = {}
    tokens = parser.parse(markdown, env)
    gids = sorted({c.meta["gid"] for t in tokens for c in (t.children or ()) if c.type == _TOKEN})
    env["targets"] = resolve(gids) if gids else {}
    env["resolutions"] = []
    html = parser.renderer.render(tokens, parser.options, env)
    return Rendered(html, env["resolutions"])


# --- markdown-it plugin -------------------------------------------------------------


def _reference_rule(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] != "{":
        return False
    match = _REFERENCE.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    if not silent:
        token = state.push(_TOKEN, "", 0)
        token.meta = {"gid": match.group(1).lower(), "fallback": match.group(2)}
        token.content = match.group(0)
    state.pos = match.end()
    return True


def _render_reference(renderer: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    gid, fallback = tokens[idx].meta["gid"], tokens[idx].meta["fallback"]
    target = env.get("targets", {}).get(gid)
    resolutions = env.setdefault("resolutions", [])
    if target is not None:
        resolutions.append(Resolution(gid, "local", target.href))
        return (f'<a class="item-ref" href="{escapeHtml(target.href)}" data-item="{gid}">'
                f"{escapeHtml(target.title or gid)}</a>")
    url = safe_fallback(fallback)
    if url is not None:
        resolutions.append(Resolution(gid, "fallback", url))
        return (f'<a class="item-ref item-ref-remote" href="{escapeHtml(url)}" data-item="{gid}" '
                f'rel="nofollow noopener noreferrer">{escapeHtml(url)}</a>')
    resolutions.append(Resolution(gid, "unresolved", None))
    return f'<span class="item-ref item-ref-unresolved" data-item="{gid}">{{item:{gid}}}</span>'


@functools.cache
def _parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML off, so it is escaped.
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.inline.ruler.before("link", _TOKEN, _reference_rule)
    parser.add_render_rule(_TOKEN, _render_reference)
    return parser
