"""What a person watching a run sees: a tqdm bar on a terminal, else a plain log line every few seconds."""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, interval: float):
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.shown = 0
        self.bar = None
        if sys.stderr.isatty():  # imported only here: 20 ms of every start otherwise
            from tqdm import tqdm

            self.bar = tqdm(unit="mini-batch", desc="extract", dynamic_ncols=True)

    def update(self, done: int, failed: int, total: int | None) -> None:
        """`done` of `total` mini-batches (None while planning), `failed` of them failed."""
        now = time.monotonic()
        if self.bar is not None:
            if total is not None and self.bar.total != total:
                self.bar.total = total
            if done != self.shown:
                self.bar.update(done - self.shown)
                self.bar.set_postfix(failed=failed, refresh=False)
                self.shown = done
        elif now - self.last >= self.interval:
            rate = done / max(now - self.started, 1e-9)
            if total is None:
                eta = "planning"
            else:
                eta = f"ETA {(total - done) / rate:.0f}s" if rate else "ETA unknown"
            log.info("progress: %d/%s mini-batches, %d failed, %.0f mini-batches/s, %s",
                     done, total if total is not None else "?", failed, rate, eta)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
