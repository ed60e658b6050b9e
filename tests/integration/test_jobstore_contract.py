"""One contract for the job store, run on SQLite (a file) and on a real PostgreSQL.

Stores made on the same URL stand in for separate processes: each has its own
engine and connection pool, as a second API node or Celery worker would.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, text, update

from transcriber.errors import OptionError
from transcriber.jobs import migrate
from transcriber.jobs.models import TaskRow
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.store import SqlJobStore

T = TypeVar("T")
CHECKPOINT = '{"s":[[1,0.0,1.5,"Привет, мир",null,-0.2,0.01,[]]],"a":{"0":1.5},"l":"ru"}'
STEP_TWO = '{"s":[[2,1.5,3.0,"второй шаг",null,null,null,[]]],"a":{"0":3.0},"l":"ru"}'


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    fresh: str = request.getfixturevalue("fresh_postgres_url")
    return fresh


@pytest.fixture
def store(url: str) -> Iterator[SqlJobStore]:
    s = SqlJobStore(url)
    yield s
    s.close()


@pytest.fixture
def stores(url: str) -> Iterator[Callable[[int], list[SqlJobStore]]]:
    made: list[SqlJobStore] = []

    def make(n: int) -> list[SqlJobStore]:
        made.extend(SqlJobStore(url) for _ in range(n))
        return made[-n:]

    yield make
    for s in made:
        s.close()


def add(store: SqlJobStore, owner: str = "alice", name: str = "a.wav") -> TaskRecord:
    return store.create(owner, name, f"{name}/input", {"language": "ru"}, 12.5)


def claimed(store: SqlJobStore) -> TaskRecord:
    task = store.claim_next()
    assert task is not None and task.claim is not None
    return task


def backdate(store: SqlJobStore, task_id: str, **ages_s: float | None) -> None:
    """Set `heartbeat_at`/`started_at` this many seconds in the past (None: no value)."""
    t = datetime.now(UTC)
    values = {k: None if v is None else t - timedelta(seconds=v) for k, v in ages_s.items()}
    with store.engine.begin() as conn:
        conn.execute(update(TaskRow).where(TaskRow.id == task_id).values(**values))


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released together; their results, errors re-raised."""
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        gate.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, c) for c in calls]]


def just_now(t: datetime | None) -> bool:
    return t is not None and abs((datetime.now(UTC) - t).total_seconds()) < 60


# --- tasks ----------------------------------------------------------------------
def test_create_get_and_owner_isolation(store: SqlJobStore) -> None:
    task = store.create("alice", "лекция\x00.mp4", "k/input", {"beam_size": 5}, None, "fixed-id")
    assert task.id == "fixed-id" and task.status == TaskStatus.queued
    assert (task.progress, task.audio_done, task.attempts) == (0.0, 0.0, 0)
    assert task.filename == "лекция.mp4"  # NUL dropped: PostgreSQL text cannot hold it
    got = store.get("fixed-id")
    assert got == task
    assert store.get("fixed-id", owner="alice") == task
    assert store.get("fixed-id", owner="bob") is None
    assert store.get("no-such-task") is None
    generated = add(store)
    assert len(generated.id) == 36 and generated.id != task.id


def test_list_tasks_pages_filters_and_orders_newest_first(store: SqlJobStore) -> None:
    made = [add(store, owner, f"{i}.wav") for i, owner in enumerate(["a", "b", "a", "a", "b"])]
    newest_first = [t.id for t in reversed(made)]
    items, total = store.list_tasks(None, None, limit=10, offset=0)
    assert total == 5 and [t.id for t in items] == newest_first
    page, total = store.list_tasks(None, None, limit=2, offset=2)
    assert total == 5 and [t.id for t in page] == newest_first[2:4]
    mine, total = store.list_tasks("a", None, limit=2, offset=0)
    assert total == 3 and [t.id for t in mine] == [made[3].id, made[2].id]
    running = claimed(store)
    assert running.id == made[0].id
    items, total = store.list_tasks(None, TaskStatus.processing, limit=10, offset=0)
    assert total == 1 and [t.id for t in items] == [made[0].id]
    assert store.list_tasks("b", TaskStatus.processing, limit=10, offset=0) == ([], 0)
    assert store.list_tasks(None, TaskStatus.queued, limit=10, offset=0)[1] == 4
    # Pages by creation time, as the AssemblyAI-style list pages by id.
    older, total = store.list_tasks(None, None, 2, 0, created_before=made[3].created_at)
    assert total == 3 and [t.id for t in older] == [made[2].id, made[1].id]
    newer, total = store.list_tasks("a", None, 10, 0, created_after=made[0].created_at)
    assert total == 2 and [t.id for t in newer] == [made[3].id, made[2].id]


