"""The SQS source where a run ends: a stop, --max-idle, and the course's
command line (RELIABILITY.md, "SQS: stops, idleness and rejects").

Through the built widget_consumer against the local server:
- a graceful stop costs a held message no receive: messages kept in flight
  (releases kept locally on a queue with a RedrivePolicy) are given back
  only once no receive is open, so none is taken by our own long polls and
  bounced back, and none reaches the RedrivePolicy's dead-letter queue;
- --max-idle does not end a run while a released message is still due back
  from SQS: the run ends with the queue empty;
- the course's line `widget_consumer -rq QUEUE -dwt TABLE`, on a queue with
  no RedrivePolicy and no dead-letter queue, works as typed: an invalid
  request is written whole to rejected-requests.jsonl, then deleted (a
  reject left in a FIFO queue would block its widget's group), and the
  start-up says where rejects go;
- every flag that a program's or the library's message names exists in
  --help.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402


def request(kind, widget, **fields):
    return json.dumps({"type": kind, "requestId": f"{kind}-{widget}", "widgetId": widget,
                       "owner": "Stop Test", **fields})


def fifo_entry(index, body, group):
    return {"Id": str(index), "MessageBody": body, "MessageGroupId": group,
            "MessageDeduplicationId": f"d{index}"}


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class SqsStops(unittest.TestCase):
    def setUp(self):
        self.env = p.aws_environment()
        self.sqs = p.client("sqs")
        self.dynamodb = p.client("dynamodb")
        self.logs = tempfile.mkdtemp(prefix="wc-sqs-stops-")

    def item(self, table, widget):
        return self.dynamodb.get_item(TableName=table, Key={"id": {"S": widget}}).get("Item")

    def test_a_graceful_stop_costs_a_held_message_no_receive(self):
        # Updates of widgets that do not exist yet: each is released and,
        # the queue having a RedrivePolicy, kept in flight by the consumer.
        dead = self.sqs.create_queue(QueueName=p.unique("held-dlq"))["QueueUrl"]
        dead_arn = self.sqs.get_queue_attributes(
            QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3})
        queue = self.sqs.create_queue(QueueName=p.unique("held"),
                                      Attributes={"RedrivePolicy": policy})["QueueUrl"]
        table = p.make_table(self.dynamodb, p.unique("held"))
        widgets = [f"w{i}" for i in range(5)]
        for widget in widgets:
            self.sqs.send_message(QueueUrl=queue, MessageBody=request("update", widget, label="x"))
        arguments = ["-rq", queue, "-dwt", table, "-qwt", "1", "-qvt", "30",
                     "--max-receives", "100", "--verbose", "--log-dir", self.logs]
        with p.consumer(arguments, self.env, "held") as consumer:
            # Each request released at least once, and kept (not given back).
            def released(widget):
                return any(f"(request update-{widget}," in line and ": released" in line
                           for line in consumer.stderr().splitlines())

            wait_for(lambda: all(released(w) for w in widgets) or not consumer.running(), 30,
                     "every update released")
            self.assertTrue(consumer.running(), consumer.stderr())
            time.sleep(1.5)  # several receive rounds of the three receivers
            consumer.popen.send_signal(signal.SIGTERM)
            # 3, not 0: the five were taken and never settled; they stay in
            # the queue (README, "Exit status"), as the receives below show.
            self.assertEqual(consumer.wait(30), 3, consumer.stderr())
            output = consumer.stderr()

        # The next receive of each is its second: the stop added none.
        counts = {}
        deadline = time.monotonic() + 40
        while len(counts) < len(widgets) and time.monotonic() < deadline:
            answer = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1, VisibilityTimeout=60,
                                              AttributeNames=["ApproximateReceiveCount"])
            for message in answer.get("Messages", []):
                counts[json.loads(message["Body"])["widgetId"]] = int(
                    message["Attributes"]["ApproximateReceiveCount"])
        self.assertEqual(sorted(counts), widgets, output[-3000:])
        self.assertEqual(counts, {w: 2 for w in widgets}, output[-3000:])
        self.assertEqual(p.queue_counts(self.sqs, dead), (0, 0, 0))

    def test_max_idle_waits_for_a_released_message_to_come_back(self):
        dead = self.sqs.create_queue(QueueName=p.unique("idle-dlq"))["QueueUrl"]
        queue = self.sqs.create_queue(QueueName=p.unique("idle"))["QueueUrl"]
        table = p.make_table(self.dynamodb, p.unique("idle"))
        self.sqs.send_message(QueueUrl=queue, MessageBody=request("update", "late", label="u"))
        # No RedrivePolicy: a release goes back to SQS, hidden for 1 s, and
        # comes back; --max-idle is half of that.
        arguments = ["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                     "-qvt", "10", "--max-receives", "3", "--max-idle", "500", "--verbose"]
        with p.consumer(arguments, self.env, "idle") as consumer:
            self.assertEqual(consumer.wait(60), 0, consumer.stderr())
            output = consumer.stderr()
        update = [line for line in output.splitlines() if "(request update-late," in line]
        self.assertEqual(len([line for line in update if ": released" in line]), 2, output)
        self.assertIn("not_found", update[-1], output)
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0), output)

    def test_the_courses_command_line_keeps_rejects_in_a_file(self):
        queue = self.sqs.create_queue(QueueName=p.unique("course") + ".fifo",
                                      Attributes={"FifoQueue": "true"})["QueueUrl"]
        table = p.make_table(self.dynamodb, p.unique("course"))
        bodies = [request("create", "a", label="a1"), "{not json",
                  request("update", "a", label="a2"), request("create", "b", label="b1")]
        self.sqs.send_message_batch(QueueUrl=queue, Entries=[
            fifo_entry(i, body, "one-group") for i, body in enumerate(bodies)])
        folder = tempfile.mkdtemp(prefix="wc-course-")
        # As typed in the course, plus a way to end.
        arguments = ["-rq", queue, "-dwt", table, "--max-idle", "2000", "-qwt", "1"]
        process = subprocess.run([p.program("widget_consumer"), *arguments], env=self.env,
                                 cwd=folder, capture_output=True, text=True, timeout=120)
        output = process.stderr
        self.assertEqual(process.returncode, 0, output)
        rejects = os.path.join(folder, "rejected-requests.jsonl")
        self.assertIn("rejected requests go to the file rejected-requests.jsonl", output)
        with open(rejects) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0]["body"], "{not json")
        self.assertEqual(lines[0]["queue"], queue)
        self.assertTrue(lines[0]["reason"] and lines[0]["messageId"] and lines[0]["time"])
        # The group went on past the reject: a2 after a1, then b.
        self.assertEqual(self.item(table, "a")["label"], {"S": "a2"}, output)
        self.assertEqual(self.item(table, "b")["label"], {"S": "b1"}, output)
        self.assertEqual(p.queue_counts(self.sqs, queue), (0, 0, 0), output)

    def test_a_rejects_file_that_cannot_be_opened_stops_at_start_up(self):
        queue = self.sqs.create_queue(QueueName=p.unique("nofile"))["QueueUrl"]
        table = p.make_table(self.dynamodb, p.unique("nofile"))
        self.sqs.send_message(QueueUrl=queue, MessageBody="{not json")
        path = "/nonexistent-folder/rejects.jsonl"
        process = subprocess.run(
            [p.program("widget_consumer"), "-rq", queue, "-dwt", table, "--rejects-file", path,
             "--max-idle", "1000", "-qwt", "1"],
            env=self.env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(process.returncode, 0, process.stderr)
        self.assertIn(path, process.stderr)
        # Nothing was taken: the request is still there.
        visible, hidden, _ = p.queue_counts(self.sqs, queue)
        self.assertEqual(visible + hidden, 1)


# A flag named in a message: "--dead-letter-queue", "-qvt".
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]+|-[a-z]{2,4})(?![\w-])")


class FlagsInMessages(unittest.TestCase):
    def test_every_flag_a_message_names_is_in_help(self):
        """The programs' and the library's messages send people to flags:
        each must exist (the library's start-up error once named
        keep_rejected, a library field, to users of the program)."""
        help_text = "".join(
            subprocess.run([p.program(name), "--help"], capture_output=True, text=True,
                           timeout=30).stdout for name in ("widget_consumer", "widget_producer"))
        known = set(re.findall(r"--[a-z][a-z0-9-]+", help_text))
        known |= set(re.findall(r"(?<![\w-])-[a-z]{2,4}(?![\w-])", help_text))
        sources = (glob.glob(os.path.join(p.ROOT, "examples", "**", "*.[ch]pp"), recursive=True) +
                   glob.glob(os.path.join(p.ROOT, "include", "**", "*.hpp"), recursive=True))
        named = {}
        for path in sources:
            for number, line in enumerate(p.read_text(path).splitlines(), 1):
                code = line.split("//", 1)[0]
                for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', code):
                    # `aws sso login --sso-session`: another program's command.
                    literal = re.sub(r"`[^`]*`?", "", literal)
                    for flag in FLAG.findall(literal):
                        named.setdefault(flag, f"{os.path.relpath(path, p.ROOT)}:{number}")
        self.assertGreater(len(named), 10, named)  # the scan found the messages
        missing = {flag: where for flag, where in named.items() if flag not in known}
        self.assertEqual(missing, {}, "flags named in messages but not in --help")


if __name__ == "__main__":
    unittest.main()
