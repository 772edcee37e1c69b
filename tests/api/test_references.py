"""Cross-reference parsing and rendering (domain/references.py), no store needed."""

from __future__ import annotations

import pytest

from domain.references import InvalidReference, Target, check, extract, render, safe_fallback

GID = "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10"


def test_references_in_code_or_escaped_are_text() -> None:
    markdown = f"`{{item:{GID}}}`\n\n    {{item:{GID}}}\n\n\\{{item:{GID}}} and {{item:{GID}}}"

    found = extract(markdown)

    assert [r.gid for r in found] == [GID]


def test_uppercase_gid_is_read_in_canonical_form() -> None:
    assert [r.gid for r in extract(f"{{item:{GID.upper()}:https://a.example.org/}}")] == [GID]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://a.example.org/", "//a.example.org",
                                 "https:/nohost", "JAVASCRIPT:alert(1)"])
def test_non_http_fallbacks_are_refused(url: str) -> None:
    with pytest.raises(InvalidReference):
        check(f"{{item:{GID}:{url}}}")
    assert safe_fallback(url) is None


def test_http_fallbacks_are_accepted() -> None:
    check(f"{{item:{GID}:https://a.example.org/x?y=1}} {{item:{GID}:http://b.example.org}}")


def test_render_escapes_raw_html_and_resolved_titles() -> None:
    rendered = render(f"<i>raw</i> {{item:{GID}}}", lambda gids: {GID: Target(f"/items/{GID}", '"><script>')})

    assert "<i>" not in rendered.html and "&lt;i&gt;" in rendered.html
    assert "&quot;&gt;&lt;script&gt;" in rendered.html and "<script>" not in rendered.html
