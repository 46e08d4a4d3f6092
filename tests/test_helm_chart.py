"""The Helm chart (helm/nentang) and the Containerfile, checked without a cluster.

No helm binary and no container engine are needed. values.yaml is checked against
values.schema.json as Helm checks it (JSON Schema draft-07), and the chart is rendered for real
by tests/helm_render: a small Go program on Go's text/template, the engine Helm uses, with the
Helm and sprig functions the chart is written against. It is built here with `go build`
(Debian's golang-go; `make test` installs it). The rendered manifests are then read with PyYAML,
checked for what the platform needs (probes, graceful shutdown, locked-down pods, secrets by
reference only, the migration hook as the owner role, selectors that match), and validated
against Kubernetes' own JSON schemas (the kubernetes-validate package).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "nentang"
RENDER_SOURCE = Path(__file__).resolve().parent / "helm_render"
KUBERNETES_VERSION = "1.33.0"
IMAGE_UID = 10001

# The two values a real installation must give (the chart refuses to render without them).
REQUIRED: dict[str, Any] = {
    "config": {"issuer": "https://nentang.example.gov.vn"},
    "attachments": {
        "storageUrl": "s3://nentang-attachments?endpoint=https://s3.example.gov.vn&region=hn-1"
    },
}
PRODUCTION = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())

# Variables whose value is a credential: they must come from a Secret, never as a literal.
SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|CREDENTIALS?|KEY|KEY_ID|HEADERS|DATABASE_URL|DSN)$"
    r"|(^|_)SECRET(_|$)")

Manifest = dict[str, Any]


# ---- values, schema and rendering ---------------------------------------------------------

def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def default_values() -> dict[str, Any]:
    values = load_yaml(CHART / "values.yaml")
    assert isinstance(values, dict)
    return values


def coalesce(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values over the defaults: maps merge, a null removes the key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_with(*overrides: dict[str, Any]) -> dict[str, Any]:
    values = default_values()
    for override in overrides:
        values = coalesce(values, override)
    return values


def schema() -> dict[str, Any]:
    loaded = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def schema_errors(values: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return list(jsonschema.Draft7Validator(schema()).iter_errors(values))


class RenderError(Exception):
    """The chart refused to render (required, fail, a template error)."""


@dataclass
class Rendered:
    manifests: list[Manifest]
    notes: str

    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self.manifests)

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> Manifest:
        found = [m for m in self.all(kind)
                 if component is None or component_of(m) == component]
        assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
        return found[0]


def component_of(manifest: Manifest) -> str | None:
    labels = manifest["metadata"].get("labels", {})
    component = labels.get("app.kubernetes.io/component")
    return component if isinstance(component, str) else None


def go_binary() -> str:
    go = shutil.which("go") or next(
        (str(p) for p in sorted(Path("/usr/lib").glob("go*/bin/go"), reverse=True)), None)
    if go is None:
        pytest.fail("the Go toolchain is missing: apt-get install golang-go (make test does)")
    return go


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("helm-render") / "helm_render"
    env = {**os.environ, "CGO_ENABLED": "0", "GOPROXY": "off", "GOFLAGS": "-mod=mod",
           "GOTOOLCHAIN": "local"}
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(tmp_path_factory.mktemp("go-cache"))
    result = subprocess.run([go_binary(), "build", "-o", str(out), "."], cwd=RENDER_SOURCE,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"go build failed:\n{result.stderr}"
    return out


def run_renderer(renderer: Path, chart: Path, values: dict[str, Any], *, strict: bool = True,
                 release: str = "nentang", namespace: str = "nentang",
                 install: bool = True) -> Rendered:
    meta = load_yaml(chart / "Chart.yaml")
    document = {
        "values": values,
        "chart": {"Name": meta["name"], "Version": meta["version"],
                  "AppVersion": meta.get("appVersion", ""), "Description": meta.get("description"),
                  "Type": meta.get("type", "application")},
        "release": {"Name": release, "Namespace": namespace, "Service": "Helm",
                    "IsInstall": install, "IsUpgrade": not install, "Revision": 1},
        "kubeVersion": f"v{KUBERNETES_VERSION}",
        "apiVersions": ["v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2",
                        "networking.k8s.io/v1", "monitoring.coreos.com/v1"],
    }
    command = [str(renderer), "-chart", str(chart), "-input", "-"]
    if strict:
        command.append("-strict")
    result = subprocess.run(command, input=json.dumps(document), capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    output = json.loads(result.stdout)
    manifests: list[Manifest] = []
    for item in output["manifests"]:
        for doc in yaml.safe_load_all(item["content"]):
            if doc is not None:
                assert isinstance(doc, dict), f"{item['name']} rendered a non-object"
                manifests.append(doc)
    return Rendered(manifests, output["notes"])


def render(renderer: Path, *overrides: dict[str, Any], release: str = "nentang") -> Rendered:
    """Render as `helm install` would: the values must first pass the schema."""
    values = values_with(*overrides)
    errors = schema_errors(values)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return run_renderer(renderer, CHART, values, release=release)


@pytest.fixture(scope="session")
def minimal(renderer: Path) -> Rendered:
    return render(renderer, REQUIRED, release="demo")


@pytest.fixture(scope="session")
def production(renderer: Path) -> Rendered:
    return render(renderer, PRODUCTION)


@pytest.fixture(scope="session", params=["minimal", "production"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    result = request.getfixturevalue(request.param)
    assert isinstance(result, Rendered)
    return result


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container(workload: Manifest) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, "one container per pod"
    first = containers[0]
    assert isinstance(first, dict)
    return first


def env_of(workload: Manifest) -> dict[str, dict[str, Any]]:
    env = container(workload).get("env", [])
    names = [item["name"] for item in env]
    assert len(names) == len(set(names)), f"duplicate variables: {names}"
    return {item["name"]: item for item in env}


def literal(workload: Manifest, name: str) -> str:
    item = env_of(workload)[name]
    assert "valueFrom" not in item
    value = item["value"]
    assert isinstance(value, str), f"{name} is not a string: {value!r}"
    return value


def secret_ref(workload: Manifest, name: str) -> tuple[str, str]:
    item = env_of(workload)[name]
    assert "value" not in item, f"{name} holds a literal value"
    ref = item["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def workloads(rendered: Rendered) -> list[Manifest]:
    return rendered.all("Deployment") + rendered.all("Job")


def arg_after(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---- the chart's files ---------------------------------------------------------------------

def test_chart_yaml_has_the_required_keys() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "nentang" == CHART.name
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", chart["version"])
    assert chart["type"] == "application"
    assert chart["description"]
    assert chart["kubeVersion"].startswith(">=")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(chart["appVersion"], str), "appVersion must be a quoted string"
    assert chart["appVersion"] == project["version"], "appVersion follows the service's version"
    for required in ("values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt",
                     "templates/_helpers.tpl"):
        assert (CHART / required).is_file(), required


def test_default_values_pass_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    assert schema()["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert not schema_errors(default_values())
    assert not schema_errors(values_with(REQUIRED))
    assert not schema_errors(values_with(PRODUCTION))


def test_schema_closes_every_object_it_defines() -> None:
    """Every object with declared properties refuses unknown keys (a typo fails the install)."""
    open_objects: list[str] = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        if "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(where)
        for key in ("properties", "definitions"):
            for name, child in node.get(key, {}).items():
                walk(child, f"{where}/{key}/{name}")
        for key in ("items", "additionalProperties"):
            walk(node.get(key), f"{where}/{key}")
        for index, child in enumerate(node.get("allOf", [])):
            if "if" not in child:  # a condition's branches only add constraints
                walk(child, f"{where}/allOf/{index}")

    walk(schema(), "#")
    assert not open_objects


BAD_VALUES: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("replicas as a string", {"api": {"replicas": "3"}}, ("api", "replicas")),
    ("unknown top-level key", {"replicaCount": 3}, ()),
    ("unknown nested key", {"worker": {"concurrency": 4}}, ("worker",)),
    ("a password where a reference goes", {"database": {"password": "hunter2"}},
     ("database",)),
    ("a connection URL as the secret's name",
     {"database": {"existingSecret": "postgresql+asyncpg://nentang_app:hunter2@db/nentang"}},
     ("database", "existingSecret")),
    ("credentials in the storage URL",
     {"attachments": {"storageUrl": "s3://AKIAEXAMPLE:hunter2@nentang-attachments"}},
     ("attachments", "storageUrl")),
    ("a literal secret in extraEnv",
     {"extraEnv": [{"name": "PROVINCE_API_TOKEN", "value": "hunter2"}]}, ("extraEnv", 0)),
    ("a chart-managed variable in extraEnv",
     {"extraEnv": [{"name": "NENTANG_DATABASE_URL",
                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]},
     ("extraEnv", 0, "name")),
    ("missing issuer", {"config": {"issuer": None}}, ("config",)),
    ("issuer not a URL", {"config": {"issuer": "nentang.example.gov.vn"}},
     ("config", "issuer")),
    ("below the service's own minimum", {"config": {"accessTokenTtlSeconds": 10}},
     ("config", "accessTokenTtlSeconds")),
    ("replicas 0 with autoscaling", {"api": {"replicas": 0, "autoscaling": {"enabled": True}}},
     ("api", "replicas")),
    ("autoscaling from zero", {"worker": {"autoscaling": {"enabled": True, "minReplicas": 0}}},
     ("worker", "autoscaling", "minReplicas")),
    ("autoscaling on no metric",
     {"api": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}}},
     ("api", "autoscaling")),
    ("image tag with a space", {"image": {"tag": "1.0 beta"}}, ("image", "tag")),
    ("the moving latest tag", {"image": {"tag": "latest"}}, ("image", "tag")),
    ("unknown metrics exporter", {"telemetry": {"metricsExporter": "statsd"}},
     ("telemetry", "metricsExporter")),
    ("OTLP without an endpoint", {"telemetry": {"tracesExporter": "otlp"}},
     ("telemetry", "otlp", "endpoint")),
    ("a ServiceMonitor without Prometheus metrics",
     {"telemetry": {"prometheus": {"serviceMonitor": {"enabled": True}}}},
     ("telemetry", "metricsExporter")),
    ("attachments on a pod's own disk",
     {"attachments": {"storageUrl": "file:///var/lib/nentang/attachments"}},
     ("attachments", "volume", "existingClaim")),
    ("attachments shared by replicas without ReadWriteMany",
     {"attachments": {"storageUrl": "file:///var/lib/nentang/attachments",
                      "volume": {"existingClaim": "attachments"}}, "api": {"replicas": 3}},
     ("attachments", "volume", "readWriteMany")),
    ("both disruption budget forms",
     {"api": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}},
     ("api", "podDisruptionBudget")),
    ("running as root", {"securityContext": {"runAsUser": 0}},
     ("securityContext", "runAsUser")),
    ("a CPU request that is no quantity", {"api": {"resources": {"requests": {"cpu": "lots"}}}},
     ("api", "resources", "requests", "cpu")),
    ("an Ingress with no host", {"ingress": {"enabled": True}}, ("ingress", "hosts")),
    ("a grace period of zero", {"api": {"terminationGracePeriodSeconds": 0}},
     ("api", "terminationGracePeriodSeconds")),
]


@pytest.mark.parametrize(("override", "path"), [(o, p) for _, o, p in BAD_VALUES],
                         ids=[name for name, _, _ in BAD_VALUES])
def test_bad_values_fail_the_schema_at_their_path(
        override: dict[str, Any], path: tuple[str | int, ...]) -> None:
    errors = schema_errors(values_with(REQUIRED, override))
    assert errors, "the schema accepted it"
    found = [tuple(e.absolute_path) for e in errors]
    assert path in found, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


TEMPLATE_FILES = sorted((CHART / "templates").glob("*"))
ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.DOTALL)


def test_every_values_path_in_the_templates_exists() -> None:
    values = default_values()
    missing: list[str] = []
    for template in TEMPLATE_FILES:
        text = template.read_text(encoding="utf-8")
        for path in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            node: Any = values
            for key in path.strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    missing.append(f"{template.name}: .Values{path}")
                    break
                node = node[key]
    assert not missing


def test_every_template_balances_its_actions() -> None:
    openers = {"if", "range", "with", "define", "block"}
    for template in TEMPLATE_FILES:
        stack: list[str] = []
        for action in ACTION.findall(template.read_text(encoding="utf-8")):
            if action.startswith("/*"):
                assert action.endswith("*/"), f"{template.name}: unclosed comment"
                continue
            word = action.split()[0] if action.split() else ""
            if word in openers:
                stack.append(word)
            elif word == "else":
                assert stack and stack[-1] in {"if", "range", "with"}, \
                    f"{template.name}: else outside if/range/with"
            elif word == "end":
                assert stack, f"{template.name}: an end without an opener"
                stack.pop()
        assert not stack, f"{template.name}: unclosed {stack}"


# ---- the renderer itself -------------------------------------------------------------------

def test_the_renderer_behaves_as_helm(renderer: Path, tmp_path: Path) -> None:
    """Known Helm behaviours the chart relies on, on a throwaway chart."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 1.0.0\n")
    (chart / "templates" / "_h.tpl").write_text(
        '{{- define "probe.name" -}}{{ .Chart.Name }}-{{ .Release.Name | trunc 3 }}{{- end }}')
    (chart / "templates" / "cm.yaml").write_text(
        "kind: ConfigMap\n"
        "name: {{ include \"probe.name\" . }}\n"
        "float: {{ .Values.big | quote }}\n"
        "whole: {{ .Values.big | int64 | quote }}\n"
        "json: {{ toJson .Values.big }}\n"
        "fallback: {{ default \"x\" .Values.empty }}\n"
        "absent: {{ kindIs \"invalid\" .Values.nothing }}\n"
        "tree:\n  {{- toYaml .Values.tree | nindent 2 }}\n"
        "missing: '{{ .Values.nope }}'\n")
    (chart / "templates" / "empty.yaml").write_text("{{- if false }}kind: Nothing{{ end }}\n")
    values = {"big": 20971520, "empty": "", "nothing": None,
              "tree": {"b": [1, "two", {"c": True}], "a": {"on": "yes"}}}
    out = run_renderer(renderer, chart, values, strict=False, release="release")
    assert len(out.manifests) == 1, "a template that renders nothing is dropped"
    cm = out.manifests[0]
    assert cm["name"] == "probe-rel"
    assert cm["float"] == "2.097152e+07", "Helm's numbers are float64"
    assert cm["whole"] == "20971520"
    assert cm["json"] == 20971520
    assert cm["fallback"] == "x"
    assert cm["absent"] is True
    assert cm["tree"] == values["tree"]
    assert cm["missing"] == "", "<no value> prints as nothing"
    with pytest.raises(RenderError, match="map has no entry for key"):
        run_renderer(renderer, chart, values, strict=True)
    (chart / "templates" / "fail.yaml").write_text('{{ required "needs x" .Values.x }}')
    with pytest.raises(RenderError, match="needs x"):
        run_renderer(renderer, chart, values, strict=False)


