"""The render budget (domain/references.py): markdown built to be slow is shown as written within about a second
of CPU, its references still linked; ordinary markdown renders as before.

Before the budget, a megabyte of ``[`` took 11 s to render (the interpreter lock held meanwhile), a table of
50,000 columns 6 s; any editor could send such texts to the preview, any peer as an item."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator

import pytest

from domain import references
from domain.references import Target, render
from domain.render_budget import RENDER_BUDGET, Budget, OverBudget

A = "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10"
SLOW = {  # each took 5 s of CPU or more to render before (measured: 10.9, 5.0, 19.3, 11.9 s): well past the budget
    "brackets": "[" * 1_000_000,  # on a machine several times faster than this one
    "long table": "| a | b | c |\n|---|---|---|\n" + "| x | y | z |\n" * 70_000,
    "images": "![" * 500_000,
    "list": "- a\n" * 250_000,
}


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """The parser's CPU alone: in a test worker that has run hundreds of tests, one full garbage collection
    of its heap took seconds of this thread's time (a CI run saw 3.7 s for 1 s of parsing)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("name", SLOW)
def test_a_text_too_slow_to_render_is_shown_as_written_within_the_budget(name: str) -> None:
    markdown = f"<b>{{item:{A}}}</b>\n\n" + SLOW[name]  # starts with markup to escape and a reference to link

    started = time.thread_time()
    with no_collection():
        rendered = render(markdown, lambda gids: {A: Target(f"/items/{A}", "Here & there")})
    used = time.thread_time() - started

    assert used < RENDER_BUDGET * 2.5, f"{name}: {used:.2f} s of CPU"
    assert rendered.html.startswith('<p class="render-note">') and '<pre class="markdown-source">' in rendered.html
    assert rendered.html.count("<") == 6  # the note, the pre and the link, and nothing from the text unescaped
    assert (f'&lt;b&gt;<a class="item-ref" href="/items/{A}" data-item="{A}">Here &amp; there</a>&lt;/b&gt;\n'
            in rendered.html)
    assert [(r.gid, r.status) for r in rendered.references] == [(A, "local")]


def test_the_budget_is_the_parse_of_the_text_not_each_read() -> None:
    markdown = "[" * 1_000_000 + f" {{item:{A}}}"
    render(markdown, lambda gids: {})

    started = time.thread_time()
    with no_collection():
        again = render(markdown, lambda gids: {})  # from the cache of large texts: nothing parsed again

    assert time.thread_time() - started < 0.2 and "markdown-source" in again.html


def test_a_table_wider_than_a_thousand_columns_is_text() -> None:
    """Each row of a table is made in one step of the parser: 50,000 columns took 9.2 s before."""
    wide = "|" + "a|" * 50_000 + "\n|" + "-|" * 50_000 + "\n" + ("|" + "a|" * 50_000 + "\n") * 8

    started = time.thread_time()
    with no_collection():
        html = render(wide, lambda gids: {}).html

    assert time.thread_time() - started < RENDER_BUDGET and html.startswith("<p>|a|a|") and "<table>" not in html


def test_ordinary_markdown_renders_as_before_up_to_a_thousand_columns() -> None:
    prose = ("# Plan\n\nSome *text* with a [link](https://x.example.org) and `code`.\n\n- a\n- b\n\n> quoted\n\n"
             f"| a | b |\n|---|---|\n| c | {{item:{A}}} |\n\n") * 1000  # 87 kB, in ~0.3 s
    wide = "|" + "a|" * 1000 + "\n|" + "-|" * 1000 + "\n" + "|" + "b|" * 1000 + "\n"

    html = render(prose, lambda gids: {A: Target(f"/items/{A}", "Here")}).html

    assert "markdown-source" not in html and html.count("<table>") == 1000 and html.count("<blockquote>") == 1000
    assert html.count('<a class="item-ref"') == 1000 and html.count("<em>text</em>") == 1000
    assert references.MAX_TABLE_COLUMNS == 1000
    assert render(wide, lambda gids: {}).html.count("<td>b</td>") == 1000
    assert "<table>" not in render(wide.replace("|", "|a|", 1), lambda gids: {}).html  # 1,001 columns: text


def test_garbage_collections_do_not_count_against_a_budget() -> None:
    """A collection of the whole heap can run in the rendering thread (whoever allocates pays): its time is the
    process's, not the text's. Before, a CI worker's collection counted seconds against a 1 s budget."""
    heap = [[index] for index in range(2_000_000)]  # a large heap: a full collection of it takes a while
    budget = Budget(seconds=0.05)

    started = time.thread_time()
    for _ in range(3):
        gc.collect()
    collecting = time.thread_time() - started
    budget.check()  # the collections alone: within the budget

    assert collecting > 0.1, f"{collecting:.3f} s: the heap was too small to show anything"
    until = time.thread_time() + 0.1
    while time.thread_time() < until:  # parsing, as far as the budget can tell
        pass
    with pytest.raises(OverBudget):
        budget.check()
    del heap
