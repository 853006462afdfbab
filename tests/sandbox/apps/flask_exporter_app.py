"""A small Flask service instrumented the way its users do it, by prometheus-flask-exporter with its
defaults (`PrometheusMetrics(app)`: the `flask_http_request_*` series on its own /metrics): the sandbox
serves it as both tracks (`--app tests.sandbox.apps.flask_exporter_app:app`, a WSGI application) and
golive judges it on the `flask-exporter` pack. Nothing in it knows golive or tracks."""

from __future__ import annotations

from flask import Flask, jsonify
from prometheus_flask_exporter import PrometheusMetrics

app = Flask(__name__)
metrics = PrometheusMetrics(app)


@app.get("/items/<int:item_id>")
def read_item(item_id: int):
    return jsonify(item_id=item_id, name=f"item {item_id}")


@app.get("/")
def index():
    return jsonify(service="items")
