"""HITL-Ops shared package: event schemas, topics, settings, telemetry, Kafka and Redis plumbing."""
