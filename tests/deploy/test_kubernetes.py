"""The Kubernetes manifests (deploy/kubernetes/), validated offline.

No cluster, kubectl or kustomize here, so everything is checked statically:

- every built-in kind with kubernetes-validate (its bundled schemas, strict: an unknown field
  fails), at the oldest and the newest Kubernetes version it knows from our floor;
- the KEDA objects against the vendored CRDs' openAPIV3Schema (tests/specs/keda), closed to
  unknown fields the way the API server's strict field validation is, and the Redis scaler's
  trigger metadata against the keys KEDA reads;
- the manifests against the code: settings names, queue names, probe routes, CLI commands, the
  stop grace, and against each other (references, selectors, budgets).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from bot.kernel.settings import Settings
from storage.keys import Queue
from tests.deploy.test_compose import assert_the_cli_accepts
from tests.helpers.specs import KEDA_CRDS

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes the manifests are written for (autoscaling/v2, policy/v1, KEDA 2.x).
OLDEST = "1.30.0"
VERSIONS = (OLDEST, latest_version())
KEDA_GROUP = "keda.sh/"
#: The settings the Redis Sentinel support adds (#21, built beside these manifests); until it is
#: merged they are not yet fields of Settings.
#: The trigger metadata keys KEDA's redis / redis-sentinel scaler reads (v2.20.2,
#: pkg/scalers/redis_scaler.go: `order=triggerMetadata`, and `<name>FromEnv` for
#: `order=resolvedEnv`), less `password` and `sentinelPassword`: those come from the
#: TriggerAuthentication, never written in a manifest. A misspelt key is silently ignored by
#: KEDA, so it is caught here.
REDIS_SCALER_KEYS = {
    "address", "addresses", "addressFromEnv", "addressesFromEnv", "host", "hosts", "hostFromEnv",
    "hostsFromEnv", "port", "ports", "portFromEnv", "portsFromEnv", "username",
    "usernameFromEnv", "passwordFromEnv", "sentinelUsername", "sentinelUsernameFromEnv",
    "sentinelPasswordFromEnv", "sentinelMaster", "sentinelMasterFromEnv", "enableTLS",
    "unsafeSsl", "listName", "listLength", "activationListLength", "databaseIndex"}
#: What a worker needs after SIGTERM beyond STOP_GRACE_SECONDS: Celery's shutdown and handing
#: its turns back (a few Redis round trips), with room to spare.
HAND_BACK_MARGIN = 30
WORKLOADS = ("Deployment", "StatefulSet")


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((KUBE / "kustomization.yaml").read_text())


def resource_files() -> list[str]:
    return list(kustomization()["resources"])


@cache
def documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((name, doc) for name in resource_files()
                 for doc in yaml.safe_load_all((KUBE / name).read_text()) if doc)


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def one(kind: str, name: str) -> dict[str, Any]:
    found = objects(kind)
    assert name in found, f"no {kind} {name} in deploy/kubernetes"
    return found[name]


def builtin_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(n, d) for n, d in documents() if not d["apiVersion"].startswith(KEDA_GROUP)]


def keda_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(n, d) for n, d in documents() if d["apiVersion"].startswith(KEDA_GROUP)]


def workloads() -> dict[str, dict[str, Any]]:
    return {name: doc for kind in WORKLOADS for name, doc in objects(kind).items()}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []) * init, *spec["containers"]]


def app_containers() -> dict[str, dict[str, Any]]:
    """The sealion-bot containers (our images), by workload name."""
    found = {}
    for name, workload in [*workloads().items(), *objects("Job").items()]:
        for container in containers(workload):
            if container["image"].startswith("sealion-bot-"):
                found[name] = container
    return found


def config() -> dict[str, str]:
    return one("ConfigMap", "sealion-config")["data"]


def secret() -> dict[str, str]:
    return one("Secret", "sealion-secrets")["stringData"]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# --- the files ----------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_once():
    listed = resource_files()
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk
    assert kustomization()["namespace"] == "sealion"
    images = {image["name"] for image in kustomization()["images"]}
    used = {c["image"] for c in app_containers().values()}
    assert used == images == {"sealion-bot-api", "sealion-bot-worker"}


# --- the schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted({n for n, _ in builtin_documents()}))
def test_builtin_kinds_validate_strictly(name, version):
    docs = [d for n, d in builtin_documents() if n == name]
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} ({doc['kind']}) at Kubernetes {version}: {exc.message} "
                        f"at {'/'.join(map(str, exc.path))}")


def test_strict_validation_refuses_an_unknown_field():
    deployment = copy.deepcopy(one("Deployment", "sealion-api"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST, strict=True)


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others, as the API
    server's strict field validation treats a structural schema (except where the CRD keeps
    unknown fields on purpose)."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema = {**schema, "additionalProperties": False}
        return {key: closed(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


@cache
def keda_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(KEDA_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = closed(version["schema"]["openAPIV3Schema"])
    return schemas


def keda_errors(doc: dict[str, Any]) -> list[str]:
    schema = keda_schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no vendored CRD for {doc['kind']} {doc['apiVersion']}"
    # metadata is the API server's to check (ObjectMeta), not the CRD schema's.
    body = {key: value for key, value in doc.items() if key != "metadata"}
    validator = jsonschema.Draft4Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)]


@pytest.mark.parametrize("name", sorted({n for n, _ in keda_documents()}))
def test_keda_objects_validate_against_the_vendored_crds(name):
    for doc in (d for n, d in keda_documents() if n == name):
        assert keda_errors(doc) == [], f"{name} ({doc['kind']})"


def test_the_closed_crd_schema_refuses_a_misspelt_field():
    scaled = copy.deepcopy(one("ScaledObject", "sealion-worker-io"))
    scaled["spec"]["minReplicaCont"] = 1
    scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilisationWindowSeconds"] = 60
    errors = keda_errors(scaled)
    assert any("minReplicaCont" in e for e in errors), errors
    assert any("stabilisationWindowSeconds" in e for e in errors), errors


def test_the_kinds_present():
    kinds = {doc["kind"] for _, doc in documents()}
    assert kinds == {"Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service",
                     "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "StatefulSet",
                     "ScaledObject", "TriggerAuthentication"}


# --- the settings -------------------------------------------------------------------------------


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_every_configmap_and_secret_name_is_a_setting():
    unknown = (set(config()) | set(secret())) - settings_names()
    assert not unknown, f"not settings (docs/configuration.md): {sorted(unknown)}"


def test_the_configmap_values_are_accepted_by_settings():
    settings = Settings(**{k.lower(): v for k, v in config().items()})  # type: ignore[arg-type]
    assert settings.environment == "production"


def test_the_secret_holds_placeholders_only():
    for key, value in secret().items():
        assert "replace-me" in value, f"{key}: secret.yaml holds placeholders only"


def test_every_referenced_configmap_and_secret_key_exists():
    names = {"ConfigMap": objects("ConfigMap"), "Secret": objects("Secret")}
    for workload_name, workload in [*workloads().items(), *objects("Job").items()]:
        for container in containers(workload):
            for source in container.get("envFrom", []):
                for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if ref in source:
                        assert source[ref]["name"] in names[kind], workload_name
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                for ref, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if ref in source:
                        obj = names[kind].get(source[ref]["name"])
                        assert obj is not None, f"{workload_name}: {source[ref]['name']}"
                        data = obj.get("data", obj.get("stringData", {}))
                        assert source[ref]["key"] in data, f"{workload_name}: {env['name']}"
        for volume in pod_spec(workload).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in names["ConfigMap"], workload_name


def test_app_containers_read_the_settings_from_configmap_and_secret():
    for name, container in app_containers().items():
        sources = [next(iter(s.values()))["name"] for s in container["envFrom"]]
        assert sources == ["sealion-config", "sealion-secrets"], name


# --- the commands, probes and stops -------------------------------------------------------------


def command_of(name: str) -> list[str]:
    return list(app_containers()[name]["command"])


@pytest.mark.parametrize("name", sorted(app_containers()))
def test_commands_and_exec_probes_are_accepted_by_the_cli(name):
    container = app_containers()[name]
    argvs = [container["command"]]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if "exec" in container.get(probe, {}):
            argvs.append(container[probe]["exec"]["command"])
    for argv in argvs:
        assert_the_cli_accepts(list(argv), name)


def test_the_workers_and_their_queues():
    queues = {name: option(command_of(name), "--queues") for name in app_containers()
              if command_of(name)[1] == "worker"}
    assert queues == {"sealion-worker-io": Queue.IO.value, "sealion-beat": Queue.IO.value,
                      "sealion-worker-inference": Queue.INFERENCE.value}


def test_the_scheduler_runs_in_exactly_one_pod():
    """Periodic tasks run once: --beat only in the one-replica, Recreate beat Deployment, which
    nothing scales (KEDA scales the io workers, which run without it)."""
    beats = [name for name in app_containers() if "--beat" in command_of(name)]
    assert beats == ["sealion-beat"]
    beat = one("Deployment", "sealion-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in objects("ScaledObject").values()}
    scaled |= {o["spec"]["scaleTargetRef"]["name"]
               for o in objects("HorizontalPodAutoscaler").values()}
    assert "sealion-beat" not in scaled


@cache
def api_app() -> Any:
    from bot.web.app import create_app

    return create_app(Settings(environment="test", web_chat=True))  # /chat with WEB_CHAT on


def served(method: str, path: str) -> bool:
    """The API has a route for `method path` (matched as a request would be)."""
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path, "root_path": "",
             "path_params": {}, "headers": [], "query_string": b""}
    return any(route.matches(scope)[0] == Match.FULL for route in api_app().router.routes)


def test_route_matching_finds_only_what_exists():
    assert served("GET", "/healthz")
    assert not served("GET", "/healthy")
    assert not served("POST", "/healthz")


def test_the_api_probes_hit_routes_that_exist_on_its_port():
    container = app_containers()["sealion-api"]
    port = int(option(container["command"], "--port") or 0)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert served("GET", get["path"]), f"{probe}: no GET {get['path']} in the app"
        assert get["port"] == "http"
    service = one("Service", "sealion-api")
    assert service["spec"]["selector"] == pod_labels("sealion-api")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_the_workers_are_watched_by_the_healthcheck():
    for name in ("sealion-worker-io", "sealion-worker-inference", "sealion-beat"):
        container = app_containers()[name]
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["sealion-bot", "healthcheck"], name


def test_the_ingress_publishes_the_webhooks_and_the_chat_only():
    [rule] = one("Ingress", "sealion-api")["spec"]["rules"]
    paths = {p["path"]: p["pathType"] for p in rule["http"]["paths"]}
    assert paths == {"/webhooks": "Prefix", "/chat": "Prefix", "/healthz": "Exact"}
    # What the platforms and the browsers call, under those paths.
    for method, path in (("POST", "/webhooks/telegram"), ("POST", "/webhooks/line"),
                         ("POST", "/webhooks/whatsapp"), ("GET", "/webhooks/whatsapp"),
                         ("GET", "/chat"), ("POST", "/chat/api/messages"),
                         ("GET", "/chat/api/events"), ("GET", "/healthz")):
        assert served(method, path), f"{method} {path}"
    for p in rule["http"]["paths"]:
        assert p["backend"]["service"]["name"] == "sealion-api"


def test_workers_have_time_to_hand_their_turns_back():
    """SIGTERM (a rollout, a drain, a KEDA scale-in of a busy pod: keda#6719) costs no turn only
    if the SIGKILL comes after STOP_GRACE_SECONDS plus the hand-back."""
    stop_grace = Settings(stop_grace_seconds=config()["STOP_GRACE_SECONDS"]).stop_grace_seconds
    for name in ("sealion-worker-io", "sealion-worker-inference", "sealion-beat"):
        spec = pod_spec(one("Deployment", name))
        assert spec["terminationGracePeriodSeconds"] >= stop_grace + HAND_BACK_MARGIN, name
        # A preStop hook would only spend that time before the SIGTERM.
        assert all("lifecycle" not in c for c in spec["containers"]), name


def test_only_the_inference_worker_takes_a_gpu():
    for name, container in app_containers().items():
        resources = container["resources"]
        gpu = resources.get("limits", {}).get("nvidia.com/gpu")
        assert gpu == (1 if name == "sealion-worker-inference" else None), name


def test_every_container_has_requests_and_a_memory_limit():
    for name, workload in [*workloads().items(), *objects("Job").items()]:
        for container in containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


def test_app_pods_have_a_reaper_as_pid_1():
    """Compose runs the app under `init: true`; here the pod's pause process is PID 1."""
    for name in app_containers():
        workload = {**workloads(), **objects("Job")}[name]
        assert pod_spec(workload)["shareProcessNamespace"] is True, name


def test_pods_run_unprivileged():
    for name, workload in [*workloads().items(), *objects("Job").items()]:
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name


# --- scaling and disruption ---------------------------------------------------------------------


def pod_labels(name: str) -> dict[str, str]:
    return workloads()[name]["spec"]["template"]["metadata"]["labels"]


def test_every_workload_selects_its_own_pods():
    for name, workload in workloads().items():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels(name).items(), name


def test_every_scaled_workload_has_a_disruption_budget():
    budgets = objects("PodDisruptionBudget")
    covered = {}
    for budget in budgets.values():
        labels = budget["spec"]["selector"]["matchLabels"]
        for name in workloads():
            if labels.items() <= pod_labels(name).items():
                covered[name] = budget["spec"]
    assert set(covered) == set(workloads()) - {"sealion-beat"}
    for name, spec in covered.items():
        assert spec == {"maxUnavailable": 1, "selector": spec["selector"]}, name


def scaled_objects() -> dict[str, dict[str, Any]]:
    return objects("ScaledObject")


def test_keda_scales_each_worker_on_its_own_queue():
    """The list KEDA reads is the Celery queue of that worker: the Redis key is the queue name
    (storage/keys.py Queue)."""
    lists = {}
    for name, scaled in scaled_objects().items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        assert target == name
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["type"] == "redis-sentinel"
        lists[target] = trigger["metadata"]["listName"]
        assert lists[target] == option(command_of(target), "--queues")
    assert sorted(lists.values()) == sorted(q.value for q in Queue)


def test_keda_reads_the_same_redis_as_the_app():
    sentinels = config()["REDIS_SENTINELS"].split(",")
    for name, scaled in scaled_objects().items():
        [trigger] = scaled["spec"]["triggers"]
        metadata = trigger["metadata"]
        unknown = set(metadata) - REDIS_SCALER_KEYS
        assert not unknown, f"{name}: not keys of the Redis scaler here: {sorted(unknown)}"
        assert metadata["addresses"].split(",") == sentinels, name
        assert metadata["sentinelMaster"] == config()["REDIS_SENTINEL_MASTER"], name
        assert metadata["databaseIndex"] == config()["REDIS_DB"], name
        assert int(metadata["listLength"]) > 0, name
        auth = one("TriggerAuthentication", trigger["authenticationRef"]["name"])
        refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
        assert refs == {"password": ("sealion-secrets", "REDIS_PASSWORD"),
                        "sentinelPassword": ("sealion-secrets", "REDIS_SENTINEL_PASSWORD")}
        assert {key for _, key in refs.values()} <= set(secret())


def test_the_sentinels_are_the_redis_pods():
    redis = one("StatefulSet", "redis")
    service = one("Service", redis["spec"]["serviceName"])
    namespace = kustomization()["namespace"]
    expected = [f"redis-{i}.{service['metadata']['name']}.{namespace}.svc.cluster.local:26379"
                for i in range(redis["spec"]["replicas"])]
    assert config()["REDIS_SENTINELS"].split(",") == expected
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in service["spec"]["ports"]} == {6379, 26379}


