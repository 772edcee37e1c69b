"""Pull sessions without a network: what is asked next and what each answer applies."""

from __future__ import annotations

from domain.receiving import Outcome
from domain.replication import EMPTY_PAGES, GAP_FETCH, GapFill, PageRequest, PullResult, PullSession

PEER = "urn:domain:b.example.org"


def page(txs, last, more):
    return {"transactions": txs, "last": last, "more": more}


def test_a_pull_starts_after_the_stored_cursor():
    session = PullSession(PEER, "g7")

    assert session.next_request() == PageRequest("g7")


def test_each_page_is_applied_with_the_cursor_it_ends_at_and_the_next_page_follows_it():
    session = PullSession(PEER, None)

    step = session.receive_page(page([{"gid": "g1"}, {"gid": "g2"}], "g2", True))

    assert step.transactions == [{"gid": "g1"}, {"gid": "g2"}]
    assert step.cursor == "g2"
    assert session.next_request() == PageRequest("g2")


def test_the_pull_stops_when_the_peer_has_no_more():
    session = PullSession(PEER, "g2")

    session.receive_page(page([{"gid": "g3"}], "g3", False))

    assert session.next_request() is None
    assert session.result.pages == 1
    assert not session.stalled


def test_a_page_without_last_keeps_the_cursor():
    session = PullSession(PEER, "g2")

    step = session.receive_page(page([], None, False))

    assert step.cursor == "g2"


def test_a_page_from_an_empty_outbox_moves_no_cursor():
    session = PullSession(PEER, None)

    step = session.receive_page(page([], None, False))

    assert step.cursor is None
    assert session.next_request() is None


def test_a_peer_that_says_more_without_moving_the_cursor_is_not_asked_again():
    session = PullSession(PEER, "g2")

    session.receive_page(page([], "g2", True))

    assert session.next_request() is None
    assert session.stalled


def test_a_peer_that_moves_its_cursor_back_to_an_earlier_one_is_not_asked_again():
    session = PullSession(PEER, "g0")

    session.receive_page(page([], "g1", True))
    session.receive_page(page([], "g2", True))
    session.receive_page(page([], "g1", True))

    assert session.next_request() is None
    assert session.stalled


def test_a_pull_pauses_after_pages_that_bring_nothing_new_under_fresh_cursors():
    session = PullSession(PEER, None)
    for i in range(EMPTY_PAGES):
        assert session.next_request() is not None
        session.receive_page(page([{"gid": "same"}], f"fresh-{i}", True))
        session.applied([Outcome("same", "duplicate")])

    assert session.next_request() is None
    assert session.paused and not session.stalled


def test_a_page_that_stores_something_resets_the_pause_count():
    session = PullSession(PEER, None)
    for i in range(2 * EMPTY_PAGES):
        session.receive_page(page([{"gid": f"g{i}"}], f"c{i}", True))
        session.applied([Outcome(f"g{i}", "duplicate" if i % 50 else "stored")])

    assert session.next_request() is not None and not session.paused


def test_a_pull_stops_at_its_page_bound():
    session = PullSession(PEER, None, max_pages=2)

    session.receive_page(page([], "g1", True))
    session.receive_page(page([], "g2", True))

    assert session.next_request() is None
    assert session.result.pages == 2


def test_outcomes_are_counted_by_status():
    session = PullSession(PEER, None)

    session.applied([Outcome("g1", "stored"), Outcome("g2", "pending"), Outcome("g3", "refused"),
                     Outcome("g4", "duplicate")])

    assert (session.result.received, session.result.stored, session.result.pending,
            session.result.refused) == (4, 1, 1, 1)


def test_a_gap_fill_lists_from_the_start_and_fetches_only_what_is_lacking_in_chunks():
    result = PullResult(PEER)
    session = GapFill(result)
    gids = [f"g{i}" for i in range(GAP_FETCH + 5)]

    first = session.next_request()
    step = session.receive_gids({"gids": gids, "last": gids[-1], "more": False}, have={"g0", "g1"})

    assert first == PageRequest(None)
    assert step.chunks == [gids[2:GAP_FETCH + 2], gids[GAP_FETCH + 2:]]
    assert step.cursor == gids[-1]
    assert session.next_request() is None
    assert result.gap_filled


def test_a_gap_fill_pages_on_while_the_peer_has_more():
    session = GapFill(PullResult(PEER))

    step = session.receive_gids({"gids": ["g1"], "last": "g1", "more": True}, have={"g1"})

    assert step.chunks == []
    assert step.cursor == "g1"
    assert session.next_request() == PageRequest("g1")