def test_counts_and_queue_position(store: SqlJobStore) -> None:
    assert store.counts() == {}
    a, b, c = add(store), add(store), add(store)
    assert [store.queue_position(t) for t in (a, b, c)] == [1, 2, 3]
    running = claimed(store)
    assert store.queue_position(running) is None
    assert store.queue_position(store.get(c.id) or c) == 2
    store.cancel(b.id)
    assert store.counts() == {"queued": 1, "processing": 1, "cancelled": 1}
    assert store.queue_position(store.get(c.id) or c) == 1


def test_claim_next_takes_the_oldest_with_a_fresh_lease(store: SqlJobStore) -> None:
    assert store.claim_next() is None
    first, second = add(store), add(store)
    task = claimed(store)
    assert task.id == first.id and task.status == TaskStatus.processing
    assert task.attempts == 1 and task.error is None
    assert just_now(task.started_at) and task.heartbeat_at == task.started_at
    other = claimed(store)
    assert other.id == second.id and other.claim != task.claim
    assert store.claim_next() is None


def test_a_stale_claim_changes_nothing(store: SqlJobStore) -> None:
    add(store)
    old = claimed(store)
    assert store.requeue(old.id, old.claim or "")
    new = claimed(store)
    # Handed back at a shutdown, the first run did not use up an attempt.
    assert new.id == old.id and new.claim != old.claim and new.attempts == 1
    stale = old.claim or ""
    assert not store.progress(old.id, stale, "transcribing", 0.5, 5.0)
    assert not store.append_checkpoint(old.id, stale, CHECKPOINT)
    assert not store.heartbeat(old.id, stale)
    assert not store.complete(old.id, stale, "r.json", "ru", 12.5, 1.0)
    assert not store.fail(old.id, stale, "boom")
    assert not store.requeue(old.id, stale)
    now = store.get(old.id)
    assert now is not None and now.status == TaskStatus.processing and now.claim == new.claim
    assert (now.progress, store.checkpoint(old.id), now.error) == (0.0, [], None)
    # A cancelled task is nobody's: its last holder cannot finish it either.
    assert store.cancel(old.id) == TaskStatus.processing
    assert not store.complete(old.id, new.claim or "", "r.json", "ru", 12.5, 1.0)
    assert not store.progress(old.id, new.claim or "", "transcribing", 0.9, 9.0)
    assert (store.get(old.id) or now).status == TaskStatus.cancelled


def test_progress_checkpoint_complete(store: SqlJobStore) -> None:
    add(store)
    task = claimed(store)
    claim = task.claim or ""
    assert store.progress(task.id, claim, "transcribing", 0.25, 3.0, duration=12.0)
    assert store.append_checkpoint(task.id, claim, CHECKPOINT)
    assert store.append_checkpoint(task.id, claim, STEP_TWO)
    now = store.get(task.id)
    assert now is not None
    assert (now.stage, now.progress, now.audio_done, now.duration) == (
        "transcribing",
        0.25,
        3.0,
        12.0,
    )
    assert store.checkpoint(task.id) == [CHECKPOINT, STEP_TWO]  # in order, Cyrillic kept
    said = [{"code": "timestamp_gaps", "message": "пауза", "values": {"gaps": 2, "seconds": 1.5}}]
    assert store.complete(task.id, claim, "r.json", "ru", 12.0, 4.5, warnings=said)
    done = store.get(task.id)
    assert done is not None and done.status == TaskStatus.completed
    assert (done.progress, done.stage, done.claim) == (1.0, None, None)
    assert store.checkpoint(task.id) == []  # a finished task keeps no steps
    assert (done.result_key, done.language, done.processing_time) == ("r.json", "ru", 4.5)
    assert done.warnings == said
    assert just_now(done.finished_at)
    assert not store.complete(task.id, claim, "r.json", "ru", 12.0, 4.5)  # once only


