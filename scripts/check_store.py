"""Compares a widget store with the state the producer's requests lead to.

    check_store.py EXPECTED.json s3 BUCKET [--prefix widgets/] [--no-owner]
    check_store.py EXPECTED.json dynamodb TABLE
    check_store.py EXPECTED.json postgresql CONNECTION-URI

EXPECTED.json is what `widget_producer --expected-state` writes: an object of
widget id -> widget document. boto3 reads the store (an independent client, not
our own code), using AWS_ENDPOINT_URL and the usual AWS_* variables. Prints one
line and exits 0 when the store holds exactly the expected widgets, 1 (with the
first differences) when it does not. A PostgreSQL store is read with psql
(Debian's postgresql-client), its password from PGPASSWORD or ~/.pgpass.
"""

import argparse
import json
import os
import re
import subprocess
import sys

import boto3


def client(service):
    # boto3 reads AWS_DEFAULT_REGION only; our programs also read AWS_REGION.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client(service, region_name=region)


def canonical(widget):
    """A widget as comparable data: attribute order is not kept by DynamoDB."""
    return {
        "widgetId": widget["widgetId"],
        "owner": widget["owner"],
        "label": widget.get("label"),
        "description": widget.get("description"),
        "otherAttributes": sorted(
            (a["name"], a["value"]) for a in widget.get("otherAttributes", [])
        ),
    }


def s3_widgets(bucket, prefix, owner_in_key):
    s3 = client("s3")
    found, problems = {}, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            widget = json.loads(body)
            owner = widget["owner"].lower().replace(" ", "-") + "/" if owner_in_key else ""
            wanted_key = f"{prefix}{owner}{widget['widgetId']}"
            if entry["Key"] != wanted_key:
                problems.append(f"key {entry['Key']!r} should be {wanted_key!r}")
            found[widget["widgetId"]] = canonical(widget)
    return found, problems


def dynamodb_widgets(table):
    dynamodb = client("dynamodb")
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            # The fence's attributes (_wc_*) are not the widget's; an item
            # with no owner is a delete's tombstone (README, Fencing).
            fields = {name: value["S"] for name, value in item.items()
                      if not name.startswith("_wc_")}
            if "owner" not in fields:
                continue
            widget = {
                "widgetId": fields.pop("id"),
                "owner": fields.pop("owner"),
                "label": fields.pop("label", None),
                "description": fields.pop("description", None),
                "otherAttributes": [{"name": n, "value": v} for n, v in fields.items()],
            }
            found[widget["widgetId"]] = canonical(widget)
    return found, []


# One JSON object of widget id -> widget, built by the server: psql's text
# output then needs no parsing of its own.
POSTGRESQL_WIDGETS = """
SELECT coalesce(json_object_agg(w.id, json_build_object(
  'widgetId', w.id, 'owner', w.owner, 'label', w.label, 'description', w.description,
  'otherAttributes', coalesce((SELECT json_agg(json_build_object('name', a.name, 'value', a.value))
                               FROM widget_attributes a WHERE a.widget_id = w.id), '[]'))),
  '{}')
FROM widgets w
"""


def postgresql_widgets(connection):
    run = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                          "-d", connection, "-c", POSTGRESQL_WIDGETS],
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        sys.exit(f"check: psql failed: {run.stderr.strip()}")
    return {wid: canonical(w) for wid, w in json.loads(run.stdout).items()}, []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("expected")
    parser.add_argument("kind", choices=["s3", "dynamodb", "postgresql"])
    parser.add_argument("name")
    parser.add_argument("--prefix", default="widgets/")
    parser.add_argument("--no-owner", action="store_true")
    args = parser.parse_args()

    with open(args.expected) as f:
        expected = {wid: canonical(w) for wid, w in json.load(f).items()}
    if args.kind == "s3":
        found, problems = s3_widgets(args.name, args.prefix, not args.no_owner)
    elif args.kind == "postgresql":
        found, problems = postgresql_widgets(args.name)
    else:
        found, problems = dynamodb_widgets(args.name)

    for wid in sorted(expected.keys() - found.keys())[:5]:
        problems.append(f"missing widget {wid}")
    for wid in sorted(found.keys() - expected.keys())[:5]:
        problems.append(f"unexpected widget {wid}")
    for wid in sorted(expected.keys() & found.keys()):
        if expected[wid] != found[wid] and len(problems) < 10:
            problems.append(f"widget {wid} differs: expected {expected[wid]}, found {found[wid]}")

    # A connection URI may hold a password: never print it.
    name = re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", args.name)
    where = f"{args.kind}:{name}"
    if problems:
        print(f"check: {where} does NOT match the expected state ({len(found)} widgets, "
              f"{len(expected)} expected):")
        for problem in problems[:10]:
            print(f"  {problem}")
        return 1
    print(f"check: {where} holds exactly the {len(expected)} expected widgets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
