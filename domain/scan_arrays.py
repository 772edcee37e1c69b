"""The reference scanner's passes over whole arrays (numpy: C loops, no Python per line or per run).

A regular expression finds out whether a run of backticks opens inline code only by scanning to the
end of its paragraph for a run of the same length, once per run length (16) that has no partner, and
it decides where a paragraph ends by testing every line break: 1 MB of a few unpartnered runs, then
many lines, took 1.5 s. Here every run's answer, every paragraph's end, the indented code blocks and
the lines that may hold a fence come from a few array operations over the text (``as_bytes``: one
byte per character, so positions are the text's own), so that the scanner's expressions never try an
opener that cannot close and never test a line break themselves. All of it is linear in the text:
~5-25 ms for 1 MB.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Positions = npt.NDArray[np.intp]

_TICK, _BACKSLASH, _NEWLINE, _SPACE, _TAB = 96, 92, 10, 32, 9
_HEADING = re.compile(rb"[ ]{0,3}#{1,6}[ \t\n]")
_LONGEST_OPENER = 16  # runs of more backticks never open inline code (domain/references.py)


def as_bytes(text: str) -> npt.NDArray[np.uint8]:
    """One byte per character: what matters here is ASCII; any other character reads as ``?``."""
    return np.frombuffer(text.encode("latin-1", "replace"), dtype=np.uint8)


class Text(NamedTuple):
    """A text as the passes read it, each part made once: its bytes (``as_bytes``), the same with NULs
    after them (reads a few characters past the end see nothing), and where its line breaks are."""

    chars: npt.NDArray[np.uint8]
    padded: npt.NDArray[np.uint8]
    newlines: Positions

    @classmethod
    def of(cls, text: str) -> Text:
        padded = np.zeros(len(text) + 16, dtype=np.uint8)
        chars = padded[:len(text)]
        chars[:] = as_bytes(text)
        return cls(chars, padded, np.flatnonzero(chars == _NEWLINE))

    def blanked(self, mask: npt.NDArray[np.bool_]) -> Text:
        """A copy with the characters of ``mask`` (line breaks too) made spaces."""
        padded = self.padded.copy()
        chars = padded[:self.chars.size]
        chars[mask] = _SPACE
        return Text(chars, padded, self.newlines[chars[self.newlines] == _NEWLINE])

    def may_fence(self) -> bool:
        """Whether three backticks or three tildes stand together somewhere (a text search for them
        tries every backtick of a text full of them)."""
        chars = self.chars
        return any(bool((same[:-2] & same[1:-1] & same[2:]).any()) for same in (chars == _TICK, chars == 126))

    def may_indent(self) -> bool:
        """Whether a line starts with a tab or four spaces."""
        chars = self.chars
        space, line = chars == _SPACE, chars == _NEWLINE
        return bool((chars[:1] == _TAB).any() or (chars[:4] == _SPACE).sum() == 4
                    or (line[:-1] & (chars[1:] == _TAB)).any()
                    or (line[:-4] & space[1:-3] & space[2:-2] & space[3:-1] & space[4:]).any())

    def line_starts(self) -> Positions:
        starts = np.empty(self.newlines.size + 1, dtype=np.intp)
        starts[0] = 0
        np.add(self.newlines, 1, out=starts[1:])
        return starts


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[Positions, Positions]:
    """Start and end of every run of True in ``mask``."""
    padded = np.zeros(mask.size + 2, dtype=bool)
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def _count(p: npt.NDArray[np.uint8], at: Positions, low: int, high: int, most: int) -> npt.NDArray[np.intp]:
    """How many characters in ``[low, high]`` follow from each of ``at`` (up to ``most``)."""
    count = np.zeros(at.size, dtype=np.intp)
    going = np.ones(at.size, dtype=bool)
    for k in range(most):
        going &= (p[at + k] >= low) & (p[at + k] <= high)
        if not going.any():
            break
        count += going
    return count


def _indent(p: npt.NDArray[np.uint8], starts: Positions) -> Positions:
    """Where each line that starts at ``starts`` has its first character after at most three spaces."""
    one = p[starts] == _SPACE
    two = one & (p[starts + 1] == _SPACE)
    return starts + one + two + (two & (p[starts + 2] == _SPACE))


def _blank_from(chars: npt.NDArray[np.uint8], p: npt.NDArray[np.uint8], at: Positions) -> npt.NDArray[np.bool_]:
    """Whether only spaces and tabs, then a line break, follow each of ``at``."""
    if at.size == 0:
        return np.zeros(0, dtype=bool)
    starts, ends = _runs((chars == _SPACE) | (chars == _TAB))
    i = np.minimum(np.searchsorted(starts, at), max(starts.size - 1, 0))
    end = np.where((starts.size > 0) & (starts[i] == at), ends[i], at) if starts.size else at
    return p[end] == _NEWLINE


_MAY_START_BLOCK = np.zeros(256, dtype=bool)
_MAY_START_BLOCK[[_SPACE, _TAB, 45, 43, 42, 35, *range(48, 58)]] = True  # after spaces, or a list item or heading


def paragraph_breaks(text: Text) -> Positions:
    """The line breaks that end a paragraph: before a blank line, or before a line that starts (after
    at most three spaces) a list item (``-``, ``+``, ``*`` or 1-9 digits and ``.`` or ``)``, then a space
    or tab), a heading (1-6 ``#``, then a space, tab or line break), a quote (``>``) or a fence; and
    after a heading, which is one line."""
    chars, p, newlines = text
    if newlines.size == 0:
        return newlines
    first = p[newlines + 1]
    breaks = (first == _NEWLINE) | (first == 62)  # a blank line, a quote, a fence: at once
    fenced = np.flatnonzero((first == _TICK) | (first == 126))
    line = newlines[fenced] + 1
    breaks[fenced] = (p[line + 1] == first[fenced]) & (p[line + 2] == first[fenced])
    checked = np.flatnonzero(_MAY_START_BLOCK[first])  # the others start text
    line = newlines[checked] + 1
    c = _indent(p, line)
    f0, f1, f2 = p[c], p[c + 1], p[c + 2]
    spaced = (f1 == _SPACE) | (f1 == _TAB)
    block = _blank_from(chars, p, line) | (((f0 == 45) | (f0 == 43) | (f0 == 42)) & spaced) | (f0 == 62)
    block |= ((f0 == _TICK) | (f0 == 126)) & (f1 == f0) & (f2 == f0)
    digits = _count(p, c, 48, 57, 10)
    d = p[c + digits]
    after = p[c + digits + 1]
    block |= (digits >= 1) & (digits <= 9) & ((d == 46) | (d == 41)) & ((after == _SPACE) | (after == _TAB))
    hashes = _count(p, c, 35, 35, 7)
    h = p[c + hashes]
    heading = (hashes >= 1) & (hashes <= 6) & ((h == _SPACE) | (h == _TAB) | (h == _NEWLINE))
    breaks[checked] = block | heading
    # a heading's own line break: the next newline after a heading line, or after the first line's
    headed = newlines[checked[heading]] + 1
    if _HEADING.match(bytes(chars[:8])):
        headed = np.concatenate(([0], headed))
    ends = np.searchsorted(newlines, headed)
    breaks[ends[ends < newlines.size]] = True
    return newlines[breaks]


class Marks(NamedTuple):
    literal: Positions  # each backtick of a run that cannot open inline code
    escaped: Positions  # the first backtick of each run that opens after it (a backslash escapes it)
    breaks: Positions  # the line breaks that end a paragraph
    inert: Positions  # each backslash that escapes no brace (what it does to backticks is done)
    loose: Positions  # each brace that starts no reference (not ``{item:`` or ``{attachment:``)


def _spans(starts: Positions, ends: Positions) -> Positions:
    """The positions of the characters of each ``[start, end)``, in order."""
    lengths = ends - starts
    if lengths.size == 0 or (lengths == 1).all():
        return starts
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(offsets.size)


def marks(text: Text) -> Marks:
    """What the scanner needs to know of every backtick run. A run opens inline code with its length,
    one less when an odd run of backslashes escapes its first backtick, if that is 1-16 and a run of
    exactly that length follows in its paragraph (its partner; closing runs count whole: code has no
    escapes). A run that cannot open is ``literal`` (it may still close some other run)."""
    chars, p, _ = text
    n = chars.size
    breaks = paragraph_breaks(text)
    slash = chars == _BACKSLASH
    slash_starts, slash_ends = _runs(slash)
    braces = np.flatnonzero(chars == 123)  # {
    named = _follows(p, braces + 1, b"item:") | _follows(p, braces + 1, b"attachment:")
    before_name = np.zeros(n + 1, dtype=bool)
    before_name[braces[named]] = True
    escaping = before_name[slash_ends]  # backslashes just before a reference's brace
    inert = _spans(slash_starts[~escaping], slash_ends[~escaping])
    loose = braces[~named]
    starts, ends = _runs(chars == _TICK)
    if starts.size == 0:
        return Marks(starts, starts, breaks, inert, loose)
    length = np.minimum(ends - starts, _LONGEST_OPENER + 1).astype(np.uint8)
    paragraph = None
    if breaks.size:
        ended = np.zeros(n, dtype=np.int32)
        ended[breaks] = 1
        paragraph = np.cumsum(ended, dtype=np.int32)[starts]
    # runs by length, each length's in text order: an unescaped run's partner is the next in its group
    order = np.argsort(length, kind="stable")
    grouped = length[order]
    opens = np.zeros(starts.size, dtype=bool)
    partnered = (grouped[1:] == grouped[:-1]) & (grouped[:-1] <= _LONGEST_OPENER)
    if paragraph is not None:
        partnered &= paragraph[order[1:]] == paragraph[order[:-1]]
    opens[order[:-1]] = partnered
    odd_end = np.zeros(n + 1, dtype=bool)
    odd_end[slash_ends[((slash_ends - slash_starts) & 1).astype(bool)]] = True
    escaped = np.flatnonzero(odd_end[starts])
    opens[escaped] = False
    openers = escaped[length[escaped] >= 2]
    if openers.size:
        opens[openers] = _escaped_partnered(length, openers, paragraph)
    return Marks(_spans(starts[~opens], ends[~opens]), starts[escaped[opens[escaped]]], breaks, inert, loose)


def _follows(p: npt.NDArray[np.uint8], at: Positions, word: bytes) -> npt.NDArray[np.bool_]:
    """Whether ``word`` stands at each of ``at`` (``p`` padded past the end by at least its length)."""
    found = np.ones(at.size, dtype=bool)
    for k, byte in enumerate(word):
        found &= p[at + k] == byte
        if not found.any():
            break
    return found


def _escaped_partnered(length: npt.NDArray[np.uint8], openers: Positions, paragraph: Positions | None
                       ) -> npt.NDArray[np.bool_]:
    """Whether each escaped run of ``openers`` (run indices) has a partner: the first run after it
    whose length is one less than its own. Every run is an entry as a closer, each opener one more
    just after it; grouped by length, stably, an opener's partner is the next closer in its group."""
    entries = np.full(2 * length.size, 255, dtype=np.uint8)
    entries[0::2] = length
    entries[2 * openers + 1] = length[openers] - 1
    order = np.argsort(entries, kind="stable")
    grouped = entries[order]
    closer = order % 2 == 0
    index = np.arange(order.size)
    following = np.minimum.accumulate(np.where(closer, index, order.size)[::-1])[::-1]  # at or after
    at = np.flatnonzero(~closer & (grouped != 255))  # the openers' places, in the order of ``openers``' keys
    partner = following[np.minimum(at + 1, order.size - 1)]
    found = (at + 1 < order.size) & (partner < order.size)
    partner = np.minimum(partner, order.size - 1)
    found &= grouped[partner] == grouped[at]
    run = order[at] // 2
    if paragraph is not None:
        found &= paragraph[order[partner] // 2] == paragraph[run]
    result = np.zeros(length.size, dtype=bool)
    result[run] = found
    return result[openers]


def _list_item(p: npt.NDArray[np.uint8], size: int, starts: Positions) -> npt.NDArray[np.bool_]:
    """Whether each line that starts at ``starts`` is a list item's first line: at most three spaces,
    then ``-``, ``+``, ``*`` or 1-9 digits and ``.`` or ``)``, then a space, a tab or its end."""
    c = _indent(p, starts)
    digits = _count(p, c, 48, 57, 10)
    after = c + digits
    numbered = (digits >= 1) & (digits <= 9) & ((p[after] == 46) | (p[after] == 41))
    bullet = (p[c] == 45) | (p[c] == 43) | (p[c] == 42)
    end = np.where(numbered, after + 1, c + 1)
    return (numbered | bullet) & ((p[end] == _SPACE) | (p[end] == _TAB) | (p[end] == _NEWLINE) | (end >= size))


def indented_code(text: Text) -> npt.NDArray[np.bool_] | None:
    """Per character: in an indented code block (None: there is none). A block starts at a line
    indented by four spaces or a tab that holds more than that (or ends the text), either with only
    blank lines before it, or after at least one blank line that follows a line (blank or not) that is
    neither indented nor a list item's first line; it runs over the indented and blank lines after it."""
    chars, p, newlines = text
    n = chars.size
    starts = text.line_starts()
    ends = np.empty_like(starts)
    ends[:-1], ends[-1] = newlines, n
    first = p[starts]
    indented = first == _TAB
    spaced = np.flatnonzero(first == _SPACE)
    at = starts[spaced]
    indented[spaced[(p[at + 1] == _SPACE) & (p[at + 2] == _SPACE) & (p[at + 3] == _SPACE)]] = True
    candidates = np.flatnonzero(indented)
    if candidates.size == 0:
        return None
    shown = np.zeros(n + 1, dtype=np.int32)  # non-blank characters before each position
    np.cumsum((chars != _SPACE) & (chars != _TAB) & (chars != _NEWLINE), out=shown[1:])
    blank = shown[ends] == shown[starts]
    final = starts.size - 1
    candidates = candidates[~blank[candidates] | (candidates == final)]
    written = np.flatnonzero(~blank)
    k = np.searchsorted(written, candidates) - 1
    # the last non-blank line before (-1: none; there may be no non-blank line at all, when a fence
    # masked everything before a last line of spaces)
    before = np.where(k >= 0, written[np.maximum(k, 0)], -1) if written.size else np.full_like(k, -1)
    plain = np.concatenate((np.flatnonzero(~indented), [starts.size]))  # a blank line among these can lead too
    following = plain[np.searchsorted(plain, before + 1)]
    blank_lead = following <= candidates - 2
    leading = before >= 0
    text_lead = np.zeros(candidates.size, dtype=bool)
    text_lead[leading] = ~indented[before[leading]] & ~_list_item(p, n, starts[before[leading]])
    opens = ~leading | ((before <= candidates - 2) & (text_lead | blank_lead))
    candidates = candidates[opens]
    if candidates.size == 0:
        return None
    stops = np.flatnonzero(~blank & ~indented)  # lines that end a block; so does a blank last line
    stops = np.concatenate((stops, [final] if blank[final] and not indented[final] else [], [starts.size]))
    last = np.maximum(stops[np.searchsorted(stops, candidates + 1)].astype(np.intp) - 1, candidates)
    edges = np.zeros(n + 1, dtype=np.int32)
    np.add.at(edges, starts[candidates], 1)
    np.add.at(edges, ends[last], -1)
    return np.cumsum(edges[:-1], dtype=np.int32) > 0


def fence_starts(text: Text) -> tuple[Positions, Positions, Positions]:
    """Where a line (after at most three spaces) starts with ``````` ``, with ``~~~`` or with ``>``: the
    only places a fence can open or close, or a quote go on (the first character of each)."""
    chars, p, _ = text
    n = chars.size
    c = _indent(p, text.line_starts())
    c = c[c < n]
    first = p[c]
    triple = (p[c + 1] == first) & (p[c + 2] == first)
    return c[(first == _TICK) & triple], c[(first == 126) & triple], c[first == 62]
