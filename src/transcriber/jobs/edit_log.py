"""The revisions of edited transcripts, in the job database (table `transcript_edits`).

A revision is written only as the successor of the revision its editor read: the row's
key is (task, revision), so of two editors who both read revision N, one writes N + 1
and the other gets an EditConflictError, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from transcriber.edits import Revision, SegmentChange
from transcriber.errors import EditConflictError
from transcriber.formats.json_doc import segment_from_dict, segment_to_dict
from transcriber.jobs.models import EditRow


class EditLog:
    def __init__(self, session: sessionmaker[Session]) -> None:
        self._session = session

    def revisions(self, task_id: str) -> list[Revision]:
        """Every revision of the task's transcript, oldest first ([] when never edited)."""
        q = select(EditRow).where(EditRow.task_id == task_id).order_by(EditRow.revision)
        with self._session() as s:
            return [_revision(row) for row in s.scalars(q)]

    def latest(self, task_id: str) -> int:
        q = select(func.max(EditRow.revision)).where(EditRow.task_id == task_id)
        with self._session() as s:
            return int(s.scalar(q) or 0)

    def append(
        self,
        task_id: str,
        read: int,
        changes: Sequence[SegmentChange],
        speaker_names: Mapping[str, str],
        undoes: int | None = None,
    ) -> Revision:
        """Write revision `read + 1`; EditConflictError unless `read` is the latest."""
        rev = Revision(read + 1, tuple(changes), dict(speaker_names),
                       datetime.now(UTC), undoes)  # fmt: skip
        try:
            with self._session.begin() as s:
                latest = s.scalar(
                    select(func.max(EditRow.revision)).where(EditRow.task_id == task_id)
                )
                if int(latest or 0) != read:
                    raise edit_conflict(task_id, read, int(latest or 0))
                s.add(_row(task_id, rev))
        except IntegrityError:  # another editor wrote read + 1 first
            raise edit_conflict(task_id, read, self.latest(task_id)) from None
        return rev


def edit_conflict(task_id: str, read: int, latest: int) -> EditConflictError:
    return EditConflictError(
        f"the transcript of task {task_id} is at revision {latest}, not {read}: someone"
        " else changed it since you read it; read it again and repeat your change"
    )


def _row(task_id: str, rev: Revision) -> EditRow:
    assert rev.created_at is not None
    return EditRow(
        task_id=task_id,
        revision=rev.number,
        created_at=rev.created_at,
        segments=[
            {"id": c.id, "before": segment_to_dict(c.before), "after": segment_to_dict(c.after)}
            for c in rev.changes
        ],
        speaker_names=dict(rev.speaker_names),
        undoes=rev.undoes,
    )


def _revision(row: EditRow) -> Revision:
    changes: list[Any] = row.segments
    created = row.created_at
    return Revision(
        number=row.revision,
        changes=tuple(
            SegmentChange(segment_from_dict(c["before"]), segment_from_dict(c["after"]))
            for c in changes
        ),
        speaker_names=dict(row.speaker_names or {}),
        created_at=created.replace(tzinfo=UTC) if created.tzinfo is None else created,
        undoes=row.undoes,
    )