# ---- rendering the chart ------------------------------------------------------------------

def test_the_chart_refuses_to_render_without_issuer_or_storage(renderer: Path) -> None:
    values = default_values()
    assert not schema_errors(values)  # the defaults are valid; the two values are still needed
    with pytest.raises(RenderError, match=re.escape("config.issuer is required")):
        run_renderer(renderer, CHART, values)
    with pytest.raises(RenderError, match=re.escape("attachments.storageUrl is required")):
        run_renderer(renderer, CHART, coalesce(values, {"config": REQUIRED["config"]}))


def test_the_objects_rendered(minimal: Rendered, production: Rendered) -> None:
    assert minimal.kinds() == sorted([
        "Deployment", "Deployment", "Job", "NetworkPolicy", "NetworkPolicy", "NetworkPolicy",
        "PodDisruptionBudget", "Service", "ServiceAccount"])
    assert production.kinds() == sorted([
        "Deployment", "Deployment", "HorizontalPodAutoscaler", "HorizontalPodAutoscaler",
        "Ingress", "Job", "NetworkPolicy", "NetworkPolicy", "NetworkPolicy",
        "PodDisruptionBudget", "PodDisruptionBudget", "Service", "Service", "ServiceAccount",
        "ServiceMonitor"])
    assert not minimal.all("Secret") and not production.all("Secret"), \
        "the chart never holds a secret"
    for rendered in (minimal, production):
        names = [(m["kind"], m["metadata"]["name"]) for m in rendered.manifests]
        assert len(names) == len(set(names))
        for manifest in rendered.manifests:
            assert len(manifest["metadata"]["name"]) <= 63
            assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert minimal.one("Deployment", "api")["metadata"]["name"] == "demo-nentang-api"
    assert production.one("Deployment", "api")["metadata"]["name"] == "nentang-api"


