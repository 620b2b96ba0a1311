"""Prometheus metrics (prometheus_client), kept in the controlling process only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """processed / failed (by reason code) counters, a latency histogram and the queue depth."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.processed = Counter("hospital_imaging_processed", "Images processed successfully",
                                 registry=self.registry)
        self.failed = Counter("hospital_imaging_failed", "Images moved to failed, by reason code",
                              ["reason"], registry=self.registry)
        self.latency = Histogram("hospital_imaging_latency_seconds", "Processing time per image (in the pool process)",
                                 buckets=BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("hospital_imaging_queue_depth", "Jobs waiting in the source",
                                 registry=self.registry)
        self.in_flight = Gauge("hospital_imaging_in_flight", "Jobs claimed by this worker", registry=self.registry)
        self.server = None

    def serve(self, port: int, bind: str = "127.0.0.1"):
        """Expose /metrics on ``bind:port`` (port 0: pick a free one); returns the bound port."""
        server, _thread = start_http_server(port, addr=bind, registry=self.registry)
        self.server = server
        return server.server_address[1]

    def stop(self) -> None:
        """Stop the HTTP endpoint."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
