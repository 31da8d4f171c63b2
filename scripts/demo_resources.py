"""Creates the demo's buckets, queues and table on the local AWS server (boto3,
AWS_ENDPOINT_URL from the environment). Idempotent: what exists is kept."""

import boto3

REGION = "us-east-1"
s3 = boto3.client("s3", region_name=REGION)
sqs = boto3.client("sqs", region_name=REGION)
dynamodb = boto3.client("dynamodb", region_name=REGION)

for bucket in ("demo-requests", "demo-widgets"):
    s3.create_bucket(Bucket=bucket)

# The S3 store's fence never deletes the tombstones a delete leaves
# (destination/s3_bucket.hpp): S3 expires them, after fencing_options'
# tombstone_retention (30 days by default).
s3.put_bucket_lifecycle_configuration(
    Bucket="demo-widgets",
    LifecycleConfiguration={"Rules": [{
        "ID": "widget-tombstones",
        "Filter": {"Prefix": "tombstones/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }]},
)

fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
sqs.create_queue(QueueName="demo-rejected.fifo", Attributes=fifo)
sqs.create_queue(QueueName="demo-requests.fifo", Attributes=fifo)

if "demo-widgets" not in dynamodb.list_tables()["TableNames"]:
    dynamodb.create_table(
        TableName="demo-widgets",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
print("demo: buckets demo-requests, demo-widgets; FIFO queues demo-requests.fifo, "
      "demo-rejected.fifo; table demo-widgets")