def test_fail_and_requeue_keep_what_they_should(store: SqlJobStore) -> None:
    add(store)
    add(store)
    one, two = claimed(store), claimed(store)
    assert store.append_checkpoint(one.id, one.claim or "", CHECKPOINT)
    assert store.progress(one.id, one.claim or "", "transcribing", 0.5, 6.0)
    assert store.requeue(one.id, one.claim or "")
    back = store.get(one.id)
    assert back is not None and back.status == TaskStatus.queued
    assert (back.claim, back.stage, store.checkpoint(one.id)) == (None, None, [CHECKPOINT])
    assert store.append_checkpoint(two.id, two.claim or "", CHECKPOINT)
    assert store.fail(two.id, two.claim or "", "bad\x00 input")
    assert store.checkpoint(two.id) == []
    failed = store.get(two.id)
    assert failed is not None and failed.status == TaskStatus.failed
    assert (failed.error, failed.claim, failed.stage) == ("bad input", None, None)
    assert just_now(failed.finished_at)


def test_a_task_put_back_counts_its_attempts_and_fails_on_the_last(store: SqlJobStore) -> None:
    # Storage out of reach: the task goes back with its checkpoint, each time costing an
    # attempt, and fails with the outage's reason once its attempts are spent.
    add(store)
    for attempt in range(1, store.max_attempts + 1):
        task = claimed(store)
        assert task.attempts == attempt
        assert store.append_checkpoint(task.id, task.claim or "", CHECKPOINT)
        assert store.put_back(task.id, "someone else's claim", "s3 down", "unavailable") == "kept"
        outcome = store.put_back(task.id, task.claim or "", "s3 down", "unavailable")
        now = store.get(task.id)
        assert now is not None and now.claim is None
        if attempt < store.max_attempts:
            assert outcome == "requeued" and now.status == TaskStatus.queued
            assert store.checkpoint(task.id) == [CHECKPOINT, CHECKPOINT][:attempt]
        else:
            assert outcome == "failed" and now.status == TaskStatus.failed
            assert (now.error, now.error_code) == ("s3 down", "unavailable")
            assert store.checkpoint(task.id) == [] and just_now(now.finished_at)


def test_find_request_prefers_a_finished_task_then_a_live_one(store: SqlJobStore) -> None:
    key = "a" * 64

    def made(owner: str = "alice") -> TaskRecord:
        return store.create(owner, "film.mkv", "k/input", {}, 60.0, request_key=key)

    assert store.find_request("alice", key) is None
    add(store)  # a task without a request key is never found
    first = made()
    assert store.find_request("alice", key) == first  # queued: a repeat waits for it
    assert store.find_request("bob", key) is None  # another owner's request is not reused
    assert store.find_request("alice", "b" * 64) is None
    task = claimed(store)
    task = claimed(store) if task.id != first.id else task
    assert task.id == first.id
    assert store.fail(task.id, task.claim or "", "broken")
    assert store.find_request("alice", key) is None  # a failed task answers nothing
    second = made()
    third = made()
    assert store.find_request("alice", key) == third  # the newest of the live ones
    job = claimed(store)
    assert job.id == second.id
    assert store.complete(job.id, job.claim or "", "r.json", "ru", 60.0, 9.0)
    found = store.find_request("alice", key)
    assert found is not None and (found.id, found.status) == (second.id, TaskStatus.completed)
    assert found.request_key == key
    assert store.cancel(third.id) == TaskStatus.queued
    assert store.find_request("alice", key) == found  # a finished one before anything


