"""Proves the harness: the local AWS server started by the CTest fixture
round-trips an S3 object, a DynamoDB item and an SQS message through boto3,
and its IAM instance refuses a request signed with the wrong secret."""

import os
import sys
import unittest
import uuid

import boto3
import botocore.exceptions

state = os.environ["WIDGET_CONSUMER_EMULATOR_STATE"]


def read(name):
    with open(os.path.join(state, name)) as f:
        return f.read()


def client(service, url, key="testing", secret="testing"):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


class HarnessRoundTrip(unittest.TestCase):
    url = read("moto.url").strip()

    def test_s3_object(self):
        s3 = client("s3", self.url)
        bucket = f"harness-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="widgets/mary-anne/w 1", Body=b'{"widgetId":"w 1"}')
        body = s3.get_object(Bucket=bucket, Key="widgets/mary-anne/w 1")["Body"].read()
        self.assertEqual(body, b'{"widgetId":"w 1"}')

    def test_dynamodb_item(self):
        dynamodb = client("dynamodb", self.url)
        table = f"harness-{uuid.uuid4().hex[:12]}"
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName=table, Item={"id": {"S": "w1"}, "owner": {"S": "Sue"}})
        item = dynamodb.get_item(TableName=table, Key={"id": {"S": "w1"}})["Item"]
        self.assertEqual(item["owner"], {"S": "Sue"})

    def test_sqs_message(self):
        sqs = client("sqs", self.url)
        queue = sqs.create_queue(QueueName=f"harness-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody='{"type":"create"}')
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        self.assertEqual([m["Body"] for m in messages], ['{"type":"create"}'])
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])

    def test_iam_instance_verifies_signatures(self):
        url = read("moto-iam.url").strip()
        keys = dict(line.split("=", 1) for line in read("moto-iam.credentials").split())
        key, secret = keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"]
        client("s3", url, key, secret).list_buckets()
        with self.assertRaises(botocore.exceptions.ClientError):
            client("s3", url, key, secret + "x").list_buckets()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
