"""Registrable domains (public suffix list), for the DOMAIN scope."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


@lru_cache(maxsize=4096)
def registrable_domain(host: str) -> str | None:
    """``b.example.org`` -> ``example.org``; ``a.co.uk`` -> ``a.co.uk``; IPs and bare suffixes -> None."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    return _psl().privatesuffix(host)


def same_domain(a: str, b: str) -> bool:
    """Same registrable domain; hosts without one (IPs, localhost) match only themselves."""
    if a.lower() == b.lower():
        return True
    ra, rb = registrable_domain(a), registrable_domain(b)
    return ra is not None and ra == rb
