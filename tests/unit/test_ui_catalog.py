"""Every string of the web pages has a Dutch translation, and the catalog holds no string the pages lost."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.ui.i18n import CATALOGS

UI = Path(__file__).resolve().parents[2] / "api" / "ui"


def test_the_dutch_catalog_translates_exactly_the_strings_of_the_pages():
    strings = {message for _, _, message, _, _ in extract_from_dir(
        str(UI), method_map=[("templates/**.html", "jinja2"), ("**.py", "python")])}
    with open(CATALOGS / "nl" / "LC_MESSAGES" / "messages.po", "rb") as po:
        dutch = {message.id: message.string for message in read_po(po) if message.id}

    assert sorted(s for s in strings if not dutch.get(s)) == []  # untranslated
    assert sorted(set(dutch) - strings) == []  # no longer on any page
