"""Checks what kubernetes-validate cannot: the custom resources (KEDA's
ScaledObject and TriggerAuthentication, the Prometheus Operator's
PodMonitor) field by field against their published specs, and what the
objects promise each other and the consumer.

    check_manifests.py OVERLAY=RENDERED.yaml...

RENDERED.yaml is an overlay as the kustomize library renders it. The field
lists below are transcribed from the CRDs' openAPIV3Schema (KEDA 2.17
config/crd/bases/keda.sh_scaledobjects.yaml and
keda.sh_triggerauthentications.yaml; prometheus-operator 0.8x
example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml)
and, for each trigger's metadata, from KEDA's scaler pages (keda.sh/docs/
2.17/scalers/aws-sqs/ and .../prometheus/): an unknown field is an error
(the API server drops it, or KEDA ignores it, silently), so is a missing
required one. Only the subtrees these manifests use are spelt out below
the first level; a field of a subtree left as None is taken as it is.
Exits 1 with every problem listed.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

METADATA = None  # ObjectMeta: kubernetes-validate checks its shape on the core objects
HPA_BEHAVIOR = None

SCALED_OBJECT = {
    "apiVersion": str, "kind": str, "metadata": METADATA,
    "spec": {
        "scaleTargetRef": {"apiVersion": str, "kind": str, "name": str,
                           "envSourceContainerName": str},
        "pollingInterval": int, "cooldownPeriod": int, "initialCooldownPeriod": int,
        "idleReplicaCount": int, "minReplicaCount": int, "maxReplicaCount": int,
        "fallback": {"failureThreshold": int, "replicas": int, "behavior": str},
        "advanced": {
            "restoreToOriginalReplicaCount": bool,
            "horizontalPodAutoscalerConfig": {"name": str, "behavior": HPA_BEHAVIOR},
            "scalingModifiers": {"target": str, "activationTarget": str, "metricType": str,
                                 "formula": str},
        },
        "triggers": [{
            "type": str, "name": str, "metadata": {str: str},
            "authenticationRef": {"name": str, "kind": str},
            "metricType": str, "useCachedMetrics": bool,
        }],
    },
}
SCALED_OBJECT_REQUIRED = {"spec": ["scaleTargetRef", "triggers"], "scaleTargetRef": ["name"],
                          "triggers": ["type", "metadata"]}

TRIGGER_AUTHENTICATION = {
    "apiVersion": str, "kind": str, "metadata": METADATA,
    "spec": {
        "podIdentity": {"provider": str, "identityId": str, "identityTenantId": str,
                        "identityAuthorityHost": str, "roleArn": str, "identityOwner": str},
        "secretTargetRef": None, "env": None, "configMapTargetRef": None,
        "hashiCorpVault": None, "azureKeyVault": None, "awsSecretManager": None,
        "gcpSecretManager": None, "boundServiceAccountToken": None,
    },
}
POD_IDENTITY_PROVIDERS = {"none", "azure-workload", "gcp", "aws", "aws-eks"}

POD_MONITOR = {
    "apiVersion": str, "kind": str, "metadata": METADATA,
    "spec": {
        "jobLabel": str, "podTargetLabels": [str],
        "podMetricsEndpoints": [{
            "port": str, "portNumber": int, "targetPort": None, "path": str, "scheme": str,
            "params": None, "interval": str, "scrapeTimeout": str, "honorLabels": bool,
            "honorTimestamps": bool, "trackTimestampsStaleness": bool,
            "metricRelabelings": None, "relabelings": None, "proxyUrl": str,
            "followRedirects": bool, "enableHttp2": bool, "filterRunning": bool,
            "authorization": None, "basicAuth": None, "oauth2": None, "tlsConfig": None,
            "bearerTokenSecret": None, "noProxy": str, "proxyFromEnvironment": bool,
            "proxyConnectHeader": None,
        }],
        "selector": {"matchLabels": {str: str}, "matchExpressions": None},
        "selectorMechanism": str,
        "namespaceSelector": {"any": bool, "matchNames": [str]},
        "sampleLimit": int, "targetLimit": int, "labelLimit": int, "labelNameLengthLimit": int,
        "labelValueLengthLimit": int, "keepDroppedTargets": int, "attachMetadata": None,
        "scrapeProtocols": [str], "fallbackScrapeProtocol": str, "scrapeClass": str,
        "bodySizeLimit": str, "nativeHistogramBucketLimit": int,
        "nativeHistogramMinBucketFactor": None, "scrapeClassicHistograms": bool,
        "convertClassicHistogramsToNHCB": bool,
    },
}
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                      r"(([0-9]+)s)?(([0-9]+)ms)?)$")

# Each scaler's metadata keys (KEDA's scaler pages), the required ones first.
TRIGGERS = {
    "aws-sqs-queue": (["awsRegion"],
                      ["queueURL", "queueURLFromEnv", "queueLength", "activationQueueLength",
                       "awsEndpoint", "scaleOnInFlight", "scaleOnDelayed", "identityOwner",
                       "awsRoleArn"]),
    "prometheus": (["serverAddress", "query", "threshold"],
                   ["activationThreshold", "namespace", "customHeaders", "ignoreNullValues",
                    "queryParameters", "unsafeSsl", "timeout", "authModes"]),
}
NUMBERS = {"queueLength", "activationQueueLength", "threshold", "activationThreshold"}


def walk(value, schema, where, problems):
    if schema is None:
        return
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            problems.append(f"{where}: an object expected, not {value!r}")
            return
        if str in schema:  # a map of any keys
            for key, item in value.items():
                walk(item, schema[str], f"{where}.{key}", problems)
            return
        for key, item in value.items():
            if key not in schema:
                problems.append(f"{where}: unknown field {key!r}")
            else:
                walk(item, schema[key], f"{where}.{key}", problems)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            problems.append(f"{where}: a list expected, not {value!r}")
            return
        for i, item in enumerate(value):
            walk(item, schema[0], f"{where}[{i}]", problems)
    elif schema is int:
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: an integer expected, not {value!r}")
    elif not isinstance(value, schema):
        problems.append(f"{where}: {schema.__name__} expected, not {value!r}")


def stop_deadline(args):
    for arg in args:
        if arg.startswith("--stop-deadline="):
            return int(arg.split("=", 1)[1])
    return 25  # the programs' default (examples/common/command_line.hpp)


def check(overlay, objects):
    problems = []
    say = lambda text: problems.append(f"{overlay}: {text}")  # noqa: E731
    by_kind = {}
    for each in objects:
        by_kind.setdefault(each["kind"], []).append(each)
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}

    # What the manifests promise the consumer and each other.
    version = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)",
                        (ROOT / "CMakeLists.txt").read_text()).group(1)
    if not container["image"].endswith(":" + version):
        say(f"image {container['image']} is not the project's version {version}")
    deadline = stop_deadline(container.get("args", []))
    if pod.get("terminationGracePeriodSeconds", 30) <= deadline:
        say(f"terminationGracePeriodSeconds is not above --stop-deadline ({deadline} s)")
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    if not (security.get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
            and security.get("runAsUser") == 10001 and not security.get("allowPrivilegeEscalation", True)):
        say("the container is not non-root (UID 10001), read-only, without privilege escalation")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ports:
            say(f"{probe} is not GET {path} on a named container port")
    listen = [a for a in container.get("args", []) if a.startswith("--metrics-listen=")]
    if not listen or int(listen[0].rsplit(":", 1)[1]) != ports.get("metrics"):
        say("--metrics-listen is not the container's metrics port")
    text = yaml.safe_dump_all(objects)
    if re.search(r"(?i)(aws_secret_access_key|aws_session_token|pgpassword|password)", text):
        say("a credential's name appears in the manifests: credentials come from IRSA/Pod Identity")
    for each in objects:
        if each["kind"] == "Secret":
            say("a Secret in the manifests")
    if not any(k.startswith("eks.amazonaws.com/") for k in
               by_kind["ServiceAccount"][0]["metadata"].get("annotations", {})):
        say("the ServiceAccount has no IRSA role annotation")

    for monitor in by_kind.get("PodMonitor", []):
        where = f"{overlay}: PodMonitor {monitor['metadata']['name']}"
        walk(monitor, POD_MONITOR, where, problems)
        spec = monitor["spec"]
        if not spec.get("podMetricsEndpoints"):
            problems.append(f"{where}: no podMetricsEndpoints")
        for endpoint in spec.get("podMetricsEndpoints", []):
            if endpoint.get("port") not in ports:
                problems.append(f"{where}: port {endpoint.get('port')!r} is not the pod's")
            for key in ("interval", "scrapeTimeout"):
                if key in endpoint and not DURATION.match(endpoint[key]):
                    problems.append(f"{where}: {key} {endpoint[key]!r} is not a duration")
        wanted = spec.get("selector", {}).get("matchLabels", {})
        if not wanted or any(pod_labels.get(k) != v for k, v in wanted.items()):
            problems.append(f"{where}: its selector does not select the Deployment's pods")

    authentications = {a["metadata"]["name"]: a for a in by_kind.get("TriggerAuthentication", [])}
    for name, auth in authentications.items():
        where = f"{overlay}: TriggerAuthentication {name}"
        walk(auth, TRIGGER_AUTHENTICATION, where, problems)
        identity = auth["spec"].get("podIdentity", {})
        if identity.get("provider") not in POD_IDENTITY_PROVIDERS:
            problems.append(f"{where}: podIdentity.provider {identity.get('provider')!r}")
        if identity.get("identityOwner", "keda") not in ("keda", "workload"):
            problems.append(f"{where}: identityOwner must be keda or workload")
        if "roleArn" in identity and "identityOwner" in identity:
            problems.append(f"{where}: roleArn and identityOwner are mutually exclusive")

    scaled = by_kind.get("ScaledObject", [])
    if len(scaled) != 1:
        say(f"{len(scaled)} ScaledObjects, not one")
    for so in scaled:
        where = f"{overlay}: ScaledObject {so['metadata']['name']}"
        walk(so, SCALED_OBJECT, where, problems)
        spec = so["spec"]
        for key in SCALED_OBJECT_REQUIRED["spec"]:
            if key not in spec:
                problems.append(f"{where}: spec.{key} is required")
        target = spec.get("scaleTargetRef", {})
        if (target.get("kind", "Deployment"), target.get("name")) != ("Deployment",
                                                                      deployment["metadata"]["name"]):
            problems.append(f"{where}: scaleTargetRef is not the Deployment")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append(f"{where}: minReplicaCount above maxReplicaCount")
        for i, trigger in enumerate(spec.get("triggers", [])):
            at = f"{where}: triggers[{i}]"
            kind = trigger.get("type")
            if kind not in TRIGGERS:
                problems.append(f"{at}: type {kind!r} is not one these manifests are checked for")
                continue
            required, optional = TRIGGERS[kind]
            metadata = trigger.get("metadata", {})
            for key in required:
                if key not in metadata:
                    problems.append(f"{at}: metadata.{key} is required")
            for key, value in metadata.items():
                if key not in required + optional:
                    problems.append(f"{at}: unknown metadata {key!r}")
                elif key in NUMBERS and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
                    problems.append(f"{at}: metadata.{key} {value!r} is not a number")
            if kind == "aws-sqs-queue":
                if "queueURL" not in metadata and "queueURLFromEnv" not in metadata:
                    problems.append(f"{at}: queueURL or queueURLFromEnv is required")
                if "authenticationRef" not in trigger:
                    problems.append(f"{at}: no authenticationRef: KEDA would use its own role")
            if kind == "prometheus":
                gauge = "widget_consumer_source_backlog"
                if gauge not in metadata.get("query", ""):
                    problems.append(f"{at}: the query does not read {gauge}")
                source = (ROOT / "include/widget_consumer/metrics/metrics_log.hpp").read_text()
                if f'"{gauge}"' not in source:
                    problems.append(f"{at}: the consumer exports no {gauge}")
                if spec.get("minReplicaCount", 0) < 1:
                    problems.append(f"{at}: with no replica, nothing reports the backlog")
            ref = trigger.get("authenticationRef")
            if ref and ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication" \
                    and ref["name"] not in authentications:
                problems.append(f"{at}: authenticationRef {ref['name']!r} is not in the overlay")
    return problems


def main():
    problems = []
    for argument in sys.argv[1:]:
        overlay, path = argument.split("=", 1)
        with open(path) as f:
            objects = [each for each in yaml.safe_load_all(f) if each]
        found = check(overlay, objects)
        problems += found
        if not found:
            kinds = ", ".join(sorted({each["kind"] for each in objects}))
            print(f"check_manifests: {overlay}: the custom resources match their specs and the "
                  f"objects agree ({kinds})")
    for problem in problems:
        print(f"check_manifests: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
