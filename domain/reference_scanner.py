"""The reference scanner: where ``{item:<gid>}`` and ``{attachment:<gid>}`` (each with an optional
``:<fallback-url>``) stand in markdown, outside code, linear in the text and at regular-expression speed.

The rules (what counts as code, escapes) are those ``domain/references.py`` documents; rendering follows
this scanner, so what is linked is exactly what backlinks record.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import numpy.typing as npt

from domain.scan_arrays import Text, fence_starts, indented_code, marks

MARKERS = ("{item:", "{attachment:")
ATTACHMENT = "attachment:"  # the key of an attachment reference: this, then its gid
_GID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A fallback holds no whitespace, braces, backslash or backtick (none is valid in a URL), so a reference
# never overlaps the start of anything the scanner masks.
_REFERENCE = re.compile(r"\{(item|attachment):(" + _GID + r")(?::([^\s{}\\`]{1,2048}+))?\}")
@functools.lru_cache(maxsize=8)
def _fenced(tick: str, tilde: str, quote: str) -> re.Pattern[str]:
    """An opening fence, then to its closing fence, the end of its quote, or the end of the text. The
    first character of every line's ``````` ``, ``~~~`` or ``>`` (after at most three spaces) is
    ``tick``, ``tilde`` or ``quote`` (``fence_starts``), so the search jumps from one such line to the
    next instead of trying every line or every run of backticks."""
    tick, tilde, quote = re.escape(tick), re.escape(tilde), re.escape(quote)
    return re.compile(
        rf"{tick}``(`*+)[^`\n]*+(?=\n|\Z)(?:\n(?:[^\n]*+\n)*?[ ]{{0,3}}+{tick}``\1`*+[ \t]*+(?=\n|\Z)|(?s:.*))"
        rf"|{tilde}~~(~*+)[^\n]*+(?=\n|\Z)(?:\n(?:[^\n]*+\n)*?[ ]{{0,3}}+{tilde}~~\2~*+[ \t]*+(?=\n|\Z)|(?s:.*))"
        rf"|{quote}[ >]*+(?:(`{{3,}}+)[^`\n]*+|(~{{3,}}+)[^\n]*+)(?=\n|\Z)(?:\n[ ]{{0,3}}+{quote}[^\n]*+)*?"
        rf"(?:\n[ ]{{0,3}}+{quote}[ >]*+(?:\3`*+|\4~*+)[ \t]*+(?=\n|\Z)|(?=\n(?![ ]{{0,3}}+{quote})|\Z))")


def _editable(text: str) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.uint32], str]:
    """The text's characters as an array to put marks in, and the encoding that makes it text again:
    one byte each when every character fits (most texts; four times less to copy), else four."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8).copy(), "latin-1"
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy(), "utf-32-le"


def _mask_fences(text: str, arrays: Text, positions: bool, tick: str, tilde: str, quote: str) -> str:
    ticks, tildes, quotes = fence_starts(arrays)
    if not ticks.size and not tildes.size and not quotes.size:
        return text
    codes, encoding = _editable(text)
    codes[ticks], codes[tildes], codes[quotes] = ord(tick), ord(tilde), ord(quote)
    marked = codes.tobytes().decode(encoding, "surrogatepass")
    masked = _fenced(tick, tilde, quote).sub(_blank_lines if positions else "\n", marked)  # blank lines either way
    return masked.replace(tick, "`").replace(tilde, "~").replace(quote, ">")


_REFERENCE_BODY = r"(?:item|attachment):" + _GID + r"(?::[^\s{}\\`]{1,2048}+)?\}"  # after its brace
# Five characters the text does not hold stand for what ``domain/scan_arrays.py`` found: each
# backtick of a run that cannot open inline code (it may still close one), the first backtick of a run
# that a backslash escapes but that opens after it, a line break that ends a paragraph, a backslash
# that escapes no reference's brace, and a brace that starts no reference. So the one expression below
# never tries an opener that finds no partner and knows nothing of paragraphs or of most escapes; three
# more mark the lines that may hold a fence (``_fenced``). All are put back before references are
# looked for.
_MARK_CANDIDATES = "".join(chr(c) for c in (*range(0, 9), *range(14, 32)))
_CONTROLS = str.maketrans(dict.fromkeys(_MARK_CANDIDATES, "\ufffd"))


