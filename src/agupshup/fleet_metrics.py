"""A fleet worker's Prometheus metrics (the ``metrics`` extra: ``pip install agupshup[metrics]``).

Imported only when an operator asks for metrics (``agupshup fleet worker --metrics-port``):
nothing else in agupshup imports ``prometheus_client``.

Metrics, each labelled with the worker's egress ``address``:

* ``agupshup_fleet_calls`` (gauge, by ``window``): calls counted in each throttle window now,
  beside ``agupshup_fleet_calls_limit``; ``agupshup_fleet_throttled_total`` (counter, by
  ``window``): 113s met (fed by the scheduler's ``on_event``: :meth:`FleetMetrics.throttle_event`).
* ``agupshup_fleet_delivery_delay_seconds`` (histogram): a message's post time to its delivery.
* ``agupshup_fleet_lag_seconds`` (gauge, by ``source``): the delay of each source's last message.
* ``agupshup_fleet_plan_changes_total`` (counter, by ``kind``): claims taken, released, lost,
  groups dropped as unreadable; ``agupshup_fleet_groups`` (gauge): groups held.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agupshup.fleet import FleetEvent, FleetObserver, FleetWorker
from agupshup.models import Message
from agupshup.throttle import ThrottleEvent

__all__ = ["FleetMetrics", "serve_metrics"]

_DELAYS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
_PLAN = frozenset({"took", "released", "lost", "unreadable"})


class FleetMetrics(FleetObserver):
    """The metrics of one worker, in ``registry``."""

    def __init__(self, address: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.address = address
        r, a = self.registry, ["address"]
        self._calls = Gauge("agupshup_fleet_calls", "Calls in each throttle window now",
                            [*a, "window"], registry=r)
        self._limit = Gauge("agupshup_fleet_calls_limit", "Each throttle window's limit",
                            [*a, "window"], registry=r)
        self._throttled = Counter("agupshup_fleet_throttled", "113 answers met, by the window "
                                  "the server named", [*a, "window"], registry=r)
        self._delay = Histogram("agupshup_fleet_delivery_delay_seconds",
                                "From a message's post time to its delivery", a,
                                buckets=_DELAYS, registry=r)
        self._lag = Gauge("agupshup_fleet_lag_seconds", "Delay of each source's last message",
                          [*a, "source"], registry=r)
        self._plan = Counter("agupshup_fleet_plan_changes", "Claims taken, released, lost; "
                             "groups dropped", [*a, "kind"], registry=r)
        self._groups = Gauge("agupshup_fleet_groups", "Groups held", a, registry=r)

    def throttle_event(self, event: ThrottleEvent) -> None:
        """The client's scheduler's ``on_event`` hook: counts the 113s."""
        if event.kind == "limited":
            self._throttled.labels(self.address, event.period).inc()

    def event(self, event: FleetEvent) -> None:
        if event.kind in _PLAN:
            self._plan.labels(self.address, event.kind).inc()

    def delivered(self, message: Message, delay: float | None) -> None:
        if delay is not None:
            self._delay.labels(self.address).observe(delay)
            self._lag.labels(self.address, f"group:{message.group_name.lower()}").set(delay)

    def beat(self, worker: FleetWorker) -> None:
        for window in worker.client.quota():
            self._calls.labels(self.address, window.period).set(window.used)
            self._limit.labels(self.address, window.period).set(window.limit)
        self._groups.labels(self.address).set(len(worker.held))


def serve_metrics(port: int, address: str, host: str = "0.0.0.0") -> FleetMetrics:
    """Metrics for the worker on ``address``, served at ``http://host:port/metrics``."""
    metrics = FleetMetrics(address)
    start_http_server(port, addr=host, registry=metrics.registry)
    return metrics
