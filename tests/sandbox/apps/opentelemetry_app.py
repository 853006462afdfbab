"""A small FastAPI service instrumented the way OpenTelemetry's users do it: opentelemetry-instrumentation-fastapi
records the HTTP server semantic conventions' `http.server.request.duration` by `http.route` (stable
conventions: OTEL_SEMCONV_STABILITY_OPT_IN=http, as a deployment sets it) through the SDK's MeterProvider,
whose PrometheusMetricReader (opentelemetry-exporter-prometheus) serves them on /metrics as
`http_server_request_duration_seconds`. Prometheus' scrapes of /metrics are recorded too, as users' requests
are (route `/metrics`). The sandbox serves it as both tracks (`--app tests.sandbox.apps.opentelemetry_app:app`)
and golive judges it on the `opentelemetry` pack. Nothing in it knows golive or tracks."""

from __future__ import annotations

import os

# The stable HTTP conventions (`http.server.request.duration` by `http.response.status_code`) rather than
# the old ones (`http.server.duration` by `http.status_code`); read once, when the app is instrumented.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest  # noqa: E402

# The reader registers itself with prometheus_client's default registry; /metrics serves that.
meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader()])

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict:
    return {"item_id": item_id, "name": f"item {item_id}"}


@app.get("/")
async def index() -> dict:
    return {"service": "items"}


@app.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


FastAPIInstrumentor.instrument_app(app, meter_provider=meter_provider, exclude_spans=["receive", "send"])
