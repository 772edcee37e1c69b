"""Cross-references between items in markdown, and the rendered (HTML) view.

A reference is ``{item:<gid>}`` or ``{item:<gid>:<fallback-url>}``. The rules:

- references are found by a scanner that is linear in the text with a small
  constant (C-level ``re`` scans and numpy array passes, no Python step per
  line, run or span; ``domain/scan_arrays.py``), because extraction runs for
  every stored version (backlinks) and a peer may send a megabyte of markdown
  built to be slow. A reference is text, not a reference, when it stands
  - in a fenced code block (a line of three or more backticks or tildes,
    after any indentation or ``>`` quote markers, to its closing fence or the
    end of the text);
  - in an indented code block: lines indented by four spaces or a tab after
    a blank line, unless the line before the blank is a list item (a list
    item's continuation paragraph is text);
  - in inline code: a run of one to 16 backticks, not after a backslash, to
    the next run of the same length in the same paragraph (a blank line or a
    line that starts a list item, heading, quote or fence ends it, and so does
    the end of a heading's line; list numbers are ASCII digits; runs of more
    than 16 backticks never open inline code);
  - after an odd number of backslashes (``\\{item:..}`` is escaped).
  These follow CommonMark except in rare nestings (code in deeply nested
  lists, inline code opened by more than 16 backticks). Rendering follows
  the scanner, so what is linked is exactly what backlinks record: each
  reference the scanner finds becomes an inert placeholder before markdown
  is parsed, and a placeholder that the parser puts in code or in an
  attribute is put back as the reference's text;
- a fallback URL must be an absolute ``http``/``https`` URL; a local change
  whose markdown holds any other fallback (``javascript:``, ``data:``, ...)
  is refused (``check``), and a received transaction with one renders it as
  an unresolved reference, never as a link;
- rendering links a reference to this node's copy when ``resolve`` knows
  the item, else to the fallback URL, else marks it unresolved; a reference
  that is a link's or an image's whole destination (``[text]({item:..})``,
  ``![alt]({item:..:url})``, a reference definition, ``<{item:..}>``) points
  that link or image the same way, and an unresolved one leaves it without a
  destination (never followed); one inside a longer URL stays text;
- markdown is rendered with raw HTML disabled and every piece of user text
  (link text, titles, URLs) escaped, so neither the markdown nor a title
  nor a URL can inject markup; markdown-it itself refuses ``javascript:``
  and similar link targets in ordinary markdown links.

Extraction results are cached by text for large texts (``prepare``), so the
receive path extracts before it takes the write lock and the projection only
looks them up; so is the HTML before its links are resolved (a hostile text
is parsed once, not once per read).

Rendering has a budget: markdown-it is linear but slow (0.4 µs a character
for plain prose, 2.5 for lists and links, 14 for a megabyte of ``[``), and
it holds the interpreter lock, so one megabyte from an editor's preview or a
peer's item would stall the serving process for seconds. A text whose parse
uses more than ``RENDER_BUDGET`` seconds of its thread's CPU (garbage
collections aside: ``domain/render_budget.py``) is shown as written instead
(escaped, in a ``<pre>``, its references still linked), as GitLab does past
its render timeout. Everything here is pure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.table import table
from markdown_it.rules_inline import StateInline

from domain.errors import DomainError
from domain.reference_scanner import ATTACHMENT, has_marker, scan
from domain.render_budget import Budget, OverBudget
from domain.text_cache import TextCache

_PLACEHOLDER = re.compile("{\ue000([0-9]+)\ue001}")
_ENCODED_PLACEHOLDER = re.compile("%7B%EE%80%80([0-9]+)%EE%80%81%7D")
_WHOLE_URL = re.compile('<(a href|img src)="%7B%EE%80%80([0-9]+)%EE%80%81%7D"')  # a destination that is one reference
_LINK = re.compile('\ue002([0-9]+)\ue003|<(a href|img src)="\ue004([0-9]+)\ue005"')  # a reference, a destination
_TOKEN = "item_reference"
_CACHED_FROM = 4096  # texts at least this long have their references cached
_CACHE_SIZE = 1024
_RENDERED_CACHE_SIZE = 16
MAX_TABLE_COLUMNS = 1000  # a table row is one parser step: wider is text
_UNRENDERED = ('<p class="render-note">This text is too long or too intricate to render as markdown in time; '
               'it is shown as written.</p>\n<pre class="markdown-source">{}</pre>\n')


class InvalidReference(DomainError):
    """A cross-reference whose fallback URL is not an absolute http(s) URL."""

    status = 422
    type = "invalid-reference"
    title = "Invalid cross-reference"


@dataclass(frozen=True, slots=True)
class Reference:
    gid: str  # an item's gid, or ``attachment:<gid>``
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
    if not has_marker(markdown):
        return []
    if len(markdown) < _CACHED_FROM:
        return [Reference(gid, fallback) for gid, fallback, _ in scan(markdown, positions=False)]
    return list(_cache.get(markdown))


def targets(markdown: str) -> set[str]:
    """The gids a markdown text refers to."""
    return {reference.gid for reference in extract(markdown)}


def prepare(transactions: Iterable[Any]) -> None:
    """Extract (and cache) the references of received items' large texts now, before a write lock is taken."""
    for tx in transactions:
        payload = tx.get("payload") if isinstance(tx, dict) else None
        text = payload.get("markdown") if isinstance(payload, dict) else None
        if isinstance(text, str) and len(text) >= _CACHED_FROM and has_marker(text):
            _cache.get(text)


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
    # Private-use placeholders of our own cannot come from the text itself.
    for private in "\ue000\ue001\ue002\ue003\ue004\ue005":
        markdown = markdown.replace(private, "\ufffd")
    html, found = _parse(markdown) if len(markdown) < _CACHED_FROM else _rendered.get(markdown)
    gids = sorted({gid for gid, _, _ in found})
    targets = resolve(gids) if gids else {}
    resolutions: list[Resolution] = []
    html = _LINK.sub(lambda m: _link(found[int(m[1])], targets, resolutions) if m[1] is not None
                     else _destination(m[2], found[int(m[3])], targets, resolutions), html)
    return Rendered(html, resolutions)


