"""Several widget_consumer processes on one SQS queue (RELIABILITY.md, "several
consumers"):

- three on one FIFO queue -> one DynamoDB table: the table ends exactly as the
  producer's expected state (per-widget order kept across processes, since a
  FIFO group is handed to one receive at a time), invalid requests end in the
  dead-letter queue, the queue ends empty;
- three on one standard queue -> one S3 bucket, create-only requests: every
  widget is stored exactly as its create says, nothing is lost (a create
  applied twice replaces itself, so duplicates are harmless).

The requests are sent while the consumers run. moto's SQS costs grow with the
queue's length (each SendMessage and ReceiveMessage walks every message, and
FIFO receives are serialised by scripts/moto_server.py): a 2,000-message FIFO
backlog receives at ~7 messages/s. Consuming while producing keeps the queue
short, as in production, and the test fast.

WIDGET_CONSUMER_MULTI_REQUESTS sets the FIFO run's size (default 1000; the
"long" run uses 5000), WIDGET_CONSUMER_MULTI_CREATES the standard run's.
"""

import json
import os
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

CONSUMERS = 3
FIFO_REQUESTS = int(os.environ.get("WIDGET_CONSUMER_MULTI_REQUESTS", "5000"))
STANDARD_CREATES = int(os.environ.get("WIDGET_CONSUMER_MULTI_CREATES", "2000"))


def start_consumers(arguments, env, count=CONSUMERS):
    return [p.consumer(arguments, env, f"multi{i}") for i in range(count)]


def wait_all(consumers, timeout):
    deadline = time.monotonic() + timeout
    return [c.wait(max(1, deadline - time.monotonic())) for c in consumers]


class SeveralConsumers(unittest.TestCase):
    def setUp(self):
        self.env = p.aws_environment()
        self.sqs = p.client("sqs")
        self.consumers = []

    def tearDown(self):
        for each in self.consumers:
            each.kill()

    def describe(self):
        return "\n".join(f"consumer {i}: {p.summary_line(c.stderr() + c.stdout())}"
                         for i, c in enumerate(self.consumers))

    def test_three_consumers_on_one_fifo_queue_give_the_expected_table(self):
        queue = self.sqs.create_queue(QueueName=p.unique("multi") + ".fifo",
                                      Attributes={"FifoQueue": "true"})["QueueUrl"]
        dead = self.sqs.create_queue(QueueName=p.unique("multi-dlq") + ".fifo",
                                     Attributes={"FifoQueue": "true"})["QueueUrl"]
        table = p.make_table(p.client("dynamodb"), p.unique("multi"))
        expected = os.path.join(self._tmp(), "expected.json")

        started = time.monotonic()
        # Idle long enough to outlast a gap in the producer and a message
        # hidden by a consumer that was slow to delete it.
        self.consumers = start_consumers(
            ["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1", "-qvt", "10",
             "--concurrency", "8", "--max-idle", "8000"], self.env)
        counts = p.produce(self.env, "-rq", queue, "-mwr", str(FIFO_REQUESTS), "--seed", "5",
                           "--invalid-ratio", "0.01", "--expected-state", expected)
        produced = time.monotonic() - started
        codes = wait_all(self.consumers, 600)
        drained = time.monotonic() - started
        print(f"fifo: {FIFO_REQUESTS} requests ({counts}), {CONSUMERS} consumers: produced in "
              f"{produced:.1f} s, drained in {drained:.1f} s\n{self.describe()}")

        self.assertEqual(codes, [0] * CONSUMERS, self.describe())
        ok, report = p.check_store(expected, "dynamodb", table, self.env)
        self.assertTrue(ok, report)
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0))
        self.assertEqual(p.queue_counts(self.sqs, dead)[0], counts["invalid"])
        # The work was shared: each process applied some of it.
        done = [p.processed_count(c.stderr() + c.stdout()) for c in self.consumers]
        self.assertTrue(all(n > 0 for n in done), self.describe())
        self.assertGreaterEqual(sum(done), FIFO_REQUESTS - counts["invalid"])

    def test_three_consumers_on_one_standard_queue_store_every_create(self):
        queue = self.sqs.create_queue(QueueName=p.unique("multi-std"))["QueueUrl"]
        dead = self.sqs.create_queue(QueueName=p.unique("multi-std-dlq"))["QueueUrl"]
        s3 = p.client("s3")
        bucket = p.unique("multi-std")
        s3.create_bucket(Bucket=bucket)
        widgets = {
            f"cw-{i:05d}": {"widgetId": f"cw-{i:05d}", "owner": "Create Only",
                            "label": f"label {i}", "description": None,
                            "otherAttributes": [{"name": "n", "value": str(i)}]}
            for i in range(STANDARD_CREATES)
        }
        expected = os.path.join(self._tmp(), "expected.json")
        p.dump_json(expected, widgets)

        started = time.monotonic()
        self.consumers = start_consumers(
            ["-rq", queue, "-wb", bucket, "--dead-letter-queue", dead, "-qwt", "1", "-qvt", "10",
             "--concurrency", "8", "--max-idle", "8000"], self.env)
        send_errors = []

        def send_creates():
            try:
                items = list(widgets.values())
                for start in range(0, len(items), 10):
                    entries = [{"Id": str(n), "MessageBody": json.dumps(
                        {"type": "create", "requestId": f"r-{w['widgetId']}",
                         **{k: v for k, v in w.items() if v is not None}})}
                        for n, w in enumerate(items[start:start + 10])]
                    failed = self.sqs.send_message_batch(QueueUrl=queue, Entries=entries)
                    if failed.get("Failed"):
                        send_errors.append(failed["Failed"])
            except Exception as e:  # reported by the test below
                send_errors.append(repr(e))

        sender = threading.Thread(target=send_creates)
        sender.start()
        sender.join(600)
        produced = time.monotonic() - started
        codes = wait_all(self.consumers, 600)
        drained = time.monotonic() - started
        print(f"standard: {STANDARD_CREATES} creates, {CONSUMERS} consumers: sent in "
              f"{produced:.1f} s, drained in {drained:.1f} s\n{self.describe()}")

        self.assertFalse(sender.is_alive())
        self.assertEqual(send_errors, [])
        self.assertEqual(codes, [0] * CONSUMERS, self.describe())
        ok, report = p.check_store(expected, "s3", bucket, self.env)
        self.assertTrue(ok, report)
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0))
        self.assertEqual(p.queue_counts(self.sqs, dead)[0], 0)
        done = [p.processed_count(c.stderr() + c.stdout()) for c in self.consumers]
        self.assertGreaterEqual(sum(done), STANDARD_CREATES, self.describe())

    def _tmp(self):
        return tempfile.mkdtemp(prefix="wc-multi-")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
