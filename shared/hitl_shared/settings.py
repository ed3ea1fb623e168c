"""One settings model for every service, read from ``HITL_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hitl_shared.topics import Topics


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HITL_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma separated"
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL")
    topic_prefix: str = Field(default="", description="Prefix for every topic name")
    redis_prefix: str = Field(
        default="hitl", description="Redis key namespace; keys live under one hash tag"
    )
    service_name: str = Field(default="hitl", description="Service name in traces and logs")
    partitions: int = Field(default=4, ge=1, description="Partitions per topic at creation")
    fetch_max_wait_ms: int = Field(
        default=20, ge=1, description="Consumer long-poll wait; bounds idle latency per hop"
    )
    session_timeout_ms: int = Field(
        default=6000, ge=1000, description="Consumer-group session timeout"
    )
    batch_max_records: int = Field(default=500, ge=1, description="Records per consumer batch")
    handler_attempts: int = Field(
        default=3, ge=1, description="Attempts on one record before it is dead-lettered"
    )
    otel_exporter: Literal["none", "console", "otlp", "file"] = Field(
        default="none", description="Where spans go"
    )
    otel_endpoint: str = Field(
        default="http://127.0.0.1:4318", description="OTLP/HTTP endpoint when exporter is otlp"
    )
    otel_file: str = Field(
        default="traces.jsonl", description="Span file (one JSON span a line) for exporter file"
    )
    metrics_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where metrics go (OTLP: the collector, which Prometheus scrapes)",
    )
    metrics_interval_s: float = Field(
        default=10.0, gt=0, description="Metric export and queue-sampling period in seconds"
    )
    queue_metrics: bool = Field(
        default=False,
        description="Sample review-queue depth and oldest-task age (turn on in one service)",
    )
    health_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Consumer services serve /livez and /readyz on this port when set",
    )
    log_level: str = Field(default="INFO", description="Log level of every service")
    http_host: str = Field(default="127.0.0.1", description="review-api bind address")
    http_port: int = Field(default=8080, ge=0, le=65535, description="review-api port")
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstrap admin bearer token (creates reviewers)"
    )
    auth_failures_per_minute: int = Field(
        default=20, ge=1, description="Failed bearer-token checks per client address per minute"
    )
    decisions_per_minute: int = Field(
        default=120, ge=1, description="Review decisions one reviewer may submit per minute"
    )
    lease_seconds: float = Field(default=120.0, gt=0, description="Review claim lease")
    policy_file: str | None = Field(default=None, description="Router policy YAML path")
    health_file: str | None = Field(
        default=None, description="Consumer services touch this file while healthy"
    )

    @model_validator(mode="after")
    def _sane(self) -> Settings:
        if self.fetch_max_wait_ms * 3 > self.session_timeout_ms:
            raise ValueError("fetch_max_wait_ms must be well below session_timeout_ms")
        return self

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)