def test_pods_are_locked_down(rendered: Rendered) -> None:
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == IMAGE_UID, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        box = container(workload)
        sc = box["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == IMAGE_UID, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["privileged"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp is an emptyDir"  # noqa: S108
        assert literal(workload, "NENTANG_DATA_DIR").startswith("/tmp/"), name  # noqa: S108
        resources = box["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name
        assert box["command"] == ["nentang"], name
        assert box["image"] == container(rendered.one("Deployment", "api"))["image"], name
        app_version = load_yaml(CHART / "Chart.yaml")["appVersion"]
        assert box["image"].endswith(f":{app_version}") or "@sha256:" in box["image"], name


def test_api_probes_and_graceful_shutdown(rendered: Rendered) -> None:
    api = rendered.one("Deployment", "api")
    box = container(api)
    ports = {p["name"]: p["containerPort"] for p in box["ports"]}
    assert ports["http"] == 8000
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        assert box[probe]["httpGet"] == {"path": path, "port": "http"}, probe
        assert box[probe]["periodSeconds"] >= 1 and box[probe]["failureThreshold"] >= 1
    startup = box["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "a minute to start"
    args = box["args"]
    assert args[:5] == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    assert "--workers" not in args, "one server process per pod; scale with replicas"
    drain = int(arg_after(args, "--graceful-timeout"))
    sleep = box["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) >= 1
    grace = pod_spec(api)["terminationGracePeriodSeconds"]
    assert int(sleep[1]) + drain < grace, "the API must drain before it is killed"
    strategy = api["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_worker_command_and_shutdown(rendered: Rendered) -> None:
    worker = rendered.one("Deployment", "worker")
    box = container(worker)
    args = box["args"]
    assert args[0] == "worker"
    assert int(arg_after(args, "--grace")) < pod_spec(worker)["terminationGracePeriodSeconds"]
    assert float(arg_after(args, "--poll")) > 0 and int(arg_after(args, "--batch")) >= 1
    assert all(p["name"] != "http" for p in box.get("ports", [])), "the worker serves no API"
    env = env_of(worker)
    # Least privilege: the worker neither signs tokens nor touches attachments.
    assert "NENTANG_SIGNING_KEY_FILE" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert {v["name"] for v in pod_spec(worker)["volumes"]} == {"tmp"}


def test_secrets_only_by_reference(rendered: Rendered) -> None:
    for workload in workloads(rendered):
        for name, item in env_of(workload).items():
            if SECRET_NAME.search(name):
                assert "value" not in item, f"{name} is a literal in {workload['metadata']}"
                assert set(item["valueFrom"]) == {"secretKeyRef"}, name
            else:
                assert "valueFrom" in item or isinstance(item.get("value"), str), name
    text = json.dumps(rendered.manifests)
    assert "hunter2" not in text and "://nentang_app:" not in text


def test_database_roles(rendered: Rendered, production: Rendered) -> None:
    values = values_with(REQUIRED, PRODUCTION) if rendered is production else default_values()
    fullname = "nentang" if rendered is production else "demo-nentang"
    database = values["database"]
    app_secret = database["existingSecret"] or f"{fullname}-database"
    admin_secret = database["adminExistingSecret"] or app_secret
    for component in ("api", "worker"):
        workload = rendered.one("Deployment", component)
        assert secret_ref(workload, "NENTANG_DATABASE_URL") == (app_secret, database["urlKey"])
        assert "NENTANG_ADMIN_DATABASE_URL" not in env_of(workload), "never the owner's URL"
        assert literal(workload, "NENTANG_AUTO_MIGRATE") == "false"
        assert literal(workload, "NENTANG_DB_APP_ROLE") == database["appRole"]
    job = rendered.one("Job", "migrate")
    assert secret_ref(job, "NENTANG_ADMIN_DATABASE_URL") == (admin_secret,
                                                             database["adminUrlKey"])
    assert "NENTANG_DATABASE_URL" not in env_of(job)
    assert literal(job, "NENTANG_DB_OWNER_ROLE") == database["ownerRole"]


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(rendered: Rendered) -> None:
    job = rendered.one("Job", "migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) <= 0
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert container(job)["command"] + container(job)["args"] == ["nentang", "db", "upgrade"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    assert "serviceAccountName" not in spec, "a hook runs before the release's account exists"
    assert job["spec"]["backoffLimit"] >= 0 and job["spec"]["activeDeadlineSeconds"] > 0
    api_image = container(rendered.one("Deployment", "api"))["image"]
    assert container(job)["image"] == api_image


def test_signing_keys_and_attachments_reach_the_api(rendered: Rendered,
                                                    production: Rendered) -> None:
    api = rendered.one("Deployment", "api")
    values = values_with(REQUIRED, PRODUCTION) if rendered is production else default_values()
    keys = values["signingKeys"]
    box = container(api)
    mount = next(m for m in box["volumeMounts"] if m["name"] == "signing-keys")
    assert mount["readOnly"] is True and "subPath" not in mount, "a subPath never updates"
    volume = next(v for v in pod_spec(api)["volumes"] if v["name"] == "signing-keys")
    fullname = "nentang" if rendered is production else "demo-nentang"
    assert volume["secret"]["secretName"] == (keys["existingSecret"]
                                              or f"{fullname}-signing-keys")
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by others"
    assert literal(api, "NENTANG_SIGNING_KEY_FILE") == f"{mount['mountPath']}/{keys['key']}"
    storage = literal(api, "NENTANG_ATTACHMENT_STORAGE_URL")
    assert storage.startswith("s3://")
    if rendered is production:
        assert secret_ref(api, "AWS_ACCESS_KEY_ID") == ("nentang-s3", "AWS_ACCESS_KEY_ID")
        assert secret_ref(api, "AWS_SECRET_ACCESS_KEY") == ("nentang-s3",
                                                            "AWS_SECRET_ACCESS_KEY")
    else:
        assert "AWS_ACCESS_KEY_ID" not in env_of(api), "no keys: a workload identity"


def test_service_selects_only_the_api_pods(rendered: Rendered) -> None:
    api, worker = rendered.one("Deployment", "api"), rendered.one("Deployment", "worker")
    service = next(s for s in rendered.all("Service") if component_of(s) == "api")
    selector = service["spec"]["selector"]
    assert matches(selector, api["spec"]["template"]["metadata"]["labels"])
    assert not matches(selector, worker["spec"]["template"]["metadata"]["labels"])
    assert matches(api["spec"]["selector"]["matchLabels"],
                   api["spec"]["template"]["metadata"]["labels"])
    ports = {p["name"] for p in container(api)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports


def test_disruption_budgets_select_their_pods(rendered: Rendered) -> None:
    budgets = rendered.all("PodDisruptionBudget")
    assert budgets
    deployments = rendered.all("Deployment")
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        selected = [d for d in deployments
                    if matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        assert [component_of(d) for d in selected] == [component_of(budget)]
        assert ("minAvailable" in budget["spec"]) != ("maxUnavailable" in budget["spec"])
    if rendered.all("HorizontalPodAutoscaler"):  # production: the API keeps two of three
        assert rendered.one("PodDisruptionBudget", "api")["spec"] == {
            "minAvailable": 2, "selector": {"matchLabels": {
                "app.kubernetes.io/name": "nentang", "app.kubernetes.io/instance": "nentang",
                "app.kubernetes.io/component": "api"}}}


def test_autoscalers_target_their_deployments(production: Rendered) -> None:
    for component, scaling in (("api", PRODUCTION["api"]["autoscaling"]),
                               ("worker", PRODUCTION["worker"]["autoscaling"])):
        hpa = production.one("HorizontalPodAutoscaler", component)
        deployment = production.one("Deployment", component)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "name": deployment["metadata"]["name"]}
        assert hpa["spec"]["minReplicas"] == scaling["minReplicas"]
        assert hpa["spec"]["maxReplicas"] == scaling["maxReplicas"]
        metrics = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                   for m in hpa["spec"]["metrics"]}
        assert metrics["cpu"] == scaling["targetCPUUtilizationPercentage"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"


def test_replicas_without_autoscaling(minimal: Rendered) -> None:
    values = default_values()
    assert minimal.one("Deployment", "api")["spec"]["replicas"] == values["api"]["replicas"]
    assert minimal.one("Deployment", "worker")["spec"]["replicas"] == \
        values["worker"]["replicas"]
    assert not minimal.all("HorizontalPodAutoscaler")


def test_network_policies(rendered: Rendered, production: Rendered) -> None:
    policies = {component_of(p): p for p in rendered.all("NetworkPolicy")}
    assert set(policies) == {"api", "worker", "migrate"}
    pods = {component_of(w): w["spec"]["template"]["metadata"]["labels"]
            for w in workloads(rendered)}
    metrics = rendered is production
    for component, policy in policies.items():
        spec = policy["spec"]
        selected = [c for c, labels in pods.items()
                    if matches(spec["podSelector"]["matchLabels"], labels)]
        assert selected == [component]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        ingress_ports = sorted(p["port"] for rule in spec["ingress"] for p in rule["ports"])
        expected = {"api": [8000], "worker": [], "migrate": []}[str(component)]
        if metrics and component != "migrate":
            expected = sorted([*expected, 9464])
        assert ingress_ports == expected, component
        for rule in spec["ingress"]:
            assert rule.get("from"), "every ingress rule names its sources"
        egress = spec["egress"]
        assert all(rule.get("ports") for rule in egress), "no egress rule opens every port"
        dns = egress[0]
        assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
        postgres = egress[1]
        assert [p["port"] for p in postgres["ports"]] == [5432]
        if component == "migrate":
            assert len(egress) == 2, "the migration reaches only DNS and PostgreSQL"
    api_https = policies["api"]["spec"]["egress"][2]
    assert api_https["ports"] == [{"port": 443, "protocol": "TCP"}]
    blocks = [peer["ipBlock"] for peer in api_https["to"]]
    assert blocks[0]["cidr"] == "0.0.0.0/0" and "169.254.0.0/16" in blocks[0]["except"]
    if rendered is production:
        assert policies["api"]["spec"]["egress"][1]["to"] == [
            {"ipBlock": {"cidr": "10.20.0.10/32"}}]

        def ports(component: str) -> set[int]:
            return {p["port"] for rule in policies[component]["spec"]["egress"]
                    for p in rule["ports"]}

        assert 9000 in ports("api") and 9000 not in ports("worker"), "storage: the API only"
        assert 8443 in ports("api") and 8443 in ports("worker")
        assert 4318 in ports("api") and 4318 in ports("worker")


def test_telemetry(minimal: Rendered, production: Rendered) -> None:
    for component in ("api", "worker"):
        quiet = minimal.one("Deployment", component)
        assert literal(quiet, "OTEL_TRACES_EXPORTER") == "none"
        assert literal(quiet, "OTEL_METRICS_EXPORTER") == "none"
        assert "OTEL_EXPORTER_PROMETHEUS_PORT" not in env_of(quiet)
        assert all(p["name"] != "metrics" for p in container(quiet).get("ports", []))

        loud = production.one("Deployment", component)
        assert literal(loud, "OTEL_TRACES_EXPORTER") == "otlp"
        assert literal(loud, "OTEL_METRICS_EXPORTER") == "prometheus"
        assert literal(loud, "OTEL_EXPORTER_OTLP_ENDPOINT") == \
            PRODUCTION["telemetry"]["otlp"]["endpoint"]
        assert secret_ref(loud, "OTEL_EXPORTER_OTLP_HEADERS") == ("nentang-otlp", "headers")
        assert literal(loud, "OTEL_EXPORTER_PROMETHEUS_HOST") == "0.0.0.0"  # noqa: S104
        assert literal(loud, "OTEL_EXPORTER_PROMETHEUS_PORT") == "9464"
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in \
            container(loud)["ports"]
        annotations = loud["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9464"
        assert annotations["prometheus.io/path"] == "/metrics"
        attributes = literal(loud, "OTEL_RESOURCE_ATTRIBUTES")
        assert attributes.startswith("deployment.environment=production,")
        assert f"k8s.deployment.name={loud['metadata']['name']}" in attributes

    monitor = production.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    selector = monitor["spec"]["selector"]
    scraped = {component_of(s) for s in production.all("Service")
               if matches(selector["matchLabels"], s["metadata"]["labels"])
               and component_of(s) in selector["matchExpressions"][0]["values"]}
    assert scraped == {"api", "worker"}
    for service in production.all("Service"):
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
        pods = production.one("Deployment", component_of(service))
        assert matches(service["spec"]["selector"],
                       pods["spec"]["template"]["metadata"]["labels"])


def test_ingress(production: Rendered) -> None:
    ingress = production.one("Ingress")
    service = next(s for s in production.all("Service") if component_of(s) == "api")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "nentang.example.gov.vn"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["nentang.example.gov.vn"],
                                       "secretName": "nentang-tls"}]


SETTING_VALUES: dict[str, Any] = {
    "accessTokenTtlSeconds": 900, "refreshTokenTtlSeconds": 7200,
    "clientRateLimitPerMinute": 0, "uiRedirectUris": ["https://ui.example.gov.vn/callback"],
    "idpAllowHttpLoopback": True, "loginMaxFailures": 7, "loginLockoutSeconds": 120,
    "idempotencyTtlSeconds": 3600, "attachmentMaxBytes": 52428800, "maxBodyBytes": 1048576,
    "deliveryAllowPrivateTargets": True, "deliveryMaxAttempts": 12,
    "deliveryTimeoutSeconds": 2.5, "deliveryBackoffSeconds": 15, "deliveryLeaseSeconds": 90,
    "logLevel": "WARNING", "logJson": False,
}


def test_every_setting_reaches_the_service_as_it_reads_it(
        renderer: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each config value becomes the variable app/config.py reads, in a form it parses; and
    every setting the service has is either set by the chart or deliberately left out."""
    out = render(renderer, REQUIRED, {"config": SETTING_VALUES, "database": {"poolSize": 4}})
    api = out.one("Deployment", "api")
    env = env_of(api)
    settings_names = {f"NENTANG_{name.upper()}" for name in Settings.model_fields}
    chart_names = {name for w in workloads(out) for name in env_of(w) if
                   name.startswith("NENTANG_")}
    assert chart_names <= settings_names, f"not settings: {chart_names - settings_names}"
    assert settings_names - chart_names == set(), (
        "settings the chart does not pass (add them to values.yaml, the schema and "
        f"_helpers.tpl): {sorted(settings_names - chart_names)}")

    for name in list(os.environ):
        if name.startswith("NENTANG_"):
            monkeypatch.delenv(name)
    for name, item in env.items():
        if name.startswith("NENTANG_") and "value" in item:
            monkeypatch.setenv(name, item["value"])
    settings = Settings()
    for key, value in SETTING_VALUES.items():
        field = re.sub(r"([A-Z])", r"_\1", key).lower()
        actual = getattr(settings, field)
        assert actual == (value.upper() if isinstance(value, str) else value), key
    assert settings.db_pool_size == 4
    assert settings.issuer == REQUIRED["config"]["issuer"]
    assert settings.auto_migrate is False
    assert str(settings.signing_key_file).endswith("/signing-keys.json")


def test_attachments_on_a_shared_volume(renderer: Path) -> None:
    shared = {"attachments": {"storageUrl": "file:///var/lib/nentang/attachments",
                              "volume": {"existingClaim": "nentang-attachments",
                                         "readWriteMany": True}},
              "api": {"replicas": 3}}
    out = render(renderer, REQUIRED, shared)
    api = out.one("Deployment", "api")
    mount = next(m for m in container(api)["volumeMounts"] if m["name"] == "attachments")
    assert mount["mountPath"] == "/var/lib/nentang/attachments"
    volume = next(v for v in pod_spec(api)["volumes"] if v["name"] == "attachments")
    assert volume["persistentVolumeClaim"] == {"claimName": "nentang-attachments"}
    worker = out.one("Deployment", "worker")
    assert "attachments" not in {v["name"] for v in pod_spec(worker)["volumes"]}


@pytest.mark.parametrize(("override", "message"), [
    ({"attachments": {"storageUrl": "file:///data"}}, "names no volume claim"),
    ({"attachments": {"storageUrl": "file:///data", "volume": {"existingClaim": "c"}},
      "api": {"autoscaling": {"enabled": True}}}, "need a ReadWriteMany claim"),
    ({"api": {"gracefulTimeoutSeconds": 40, "terminationGracePeriodSeconds": 40}},
     "api.terminationGracePeriodSeconds must exceed"),
    ({"worker": {"graceSeconds": 30, "terminationGracePeriodSeconds": 30}},
     "worker.terminationGracePeriodSeconds must exceed"),
    ({"worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
     "maxReplicas must be at least"),
], ids=["file-without-claim", "file-autoscaled-without-rwx", "api-drain-too-long",
        "worker-grace-too-long", "hpa-max-below-min"])
def test_the_templates_refuse_what_the_schema_cannot_see(
        renderer: Path, override: dict[str, Any], message: str) -> None:
    """The templates' own checks, run even when a schema check would have caught it first."""
    with pytest.raises(RenderError, match=re.escape(message)):
        run_renderer(renderer, CHART, values_with(REQUIRED, override))


def test_notes(minimal: Rendered, production: Rendered) -> None:
    for rendered in (minimal, production):
        assert "<no value>" not in rendered.notes
        assert "nentang bootstrap" in rendered.notes
    assert "demo-nentang-database" in minimal.notes
    assert "demo-nentang-signing-keys" in minimal.notes
    assert "port-forward service/demo-nentang" in minimal.notes
    assert "https://nentang.example.gov.vn/" in production.notes
    assert "nentang-db-owner" in production.notes


def test_manifests_are_valid_kubernetes_objects(minimal: Rendered,
                                               production: Rendered) -> None:
    """Every object against Kubernetes' own JSON schemas (strict: no unknown field)."""
    import kubernetes_validate  # the test extra

    checked, invalid = 0, []
    for rendered in (minimal, production):
        for manifest in rendered.manifests:
            if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD; test_telemetry checks its fields
            try:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                invalid.append(f"{manifest['kind']} {manifest['metadata']['name']}: "
                               f"{list(error.absolute_path)}: {error.message}")
            checked += 1
    assert not invalid
    assert checked == len(minimal.manifests) + len(production.manifests) - 1


# ---- the Containerfile ---------------------------------------------------------------------

@dataclass
class Instruction:
    keyword: str
    arguments: str
    stage: int


def containerfile() -> list[Instruction]:
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "a continued line at the end"
    instructions: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return instructions


def stage_of(instructions: list[Instruction], index: int) -> list[Instruction]:
    return [i for i in instructions if i.stage == index]


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
    return parsed


def test_containerfile_is_multi_stage_and_pinned() -> None:
    instructions = containerfile()
    args = dict(i.arguments.split("=", 1) for i in instructions
                if i.keyword == "ARG" and i.stage == -1 and "=" in i.arguments)
    froms = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    for line in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], line.split()[0])
        assert image.startswith("python:3.11-slim-bookworm"), image
        assert ":latest" not in image
    assert froms[0].split()[-1] == "builder" and froms[0].split()[-2].upper() == "AS"
    runtime = stage_of(instructions, len(froms) - 1)
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert copies and all(c.startswith("--from=builder ") for c in copies), \
        "the runtime stage takes only built files, never the build context"
    builder = stage_of(instructions, 0)
    installs = [i.arguments for i in builder if i.keyword == "RUN" and "pip install" in i.arguments]
    assert installs and "[otlp,prometheus]" in installs[0]


def test_containerfile_runs_as_a_fixed_non_root_user() -> None:
    instructions = containerfile()
    last = max(i.stage for i in instructions)
    users = [i.arguments for i in stage_of(instructions, last) if i.keyword == "USER"]
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == IMAGE_UID, "numeric, so runAsNonRoot can check it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    assert default_values()["securityContext"]["runAsUser"] == int(uid)
    runs = " ".join(i.arguments for i in stage_of(instructions, last) if i.keyword == "RUN")
    assert f"--uid {IMAGE_UID}" in runs and f"--gid {IMAGE_UID}" in runs


def test_containerfile_ships_what_the_service_reads_beside_its_package() -> None:
    """The service finds migrations/ and the definition folders at Path(app).parents[...]:
    they must land beside app/ in the image."""
    read_beside: set[str] = set()
    for module in (ROOT / "app").rglob("*.py"):
        read_beside |= set(re.findall(r'parents\[2\] / "(\w+)"', module.read_text("utf-8")))
    assert {"forms", "workflows", "tenants", "reports", "migrations"} <= read_beside
    instructions = containerfile()
    builder = stage_of(instructions, 0)
    workdirs = [i.arguments for i in builder if i.keyword == "WORKDIR"]
    copied: dict[str, str] = {}
    for i in builder:
        if i.keyword == "COPY" and not i.arguments.startswith("--from"):
            *sources, target = i.arguments.split()
            for source in sources:
                copied[source.rstrip("/")] = target
    for folder in sorted(read_beside | {"app"}):
        assert copied.get(folder) in (f"{folder}/", f"./{folder}/"), f"{folder} not beside app/"
        assert (ROOT / folder).is_dir()
    assert workdirs and workdirs[-1] == "/opt/nentang"
    runtime = stage_of(instructions, max(i.stage for i in instructions))
    assert any(i.arguments == "--from=builder /opt/nentang /opt/nentang" for i in runtime
               if i.keyword == "COPY"), "the runtime keeps the tree at the same path"


def test_containerfile_entrypoint_ports_labels_and_no_secrets() -> None:
    instructions = containerfile()
    last = max(i.stage for i in instructions)
    final = stage_of(instructions, last)
    entry = [exec_form(i.arguments) for i in final if i.keyword == "ENTRYPOINT"]
    cmd = [exec_form(i.arguments) for i in final if i.keyword == "CMD"]
    assert entry == [["nentang"]]
    assert cmd == [["serve", "--host", "0.0.0.0", "--port", "8000"]]  # noqa: S104
    assert [i.arguments for i in final if i.keyword == "EXPOSE"] == ["8000"]
    labels = " ".join(i.arguments for i in final if i.keyword == "LABEL")
    for label in ("title", "version", "licenses", "description"):
        assert f"org.opencontainers.image.{label}=" in labels, label
    for instruction in instructions:
        if instruction.keyword in {"ENV", "ARG"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.arguments):
                assert not SECRET_NAME.search(name.upper()), name
    for instruction in instructions:
        assert not re.search(r"(?i)password|secret|token|credential|private[_-]?key",
                             instruction.arguments), instruction


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".containerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for these patterns: a path is out if it or a parent matches."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        hit = any(fnmatch.fnmatchcase(prefix, candidate) or
                  (candidate.startswith("**/") and fnmatch.fnmatchcase(prefix.split("/")[-1],
                                                                      candidate[3:]))
                  for prefix in prefixes for candidate in candidates)
        if hit:
            out = not negate
    return out


def test_build_context_leaves_out_what_the_image_must_not_hold() -> None:
    assert (ROOT / ".dockerignore").read_bytes() == (ROOT / ".containerignore").read_bytes()
    patterns = ignore_patterns()
    for path in (".venv/bin/python", "var/nentang.db", "var/signing-key.pem", ".git/config",
                 "tests/oidc/node_modules/oidc-provider/package.json", "artifacts/report.html",
                 "app/__pycache__/cli.cpython-311.pyc", ".env", "helm/nentang/values.yaml"):
        assert ignored(path, patterns), path
    copied = [s for i in containerfile() if i.keyword == "COPY"
              and not i.arguments.startswith("--from") for s in i.arguments.split()[:-1]]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/"), patterns), f"{source} is left out of the context"
    for tracked in ("app/cli.py", "app/ui/static", "migrations/env.py", "forms/form.schema.json",
                    "tenants/vietnam.json", "pyproject.toml"):
        assert not ignored(tracked, patterns), tracked


def iter_yaml_files() -> Iterator[Path]:
    yield CHART / "Chart.yaml"
    yield CHART / "values.yaml"
    yield from sorted((CHART / "ci").glob("*.yaml"))


def test_chart_yaml_files_parse() -> None:
    for path in iter_yaml_files():
        assert isinstance(load_yaml(path), dict), path
