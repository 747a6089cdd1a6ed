"""The runtime's counters, in the Prometheus text format on `/metrics`."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Plain counters: no `_created` series beside each one (this process's only registry users).
disable_created_metrics()  # type: ignore[no-untyped-call]

OUTCOMES = ("sent", "retried", "dropped", "rejected")
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.interactions = Counter(
            "portico_runtime_interactions",
            "Interactions by type and outcome: sent (accepted by the sink), retried (one "
            "more attempt), dropped (queue full, or left at shutdown), rejected (a 4xx).",
            ["sink", "type", "outcome"],
            registry=self.registry,
        )
        self.depth = Gauge(
            "portico_runtime_interactions_queue_depth",
            "Interactions waiting to be sent, per sink.",
            ["sink"],
            registry=self.registry,
        )

    def count(self, sink: str, hub_type: str, outcome: str, n: int = 1) -> None:
        self.interactions.labels(sink=sink, type=hub_type, outcome=outcome).inc(n)

    def value(self, sink: str, hub_type: str, outcome: str) -> float:
        found = self.registry.get_sample_value(
            "portico_runtime_interactions_total",
            {"sink": sink, "type": hub_type, "outcome": outcome},
        )
        return found or 0.0

    def total(self, outcome: str, sink: str | None = None) -> float:
        return sum(
            s.value
            for metric in self.registry.collect()
            for s in metric.samples
            if s.name == "portico_runtime_interactions_total"
            and s.labels["outcome"] == outcome
            and (sink is None or s.labels["sink"] == sink)
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
