"""The review cache: the same heads give the review computed before, other heads a new one, and it is bounded."""

from __future__ import annotations

from domain.review import ReviewCache


def test_a_review_is_computed_once_per_set_of_heads_and_the_oldest_is_dropped():
    made: list[tuple[str, ...]] = []

    def maker(*heads: str):
        return lambda: made.append(heads) or object()

    cache = ReviewCache(size=2)
    first = cache.get("item", ["b", "a"], maker("a", "b"))
    assert cache.get("item", ["a", "b"], maker("again")) is first  # the order of the heads does not matter
    other = cache.get("item", ["a", "c"], maker("a", "c"))  # a head arrived: another review
    cache.get("other", ["x", "y"], maker("x", "y"))  # a third: the least recently used (a, b) goes
    assert cache.get("item", ["a", "b"], maker("a", "b", "again")) is not first
    assert other is not first and made == [("a", "b"), ("a", "c"), ("x", "y"), ("a", "b", "again")]
