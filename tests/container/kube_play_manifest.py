"""The s3 overlay's Deployment (as the kustomize library rendered it) made
runnable by `podman kube play` on this machine, against the local servers:

    kube_play_manifest.py RENDERED.yaml OUT.yaml NAME BUCKET TABLE PORT

Only what a laptop is not a cluster for changes: the host's network (the
servers listen on loopback), so the named container port goes (podman
refuses port mappings there) and the probes name the metrics port by
number; the metrics on PORT of 127.0.0.1; the test's bucket and table; the
local endpoint, and the throw-away keys the local server takes, from this
environment (a cluster gets credentials from IRSA or Pod Identity). The
image, its user, the read-only root, the probes' paths, the resources and
the grace period stay as the manifests have them.
"""

import os
import sys

import yaml


def main():
    rendered, out, name, bucket, table, port = sys.argv[1:]
    objects = [each for each in yaml.safe_load_all(open(rendered)) if each]
    deployment = next(each for each in objects if each["kind"] == "Deployment")
    deployment["metadata"]["name"] = name
    deployment["metadata"].pop("namespace", None)
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    container = pod["containers"][0]
    args = []
    for arg in container["args"]:
        option, _, value = arg.partition("=")
        value = {"--request-bucket": bucket, "--dynamodb-widget-table": table,
                 "--metrics-listen": f"127.0.0.1:{port}"}.get(option, value)
        args.append(f"{option}={value}")
    container["args"] = args
    container.pop("ports", None)
    for probe in ("livenessProbe", "readinessProbe"):
        container[probe]["httpGet"]["port"] = int(port)
    container["env"] = container.get("env", []) + [
        {"name": key, "value": os.environ[key]}
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ] + [{"name": "AWS_EC2_METADATA_DISABLED", "value": "true"}]
    with open(out, "w") as f:
        yaml.safe_dump(deployment, f)


if __name__ == "__main__":
    main()
