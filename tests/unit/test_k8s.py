"""deploy/k8s: each overlay builds with kustomize, every manifest it makes is valid (Kubernetes'
own schemas through kubernetes-validate, the operators' CRDs for their resources), and what the
manifests say agrees with the code: each service gets only its own secrets, the broker's users
and permissions are libs/bus/authority.py's, the database roles libs/provision.py's."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from deploy.k8s import generate
from libs import provision
from libs.bus import authority, topology

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NAMESPACES = {"dev": "espace-sante-dev", "production": "espace-sante"}
OVERLAYS = tuple(NAMESPACES)
# The oldest Kubernetes the manifests are meant for (HPA v2, PDB unhealthyPodEvictionPolicy).
KUBERNETES_VERSION = "1.30"
SERVICES = provision.SERVICES
# Made by the operators themselves, not by ops nor by the dev overlay.
OPERATOR_SECRETS = {generate.RABBITMQ_ADMIN_SECRET, generate.POSTGRES_ADMIN_SECRET}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

Doc = dict[str, Any]


# --- building and validating ------------------------------------------------------------------


def kustomize() -> list[str]:
    """The kustomize binary if installed, else the one built into kubectl (`make tools`)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("neither kustomize nor kubectl is installed: see the Makefile's `tools` target")


@functools.cache
def _build(overlay: str) -> tuple[Doc, ...]:
    made = subprocess.run(
        [*kustomize(), str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return tuple(d for d in yaml.load_all(made.stdout, Loader=yaml.CSafeLoader) if d)


def build(overlay: str) -> list[Doc]:
    return copy.deepcopy(list(_build(overlay)))


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _strict(schema: Any) -> Any:
    """The API server prunes (drops) fields a CRD's structural schema does not name, and
    `kubectl apply --validate=strict` refuses them: so does this, by closing every object
    that lists its properties and does not keep unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(s) for s in schema]
    return schema


def crd_sources() -> list[dict[str, str]]:
    found: list[dict[str, str]] = yaml.safe_load((K8S / "crds" / "sources.yaml").read_text())[
        "crds"
    ]
    return found


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind): the served version's openAPIV3Schema, made strict."""
    schemas = {}
    for source in crd_sources():
        crd = yaml.load((K8S / "crds" / source["file"]).read_text(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def validate(doc: Doc) -> None:
    """Raises a jsonschema.ValidationError (kubernetes-validate's is one) if `doc` is invalid."""
    custom = crd_schemas().get((doc["apiVersion"], doc["kind"]))
    if custom is not None:
        jsonschema.Draft7Validator(custom).validate(doc)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        pytest.fail(
            f"no schema for {doc['apiVersion']} {doc['kind']}: neither Kubernetes' nor a CRD"
        )


# --- the code's side --------------------------------------------------------------------------


def own_secret_variables(service: str) -> set[str]:
    """What the service may hold (libs/provision.py), and the SMTP relay's login where it
    sends mail."""
    variables = {k.upper() for k, owners in provision.SECRET_OWNERS.items() if service in owners}
    if generate.sends_mail(service):
        variables |= {"SMTP_USERNAME", "SMTP_PASSWORD"}
    return variables


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    spec = one(docs, kind, name)["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    found: Doc = spec["containers"][0]
    return found


def secrets_read(c: Doc) -> dict[str, set[str]]:
    """Secret name: the keys the container reads from it (envFrom: every key, `*`)."""
    found: dict[str, set[str]] = {}
    for env in c.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            found.setdefault(ref["name"], set()).add(ref["key"])
    for source in c.get("envFrom", []):
        if "secretRef" in source:
            found.setdefault(source["secretRef"]["name"], set()).add("*")
    return found


def config(docs: list[Doc], c: Doc) -> dict[str, str]:
    """The container's settings from its ConfigMaps (envFrom)."""
    values: dict[str, str] = {}
    for source in c.get("envFrom", []):
        values |= one(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    return values


def secret_data(doc: Doc) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}


# --- the tests --------------------------------------------------------------------------------


def test_the_generated_manifests_are_up_to_date() -> None:
    assert generate.stale() == [], "run: python -m deploy.k8s.generate"


@pytest.mark.parametrize("source", crd_sources(), ids=lambda s: s["file"])
def test_each_crd_is_the_release_it_is_noted_as(source: dict[str, str]) -> None:
    text = (K8S / "crds" / source["file"]).read_bytes()
    assert hashlib.sha256(text).hexdigest() == source["sha256"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", source["tag"]) and len(source["commit"]) == 40


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_builds_the_overlay(overlay: str) -> None:
    docs = build(overlay)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "RabbitmqCluster",
        "User",
        "Permission",
        "TopicPermission",
        "Exchange",
        "Queue",
        "Binding",
        "Policy",
        "Cluster",
    } <= kinds
    for doc in docs:
        name = doc["metadata"]["name"]
        assert DNS_1123.match(name) and len(name) <= 63, f"{doc['kind']}/{name}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACES[overlay], f"{doc['kind']}/{name}"
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_valid_against_kubernetes_or_its_operators_schema(overlay: str) -> None:
    for doc in build(overlay):
        try:
            validate(doc)
        except jsonschema.ValidationError as error:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {error.path}")


def test_the_validation_refuses_what_the_api_server_would() -> None:
    """The validation above can fail: a misspelt field, a wrong type, in a built-in resource
    and in a custom one."""
    docs = build("production")
    deployment = one(docs, "Deployment", "dossier")
    probe = deployment["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = probe
    broken: list[Doc] = [deployment]
    replicas = one(docs, "RabbitmqCluster", generate.RABBITMQ)
    replicas["spec"]["replicas"] = "three"
    user = one(docs, "User", "dossier")
    user["spec"]["importCredentialSecret"] = user["spec"].pop("importCredentialsSecret")
    cluster = one(docs, "Cluster", generate.POSTGRES)
    cluster["spec"]["managed"]["roles"][0]["login"] = "yes"
    pdb = one(docs, "PodDisruptionBudget", "access")
    pdb["spec"]["maxUnavailable"] = {"pods": 1}
    broken += [replicas, user, cluster, pdb]
    for doc in broken:
        with pytest.raises(jsonschema.ValidationError):
            validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_probed_bounded_and_unprivileged(overlay: str, service: str) -> None:
    docs = build(overlay)
    deployment = one(docs, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    c = container(docs, "Deployment", service)
    assert c["command"] == ["python", "-m", f"services.{service}"]
    image = c["image"]
    assert image.rsplit("/", 1)[-1].startswith("espace-sante:"), image
    settings = config(docs, c)
    env = {e["name"]: e for e in c["env"]}
    assert env["SERVICE"]["value"] == service
    # The health server listens where the kubelet and Prometheus reach it.
    assert settings["HEALTH_HOST"] == "0.0.0.0"
    port = int(settings["HEALTH_PORT"])
    assert {"name": "health", "containerPort": port, "protocol": "TCP"} in c["ports"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["startupProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert settings["CLOCK_MODE"] == "system" and settings["MIGRATE_ON_START"] == "false"
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys()
    mib = {
        k: int(v.removesuffix("Mi"))
        for k, v in (("l", limits["memory"]), ("r", requests["memory"]))
    }
    assert 160 <= mib["r"] <= mib["l"] <= 512
    security, pod_security = c["securityContext"], pod["securityContext"]
    assert security["runAsNonRoot"] and pod_security["runAsNonRoot"]
    assert (
        pod_security["runAsUser"] > 0 and pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    # Every setting the service cannot start without is given, by value or by reference.
    required = {
        name.upper()
        for name, field in generate.settings_class(service).model_fields.items()
        if field.is_required()
    }
    assert required <= env.keys() | settings.keys()


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reads_only_its_own_secrets_by_reference(overlay: str, service: str) -> None:
    docs = build(overlay)
    c = container(docs, "Deployment", service)
    read = secrets_read(c)
    expected = {generate.bus_secret(service), generate.db_secret(service)}
    if own_secret_variables(service):
        expected.add(generate.keys_secret(service))
    assert read.keys() == expected
    assert read[generate.bus_secret(service)] == {"username", "password"}
    assert read[generate.db_secret(service)] == {"username", "password"}
    keys = read.get(generate.keys_secret(service), set())
    assert keys == own_secret_variables(service)
    # Never a secret's value written in a manifest: each comes from its Secret.
    env = {e["name"]: e for e in c["env"]}
    for name in keys | {"BUS_PASSWORD", "DB_PASSWORD"}:
        assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"]
    assert not (keys & config(docs, c).keys())
    # ... and the service connects as itself: its broker user and its database role.
    assert env["AMQP_URL"]["value"].startswith("amqp://$(BUS_USERNAME):$(BUS_PASSWORD)@")
    assert env["DATABASE_URL"]["value"].startswith("postgresql://$(DB_USERNAME):$(DB_PASSWORD)@")
    if overlay == "dev":
        bus = secret_data(one(docs, "Secret", generate.bus_secret(service)))
        db = secret_data(one(docs, "Secret", generate.db_secret(service)))
        assert (bus["username"], db["username"]) == (service, f"dmp_{service}")


def test_production_holds_no_secret_and_dev_only_placeholders() -> None:
    assert find(build("production"), "Secret") == []
    dev = build("dev")
    made = {d["metadata"]["name"]: d for d in find(dev, "Secret")}
    assert made.keys() == generate.secret_names().keys()
    for name, secret in made.items():
        for key, value in secret_data(secret).items():
            assert value == "dev-placeholder" or key == "username", f"{name}.{key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_referenced_is_one_ops_make_or_an_operators(overlay: str) -> None:
    """The list deploy/README.md gives ops is the list the manifests use."""
    docs = build(overlay)
    referenced: set[str] = set()
    for kind in ("Deployment", "Job"):
        for doc in find(docs, kind):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                referenced |= secrets_read(c).keys()
    referenced |= {u["spec"]["importCredentialsSecret"]["name"] for u in find(docs, "User")}
    cluster = one(docs, "Cluster", generate.POSTGRES)
    referenced |= {r["passwordSecret"]["name"] for r in cluster["spec"]["managed"]["roles"]}
    for store in find(docs, "ObjectStore"):
        credentials = store["spec"]["configuration"]["s3Credentials"]
        referenced |= {ref["name"] for ref in credentials.values()}
    expected = generate.secret_names().keys() | OPERATOR_SECRETS
    if overlay == "production":
        expected |= {"dmp-backup-s3"}
    assert referenced == expected
    readme = (ROOT / "deploy" / "README.md").read_text()
    for name in ("dmp-<party>-bus", "dmp-<service>-db", "dmp-<service>-keys", "dmp-backup-s3"):
        assert f"`{name}`" in readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_broker_users_and_permissions_are_libs_bus_authoritys(overlay: str) -> None:
    docs = build(overlay)
    cluster = generate.RABBITMQ
    assert all(
        d["spec"]["rabbitmqClusterReference"] == {"name": cluster}
        for kind in ("User", "Permission", "TopicPermission", "Exchange", "Queue", "Policy")
        for d in find(docs, kind)
    )
    users = {u["metadata"]["name"]: u for u in find(docs, "User")}
    assert users.keys() == set(authority.parties())
    permissions = {p["spec"]["userReference"]["name"]: p["spec"] for p in find(docs, "Permission")}
    topics = {p["spec"]["userReference"]["name"]: p["spec"] for p in find(docs, "TopicPermission")}
    for grant in authority.grants():
        assert users[grant.party]["spec"]["importCredentialsSecret"] == {
            "name": generate.bus_secret(grant.party)
        }
        assert users[grant.party]["spec"].get("tags", []) == []
        assert permissions[grant.party] == {
            "vhost": "/",
            "userReference": {"name": grant.party},
            "permissions": {"configure": grant.configure, "write": grant.write, "read": grant.read},
            "rabbitmqClusterReference": {"name": cluster},
        }
        assert topics[grant.party]["permissions"] == {
            "exchange": topology.EVENTS_EXCHANGE,
            "write": grant.topic_write,
            "read": grant.topic_read,
        }
    policies = authority.definitions("/", "", dict.fromkeys(authority.parties(), "-"))["policies"]
    assert [
        (p["spec"]["name"], p["spec"]["pattern"], p["spec"]["applyTo"], p["spec"]["definition"])
        for p in find(docs, "Policy")
    ] == [(p["name"], p["pattern"], p["apply-to"], p["definition"]) for p in policies]
    exchanges = {e["spec"]["name"]: e["spec"] for e in find(docs, "Exchange")}
    assert exchanges.keys() == {
        topology.EVENTS_EXCHANGE,
        topology.UNROUTED_EXCHANGE,
        topology.DEAD_EXCHANGE,
        topology.COMMANDS_EXCHANGE,
        topology.INTERNAL_EXCHANGE,
    }
    assert exchanges[topology.EVENTS_EXCHANGE]["type"] == "topic"
    assert exchanges[topology.EVENTS_EXCHANGE]["arguments"] == {
        "alternate-exchange": topology.UNROUTED_EXCHANGE
    }
    assert all(e["durable"] and not e["autoDelete"] for e in exchanges.values())
    (queue,) = find(docs, "Queue")
    assert (queue["spec"]["name"], queue["spec"]["type"]) == (topology.UNROUTED_QUEUE, "quorum")


@pytest.mark.parametrize(("overlay", "nodes"), [("dev", 1), ("production", 3)])
def test_rabbitmq_and_postgresql_clusters(overlay: str, nodes: int) -> None:
    docs = build(overlay)
    assert one(docs, "RabbitmqCluster", generate.RABBITMQ)["spec"]["replicas"] == nodes
    cluster = one(docs, "Cluster", generate.POSTGRES)["spec"]
    assert cluster["instances"] == nodes
    assert cluster["bootstrap"]["initdb"]["database"] == generate.DATABASE
    roles = {r["name"]: r for r in cluster["managed"]["roles"]}
    assert roles.keys() == {f"dmp_{s}" for s in SERVICES}
    for service in SERVICES:
        role = roles[f"dmp_{service}"]
        assert role["login"] and role["ensure"] == "present"
        assert not any(role[a] for a in ("superuser", "createdb", "createrole", "inherit"))
        assert role["passwordSecret"] == {"name": generate.db_secret(service)}
    backups = find(docs, "ScheduledBackup")
    if overlay == "production":
        (plugin,) = cluster["plugins"]
        (store,) = find(docs, "ObjectStore")
        assert plugin["isWALArchiver"]
        assert plugin["parameters"]["barmanObjectName"] == store["metadata"]["name"]
        (backup,) = backups
        assert backup["spec"]["cluster"]["name"] == generate.POSTGRES
        assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]
    else:
        assert "plugins" not in cluster and backups == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budgets_and_autoscalers_select_each_services_pods_only(overlay: str) -> None:
    docs = build(overlay)
    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for kind in ("Deployment", "Job")
        for d in find(docs, kind)
    }
    for service in SERVICES:
        selected = one(docs, "PodDisruptionBudget", service)["spec"]["selector"]["matchLabels"]
        chosen = {name for name, labels in pod_labels.items() if selected.items() <= labels.items()}
        assert chosen == {service}, "a budget over a Job's pods blocks evictions"
        assert one(docs, "PodDisruptionBudget", service)["spec"]["maxUnavailable"] == 1
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in find(docs, "HorizontalPodAutoscaler")
    }
    # retention's sweep runs on one replica at a time: a fixed count, no autoscaler
    assert scaled.keys() == set(SERVICES) - {"retention"}
    assert "replicas" not in one(docs, "Deployment", "identity")["spec"]
    retention = one(docs, "Deployment", "retention")["spec"]["replicas"]
    least = 2 if overlay == "production" else 1
    assert retention == least
    for spec in scaled.values():
        assert spec["minReplicas"] == least < spec["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_let_each_service_reach_only_its_own(
    overlay: str,
) -> None:
    docs = build(overlay)
    deny = one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = one(docs, "NetworkPolicy", "allow-dns")["spec"]
    assert dns["podSelector"] == {} and {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    for service in SERVICES:
        policy = one(docs, "NetworkPolicy", service)["spec"]
        labels = one(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
        reached: set[tuple[str, int]] = set()
        for rule in policy["egress"]:
            (peer,) = rule["to"]
            if "podSelector" in peer:
                target = next(iter(peer["podSelector"]["matchLabels"].values()))
            else:
                target = "outside"
                assert overlay == "dev" or peer["ipBlock"]["cidr"] != "0.0.0.0/0"
            reached |= {(target, p["port"]) for p in rule["ports"]}
        expected = {(generate.RABBITMQ, 5672), (generate.POSTGRES, 5432)}
        if generate.sends_mail(service):
            expected |= {("outside", p) for p in generate.SMTP_PORTS}
        if generate.sends_sms(service):
            expected |= {("outside", p) for p in generate.SMS_PORTS}
        assert reached == expected
        (ingress,) = policy["ingress"]
        assert ingress["ports"] == [{"port": generate.HEALTH_PORT, "protocol": "TCP"}]
        (source,) = ingress["from"]
        assert source["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": generate.MONITORING_NAMESPACE
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_provisioning_and_migrations_are_their_own_jobs(overlay: str) -> None:
    docs = build(overlay)
    provisioning = container(docs, "Job", "provision")
    assert provisioning["command"] == ["python", "-m", "libs.provision", "apply"]
    env = {e["name"] for e in provisioning["env"]}
    # what `libs.provision.apply_from` names as missing when it is not given
    assert {
        "AMQP_ADMIN_URL",
        "RABBITMQ_MANAGEMENT_URL",
        "DATABASE_ADMIN_URL",
        *(provision.password_variable("BUS", p) for p in authority.parties()),
        *(provision.password_variable("DB", s) for s in SERVICES),
    } <= env
    assert OPERATOR_SECRETS <= secrets_read(provisioning).keys()
    jobs = {j["metadata"]["name"] for j in find(docs, "Job")}
    assert jobs == {"provision"} | {f"migrate-{s}" for s in SERVICES}
    for service in SERVICES:
        migrate = container(docs, "Job", f"migrate-{service}")
        assert migrate["command"] == ["python", "-m", "libs.migrate", service]
        assert {e["name"] for e in migrate["env"]} >= {f"DATABASE_URL_{service.upper()}"}
        # as the service's own role, with none of its keys nor an administrator's password
        assert secrets_read(migrate).keys() == {generate.db_secret(service)}
    # no other pod holds an administrator's credentials
    for kind in ("Deployment", "Job"):
        for doc in find(docs, kind):
            if doc["metadata"]["name"] != "provision":
                c = doc["spec"]["template"]["spec"]["containers"][0]
                assert not (secrets_read(c).keys() & OPERATOR_SECRETS)
