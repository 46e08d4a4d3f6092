"""Cross-cutting infrastructure: database, errors, requests, pagination, idempotency, telemetry."""
