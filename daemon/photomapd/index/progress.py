"""What an index run reports: the progress event the CLI draws as a bar and the panel receives over SSE.

Kept apart from the run itself so that a CLI following a daemon's run imports no lancedb or torch.
"""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, Field

Phase = Literal[
    "idle", "queued", "scanning", "removing", "loading_model", "embedding", "optimizing", "swapping", "mapping", "done"
]
State = Literal["idle", "queued", "running", "done", "failed", "cancelled"]
MAX_LISTED_SKIPS = 500  # the progress event lists this many skipped files; the count covers all


class SkippedFile(BaseModel):
    path: str
    reason: str


class IndexProgress(BaseModel):
    """One progress event; the CLI draws it as a bar, the panel receives it over SSE."""

    album: str
    run_id: int = 0  # which run this is, per album and daemon: a CLI follows the run it asked for
    mode: Literal["update", "rebuild"] = "update"
    state: State = "idle"
    phase: Phase = "idle"
    done: int = 0
    total: int = 0
    rate: float | None = None  # images per second during embedding
    eta_s: float | None = None
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped_count: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.done / self.total


ProgressFn = Callable[[IndexProgress], None]


def describe(progress: IndexProgress) -> str:
    """One line summing up a finished run, for the CLI and logs."""
    parts = [f"{progress.new} new", f"{progress.changed} changed", f"{progress.removed} removed"]
    parts.append(f"{progress.unchanged} unchanged")
    if progress.skipped_count:
        parts.append(f"{progress.skipped_count} skipped")
    return ", ".join(parts)


class ReportsProgress:
    """The reporting half of a run, folders' or a board's: its `progress`, published as a copy after each change."""

    progress: IndexProgress
    on_progress: ProgressFn

    def _emit(self, **changes: object) -> None:
        for name, value in changes.items():
            setattr(self.progress, name, value)
        self.on_progress(self.progress.model_copy(deep=True))

    def _list_skip(self, shown_path: str, reason: str) -> None:
        self.progress.skipped_count += 1
        if len(self.progress.skipped) < MAX_LISTED_SKIPS:
            self.progress.skipped.append(SkippedFile(path=shown_path, reason=reason))
