"""SQS standard queue semantics (RELIABILITY.md, "standard queues"): a standard
queue does not keep order, so an update or delete whose widget is missing may
have overtaken its create. widget_consumer releases such a request for a
later receive, up to --max-receives receives, then warns and acknowledges it.

Through the built program, with the queues on moto and again on ElasticMQ
(StandardQueueOnElasticMQ; the table stays on moto):
- an update that overtakes its create (the create sent first, delayed) ends
  applied once the create arrives;
- a delete of a widget that never existed is released max-receives - 1 times,
  then acknowledged with a not-found warning; nothing reaches the dead-letter
  queue and the queue ends empty.

(The visibility heartbeat and partial DeleteMessageBatch failures are covered
by tests/integration/sqs_queue_source_test.cpp.)
"""

import json
import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

MAX_RECEIVES = 4


def body(kind, widget, **fields):
    return json.dumps({"type": kind, "requestId": f"{kind}-{widget}", "widgetId": widget,
                       "owner": "Early Bird", **fields})


class StandardQueue(unittest.TestCase):
    sqs_server = "moto"

    def test_overtaking_update_waits_for_its_create_and_an_orphan_is_acked_after_max_receives(
            self):
        sqs_url = p.sqs_url(self.sqs_server)
        env = p.aws_environment(AWS_ENDPOINT_URL_SQS=sqs_url)
        sqs = p.client("sqs", sqs_url)
        dynamodb = p.client("dynamodb")
        queue = sqs.create_queue(QueueName=p.unique("std"))["QueueUrl"]
        dead = sqs.create_queue(QueueName=p.unique("std-dlq"))["QueueUrl"]
        table = p.make_table(dynamodb, p.unique("std"))
        logs = tempfile.mkdtemp(prefix="wc-std-logs-")

        # The create is sent first, the update after it (so the update is
        # the last sent, and the fence lets it win), but the create is
        # delayed: the update overtakes it, as on a standard queue it may.
        sqs.send_message(QueueUrl=queue, DelaySeconds=3,
                         MessageBody=body("create", "early", label="created", description="d"))
        sqs.send_message(QueueUrl=queue, MessageBody=body("update", "early", label="updated"))
        sqs.send_message(QueueUrl=queue, MessageBody=body("delete", "never"))
        with p.consumer(["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                         "-qvt", "5", "--max-receives", str(MAX_RECEIVES), "--max-idle", "6000",
                         "--verbose", "--log-dir", logs], env, "std") as consumer:
            self.assertEqual(consumer.wait(120), 0, consumer.stderr())
            output = consumer.stderr()
        self.assertIn("create may not have arrived", output)

        item = dynamodb.get_item(TableName=table, Key={"id": {"S": "early"}}).get("Item")
        self.assertIsNotNone(item, output)
        self.assertEqual(item["label"], {"S": "updated"}, output)
        self.assertEqual(item["description"], {"S": "d"}, output)
        self.assertNotIn("Item", dynamodb.get_item(TableName=table, Key={"id": {"S": "never"}}))

        lines = output.splitlines()
        update = [line for line in lines if "(request update-early," in line]
        self.assertIn(": applied", update[-1], output)
        self.assertTrue(any(": released" in line for line in update), output)
        orphan = [line for line in lines if "(request delete-never," in line]
        released = [line for line in orphan if ": released" in line]
        self.assertEqual(len(released), MAX_RECEIVES - 1, output)
        self.assertIn(f"receive {MAX_RECEIVES - 1} of {MAX_RECEIVES}", released[-1])
        self.assertIn("WARN", orphan[-1], output)
        self.assertIn("not_found", orphan[-1], output)
        self.assertIn("widget not found; nothing deleted", orphan[-1], output)
        # The daily log file has the same story.
        files = "".join(p.read_text(os.path.join(logs, name)) for name in os.listdir(logs))
        self.assertIn("widget not found; nothing deleted", files)

        self.assertEqual(p.queue_counts(sqs, queue), (0, 0, 0))
        self.assertEqual(p.queue_counts(sqs, dead), (0, 0, 0))


class StandardQueueOnElasticMQ(StandardQueue):
    sqs_server = "elasticmq"


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
