"""What a long job tells its user while it runs: notes, progress bars, and one plain line per epoch
where no bar can redraw (stderr piped into a file or a CI log shows a bar only once it is done)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(console: Console | None = None) -> Progress:
    """The bars every synthwear command shows, on stderr so that stdout stays the command's output."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


class Feedback:
    """Notes and progress for one job; silent without a ``Progress``."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress

    def note(self, text: str) -> None:
        if self.progress:
            self.progress.console.print(f"[yellow]note:[/] {text}")

    def task(self, description: str, total: int | None) -> Callable[..., None]:
        """A bar; the returned function advances it (``advance(n)``) or updates it (``advance(0, total=...)``)."""
        if not self.progress:
            return lambda *args, **kwargs: None
        task = self.progress.add_task(description, total=total)
        return lambda n=1, **update: self.progress.update(task, advance=n, **update)

    def epoch_bar(self, total: int, label: str = "training") -> tuple[Callable[[dict], None], Callable[[int], None]]:
        """The training bar: a function fed one record per epoch (or DP checkpoint), and one that
        closes the bar at the epochs actually run (early stopping ends before ``total``)."""
        advance = self.task(label, total)
        piped = self.progress is not None and not self.progress.console.is_terminal

        def on_epoch(record: dict) -> None:
            advance(description=f"{label} (val loss {record['validation_loss']:.3f})")
            if piped:
                epoch, seen = ("refit epoch", "trained-on") if record.get("refit") else ("epoch", "validation")
                which = "" if label == "training" else f"{label}, "  # which candidate (training.candidates)
                self.progress.console.print(
                    f"{which}{epoch} {record['epoch']}: train loss {record['train_loss']:.4f}, "
                    f"{seen} loss {record['validation_loss']:.4f}"
                )

        return on_epoch, lambda epochs: advance(0, total=epochs, completed=epochs)


@contextmanager
def feedback(progress: bool | Progress | None) -> Iterator[Feedback]:
    """``True``: bars of its own on stderr for the block (the Python API's default); a ``Progress``:
    the caller's bars (the command line's); ``False``/``None``: silence."""
    if progress is True:
        with make_progress() as bars:
            yield Feedback(bars)
    else:
        yield Feedback(progress or None)