def test_webhook_status_is_kept(store: SqlJobStore) -> None:
    task = add(store)
    assert task.webhook_status is None
    store.set_webhook_status(task.id, 503)
    store.set_webhook_status(task.id, 200)
    again = store.get(task.id)
    assert again is not None and again.webhook_status == 200
    store.set_webhook_status("no-such-task", 200)  # a task deleted meanwhile: no error


def test_a_finish_owes_a_webhook_that_one_sender_at_a_time_holds(
    stores: Callable[[int], list[SqlJobStore]],
) -> None:
    a, b = stores(2)  # two processes
    with_hook, without, failing = add(a), add(a), add(a)
    for task, hook in ((with_hook, True), (without, False)):
        held = claimed(a)
        assert held.id == task.id
        assert a.complete(task.id, held.claim or "", "r.json", "ru", 1.0, 1.0, webhook=hook)
    held = claimed(a)
    assert a.fail(failing.id, held.claim or "", "bad input", webhook=True)
    assert a.webhooks_due() == [with_hook.id, failing.id]  # owed from the finish, oldest first
    owed = a.get(with_hook.id)
    assert owed is not None and just_now(owed.webhook_due_at) and owed.webhook_status is None

    assert a.claim_webhook(with_hook.id, lease_s=60)
    assert not b.claim_webhook(with_hook.id, lease_s=60)  # held by a live sender
    assert not b.claim_webhook(without.id, lease_s=60)  # nothing owed
    assert b.webhooks_due() == [failing.id]

    assert b.claim_webhook(failing.id, lease_s=0.3)
    assert b.webhooks_due() == []
    time.sleep(0.5)  # b died while posting: its lease lapses and the delivery is owed again
    assert a.webhooks_due() == [failing.id]
    assert a.claim_webhook(failing.id, lease_s=60)

    a.set_webhook_status(with_hook.id, 200)
    done = b.get(with_hook.id)
    assert done is not None and (done.webhook_status, done.webhook_due_at) == (200, None)
    assert not b.claim_webhook(with_hook.id, lease_s=60)  # delivered: never sent again


def test_retry_drops_the_owed_webhook_of_the_failed_run(store: SqlJobStore) -> None:
    task = add(store)
    held = claimed(store)
    assert store.fail(task.id, held.claim or "", "boom", webhook=True)
    assert store.webhooks_due() == [task.id]
    assert store.retry(task.id)
    assert store.webhooks_due() == []


def test_recover_releases_the_webhooks_a_dead_process_held(store: SqlJobStore) -> None:
    task = add(store)
    held = claimed(store)
    assert store.complete(task.id, held.claim or "", "r.json", "ru", 1.0, 1.0, webhook=True)
    assert store.claim_webhook(task.id, lease_s=600)
    assert store.webhooks_due() == []
    store.recover()  # the embedded queue's start: this process is the only sender
    assert store.webhooks_due() == [task.id]


def test_cancel_retry_delete(store: SqlJobStore) -> None:
    finished, running, queued = add(store), add(store), add(store)
    last = claimed(store)  # oldest first
    assert last.id == finished.id
    assert store.complete(last.id, last.claim or "", "r.json", "en", 1.0, 1.0)
    assert claimed(store).id == running.id

    assert store.cancel(queued.id) == TaskStatus.queued
    assert store.cancel(running.id) == TaskStatus.processing
    assert store.cancel(finished.id) == TaskStatus.completed
    assert store.cancel("no-such-task") is None
    for task_id in (queued.id, running.id):
        t = store.get(task_id)
        assert t is not None and t.status == TaskStatus.cancelled
        assert t.claim is None and t.stage is None and just_now(t.finished_at)
    assert (store.get(finished.id) or last).status == TaskStatus.completed

    add(store)  # the retried task goes behind this one
    assert not store.retry(finished.id)  # a completed task does not retry
    assert store.retry(running.id)
    again = store.get(running.id)
    assert again is not None and again.status == TaskStatus.queued
    assert (again.error, again.progress, again.finished_at, store.checkpoint(running.id)) == (
        None, 0.0, None, [],
    )  # fmt: skip
    assert store.queued_ids()[-1] == running.id
    assert not store.retry(running.id)  # queued now: nothing to retry

    store.delete(running.id)
    assert store.get(running.id) is None
    store.delete(running.id)  # deleting twice is harmless


