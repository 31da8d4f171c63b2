"""The container test's buckets, queues and table on the local AWS server
(boto3, AWS_ENDPOINT_URL from the environment), and its check of a drained
request bucket.

    resources.py create
    resources.py only-rejected BUCKET
"""

import sys

import boto3

REGION = "us-east-1"


def create():
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for bucket in ("ct-requests", "ct-postgresql-requests", "ct-kube-requests", "ct-widgets"):
        s3.create_bucket(Bucket=bucket)
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    sqs.create_queue(QueueName="ct-rejected.fifo", Attributes=fifo)
    sqs.create_queue(QueueName="ct-requests.fifo", Attributes=fifo)
    for table in ("ct-widgets", "ct-kube-widgets"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def only_rejected(bucket):
    """Drained: every request is gone, but for the rejected ones set aside
    under rejected/ (with their reasons); claims/ is the consumers' own."""
    s3 = boto3.client("s3", region_name=REGION)
    keys = [entry["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for entry in page.get("Contents", [])]
    left = [key for key in keys if not key.startswith(("rejected/", "claims/"))]
    rejected = [key for key in keys if key.startswith("rejected/") and not key.endswith(".reason")]
    reasons = [key for key in keys if key.startswith("rejected/") and key.endswith(".reason")]
    if left or len(rejected) != len(reasons):
        print(f"check: {bucket} is not drained: {len(left)} requests left ({left[:3]}), "
              f"{len(rejected)} rejected with {len(reasons)} reasons")
        return 1
    print(f"check: {bucket} is drained: no request left, {len(rejected)} rejected set aside "
          "with their reasons")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["create"]:
        create()
    elif len(sys.argv) == 3 and sys.argv[1] == "only-rejected":
        sys.exit(only_rejected(sys.argv[2]))
    else:
        sys.exit(__doc__)
