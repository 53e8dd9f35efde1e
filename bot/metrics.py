"""Prometheus metrics of the process (one registry per process; each worker exposes its own)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "wxbot_messages_total", "Inbound messages and events by intent and outcome",
    ["source", "intent", "outcome"],
)
LATENCY = Histogram(
    "wxbot_message_seconds", "Time from request to reply for inbound messages", ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 10),
)
UNKNOWN_EVENTS = Counter(
    "wxbot_unknown_events_total", "Menu clicks and QR scenes with no handler of their own, answered with the menu",
    ["kind"],
)
DEDUPE_HITS = Counter("wxbot_dedupe_hits_total", "Repeated deliveries by the state found", ["state"])
LATE_REPLIES = Counter("wxbot_late_replies_total", "Replies that missed the deadline and went to the outbox")
REJECTED = Counter("wxbot_rejected_requests_total", "Requests refused at the edge", ["endpoint", "status"])
SERVER_ERRORS = Counter(
    "wxbot_http_server_errors_total", "HTTP 500 answers (unhandled errors) by route template", ["route"],
)
