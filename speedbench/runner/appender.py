"""RecordsAppender: one point's request records on their way to disk, off the load client's event loop."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from speedbench.core.records import RequestRecord
from speedbench.results import ResultsDir


class RecordsAppender:
    """One point's records on their way to disk: appended in batches, each flushed and fsynced, when
    ``every`` records wait or the oldest has waited ``every_s`` seconds (``flush_if_due``, called by a
    timer, bounds the wait when no record arrives). A crash loses the requests in flight and at most
    those that ended in the last ``every_s`` seconds (at most ``every``). ``close`` flushes and compacts.

    The writes run on one writer thread, in order: the caller is the load client's event loop, and a
    batch's encoding, compression and fsync (1-6 ms here, more on a slow disk) held every request that
    ended meanwhile, which the client's send-delay rule then flagged as CLIENT-BOUND on a quiet machine.
    A write that failed (disk full, read-only) is raised by the next ``add``/``flush``/``close``."""

    def __init__(
        self,
        results: ResultsDir,
        point_id: str,
        *,
        every: int = 64,
        every_s: float = 1.0,
        output_ids: bool = True,
        text: str = "auto",
    ) -> None:
        self.results, self.point_id = results, point_id
        self.every, self.every_s = every, every_s
        self.output_ids, self.text = output_ids, text
        self.pending: list[RequestRecord] = []
        self._oldest = 0.0  # monotonic time the oldest pending record arrived
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"records-{point_id}")
        self._writes: list[Future] = []  # batches handed to the writer, oldest first

    def add(self, rec: RequestRecord) -> None:
        if not self.pending:
            self._oldest = time.monotonic()
        self.pending.append(rec)
        if len(self.pending) >= self.every:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if self.pending and time.monotonic() - self._oldest >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Hand the waiting records to the writer (raising a write that failed since the last call)."""
        self._raise_failed()
        if self.pending:
            batch, self.pending = self.pending, []
            self._writes.append(
                self._writer.submit(
                    self.results.append_records, self.point_id, batch, output_ids=self.output_ids, text=self.text
                )
            )

    def _raise_failed(self) -> None:
        while self._writes and self._writes[0].done():
            self._writes.pop(0).result()  # re-raises the write's error here, in the caller

    def close(self) -> None:
        """Every record written (waiting for the writer), then the file compacted."""
        try:
            self.flush()
            for write in self._writes:
                write.result()
            self._writes = []
        finally:
            self._writer.shutdown(wait=True)
        self.results.compact_records(self.point_id)
