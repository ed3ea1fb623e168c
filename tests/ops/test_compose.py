"""The deployment files, checked statically (no Docker engine here): the compose file
validates against the Compose Specification, builds from files that exist, configures
only real settings, pins its images and lets consumer services scale."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from hitl_prescreen.config import PrescreenEnv
from hitl_shared.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "deploy" / "compose-spec.json"  # Compose Specification JSON schema
CONSUMERS = ("prescreen", "router", "feedback")
PRESCREEN_FIELDS = set(PrescreenEnv.model_fields)
HITL_SERVICES = {
    "prescreen": "hitl_prescreen",
    "router": "hitl_router",
    "feedback": "hitl_feedback",
    "review-api": "hitl_review_api",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_the_compose_file_validates_against_the_compose_specification(compose, validator):
    errors = [str(e) for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_validator_rejects_what_compose_would_reject(compose, validator):
    broken = json.loads(json.dumps(compose))
    broken["services"]["router"]["depends_on"]["redis"]["condition"] = "service_ready"
    broken["services"]["redis"]["restart_policy"] = "always"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_built_service_has_its_dockerfile_and_module(compose):
    built = {name: svc for name, svc in _services(compose).items() if "build" in svc}
    assert set(HITL_SERVICES) <= set(built)
    for name, svc in built.items():
        context = ROOT / svc["build"]["context"]
        dockerfile = context / svc["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        for source in re.findall(r"^COPY (.+) \S+$", dockerfile.read_text(), flags=re.M):
            for path in source.split():
                assert (context / path).exists(), f"{name}: COPY source {path} missing"
    for name, module in HITL_SERVICES.items():
        assert built[name]["command"] == ["python", "-m", module]
        assert importlib.util.find_spec(f"{module}.__main__") is not None


def test_every_image_is_pinned_by_tag(compose):
    for name, svc in _services(compose).items():
        image = svc.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: image {image!r} not pinned"
        assert not image.endswith(":latest"), name


def test_every_hitl_variable_is_a_setting_with_a_valid_value(compose):
    fields = set(Settings.model_fields)
    for name, svc in _services(compose).items():
        env = svc.get("environment") or {}
        hitl = {k: v for k, v in env.items() if k.startswith("HITL_")}
        own = {k: v for k, v in hitl.items() if k.startswith("HITL_PRESCREEN_")}
        shared = {k: v for k, v in hitl.items() if k not in own}
        unknown = {k for k in shared if k.removeprefix("HITL_").lower() not in fields}
        unknown |= {
            k for k in own if k.removeprefix("HITL_PRESCREEN_").lower() not in PRESCREEN_FIELDS
        }
        assert not unknown, f"{name}: not settings: {unknown}"
        assert not own or name == "prescreen", f"{name}: prescreen settings {own}"
        values = {
            k.removeprefix("HITL_").lower(): ("x" * 32 if "${" in str(v) else v)
            for k, v in shared.items()
        }
        Settings(**values)  # raises on a value the service would refuse at start
        PrescreenEnv(**{k.removeprefix("HITL_PRESCREEN_").lower(): v for k, v in own.items()})


def test_consumer_services_scale_with_health_checks_and_restarts(compose):
    for name in (*CONSUMERS, "review-api"):
        svc = _services(compose)[name]
        assert svc["restart"] in ("unless-stopped", "always", "on-failure"), name
        assert "healthcheck" in svc and svc["healthcheck"]["test"][0] == "CMD", name
        assert "/readyz" in " ".join(svc["healthcheck"]["test"]), name
        conditions = {dep["condition"] for dep in svc["depends_on"].values()}
        assert "service_healthy" in conditions, name
    for name in CONSUMERS:
        svc = _services(compose)[name]
        assert "container_name" not in svc and "ports" not in svc, f"{name} cannot --scale"
        assert svc["environment"]["HITL_HEALTH_PORT"] == "8081"


def test_dependencies_name_services_that_exist_and_topics_come_first(compose):
    services = _services(compose)
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown {dep}"
    for name in HITL_SERVICES:
        assert services[name]["depends_on"]["topic-init"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_runs_kraft_and_redis_persists(compose):
    kafka = _services(compose)["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    redis = _services(compose)["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_mounted_configs_exist_and_the_collector_feeds_jaeger_and_prometheus(compose):
    for name, svc in _services(compose).items():
        for volume in svc.get("volumes") or ():
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name}: {source} missing"
    collector = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())
    pipelines = collector["service"]["pipelines"]
    for pipeline in pipelines.values():
        assert set(pipeline["receivers"]) <= set(collector["receivers"])
        assert set(pipeline["exporters"]) <= set(collector["exporters"])
        assert set(pipeline.get("processors", ())) <= set(collector["processors"])
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]
    port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for c in job["static_configs"]
        for t in c["targets"]
    ]
    assert f"otel-collector:{port}" in targets
    endpoint = _services(compose)["prescreen"]["environment"]["HITL_OTEL_ENDPOINT"]
    assert endpoint.endswith(":4318")  # the collector's OTLP/HTTP receiver


def test_the_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