def test_scale_in_removes_one_worker_at_a_time():
    """KEDA scales in while pods are busy (it sees waiting tasks, not running ones) and the HPA
    picks the pod (keda#6719): one pod per period, so the rest take over what it hands back."""
    for name, scaled in scaled_objects().items():
        spec = scaled["spec"]
        assert spec["minReplicaCount"] >= 1, name
        assert spec["maxReplicaCount"] > spec["minReplicaCount"], name
        down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300, name
        assert [(p["type"], p["value"]) for p in down["policies"]] == [("Pods", 1)], name
        assert all(p["periodSeconds"] >= 60 for p in down["policies"]), name
        # Replicas belong to KEDA: a count in the Deployment would fight it on every apply.
        assert "replicas" not in one("Deployment", name)["spec"], name


def test_the_api_scales_on_cpu():
    [hpa] = objects("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sealion-api"
    assert hpa["spec"]["minReplicas"] >= 2


def test_redis_keeps_its_data_and_its_quorum():
    redis = one("StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 3
    names = {c["name"]: c for c in containers(redis, init=False)}
    assert names["redis"]["command"] == ["redis-server", "/conf/redis.conf"]
    assert names["sentinel"]["command"] == ["redis-server", "/conf/sentinel.conf", "--sentinel"]
    assert [t["metadata"]["name"] for t in redis["spec"]["volumeClaimTemplates"]] == ["data"]
    script = one("ConfigMap", "redis-scripts")["data"]["init.sh"]
    for line in ("appendonly yes", "maxmemory-policy noeviction",
                 "sentinel monitor $MASTER_NAME $MASTER 6379 2",
                 "SENTINEL get-master-addr-by-name"):
        assert line in script


def test_postgresql_is_outside_the_cluster():
    postgres = one("Service", "postgres")
    assert postgres["spec"]["type"] == "ExternalName"
    assert "@postgres:5432/" in secret()["DATABASE_URL"]