def test_a_failure_keeps_its_code_and_a_retry_its_new_options(store: SqlJobStore) -> None:
    task = add(store)
    held = claimed(store)
    end = datetime.now(UTC) + timedelta(seconds=30)
    assert store.progress(task.id, held.claim or "", "transcribing", 0.1, 1.0, 12.5, end)
    running = store.get(task.id)
    assert running is not None and running.expected_end_at == end
    assert store.fail(task.id, held.claim or "", "notes.txt: not media", code="not_media")
    failed = store.get(task.id)
    assert failed is not None and failed.error_code == "not_media"
    assert failed.expected_end_at is None
    assert store.retry(task.id, {"language": "en", "diarize": True})
    again = store.get(task.id)
    assert again is not None and again.options == {"language": "en", "diarize": True}
    assert again.error_code is None and again.error is None


def test_recent_runs_say_how_fast_tasks_finished(store: SqlJobStore) -> None:
    for spent in (3.0, 6.0):
        task = store.create("alice", "a.wav", "a/input", {"model": "base"}, 60.0)
        held = store.claim(task.id)
        assert held is not None
        assert store.complete(task.id, held.claim or "", "r.json", "ru", 60.0, spent)
    add(store)  # still queued: not a run
    runs = store.recent_runs()
    assert [(o["model"], spent, audio) for o, spent, audio in runs] == [
        ("base", 6.0, 60.0), ("base", 3.0, 60.0),
    ]  # fmt: skip


def test_two_editors_of_one_revision_write_one_next_revision(
    stores: Callable[[int], list[SqlJobStore]],
) -> None:
    from transcriber.domain import Segment
    from transcriber.edits import SegmentChange
    from transcriber.errors import EditConflictError

    a, b = stores(2)  # two API nodes
    task = add(a)
    seg = Segment(1, 0.0, 1.5, "Привет, мир", speaker="A")
    mine = SegmentChange(seg, Segment(1, 0.0, 1.5, "Привет, мир!", speaker="A"))
    theirs = SegmentChange(seg, Segment(1, 0.0, 1.5, "Привет, Мир", speaker="B"))

    def save(store: SqlJobStore, change: SegmentChange, names: dict[str, str]) -> str:
        try:
            store.edits.append(task.id, 0, [change], names)
            return "saved"
        except EditConflictError as e:
            return e.message

    results = race([partial(save, a, mine, {"A": "Анна"}), partial(save, b, theirs, {})])
    assert sorted(r == "saved" for r in results) == [False, True], results
    assert any("revision 1, not 0" in r for r in results)
    (only,) = a.edits.revisions(task.id)
    assert only.number == 1 and only.changes[0].after.text in ("Привет, мир!", "Привет, Мир")
    assert only.changes[0].before == seg and only.created_at is not None
    second = b.edits.append(task.id, 1, [], {"A": "Анна Петровна"}, undoes=None)
    assert second.number == 2 and a.edits.latest(task.id) == 2
    assert [r.speaker_names for r in b.edits.revisions(task.id)][-1] == {"A": "Анна Петровна"}
    a.delete(task.id)
    assert b.edits.revisions(task.id) == []


def test_datetimes_are_utc_aware(store: SqlJobStore) -> None:
    add(store)
    task = claimed(store)
    store.fail(task.id, task.claim or "", "x")
    store.add_key("k1", "ci", "h" * 64)
    t = store.get(task.id)
    assert t is not None
    stamps = [t.created_at, t.started_at, t.finished_at, t.heartbeat_at]
    stamps += [created for _, _, created, _ in store.list_keys()]
    for stamp in stamps:
        assert stamp is not None and stamp.utcoffset() == timedelta(0), stamp
        assert just_now(stamp)
    assert t.created_at <= t.started_at <= t.finished_at  # type: ignore[operator]