def _parse(markdown: str) -> tuple[str, tuple[tuple[str, str | None, tuple[int, int]], ...]]:
    """The HTML with a mark where each reference's link goes, and the references: what does not depend on
    the items this node knows, cached for large texts (markdown-it takes up to ~20 µs a character)."""
    found = tuple(scan(markdown)) if has_marker(markdown) else ()
    pieces, position = [], 0
    for index, (_, _, (start, end)) in enumerate(found):
        if markdown[start - 1:start] == "<" and markdown[end:end + 1] == ">" and start - 1 >= position:
            start, end = start - 1, end + 1  # ``<{item:..}>``, an autolink: the link alone
        pieces += [markdown[position:start], f"{{\ue000{index}\ue001}}"]
        position = end
    pieces.append(markdown[position:])
    text = [markdown[start:end] for _, _, (start, end) in found]
    parser, source = _parser(), "".join(pieces)
    try:
        html = parser.render(source, {"found": found, "text": text, "budget": Budget()})
    except OverBudget:  # as written: escaped, each placeholder where its reference's link goes
        return _UNRENDERED.format(_PLACEHOLDER.sub(lambda m: f"\ue002{m[1]}\ue003", escapeHtml(source))), found
    if found:  # a link's or image's destination that is a reference: its URL once the targets are known
        html = _WHOLE_URL.sub(lambda m: f'<{m[1]}="\ue004{m[2]}\ue005"', html)
        # a placeholder the parser put in code or another attribute: the reference's own text again
        html = _PLACEHOLDER.sub(lambda m: escapeHtml(text[int(m[1])]), html)
        html = _ENCODED_PLACEHOLDER.sub(lambda m: escapeHtml(parser.normalizeLink(text[int(m[1])])), html)
    return html, found


_cache = TextCache(_CACHE_SIZE, lambda text: tuple(Reference(gid, fallback)
                                                    for gid, fallback, _ in scan(text, positions=False)))
