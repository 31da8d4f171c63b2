"""The SQS source under chosen faults (RELIABILITY.md, "SQS under faults and
stops"), through the built widget_consumer and the project's fault proxy
(tests/support/fault_proxy.py, --message-fault) in front of SQS only:

- a FIFO create whose delete fails for good (every attempt of one settle
  run refused) must not let its group's later updates be deleted before it:
  it comes back, and a second run that applies it again applies the updates
  after it, so the table ends at the last update, not at the create;
- a delete applied but answered 500 is done: nothing is reported failed and
  nothing is left in the queue (on ElasticMQ, the retry is answered
  ReceiptHandleIsInvalid: the case that held groups for good).
- a dead-letter send applied but answered 500 is sent again, and a standard
  dead-letter queue, which has no deduplication, then holds the reject more
  than once: the resend is said in the log, naming the message, and every
  copy carries its SourceMessageId.

Each case runs on moto and on ElasticMQ (the table stays on moto).

The expected table comes from the requests, by the rules of DESIGN.md
(create sets the fields, update changes the given ones), not from the code
under test.
"""

import json
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402


def request(kind, widget, label):
    fields = {"type": kind, "requestId": f"{kind}-{widget}-{label}", "widgetId": widget,
              "owner": "Fault Test", "label": label}
    if kind == "create":
        fields["description"] = "made by the fault test"
    return json.dumps(fields)


class SqsFaults(unittest.TestCase):
    sqs_server = "moto"

    def setUp(self):
        self.sqs_url = p.sqs_url(self.sqs_server)
        self.sqs = p.client("sqs", self.sqs_url)
        self.dynamodb = p.client("dynamodb")

    def fifo_queue(self, name):
        return self.sqs.create_queue(QueueName=p.unique(name) + ".fifo",
                                     Attributes={"FifoQueue": "true"})["QueueUrl"]

    def send_group(self, queue, widget, labels):
        kinds = ["create"] + ["update"] * (len(labels) - 1)
        self.sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "MessageBody": request(kind, widget, label), "MessageGroupId": widget,
             "MessageDeduplicationId": f"{widget}-{i}"}
            for i, (kind, label) in enumerate(zip(kinds, labels))])

    def label(self, table, widget):
        item = self.dynamodb.get_item(TableName=table, Key={"id": {"S": widget}}).get("Item")
        return item["label"]["S"] if item else None

    def run_consumer(self, arguments, env, name, expected_codes=(0,)):
        with p.consumer(arguments, env, name) as consumer:
            code = consumer.wait(120)
            output = consumer.stderr()
        self.assertIn(code, expected_codes, output[-3000:])
        return output

    def test_a_create_whose_delete_failed_is_not_applied_after_its_updates(self):
        queue = self.fifo_queue("fence")
        dead = self.fifo_queue("fence-dlq")
        table = p.make_table(self.dynamodb, p.unique("fence"))
        self.send_group(queue, "w", ["fence-v1", "v2", "v3"])
        arguments = ["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                     "-qvt", "3", "--max-idle", "1000", "--verbose"]
        # One settle run's worth: three attempts, one call each.
        with p.FaultProxy(self.sqs_url, "--message-fault", "refuse:fence-v1:3",
                          "--delay-ms", "100") as proxy:
            env = p.aws_environment(AWS_ENDPOINT_URL_SQS=proxy.url)
            # Exit 3 (README, "Exit status") when the refused acks' messages
            # were still hidden as the run went idle, left for the second
            # run; 0 when a slow run took them back and acked them itself.
            first = self.run_consumer([*arguments, "--max-attempts", "1"], env, "fence-1",
                                      (0, 3))
            stats = proxy.stats()
        self.assertEqual(stats.get("message_faults", {}).get("refuse"), 3, stats)
        self.assertEqual(self.label(table, "w"), "v3", first[-3000:])
        # Whatever the first run left comes back to a second one, which must
        # end where the requests say: v3.
        second = self.run_consumer(arguments, p.aws_environment(AWS_ENDPOINT_URL_SQS=self.sqs_url),
                                   "fence-2")
        self.assertEqual(self.label(table, "w"), "v3", (first + second)[-4000:])
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0))

    def test_a_delete_applied_but_answered_500_is_done(self):
        queue = self.fifo_queue("lost-answer")
        dead = self.fifo_queue("lost-answer-dlq")
        table = p.make_table(self.dynamodb, p.unique("lost-answer"))
        self.send_group(queue, "x", ["lost-v1", "v2"])
        arguments = ["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                     "-qvt", "3", "--max-idle", "1000", "--verbose"]
        with p.FaultProxy(self.sqs_url, "--message-fault", "after:lost-v1:1") as proxy:
            env = p.aws_environment(AWS_ENDPOINT_URL_SQS=proxy.url)
            output = self.run_consumer(arguments, env, "lost-answer")
            stats = proxy.stats()
        self.assertEqual(stats.get("message_faults", {}).get("after"), 1, stats)
        self.assertNotIn("failed (it will be delivered again)", output)
        self.assertIn("0 failed", p.summary_line(output), output[-3000:])
        self.assertEqual(self.label(table, "x"), "v2", output[-3000:])
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0))

    def dead_letters(self, queue):
        """Every message of `queue`, received until two receives in a row find
        none (bounded)."""
        found = []
        empty = 0
        for _ in range(20):
            got = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1, VisibilityTimeout=60,
                                           MessageAttributeNames=["All"]).get("Messages", [])
            found += got
            empty = 0 if got else empty + 1
            if empty == 2:
                break
        return found

    def test_a_dead_letter_resend_is_said(self):
        queue = self.sqs.create_queue(QueueName=p.unique("resend"))["QueueUrl"]
        dead = self.sqs.create_queue(QueueName=p.unique("resend-dlq"))["QueueUrl"]
        table = p.make_table(self.dynamodb, p.unique("resend"))
        sent = self.sqs.send_message(QueueUrl=queue, MessageBody="resend-me: not a request")
        arguments = ["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                     "-qvt", "3", "--max-idle", "1000", "--max-attempts", "3"]
        # The first two attempts of the send reach the queue and are answered
        # 500; the client's third is answered. (The message's delete is aimed
        # at as well, twice: it is done all the same, item 2.)
        with p.FaultProxy(self.sqs_url, "--message-fault", "after:resend-me:2") as proxy:
            env = p.aws_environment(AWS_ENDPOINT_URL_SQS=proxy.url)
            output = self.run_consumer(arguments, env, "resend")
            stats = proxy.stats()
        self.assertEqual(stats.get("message_fault_calls", {}).get("SendMessage"), 2, stats)
        said = [line for line in output.splitlines()
                if "sent to the dead-letter queue again" in line]
        self.assertEqual(len(said), 1, output[-3000:])
        self.assertIn(sent["MessageId"], said[0])
        self.assertIn("may hold the message twice", said[0])
        copies = self.dead_letters(dead)
        self.assertEqual(len(copies), 3, copies)
        for copy in copies:
            self.assertEqual(copy["Body"], "resend-me: not a request")
            self.assertEqual(copy["MessageAttributes"]["SourceMessageId"]["StringValue"],
                             sent["MessageId"])
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0))


class SqsFaultsOnElasticMQ(SqsFaults):
    """ElasticMQ forgets a deleted message's receipt handle: the retry of a
    delete whose answer was lost is answered ReceiptHandleIsInvalid there."""
    sqs_server = "elasticmq"


if __name__ == "__main__":
    unittest.main()
