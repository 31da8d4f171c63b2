"""tests/support/fault_proxy.py --message-fault, with boto3 through the proxy
to the fixture's SQS servers (moto, and again ElasticMQ: MessageFaultsOnElasticMQ):
three messages, one of them holding "poison", are received through the
proxy, and the deletes that name the poisoned one get the fault chosen,
COUNT times at most; the others pass untouched.

- refuse:poison:2: a DeleteMessageBatch of all three is answered 500 twice
  and applied by neither; the third call deletes all three;
- after:poison:1: the first call is answered 500 and yet deleted all three;
- refuse:poison (no COUNT): every DeleteMessage of it is refused, while the
  other two delete at once.
- after:poison:1 on a SendMessage whose body holds "poison" (a consumer's
  dead-letter send): applied and answered 500 once; the next such send and
  a clean one pass.

boto3 retries nothing here, so each call is one request through the proxy.
"""

import sys
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

BODIES = ["plain one", "a poison pill", "plain two"]


class MessageFaults(unittest.TestCase):
    sqs_server = "moto"

    def setUp(self):
        self.server = p.sqs_url(self.sqs_server)
        self.direct = p.client("sqs", self.server)
        self.queue = self.direct.create_queue(QueueName=p.unique("poison"))["QueueUrl"]
        self.addCleanup(self.direct.delete_queue, QueueUrl=self.queue)
        self.direct.send_message_batch(QueueUrl=self.queue, Entries=[
            {"Id": str(i), "MessageBody": text} for i, text in enumerate(BODIES)])

    def through(self, proxy):
        """An SQS client of the proxy that makes one attempt per call."""
        once = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
        return boto3.client("sqs", endpoint_url=proxy.url, region_name=p.REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=once)

    def receive_all(self, sqs):
        """The three messages, received through the proxy: {body: handle}."""
        handles = {}
        deadline = time.monotonic() + 30
        while len(handles) < len(BODIES):
            self.assertLess(time.monotonic(), deadline, f"received only {sorted(handles)}")
            answer = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                         VisibilityTimeout=60, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                handles[message["Body"]] = message["ReceiptHandle"]
        self.assertEqual(sorted(handles), sorted(BODIES))
        return handles

    def delete_batch(self, sqs, handles):
        return sqs.delete_message_batch(QueueUrl=self.queue, Entries=[
            {"Id": str(i), "ReceiptHandle": handles[text]} for i, text in enumerate(BODIES)])

    def assert_internal_error(self, call):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            call()
        error = caught.exception.response
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 500, error)
        self.assertEqual(error["Error"]["Code"], "InternalError", error)

    def counts(self):
        """(visible, in flight) at the server itself."""
        return p.queue_counts(self.direct, self.queue)[:2]

    def test_refuse_fails_the_batch_count_times_without_applying_it(self):
        with p.FaultProxy(self.server, "--message-fault", "refuse:poison:2") as proxy:
            sqs = self.through(proxy)
            handles = self.receive_all(sqs)
            for _ in range(2):
                self.assert_internal_error(lambda: self.delete_batch(sqs, handles))
                self.assertEqual(self.counts(), (0, 3), "a refused delete reached the server")
            answer = self.delete_batch(sqs, handles)
            self.assertEqual(sorted(e["Id"] for e in answer.get("Successful", [])),
                             ["0", "1", "2"], answer)
            self.assertEqual(answer.get("Failed", []), [], answer)
            self.assertEqual(self.counts(), (0, 0))
            proxy.stop()
            stats = proxy.stats()
        self.assertEqual(stats["message_faults"], {"refuse": 2, "after": 0}, stats)
        self.assertEqual(stats["faults_total"], 0, stats)

    def test_after_applies_the_batch_and_answers_500_count_times(self):
        with p.FaultProxy(self.server, "--message-fault", "after:poison:1") as proxy:
            sqs = self.through(proxy)
            handles = self.receive_all(sqs)
            self.assert_internal_error(lambda: self.delete_batch(sqs, handles))
            self.assertEqual(self.counts(), (0, 0), "the delete answered 500 was not applied")
            # The retry passes untouched (what the server says of handles
            # already deleted is its own business: moto accepts them).
            try:
                self.delete_batch(sqs, handles)
            except botocore.exceptions.ClientError as e:
                self.assertNotIn("injected by fault_proxy", str(e.response))
            proxy.stop()
            stats = proxy.stats()
        self.assertEqual(stats["message_faults"], {"refuse": 0, "after": 1}, stats)
        self.assertEqual(stats["faults_total"], 0, stats)

    def test_without_a_count_every_delete_of_the_message_is_refused_and_no_other(self):
        with p.FaultProxy(self.server, "--message-fault", "refuse:poison") as proxy:
            sqs = self.through(proxy)
            handles = self.receive_all(sqs)
            for text in BODIES:
                if "poison" not in text:
                    sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=handles[text])
            for _ in range(3):
                self.assert_internal_error(lambda: sqs.delete_message(
                    QueueUrl=self.queue, ReceiptHandle=handles["a poison pill"]))
            self.assertEqual(self.counts(), (0, 1))
            proxy.stop()
            stats = proxy.stats()
        self.assertEqual(stats["message_faults"], {"refuse": 3, "after": 0}, stats)
        self.assertEqual(stats["requests_by_service"].get("sqs"), stats["requests"], stats)

    def test_a_send_whose_body_holds_the_text_is_aimed_at_too(self):
        with p.FaultProxy(self.server, "--message-fault", "after:poison:1") as proxy:
            sqs = self.through(proxy)
            self.assert_internal_error(lambda: sqs.send_message(
                QueueUrl=self.queue, MessageBody="more poison"))
            sqs.send_message(QueueUrl=self.queue, MessageBody="more poison")
            sqs.send_message(QueueUrl=self.queue, MessageBody="clean")
            proxy.stop()
            stats = proxy.stats()
        # The three of setUp, both poisoned sends (the first was applied) and
        # the clean one.
        self.assertEqual(self.counts(), (6, 0))
        self.assertEqual(stats["message_faults"], {"refuse": 0, "after": 1}, stats)
        self.assertEqual(stats["message_fault_calls"], {"SendMessage": 1}, stats)


class MessageFaultsOnElasticMQ(MessageFaults):
    sqs_server = "elasticmq"


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