def test_api_keys(store: SqlJobStore) -> None:
    assert not store.has_keys() and store.list_keys() == []
    store.add_key("id-one", "laptop", "a" * 64)
    store.add_key("id-two", "ci", "b" * 64)
    assert store.has_keys()
    assert store.find_key("a" * 64) == "id-one" and store.find_key("c" * 64) is None
    assert sorted((k, n) for k, n, _, _ in store.list_keys()) == [
        ("id-one", "laptop"),
        ("id-two", "ci"),
    ]
    with pytest.raises(OptionError, match="at most 100"):
        store.add_key("id-three", "x" * 101, "c" * 64)
    assert len(store.list_keys()) == 2


def test_a_task_whose_process_keeps_dying_fails_on_its_last_attempt(url: str) -> None:
    store = SqlJobStore(url, max_attempts=3)
    try:
        poison = store.create("alice", "яд.mp3", "p/input", {"webhook": {"url": "http://x"}}, 9.0)
        for attempt in (1, 2, 3):
            task = claimed(store)
            assert task.id == poison.id and task.attempts == attempt
            store.append_checkpoint(task.id, task.claim or "", CHECKPOINT)
            recovered = store.recover()  # the process died under it
            assert recovered == ([poison.id] if attempt < 3 else [])
        dead = store.get(poison.id)
        assert dead is not None and dead.status == TaskStatus.failed and dead.attempts == 3
        assert dead.error is not None and dead.error.startswith("яд.mp3: gave up after 3 attempts")
        assert just_now(dead.finished_at) and dead.claim is None
        assert store.webhooks_due() == [poison.id]  # the client hears of it
        assert store.checkpoint(poison.id) == []
        assert store.claim_next() is None  # not run again
        listed, total = store.list_tasks("alice", TaskStatus.failed, 10, 0)
        assert total == 1 and listed[0].id == poison.id  # the dead letters, by status
        assert store.retry(poison.id)  # and one more try when the user asks
        again = claimed(store)
        assert again.id == poison.id and again.attempts == 4

        # Shutdowns hand the attempt back: however many, they never fail a task.
        calm = add(store)
        store.recover()  # the retried one fails again at once: it was on its last
        for _ in range(5):
            task = claimed(store)
            assert task.id == calm.id and task.attempts == 1
            assert store.requeue(task.id, task.claim or "")

        # A lapsed lease (Celery workers) counts as a death too.
        stale = claimed(store)
        for attempt in (1, 2, 3):
            backdate(store, stale.id, heartbeat_at=600)
            assert store.requeue_stale(60) == ([stale.id] if attempt < 3 else [])
            if attempt < 3:
                stale = claimed(store)
        gone = store.get(calm.id)
        assert gone is not None and gone.status == TaskStatus.failed
        assert "gave up after 3 attempts" in (gone.error or "")
    finally:
        store.close()


def test_each_owner_gets_one_webhook_secret(
    store: SqlJobStore, stores: Callable[[int], list[SqlJobStore]]
) -> None:
    nodes = stores(4)
    made = race([partial(n.webhook_secret, "key-1") for n in nodes])  # first use, at once
    assert len(set(made)) == 1 and made[0].startswith("whsec_")
    assert store.webhook_secret("key-1") == made[0]
    assert store.webhook_secret("") not in (made[0], "")  # the open service has its own


def test_recover_requeues_every_processing_task(store: SqlJobStore) -> None:
    add(store)
    add(store)
    add(store)
    a, b = claimed(store), claimed(store)
    store.append_checkpoint(a.id, a.claim or "", CHECKPOINT)
    store.progress(b.id, b.claim or "", "decoding", 0.1, 1.0)
    assert sorted(store.recover()) == sorted([a.id, b.id])
    for task_id in (a.id, b.id):
        t = store.get(task_id)
        assert t is not None and t.status == TaskStatus.queued
        assert t.claim is None and t.stage is None
    assert store.checkpoint(a.id) == [CHECKPOINT]
    assert store.recover() == []
    assert store.counts() == {"queued": 3}


