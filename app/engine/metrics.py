"""What the engine has done, counted: for the window, ``postflow status`` and Prometheus.

Counts come from the engine's own events (an attempt ended, a snapshot moved), so nothing in
the upload path calls into metrics and a metric can never slow an upload down. Prometheus
text comes from a private registry: a second engine in one process (tests) counts apart.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from app.core.events import AttemptEnded, EventBus, Snapshot, SnapshotChanged
from app.engine.loop_lag import LoopLag

DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, float("inf"))
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EngineMetrics:
    def __init__(self, bus: EventBus, lag: LoopLag, token_refreshes: Any) -> None:
        """``token_refreshes``: a callable giving how many times the sign-in was renewed."""
        self.lag = lag
        self._refreshes = token_refreshes
        self.registry = CollectorRegistry()
        r = self.registry
        self._duration = Histogram("postflow_upload_duration_seconds", "Time to deliver one file, "
                                   "last attempt", buckets=DURATION_BUCKETS, registry=r)  # fmt: skip
        self._bytes = Counter("postflow_delivered_bytes", "Bytes delivered to Frame.io", registry=r)
        self._files = Counter("postflow_delivered_files", "Files delivered to Frame.io", registry=r)
        self._attempts = Counter("postflow_upload_attempts", "Upload attempts by how they ended",
                                 ["outcome"], registry=r)  # fmt: skip
        self._retries = Counter("postflow_upload_retries", "Attempts that will be retried, by kind of "
                                "trouble", ["error_class"], registry=r)  # fmt: skip
        self._queue = Gauge("postflow_queue_jobs", "Jobs by state (history entries removed excluded)",
                            ["state"], registry=r)  # fmt: skip
        self._active = Gauge("postflow_active_uploads", "Uploads running now", registry=r)
        self._speed = Gauge("postflow_upload_bytes_per_second", "All uploads together, now", registry=r)
        self._settling = Gauge("postflow_settling_files", "Files waiting for their render to end", registry=r)
        self._health = Gauge("postflow_health_ok", "1 when the check is green", ["check"], registry=r)
        refreshes = Gauge("postflow_token_refreshes", "Sign-in renewals since start", registry=r)
        refreshes.set_function(lambda: float(self._refreshes()))
        lag_gauge = Gauge("postflow_event_loop_lag_seconds", "How late the event loop ran, last 5 min",
                          ["stat"], registry=r)  # fmt: skip
        lag_gauge.labels("max").set_function(lag.max)
        lag_gauge.labels("p99").set_function(lag.p99)
        self._totals = {"delivered": 0, "failed": 0, "retry": 0, "seconds": 0.0, "bytes": 0}
        self._retry_classes: dict[str, int] = {}
        self._last_throughput = 0.0
        self._snapshot: Snapshot | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, AttemptEnded):
            self._attempt(event)
        elif isinstance(event, SnapshotChanged):
            self.observe_snapshot(event.snapshot)

    def _attempt(self, event: AttemptEnded) -> None:
        self._attempts.labels(event.outcome).inc()
        if event.outcome in ("delivered", "failed", "retry"):
            self._totals[event.outcome] += 1
        if event.outcome == "delivered":
            self._duration.observe(event.seconds)
            self._bytes.inc(event.size)
            self._files.inc()
            self._totals["seconds"] += event.seconds
            self._totals["bytes"] += event.size
            self._last_throughput = event.size / max(event.seconds, 1e-6)
        if event.outcome == "retry" and event.error_class:
            self._retries.labels(event.error_class).inc()
            self._retry_classes[event.error_class] = self._retry_classes.get(event.error_class, 0) + 1

    def observe_snapshot(self, snap: Snapshot) -> None:
        self._snapshot = snap
        for state, count in snap.counts.items():
            self._queue.labels(state).set(count)
        self._active.set(snap.uploading)
        self._speed.set(snap.bytes_per_second)
        self._settling.set(snap.settling)
        for health in snap.health:
            self._health.labels(health.component).set(1 if health.ok else 0)

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self) -> dict[str, Any]:
        """The same numbers, for ``postflow status`` and the window (schema in docs/automation.md)."""
        t = self._totals
        ended = t["delivered"] + t["failed"]
        snap = self._snapshot
        return {
            "files_delivered": t["delivered"],
            "bytes_delivered": t["bytes"],
            "files_failed": t["failed"],
            "success_rate": None if not ended else round(t["delivered"] / ended, 4),
            "mean_upload_seconds": None if not t["delivered"] else round(t["seconds"] / t["delivered"], 3),
            "mean_bytes_per_second": None if not t["seconds"] else round(t["bytes"] / t["seconds"], 1),
            "last_bytes_per_second": round(self._last_throughput, 1),
            "retries": t["retry"],
            "retries_by_error_class": dict(sorted(self._retry_classes.items())),
            "token_refreshes": int(self._refreshes()),
            "queue_size": 0
            if snap is None
            else sum(snap.counts.get(s, 0) for s in ("pending", "uploading", "paused")),
            "active_uploads": 0 if snap is None else snap.uploading,
            "event_loop_lag_max_seconds": round(self.lag.max(), 4),
            "event_loop_lag_p99_seconds": round(self.lag.p99(), 4),
        }
