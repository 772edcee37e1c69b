"""The reference scanner: where ``{item:<gid>}`` and ``{attachment:<gid>}`` (each with an optional
``:<fallback-url>``) stand in markdown, outside code, linear in the text and at regular-expression speed.

The rules (what counts as code, escapes) are those ``domain/references.py`` documents; rendering follows
this scanner, so what is linked is exactly what backlinks record.
"""

from __future__ import annotations

import re

MARKERS = ("{item:", "{attachment:")
ATTACHMENT = "attachment:"  # the key of an attachment reference: this, then its gid
_GID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A fallback holds no whitespace, braces, backslash or backtick (none is valid in a URL), so a reference
# never overlaps the start of anything the scanner masks.
_REFERENCE = re.compile(r"\{(item|attachment):(" + _GID + r")(?::([^\s{}\\`]{1,2048}+))?\}")
_FENCED = re.compile(  # an opening fence, then to its closing fence, the end of its quote, or the end of the text
    r"^[ ]{0,3}+(?:(`{3,}+)[^`\n]*+|(~{3,}+)[^\n]*+)(?=\n|\Z)"
    r"(?:\n(?:[^\n]*+\n)*?[ ]{0,3}+(?:\1`*+|\2~*+)[ \t]*+(?=\n|\Z)|(?s:.*))"
    r"|^[ ]{0,3}+>[ >]*+(?:(`{3,}+)[^`\n]*+|(~{3,}+)[^\n]*+)(?=\n|\Z)"
    r"(?:\n[ ]{0,3}+>[^\n]*+)*?(?:\n[ ]{0,3}+>[ >]*+(?:\3`*+|\4~*+)[ \t]*+(?=\n|\Z)|(?=\n(?![ ]{0,3}+>)|\Z))",
    re.MULTILINE)
_INDENTED = re.compile(  # after a blank line that does not follow a list item; or at the start
    r"(?P<lead>\A(?:[ \t]*+\n)*+|^(?![ ]{0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$))(?! {4}|\t)[^\n]*+\n(?:[ \t]*+\n)++)"
    r"(?: {4}|\t)[^\n]*+(?:\n(?:(?: {4}|\t)[^\n]*+|[ \t]*+(?=\n)))*+", re.MULTILINE)
_OPENER = r"`(?:(?<![`\\]`)|(?<=(?<!\\)\\``))"  # a run's first backtick, or its second after an escaped one
_SAME_PARAGRAPH = r"\n(?![ \t]*+\n|[ ]{0,3}+(?:[-+*][ \t]|\d{1,9}[.)][ \t]|#{1,6}[ \t\n]|>|```|~~~))"  # no block starts
_ONE_BACKTICK_SPAN = r"(?!`)(?:[^`\n]++|" + _SAME_PARAGRAPH + r")*+`(?!`)"  # after its opener: no backtick inside


def _run_span(group: str) -> str:
    """After a run's first backtick: the rest of the run (``group``), then to the next run of the same length."""
    closer = r"`(?P=" + group + r")"
    return (r"(?P<" + group + r">`{0,15}+)(?!`)(?>(?:[^`\n]++|(?!" + closer + r"(?!`))`++|" + _SAME_PARAGRAPH
            + r")*+)(?<!`)" + closer + r"(?!`)")


def _element(group: str) -> str:
    """After a run's first backtick: a code span of one backtick (the common case, tried first), a longer
    one, or else the run itself, which is literal text (masking it hides nothing, and the scan goes on
    after the whole run, as CommonMark does, instead of trying each of its backticks)."""
    return r"(?:" + _ONE_BACKTICK_SPAN + r"|" + _run_span(group) + r"|`*+)"


# One match takes a code span or literal run, then every span or run that follows on its line with text between
# that holds no reference and no backslash (masking that text hides nothing, and each next run starts a run
# there): dense inline code is one match per line, not one per span.
_INLINE_CODE = re.compile(_OPENER + _element("first") + r"(?:[^`{\\\n]*+`" + _element("next") + r")*+")

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
    if "```" in text or "~~~" in text:
        text = _FENCED.sub(_blank_lines if positions else "\n", text)  # a block: blank lines either way
    if "\n    " in text or "\n\t" in text or text.startswith(("    ", "\t")):
        text = _INDENTED.sub(_blank_indented if positions else r"\g<lead> ", text)
    if "`" in text:
        text = _INLINE_CODE.sub(_blank if positions else " ", text)
    found = []
    for match in _REFERENCE.finditer(text):
        start = match.start()
        if start and text[start - 1] == "\\" and _backslashes_before(text, start) % 2:
            continue  # escaped
        key = match[2].lower() if match[1] == "item" else ATTACHMENT + match[2].lower()
        found.append((key, match[3], match.span()))
    return found


def _blank(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def _blank_lines(match: re.Match[str]) -> str:
    return "\n" * (match.end() - match.start())


def _blank_indented(match: re.Match[str]) -> str:
    block = match[0]  # keep the lines before the indented ones (the line before the blank is text)
    lines = block.split("\n")
    first = 0
    while first < len(lines) and not lines[first].startswith(("    ", "\t")):
        first += 1
    head = "\n".join(lines[:first]) + ("\n" if first else "")
    return head + " " * (len(block) - len(head))


def _backslashes_before(text: str, end: int) -> int:
    start = end
    while start >= 64 and text[start - 64:start] == "\\" * 64:
        start -= 64
    while start > 0 and text[start - 1] == "\\":
        start -= 1
    return end - start