# --- leases ---------------------------------------------------------------------
def test_claim_takes_only_the_given_queued_task(store: SqlJobStore) -> None:
    older, wanted = add(store), add(store)
    task = store.claim(wanted.id)
    assert task is not None and task.id == wanted.id and task.status == TaskStatus.processing
    assert task.claim and task.attempts == 1 and just_now(task.heartbeat_at)
    assert task.heartbeat_at == task.started_at
    assert store.claim(wanted.id) is None  # already held
    assert store.claim("no-such-task") is None
    assert (store.get(older.id) or older).status == TaskStatus.queued
    store.cancel(older.id)
    assert store.claim(older.id) is None  # cancelled tasks are not run


def test_heartbeat_and_progress_renew_the_lease(store: SqlJobStore) -> None:
    add(store)
    task = claimed(store)
    claim = task.claim or ""
    backdate(store, task.id, heartbeat_at=600)
    assert store.heartbeat(task.id, claim)
    after = store.get(task.id)
    assert after is not None and just_now(after.heartbeat_at)
    assert after.heartbeat_at > task.heartbeat_at  # type: ignore[operator]
    backdate(store, task.id, heartbeat_at=600)
    assert store.progress(task.id, claim, "transcribing", 0.3, 3.0)
    assert just_now((store.get(task.id) or task).heartbeat_at)
    assert not store.heartbeat(task.id, "someone-else")
    store.complete(task.id, claim, "r.json", "ru", 1.0, 1.0)
    assert not store.heartbeat(task.id, claim)  # nothing to hold once it is finished


def test_requeue_stale_takes_back_only_lapsed_leases(store: SqlJobStore) -> None:
    for _ in range(4):
        add(store)
    live, lapsed, never_beat, just_started = (claimed(store) for _ in range(4))
    store.append_checkpoint(lapsed.id, lapsed.claim or "", CHECKPOINT)
    store.progress(lapsed.id, lapsed.claim or "", "transcribing", 0.5, 6.0)
    backdate(store, live.id, started_at=3600, heartbeat_at=5)
    backdate(store, lapsed.id, started_at=3600, heartbeat_at=120)
    backdate(store, never_beat.id, started_at=120, heartbeat_at=None)  # before 0002
    backdate(store, just_started.id, started_at=5, heartbeat_at=None)

    assert sorted(store.requeue_stale(60)) == sorted([lapsed.id, never_beat.id])
    back = store.get(lapsed.id)
    assert back is not None and back.status == TaskStatus.queued
    assert (back.claim, back.stage, store.checkpoint(lapsed.id)) == (None, None, [CHECKPOINT])
    assert back.attempts == 1  # counted again only when it is claimed again
    for kept in (live, just_started):
        t = store.get(kept.id)
        assert t is not None and t.status == TaskStatus.processing and t.claim == kept.claim
    # The old holder finds out at its next heartbeat, and can no longer finish it.
    assert not store.heartbeat(lapsed.id, lapsed.claim or "")
    assert not store.complete(lapsed.id, lapsed.claim or "", "r.json", "ru", 1.0, 1.0)
    assert store.requeue_stale(60) == []
    assert set(store.queued_ids()) == {lapsed.id, never_beat.id}


def test_queued_ids_oldest_first(store: SqlJobStore) -> None:
    made = [add(store, name=f"{i}.wav") for i in range(5)]
    assert store.queued_ids() == [t.id for t in made]
    assert store.queued_ids(limit=2) == [made[0].id, made[1].id]
    first = claimed(store)
    store.cancel(made[1].id)
    assert store.queued_ids() == [t.id for t in made[2:]]
    store.requeue(first.id, first.claim or "")  # keeps its place: created_at is unchanged
    assert store.queued_ids(limit=1) == [made[0].id]


