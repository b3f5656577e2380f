"""The live view of a sweep: done, running, failed and the best trial so far.

On a terminal it is one tqdm bar; elsewhere (CI logs, a file) one line per finished trial, so a log reads as
a record of the sweep.
"""

from __future__ import annotations

from typing import TextIO

from atlas.infra._trial import TrialResult


class Progress:
    """Counts a sweep's trials as they end; ``enabled=False`` shows nothing."""

    def __init__(self, total: int, already: int, *, out: TextIO, enabled: bool = True) -> None:
        self.total, self.done, self.failed, self.pruned, self.running = total, already, 0, 0, 0
        self.best: tuple[float, str] | None = None
        self.out, self.enabled = out, enabled
        self.bar = None
        if enabled and getattr(out, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=already, file=out, unit="trial", dynamic_ncols=True)
        elif enabled and already:
            print(f"resuming: {already} of {total} trials already done", file=out, flush=True)

    def update(self, result: TrialResult, *, running: int) -> None:
        self.done, self.running = self.done + 1, running
        self.failed += result.state == "failed"
        self.pruned += result.state == "pruned"
        name = f"{result.work_unit}/{result.model_spec}#{result.number}"
        if result.state == "finished" and result.objective is not None and (
                self.best is None or result.objective < self.best[0]):
            self.best = (result.objective, name)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self._postfix()
            return
        score = next((f"{k} {v:.4f}" for k, v in result.scores.items() if k in ("test_accuracy", "test_mse")), "")
        detail = (f"val_loss {result.objective:.4f}, {score}, fit {result.fit_seconds:.1f} s"
                  if result.objective is not None else (result.error or "").strip().splitlines()[-1:] or [""])
        detail = detail if isinstance(detail, str) else detail[0]
        print(f"[{self.done}/{self.total}] {name} {result.state}: {detail} | {self.summary()}", file=self.out,
              flush=True)

    def refresh(self, *, running: int) -> None:
        self.running = running
        if self.bar is not None:
            self._postfix()

    def summary(self) -> str:
        best = f"best val_loss {self.best[0]:.4f} ({self.best[1]})" if self.best else "best -"
        return f"running {self.running}, failed {self.failed}, pruned {self.pruned}, {best}"

    def _postfix(self) -> None:
        self.bar.set_postfix_str(self.summary(), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