@functools.lru_cache(maxsize=8)
def _inline_code(literal: str, escaped: str, paragraph_end: str) -> re.Pattern[str]:
    run = f"[`{re.escape(literal)}{re.escape(escaped)}]"  # a backtick of a run, as opener or closer
    text = f"[^`{re.escape(literal)}{re.escape(escaped)}{re.escape(paragraph_end)}]"  # code text

    def span(length: int) -> str:
        """After the first backtick of an opener of ``length``: the rest of it, then to its partner."""
        if length == 1:  # the common case: any longer run is another one
            return rf"(?!`){text}*+(?:{run}{{2,}}+{text}*+)*+{run}"  # runs are whole: that one is 1 long
        closer = rf"{run}{{{length}}}(?!{run})"
        return rf"`{{{length - 1}}}(?!`){text}*+(?:(?!{closer}){run}++{text}*+)*+{closer}"

    # A span, or the run as text (never, unless a mark is missing); then text up to the next span or
    # to a reference (masking it hides nothing), so a text is a few matches, not one per span.
    element = "(?:" + "|".join(span(length) for length in range(1, 17)) + "|`*+)"
    plain = r"[^`{\\]*+"
    between = rf"{plain}(?:(?:\\++(?!\{{{_REFERENCE_BODY})|\{{(?!{_REFERENCE_BODY})){plain})*+"
    return re.compile(rf"`(?<!``){element}(?:{between}`{element})*+")


def has_marker(text: str) -> bool:
    """Whether the text may hold a reference at all (the fast path of every caller)."""
    return any(marker in text for marker in MARKERS)


def scan(markdown: str, *, positions: bool = True) -> list[tuple[str, str | None, tuple[int, int]]]:
    """(key, fallback, (start, end)) of every reference, masking code as ``domain/references.py`` says; the key
    is an item's gid, or ``attachment:<gid>`` for an attachment.

    With ``positions`` masks are the same length as what they hide, so positions are the text's own;
    without, each mask is one space (no Python call per mask): the same references, other positions.
    """
    text = markdown
    if not _REFERENCE.search(text):
        return []
    free = [c for c in _MARK_CANDIDATES if c not in text][:8]
    if len(free) < 8:  # a text that holds them all: as text, any control character is the same
        text, free = text.translate(_CONTROLS), list(_MARK_CANDIDATES[:8])
    # Code needs a backtick or tilde (spans, fences) or a tab or four spaces (indented blocks); most texts
    # have none of them, and those searches are fast (memchr) where the ones below would not be.
    if "`" in text or "~" in text or "\t" in text or "    " in text:
        arrays = Text.of(text)
        if arrays.may_fence():
            text = _mask_fences(text, arrays, positions, *free[5:])
            arrays = Text.of(text)
        indented = arrays.may_indent()
        if indented or "`" in text:
            text = _mask_code(text, arrays, positions, free[:5], indented=indented)
    found = []
    for match in _REFERENCE.finditer(text):
        start = match.start()
        if start and text[start - 1] == "\\" and _backslashes_before(text, start) % 2:
            continue  # escaped
        key = match[2].lower() if match[1] == "item" else ATTACHMENT + match[2].lower()
        found.append((key, match[3], match.span()))
    return found


def _mask_code(text: str, arrays: Text, positions: bool, free: list[str], *, indented: bool) -> str:
    """The text with indented code blocks blanked, then inline code (see ``_inline_code``)."""
    literal, escaped, paragraph_end, backslash, brace = free
    codes, encoding = _editable(text)
    blocks = indented_code(arrays) if indented else None
    if blocks is not None:
        arrays = arrays.blanked(blocks)
        codes[blocks] = ord(" ")
    inline = bool((arrays.chars == ord("`")).any())
    if inline:
        found = marks(arrays)
        codes[found.literal] = ord(literal)
        codes[found.escaped] = ord(escaped)
        codes[found.breaks] = ord(paragraph_end)
        codes[found.inert] = ord(backslash)
        codes[found.loose] = ord(brace)
    text = codes.tobytes().decode(encoding, "surrogatepass")
    if not inline:
        return text
    masked = _inline_code(literal, escaped, paragraph_end).sub(_blank if positions else " ", text)
    for mark, character in ((literal, "`"), (escaped, "`"), (paragraph_end, "\n"), (backslash, "\\"), (brace, "{")):
        if mark in masked:
            masked = masked.replace(mark, character)
    return masked


def _blank(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def _blank_lines(match: re.Match[str]) -> str:
    return "\n" * (match.end() - match.start())


def _backslashes_before(text: str, end: int) -> int:
    start = end
    while start >= 64 and text[start - 64:start] == "\\" * 64:
        start -= 64
    while start > 0 and text[start - 1] == "\\":
        start -= 1
    return end - start
