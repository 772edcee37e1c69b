"""The pages' languages: English (the source strings) and Dutch (``locales/nl``), chosen by a cookie the
language switch sets, else by ``Accept-Language``.

The Dutch catalog is a gettext ``.po`` file read with Babel when the node starts (nothing to compile at
install time, nothing fetched); ``pybabel extract -F api/ui/babel.cfg -o messages.pot api/ui`` lists the
strings to translate.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("en", "nl")
DEFAULT = "en"
LANGUAGE_COOKIE = "fedsync_lang"
CATALOGS = Path(__file__).parent / "locales"


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The locale's catalog (English: the strings as written)."""
    if locale == DEFAULT:
        return gettext.NullTranslations()
    with open(CATALOGS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def chosen(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's cookie, else the browser's preference, else English."""
    if cookie in LOCALES:
        return cookie
    preferred = []
    for part in (accept_language or "")[:500].split(","):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        if tag and weight > 0:
            preferred.append((weight, tag.strip().replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred, key=lambda p: -p[0])]
    return negotiate_locale(ordered, LOCALES) or negotiate_locale([t.split("_")[0] for t in ordered],
                                                                  LOCALES) or DEFAULT
