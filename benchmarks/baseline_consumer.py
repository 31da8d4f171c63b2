"""The baseline: a widget consumer written the way these consumers usually are
(boto3, one thread, one call at a time), for the drain benchmark to compare with.

    baseline_consumer.py (--request-bucket B | --request-queue Q)
                         (--widget-bucket B | --table T)

S3 source: list one key (the oldest), get it, process it, delete it; until a
listing comes back empty. SQS source: receive up to 10 (no wait), process and
delete each; until a receive comes back empty. Processing: create = one put
(PutObject / PutItem); update = get + put (GetObject + PutObject / GetItem +
PutItem), a warning when the widget is missing or owned by someone else;
delete = one DeleteObject / DeleteItem. Invalid requests are logged and
deleted. Per-widget order is the source's order (one request at a time), so
the final store is the expected one.

Prints one JSON line: {"requests": N, "invalid": I, "seconds": S}, seconds
being from the first call to the last request's delete.
"""

import argparse
import json
import os
import re
import sys
import time

import boto3

OWNER = re.compile(r"[A-Za-z ]+")
TYPES = {
    "create": "create", "WidgetCreateRequest": "create",
    "update": "update", "WidgetUpdateRequest": "update",
    "delete": "delete", "WidgetDeleteRequest": "delete",
}


def client(service):
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client(service, region_name=region)


def parse(body):
    """The request as a dict with a normalised type, or None when invalid."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict) or request.get("type") not in TYPES:
        return None
    for field in ("requestId", "widgetId", "owner"):
        if not isinstance(request.get(field), str) or not request[field]:
            return None
    if not OWNER.fullmatch(request["owner"]):
        return None
    for field in ("label", "description"):
        if request.get(field) is not None and not isinstance(request[field], str):
            return None
    attributes = request.get("otherAttributes")
    if attributes is not None:
        if not isinstance(attributes, list):
            return None
        for a in attributes:
            if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
                return None
            if "value" not in a or (a["value"] is not None and not isinstance(a["value"], str)):
                return None
    request["type"] = TYPES[request["type"]]
    return request


def new_widget(request):
    """What a create stores: the request's data as given, "" included (only an
    update reads "" as "remove"); null values are not stored."""
    return {
        "widgetId": request["widgetId"],
        "owner": request["owner"],
        "label": request.get("label"),
        "description": request.get("description"),
        "otherAttributes": [
            {"name": a["name"], "value": a["value"]}
            for a in request.get("otherAttributes") or [] if a.get("value") is not None
        ],
    }


def update_widget(widget, request):
    for field in ("label", "description"):
        value = request.get(field)
        if value is not None:
            widget[field] = value or None
    attributes = widget["otherAttributes"]
    for a in request.get("otherAttributes") or []:
        value = a.get("value")
        if value is None:
            continue
        index = next((i for i, old in enumerate(attributes) if old["name"] == a["name"]), None)
        if value == "":
            if index is not None:
                del attributes[index]
        elif index is None:
            attributes.append({"name": a["name"], "value": value})
        else:
            attributes[index]["value"] = value


class S3Store:
    def __init__(self, bucket, prefix="widgets/"):
        self.s3, self.bucket, self.prefix = client("s3"), bucket, prefix

    def key(self, request):
        return f"{self.prefix}{request['owner'].lower().replace(' ', '-')}/{request['widgetId']}"

    def put(self, key, widget):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(widget).encode(),
                           ContentType="application/json")

    def create(self, request):
        self.put(self.key(request), new_widget(request))

    def update(self, request):
        key = self.key(request)
        try:
            widget = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return False
        if widget.get("owner") != request["owner"]:
            return False
        update_widget(widget, request)
        self.put(key, widget)
        return True

    def delete(self, request):
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(request))
        return True


class DynamoDBStore:
    def __init__(self, table):
        self.dynamodb, self.table = client("dynamodb"), table

    def put(self, widget):
        item = {"id": {"S": widget["widgetId"]}, "owner": {"S": widget["owner"]}}
        for field in ("label", "description"):
            if widget.get(field) is not None:
                item[field] = {"S": widget[field]}
        for a in widget["otherAttributes"]:
            item[a["name"]] = {"S": a["value"]}
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def create(self, request):
        self.put(new_widget(request))

    def update(self, request):
        item = self.dynamodb.get_item(TableName=self.table,
                                      Key={"id": {"S": request["widgetId"]}}).get("Item")
        if item is None or item["owner"]["S"] != request["owner"]:
            return False
        fields = {name: value["S"] for name, value in item.items()}
        widget = {
            "widgetId": fields.pop("id"), "owner": fields.pop("owner"),
            "label": fields.pop("label", None), "description": fields.pop("description", None),
            "otherAttributes": [{"name": n, "value": v} for n, v in fields.items()],
        }
        update_widget(widget, request)
        self.put(widget)
        return True

    def delete(self, request):
        self.dynamodb.delete_item(TableName=self.table, Key={"id": {"S": request["widgetId"]}})
        return True


def process(store, body, counts):
    request = parse(body)
    if request is None:
        counts["invalid"] += 1
        print(f"baseline: invalid request skipped: {body[:60]!r}", file=sys.stderr)
        return
    if not getattr(store, request["type"])(request):
        print(f"baseline: widget {request['widgetId']} not found", file=sys.stderr)


def drain_bucket(bucket, store, counts):
    s3 = client("s3")
    while True:
        listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents", [])
        if not listed or listed[0]["Key"].startswith("rejected/"):
            return
        key = listed[0]["Key"]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        process(store, body, counts)
        s3.delete_object(Bucket=bucket, Key=key)
        counts["requests"] += 1


def drain_queue(queue, store, counts):
    sqs = client("sqs")
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return
        for message in messages:
            process(store, message["Body"], counts)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            counts["requests"] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--request-bucket")
    parser.add_argument("--request-queue")
    parser.add_argument("--widget-bucket")
    parser.add_argument("--table")
    args = parser.parse_args()
    store = S3Store(args.widget_bucket) if args.widget_bucket else DynamoDBStore(args.table)
    counts = {"requests": 0, "invalid": 0}
    start = time.monotonic()
    if args.request_bucket:
        drain_bucket(args.request_bucket, store, counts)
    else:
        drain_queue(args.request_queue, store, counts)
    counts["seconds"] = round(time.monotonic() - start, 3)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
