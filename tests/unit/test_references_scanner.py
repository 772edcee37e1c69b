"""The reference scanner (domain/references.py) against CommonMark as markdown-it-py reads it.

The scanner decides what a reference is without parsing markdown, so that extraction stays linear and fast on
hostile input; here it is held to a markdown parser's answer on generated documents made of the constructs it
claims to follow (code spans, fences, indented code, escapes, emphasis, links), and on each rule by example.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

from domain.reference_scanner import scan
from domain.references import Target, extract, render

A, B = "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10", "0f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a11"
_ORACLE_REFERENCE = re.compile(r"\{item:([0-9a-f-]{36})(?::([^\s{}\\`]{1,2048}))?\}")


def _oracle_rule(state: StateInline, silent: bool) -> bool:
    match = _ORACLE_REFERENCE.match(state.src, state.pos, state.posMax) if state.src[state.pos] == "{" else None
    if match is None:
        return False
    if not silent:
        state.push("reference", "", 0).meta = {"gid": match[1]}
    state.pos = match.end()
    return True


_ORACLE = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_ORACLE.inline.ruler.before("link", "reference", _oracle_rule)


def oracle(markdown: str) -> list[str]:
    """The references a markdown parser sees (an inline rule, as the renderer had before the scanner)."""
    found: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type == "reference":
                found.append(token.meta["gid"])
            walk(token.children or [])

    walk(_ORACLE.parse(markdown))
    return found


_CONTROLS = "".join(chr(c) for c in (*range(1, 9), *range(14, 32)))
PARTS = ["`", "``", "```", "\\", f"{{item:{A}}}", f"{{item:{B}:https://x.example.org/a}}", "a", "b c", " ", "\n",
         "\n\n", "```\n", "~~~\n", "    ", "*", "_", "[", "]", "(", ")", "|", "{"]
# Not "](": in a link destination a reference counts for the scanner (backlinks) but not for markdown-it's link
# rule, by design (see test_each_rule).


@settings(max_examples=1500, suppress_health_check=list(HealthCheck), deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(PARTS), max_size=30))
def test_the_scanner_finds_what_a_markdown_parser_finds(parts: list[str]) -> None:
    markdown = "".join(parts)

    assert [reference.gid for reference in extract(markdown)] == oracle(markdown)
    assert [r.gid for r in render(markdown, lambda gids: {}).references] == oracle(markdown)  # masks by length


@pytest.mark.parametrize(("markdown", "found"), [
    (f"`{{item:{A}}}`", []),
    (f"``a ` {{item:{A}}}``", []),
    (f"``{{item:{A}}}`", [A]),  # no closing run of the same length: the backticks are text
    (f"`a\n\n{{item:{A}}}`", [A]),  # inline code ends with its paragraph
    (f"\\`{{item:{A}}}`", [A]),  # an escaped backtick opens nothing
    (f"\\{{item:{A}}}", []),
    (f"\\\\{{item:{A}}}", [A]),  # an escaped backslash, then a reference
    (f"\\\\\\{{item:{A}}}", []),
    (f"```\n{{item:{A}}}\n```\n{{item:{B}}}", [B]),
    (f"~~~~\n```\n{{item:{A}}}\n~~~~", []),
    (f"```\n{{item:{A}}}", []),  # an unclosed fence runs to the end
    (f"```x`y\n{{item:{A}}}", [A]),  # a backtick in the info string: not a fence
    (f"> ```\n> {{item:{A}}}\n\n{{item:{B}}}", [B]),  # a quoted fence ends with its quote
    (f"    {{item:{A}}}", []),
    (f"text\n\n    {{item:{A}}}", []),
    (f"text\n    {{item:{A}}}", [A]),  # an indented line continuing a paragraph is text
    (f"- item\n\n    {{item:{A}}}", [A]),  # a list item's continuation paragraph is text
    (f"[see]({{item:{A}}}) *{{item:{B}}}*", [A, B]),
    ("`" * 17 + f"{{item:{A}}}" + "`" * 17, [A]),  # more than 16 backticks open no inline code
    (f"\\\\`{{item:{A}}}`", []),  # an escaped backslash, then inline code
    (f"# `a\n{{item:{A}}}`", [A]),  # a heading is one line: inline code ends with it
    (f"`a\n\u0663. {{item:{A}}}`", []),  # a list item's number is ASCII digits: this line goes on the paragraph
    ("`a" + "\nb" * 50 + f"{{item:{A}}}", [A]),  # an opener with no partner, many lines before the reference
    (" ```\n" + f"{{item:{A}}}", []),  # a fence after a space
    ("`` ` ``" + f"{{item:{A}}}", [A]),
    (_CONTROLS + f"`{{item:{A}}}`", []),  # a text that holds every character the scanner marks with
    (_CONTROLS + f"{{item:{A}}}`", [A]),
    # a fence masks every non-blank line, then a last line of spaces: no line before it holds text (was an
    # IndexError: a 500 for an editor, a failed batch for a receiver)
    (f"> ~~~ {{item:{A}}}\n\n    ", []),
    (f"```\n{{item:{A}}}\n```\n\n    \t", []),
])
def test_each_rule(markdown: str, found: list[str]) -> None:
    assert [reference.gid for reference in extract(markdown)] == found


def test_rendering_links_exactly_what_extraction_finds() -> None:
    markdown = f"`{{item:{A}}}` {{item:{A}}} and *{{item:{B}:https://x.example.org/a}}*\n\n```\n{{item:{B}}}\n```\n"

    rendered = render(markdown, lambda gids: {A: Target(f"/items/{A}", "Here")})

    assert [r.gid for r in rendered.references] == [r.gid for r in extract(markdown)] == [A, B]
    assert f"<code>{{item:{A}}}</code>" in rendered.html and f"<code>{{item:{B}}}\n</code>" in rendered.html
    assert rendered.html.count("<a ") == 2 and "<em><a " in rendered.html


def test_a_placeholder_the_parser_puts_in_an_attribute_or_code_is_the_reference_text_again() -> None:
    # Indented code inside a list: markdown sees code, the scanner a reference (a documented divergence).
    markdown = f"- a\n\n        {{item:{A}}}\n\n[see](https://x.example.org/{{item:{B}}})"

    html = render(markdown, lambda gids: {}).html

    assert "\ue000" not in html and "%EE%80%80" not in html
    assert f"<code>  {{item:{A}}}\n</code>" in html and f'href="https://x.example.org/%7Bitem:{B}%7D"' in html


def test_placeholder_characters_in_the_text_cannot_forge_a_reference() -> None:
    html = render(f"{{\ue0000\ue001}} \ue0020\ue003 {{item:{A}}}", lambda gids: {}).html

    assert html.count("data-item=") == 1 and "\ue000" not in html and "\ue002" not in html


def test_a_large_text_is_parsed_once_but_its_links_follow_what_each_reader_may_see() -> None:
    markdown = f"Intro {{item:{A}}} and {{item:{B}:https://x.example.org/b}}\n\n" + "filler text\n\n" * 1000

    seen = render(markdown, lambda gids: {A: Target(f"/items/{A}", "Here"), B: Target(f"/items/{B}", "There")})
    hidden = render(markdown, lambda gids: {})  # the same text from the cache, for someone who sees neither

    assert [(r.gid, r.status) for r in seen.references] == [(A, "local"), (B, "local")]
    assert [(r.gid, r.status) for r in hidden.references] == [(A, "unresolved"), (B, "fallback")]
    assert ">Here</a>" in seen.html and "Here" not in hidden.html and 'href="https://x.example.org/b"' in hidden.html


# Every construct the array passes read, at line starts and inside lines, with the characters they mark with.
HOSTILE_PARTS = [*PARTS, "~~~", "> ", "\n\n    ", "\n> ", "\n    ", "\n\t", "\t", "\n```", "\n~~~", "- ", "1. ",
                 "12) ", "# ", "\\`", "\\{", "é", "\U0001f642", "\x01", "\x1f", "{attachment:" + A + "}",
                 "{item:" + A + ":u"]


@settings(max_examples=3000, suppress_health_check=list(HealthCheck), deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(HOSTILE_PARTS), max_size=40))
def test_the_scanner_answers_every_text_the_same_with_and_without_positions(parts: list[str]) -> None:
    """Extraction runs on every received text: it must never raise, and both modes of the scanner agree."""
    markdown = "".join(parts)

    with_positions = scan(markdown, positions=True)

    assert [key for key, _, _ in with_positions] == [key for key, _, _ in scan(markdown, positions=False)]
    assert all(markdown[start:end].startswith(("{item:", "{attachment:")) for _, _, (start, end) in with_positions)
