"""Worker failures said wherever the worker ran.

Textual posts a worker's ``StateChanged`` to the node that started it, and never bubbles
it: the app's handler heard only the app's own workers.  A screen's or a pane's worker
that failed (a pin, an apply, a listing, a preview) went unsaid, and the view waited for
its answer for good.  Every node that starts workers mixes this in.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState


class SaysWorkerFailures:
    """Hands each of the node's failed workers to the app's one handler
    (``ArtlensApp.worker_failed``); the node's own handler, if any, runs as well (Textual
    calls the handler of each class in the MRO).  A plain mixin, not a ``DOMNode``: one
    would reset the widget's inherited component classes and styles."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        failed = getattr(event.worker.node.app, "worker_failed", None)
        if callable(failed):
            failed(event.worker)