# --- several processes ----------------------------------------------------------
def test_racing_claimers_take_each_task_exactly_once(
    store: SqlJobStore, stores: Callable[[int], list[SqlJobStore]]
) -> None:
    ids = {add(store, name=f"{i}.wav").id for i in range(40)}

    def drain(s: SqlJobStore) -> list[str]:
        got = []
        while (task := s.claim_next()) is not None:
            got.append(task.id)
        return got

    taken = race([partial(drain, s) for s in stores(6)])
    flat = [task_id for got in taken for task_id in got]
    assert len(flat) == len(set(flat)) == 40 and set(flat) == ids
    assert sum(1 for got in taken if got) >= 2, "the claimers did not overlap"
    assert store.counts() == {"processing": 40}
    items, _ = store.list_tasks(None, None, limit=100, offset=0)
    assert {t.attempts for t in items} == {1} and len({t.claim for t in items}) == 40


def test_racing_claims_of_one_task_give_it_to_one(
    store: SqlJobStore, stores: Callable[[int], list[SqlJobStore]]
) -> None:
    for _ in range(5):
        task = add(store)
        got = race([partial(s.claim, task.id) for s in stores(4)])
        winners = [t for t in got if t is not None]
        assert len(winners) == 1 and (store.get(task.id) or task).claim == winners[0].claim


def test_racing_requeue_stale_returns_disjoint_ids(
    store: SqlJobStore, stores: Callable[[int], list[SqlJobStore]]
) -> None:
    one, two = stores(2)
    one.max_attempts = two.max_attempts = 10  # three rounds of lapsed leases: not poison
    for _ in range(30):
        add(store)
    for _round in range(3):
        held = [claimed(store) for _ in range(30)]
        live = held[0]
        for t in held[1:]:
            backdate(store, t.id, heartbeat_at=300)
        first, second = race([partial(one.requeue_stale, 60), partial(two.requeue_stale, 60)])
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted(t.id for t in held[1:])
        assert (store.get(live.id) or live).claim == live.claim  # the live lease stays
        store.requeue(live.id, live.claim or "")
        assert store.counts() == {"queued": 30}


NODES = 8
START = """
import sys
from transcriber.jobs.store import SqlJobStore
print("imported", flush=True)
sys.stdin.readline()
SqlJobStore(sys.argv[1]).close()
"""


def test_nodes_starting_together_on_postgres_migrate_once(fresh_postgres_url: str) -> None:
    # Real processes, released together: Alembic's state is per process.
    # (A SQLite file belongs to one service process.)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, fresh_postgres_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(NODES)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "imported\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * NODES, errors
    store = SqlJobStore(fresh_postgres_url)
    try:
        add(store)
        assert store.counts() == {"queued": 1}
    finally:
        store.close()


def test_a_0001_database_is_migrated_with_its_rows(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")
    created = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasks (id, owner, status, progress, audio_done, filename, input_key,"
                " options, duration, attempts, claim, started_at, created_at, checkpoint)"
                " VALUES ('old-1', 'alice', 'processing', 0.5, 6.0, 'старый.wav', 'old-1/input',"
                " :options, 12.0, 1, 'c-1', :created, :created, :checkpoint)"
            ),
            {"options": '{"language": "ru"}', "checkpoint": '{"done_s": 6.0}', "created": created},
        )
        conn.execute(
            text("INSERT INTO api_keys VALUES ('k1', 'laptop', :h, :created)"),
            {"h": "a" * 64, "created": created},
        )
    engine.dispose()

    store = SqlJobStore(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (migrate.head(),)
            ]
        task = store.get("old-1")
        assert task is not None and task.heartbeat_at is None and task.webhook_status is None
        assert task.webhook_due_at is None and task.warnings is None
        assert task.request_key is None
        assert task.error_code is None and task.expected_end_at is None
        assert store.edits.revisions("old-1") == []
        assert (task.status, task.filename, task.options) == (
            TaskStatus.processing, "старый.wav", {"language": "ru"},
        )  # fmt: skip
        assert store.checkpoint("old-1") == ['{"done_s": 6.0}'] and task.created_at == created
        assert store.find_key("a" * 64) == "k1"
        # A task claimed before leases existed is judged by its start time.
        assert store.requeue_stale(60) == ["old-1"]
        again = store.claim("old-1")
        assert again is not None and again.attempts == 2 and just_now(again.heartbeat_at)
    finally:
        store.close()