_rendered = TextCache(_RENDERED_CACHE_SIZE, _parse)  # HTML can be megabytes: fewer of them


# --- markdown-it plugins: the render budget, placeholders back into links ------------


def _budget_rule(state: Any, *_: Any) -> bool:
    """First of the block and inline rules: never matches, counts a step (the block parser calls it for each
    block and each line of a paragraph, list, quote or table; the inline parser at every position it tries, also
    while it looks ahead for a link's label)."""
    state.env["budget"].step()
    return False


def _table(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """markdown-it's table, but for a table of more than ``MAX_TABLE_COLUMNS`` columns (each of its rows is made in
    one step: 50,000 columns took seconds between two looks at the clock), which is a paragraph of text."""
    delimiter_row = start + 1
    if delimiter_row < end and state.src.count("|", state.bMarks[delimiter_row],
                                               state.eMarks[delimiter_row]) > MAX_TABLE_COLUMNS + 1:
        return False
    return table(state, start, end, silent)


def _budget_check(state: Any) -> None:
    """A core rule after the inline parse: over budget, no rendering of its tokens either."""
    state.env["budget"].check()


# (placeholders back into links)


def _reference_rule(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] != "{":
        return False
    match = _PLACEHOLDER.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    if not silent:
        gid, fallback, _ = state.env["found"][int(match[1])]
        token = state.push(_TOKEN, "", 0)
        token.meta = {"gid": gid, "fallback": fallback, "index": int(match[1])}
        token.content = state.env["text"][int(match[1])]  # what an image's alt text shows
    state.pos = match.end()
    return True


def _render_reference(renderer: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f"\ue002{tokens[idx].meta['index']}\ue003"  # the link, once the targets are known (``render``)


def _link(reference: tuple[str, str | None, tuple[int, int]], targets: dict[str, Target],
          resolutions: list[Resolution]) -> str:
    gid, fallback, _ = reference
    target = targets.get(gid)
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
    written = f"{{{gid}}}" if gid.startswith(ATTACHMENT) else f"{{item:{gid}}}"
    return f'<span class="item-ref item-ref-unresolved" data-item="{gid}">{written}</span>'


def _destination(attribute: str, reference: tuple[str, str | None, tuple[int, int]], targets: dict[str, Target],
                 resolutions: list[Resolution]) -> str:
    """The start of a link (``a href``) or image (``img src``) whose destination is a reference, resolved as a
    bare reference is; an unresolved one keeps no destination (a link without ``href`` is not followed)."""
    gid, fallback, _ = reference
    tag = attribute.split()[0]
    target, url = targets.get(gid), safe_fallback(fallback)
    if target is not None:
        resolutions.append(Resolution(gid, "local", target.href))
        return f'<{tag} class="item-ref" data-item="{gid}" {attribute.split()[1]}="{escapeHtml(target.href)}"'
    if url is not None:
        resolutions.append(Resolution(gid, "fallback", url))
        return (f'<{tag} class="item-ref item-ref-remote" data-item="{gid}" '
                f'{attribute.split()[1]}="{escapeHtml(url)}"' + (' rel="nofollow noopener noreferrer"' if tag == "a"
                                                                   else ""))
    resolutions.append(Resolution(gid, "unresolved", None))
    return f'<{tag} class="item-ref item-ref-unresolved" data-item="{gid}"'


@functools.cache
def _parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML off, so it is escaped.
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.inline.ruler.before("link", _TOKEN, _reference_rule)
    # also in the chains that end a paragraph, list, quote or table: called for each of their lines
    parser.block.ruler.at("table", _table, {"alt": ["paragraph", "reference"]})
    parser.block.ruler.before("table", "budget", _budget_rule, {"alt": ["paragraph", "reference", "blockquote",
                                                                        "list"]})
    parser.inline.ruler.before("text", "budget", _budget_rule)
    parser.core.ruler.after("inline", "budget", _budget_check)
    parser.add_render_rule(_TOKEN, _render_reference)
    return parser
