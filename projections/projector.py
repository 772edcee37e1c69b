"""Runs every read model over the event store, exactly once per event.

The projector pulls notifications after its tracking position and, for
each batch, writes every view's rows *and* the new position in one database
transaction. The position is advanced with a compare-and-set, so two
projectors (two processes on one store) never apply a batch twice: the
loser's transaction rolls back. A crash between storing events and
projecting them just leaves the position behind; the next ``catch_up``
(every node start runs one) projects what is missing.

Normally nothing is left behind at all: ``project_in_commit`` (the
recorder's in-commit hook) projects new events in the very transaction that
stores them, when every earlier event is already projected, so a save is
one commit and the read models never lag the store. If the views are
behind (after a crash) or the projection fails, that step is skipped (its
savepoint rolled back, the failure logged), the events are still stored,
and ``settle`` (run after every save) catches up the usual way.

``rebuild`` empties the views and the position in one transaction and
replays from the start with the same code, so a rebuilt state equals the
incrementally built one.

The views' layout has a version (``VIEWS_VERSION``, kept in
``view_schema``): a node whose views were built by another layout drops
them when it opens the store and rebuilds them from the events, which are
the only thing that is kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from eventsourcing.persistence import ApplicationRecorder

from projections import attachments, backlinks, conflicts, documents, lineage, search, shares, tags, transactions
from projections.entity_view import EntityView
from projections.rehearsal import Pending, Rehearsal, Rehearsed, RowCache, Unrehearsable
from projections.store import Cursor, Database

log = logging.getLogger(__name__)

TRACKING_DDL = [
    "CREATE TABLE IF NOT EXISTS view_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "INSERT INTO view_tracking (name, position) VALUES ('views', 0) ON CONFLICT (name) DO NOTHING",
]
VIEWS_VERSION = 6  # raise it with every change to a view's tables or to what their rows mean
SCHEMA_DDL = "CREATE TABLE IF NOT EXISTS view_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)"
MODULES = (documents, tags, shares, attachments, conflicts, transactions, backlinks, lineage)
VIEW_TABLES = (*(table for module in MODULES for table in module.TABLES), *search.TABLES)  # of any store kind
BATCH = 1000
REBUILD_BATCH = 5000


class ProjectionRaceLost(Exception):
    """Another projector advanced the position first; this batch was rolled back."""


class Projector:
    def __init__(self, db: Database, recorder: ApplicationRecorder, *, batch: int = BATCH,
                 search_language: str | None = None) -> None:
        self.db = db
        self._language = search_language  # None: the store's (create_tables reads it)
        self.search = search.SearchIndex(getattr(db, "dialect", "sqlite"), search_language or search.DEFAULT)
        self.recorder = recorder
        self.batch = batch
        self.views: list[EntityView] = [documents.DocumentsView(), tags.TagsView(), shares.SharesView(),
                                        attachments.AttachmentsView()]
        self._lock = threading.Lock()
        self._known: int | None = None  # position this projector last wrote, if still current
        self._stored = 0  # the last sequence number this process stored (committed)
        self._rows = RowCache()  # entity rows for rehearsals (projections/rehearsal.py)
        self.checkable = {view.table: view.key for view in self.views}  # what a rehearsal may read, by key column

    def create_tables(self) -> None:
        """Create the views, or drop and re-create them if another layout built them (then the next
        ``catch_up`` rebuilds them)."""
        with self.db.transaction() as cur:
            cur.execute(SCHEMA_DDL)
            row = cur.execute("SELECT version FROM view_schema WHERE id = 1").fetchone()
            language, changed = search.language_of(cur, self._language)
            self.search = search.SearchIndex(self.search.dialect, language)
            if row is None or row["version"] != VIEWS_VERSION or changed:
                # (no row: a new store, or views from before the layout had a version)
                log.info("views of layout %s are replaced by layout %d, rebuilt from the events%s",
                         row["version"] if row else "1 or none", VIEWS_VERSION,
                         f" (search language now {language})" if changed else "")
                for table in ("view_tracking", *VIEW_TABLES):
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute("INSERT INTO view_schema (id, version) VALUES (1, ?) "
                            "ON CONFLICT (id) DO UPDATE SET version = excluded.version", (VIEWS_VERSION,))
            for statement in [*(s for module in MODULES for s in module.DDL), *self.search.ddl()]:
                cur.execute(statement)
            for statement in TRACKING_DDL:
                cur.execute(statement)

    def position(self) -> int:
        with self.db.read() as cur:
            row = cur.execute("SELECT position FROM view_tracking WHERE name = 'views'").fetchone()
        return int(row["position"])

    def catch_up(self, progress: Callable[[int], None] | None = None, batch: int | None = None) -> int:
        """Project every stored event not yet projected; return how many were."""
        done = 0
        size = batch or self.batch
        with self._lock:
            while True:
                # The last position this projector wrote saves a read per save; if another
                # projector moved on meanwhile, the compare-and-set fails and we re-read.
                position = self.position() if self._known is None else self._known
                notifications = self.recorder.select_notifications(position, size, inclusive_of_start=False)
                if not notifications:
                    return done
                events = [(n.id, decode(n.state)) for n in notifications]
                try:
                    self.project(position, events)
                except ProjectionRaceLost:
                    self._known = None
                    continue
                except BaseException:
                    self._known = None
                    raise
                self._known = events[-1][0]
                done += len(events)
                if progress:
                    progress(len(events))
                if len(events) < size:
                    return done  # reached the end of the store as it was a moment ago

    def settle(self) -> None:
        """After a save: catch up unless this process's saves were all projected in their commits."""
        with self._lock:
            if self._known is not None and self._known >= self._stored:
                return
        self.catch_up()

    def project_in_commit(self, cur: Cursor, stored: list[tuple[int, bytes]],
                          txs: list[dict[str, Any]] | None = None,
                          views: dict[str, dict[str, Any]] | None = None) -> Callable[[], None]:
        """Project newly inserted events inside their insert transaction (the recorder's hook).

        Done only when the position is the sequence number just before them
        (the writer holds the store's write lock, so no lower number is still
        in flight); else, or if a view fails, the savepoint is rolled back and
        ``settle`` projects them after the commit. ``txs`` are the stored
        transactions as the saver holds them (read, never changed, by the
        views), which spares decoding ``stored`` again. ``views``, when
        given, receives the documents rows written, by item gid, once they
        are sure to commit with the events (the saver's answer to an edit,
        without reading the row back).
        """
        first, last = stored[0][0], stored[-1][0]
        seq, table = self.db.sequence_column, self.db.events_table
        projected = False
        cur.execute("SAVEPOINT in_commit_projection")
        try:
            # Its answer is read after the views are written: on PostgreSQL it travels with their first
            # read instead of taking a round trip of its own; when the position was not the one before
            # these events (rare), what the views wrote is rolled back below.
            moved = cur.execute_later(
                "UPDATE view_tracking SET position = ? WHERE name = 'views' AND position = "
                f"(SELECT COALESCE(MAX({seq}), 0) FROM {table} WHERE {seq} < ?) RETURNING position",
                (last, first),
            )
            events = list(zip((i for i, _ in stored), txs, strict=True)) if txs is not None \
                else [(i, decode(state)) for i, state in stored]
            items = self.apply(cur, events)
            projected = moved() is not None
            if projected and views is not None:
                views.update(items)
        except Exception:
            log.exception("projecting events %d-%d in their commit failed; they are stored, "
                          "and projected after it", first, last)
        if not projected:
            cur.execute("ROLLBACK TO SAVEPOINT in_commit_projection")
        cur.execute("RELEASE SAVEPOINT in_commit_projection")
        return self._committed(last, projected)

    def _committed(self, last: int, projected: bool) -> Callable[[], None]:
        """What to note once the save of events up to ``last`` committed (projected with it or not)."""
        def committed() -> None:
            with self._lock:
                self._stored = max(self._stored, last)
                if projected:
                    self._known = max(self._known or 0, last)

        return committed

    # --- rehearsed before the write lock (PostgreSQL; projections/rehearsal.py) -----------------------------
    def rehearse(self, cur: Cursor, txs: list[dict[str, Any]]) -> Rehearsed | None:
        """The views run over transactions about to be stored, reading through ``cur`` and writing nothing;
        None when they need a read that cannot be checked under the lock."""
        rehearsal = Rehearsal(cur, self.checkable, self._rows)
        try:
            items = self.apply(rehearsal, [(Pending(i), tx) for i, tx in enumerate(txs)])
        except Unrehearsable:
            return None
        except Exception:  # the projection under the lock meets it again, and is ready for it
            log.debug("rehearsing the projection failed", exc_info=True)
            return None
        return Rehearsed(rehearsal.read, rehearsal.writes, items)

    def check_later(self, cur: Cursor, rehearsed: Rehearsed) -> Callable[[], dict[str, Any] | None]:
        """Under the write lock, before the insert: queue the statement that tells whether ``rehearsed`` holds."""
        return cur.execute_later(*rehearsed.check_sql(self.checkable, self.db.events_table,
                                                      self.db.sequence_column))

    def replay(self, cur: Cursor, rehearsed: Rehearsed, ids: Sequence[int],
               views: dict[str, dict[str, Any]] | None = None) -> Callable[[], None]:
        """Send a rehearsal's writes that held (``check_later``) with the stored events' sequence numbers."""
        for method, args in rehearsed.resolved(ids):
            getattr(cur, method)(*args)
        cur.execute("UPDATE view_tracking SET position = ? WHERE name = 'views'", (ids[-1],))
        return self.replayed(rehearsed, ids, views)

    def replayed(self, rehearsed: Rehearsed, ids: Sequence[int], views: dict[str, dict[str, Any]] | None = None,
                 *, held: bool = True) -> Callable[[], None]:
        """What to do once a rehearsal's writes (``held``: they were made) went with its events' commit."""
        if not held:
            self.forget_rows()
            return self._committed(ids[-1], False)
        if views is not None:
            views.update(rehearsed.items_with(ids))
        written = rehearsed.written_rows(ids, self.checkable)
        done = self._committed(ids[-1], True)

        def committed() -> None:
            done()
            for table, rows in written.items():
                self._rows.put(table, self.checkable[table], rows)

        return committed

    def forget_rows(self) -> None:
        """Rows a rehearsal took did not hold: read them from the store next time."""
        self._rows.clear()

    def project(self, position: int, events: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Apply one batch to every view and move the position, in one transaction."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE view_tracking SET position = ? WHERE name = 'views' AND position = ?",
                (events[-1][0], position),
            )
            if cur.rowcount != 1:
                raise ProjectionRaceLost
            self.apply(cur, events)

    def apply(self, cur: Cursor, events: Sequence[tuple[int, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """Apply the events to every view; the documents rows written, by item gid."""
        processed = {view.entity: view.process(cur, events) for view in self.views}
        items = processed["item"]
        seqs = {tx["entity_gid"]: seq for seq, tx in events if tx["entity"] == "item"}
        transactions.process(cur, events)  # first: conflicts read the item's DAG from it
        conflicts.update(cur, items.heads, seqs)
        backlinks.update(cur, items.heads)
        lineage.process(cur, events)
        self.search.update(cur, items.rows, processed["tag"].heads)
        return items.rows

    @property
    def tables(self) -> list[str]:
        """The views' tables on this store."""
        return [*(table for module in MODULES for table in module.TABLES), *self.search.tables]

    def reset(self) -> None:
        """Empty every view and the position, in one transaction."""
        with self._lock, self.db.transaction() as cur:
            for table in self.tables:
                cur.execute(f"DELETE FROM {table}")
            cur.execute("UPDATE view_tracking SET position = 0 WHERE name = 'views'")
            self._known = None
            self._stored = 0
            self._rows.clear()

    def forget_position(self) -> None:
        """Read the position from the store next time (another writer, e.g. a rebuild's swap, set it)."""
        with self._lock:
            self._known = None
        self._rows.clear()

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        self.reset()
        # Bigger batches than live catch-up: fewer commits and row round trips per event.
        return self.catch_up(progress, batch=REBUILD_BATCH)


def decode(state: bytes) -> dict[str, Any]:
    """The transaction inside a stored event.

    Every event's state is the library's JSON with a plain ``tx`` dict (no
    compression or encryption is configured), so it is read directly, at a
    fraction of the cost of rebuilding the event object.
    """
    return orjson.loads(state)["tx"]
