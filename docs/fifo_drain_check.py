#!/usr/bin/env python3
"""Drain a pre-filled SQS FIFO queue with several receiving threads and check
that every message was handed out, deleted, and handed out in group order.

What it does
    A FIFO queue (VisibilityTimeout 30 s, explicit deduplication ids) is
    filled with --messages messages spread over --groups message groups
    (several messages per group, as the consumer's widget ids), then drained
    by --threads threads. Each thread loops: ReceiveMessage
    (MaxNumberOfMessages=10, WaitTimeSeconds=--wait, AttributeNames=All),
    then DeleteMessageBatch of what it got. With --hold S the batch is
    deleted S seconds later by a helper thread while the receiver goes on
    receiving at once, as a consumer with a buffer does (the next long poll
    starts while the previous batch's groups are still in flight). The
    drain ends when no thread has received anything for --idle seconds (the
    consumer's --max-idle), after --deadline seconds in any case. It reports

      - messages received (distinct), deleted, received more than once;
      - what the queue still holds: GetQueueAttributes
        (ApproximateNumberOfMessages, ...NotVisible, ...Delayed) and a final
        single-threaded receive sweep;
      - per-group order: message i+1 of a group must not be received before
        message i was received and its delete sent (SQS hands a FIFO group
        to one receive at a time; one receive may bring several of a
        group's messages, in order).

    Exit status 1 when anything is left in the queue, a message was never
    received, or group order broke; 0 otherwise. Retries are off, so every
    server error is counted and reported rather than hidden. boto3 and the
    standard library only; it starts no server.

What it shows (issue 29, item 9; moto 5.2.5, boto3 1.44.5, 300 messages,
40 groups, 2-core machine)
    Plain moto (python -m moto.server), as the consumer receives
    (--wait 20 --receive-visibility 30 --attempt-ids --hold 0.2 --idle 5):
    messages are left visible that no receive returned, and the final
    single-thread receive returns them at once (1 thread: 8-12 left in 3 of
    3 runs; 3 threads: 2 in 1 of 3; 5 threads: 7 in 1 of 3), and group order
    breaks in every run with 3 or 5 threads. Cause: moto's
    SQSBackend.receive_message (moto/sqs/models.py) copies the queue's
    in-flight groups once, before its long-poll loop, so a long poll begun
    while a group is in flight skips that group's messages for its whole
    WaitTimeSeconds even after they were deleted, and returns nothing; a
    client that stops when idle then stops with them visible. Without
    --hold (delete before the next receive) nothing is left, but group order
    still breaks with 3 or 5 threads (8-25 times per run).
    scripts/moto_server.py (a receive is passes, each seeing the groups as
    they are now): exact and in order in every run, with and without --hold.

How to run
    python -m moto.server -H 127.0.0.1 -p 5111 &        # or any SQS endpoint
    python docs/fifo_drain_check.py --endpoint http://127.0.0.1:5111 \\
        --threads 3 --seed 1 --wait 20 --receive-visibility 30 --attempt-ids \\
        --hold 0.2 --idle 5
    kill %1

    The same against python scripts/moto_server.py -H 127.0.0.1 -p 5111.
    A run takes 5-30 s on moto. Credentials and region default to dummy
    values for a local endpoint (AWS_ACCESS_KEY_ID etc. are used when set).
"""

import argparse
import collections
import json
import os
import queue
import random
import sys
import threading
import time
import uuid

import boto3
import botocore.config
import botocore.exceptions


def make_client(endpoint):
    config = botocore.config.Config(
        retries={"total_max_attempts": 1},  # count every error, retry none
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=4,
    )
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        config=config,
    )


def create_queue(client, seed, visibility_timeout):
    name = f"fifo-drain-check-{seed}-{os.getpid()}-{int(time.time() * 1000)}.fifo"
    return client.create_queue(
        QueueName=name,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "false",
            "VisibilityTimeout": str(visibility_timeout),
        },
    )["QueueUrl"]


def fill_queue(client, queue_url, messages, groups, seed):
    """Send the messages in one thread, in a seeded random interleaving of
    the groups; message i of a group is sent before message i+1. Returns
    {message id: (group, index in group)}."""
    rng = random.Random(seed)
    group_of_message = [f"g{n % groups:03d}" for n in range(messages)]
    rng.shuffle(group_of_message)
    next_index = collections.Counter()
    entries = []
    for number, group in enumerate(group_of_message):
        index = next_index[group]
        next_index[group] += 1
        entries.append({
            "Id": str(number),
            "MessageBody": json.dumps({"group": group, "index": index}),
            "MessageGroupId": group,
            "MessageDeduplicationId": f"{seed}-{number}",
        })
    sent = {}
    for start in range(0, len(entries), 10):
        batch = entries[start:start + 10]
        response = client.send_message_batch(QueueUrl=queue_url, Entries=batch)
        if response.get("Failed"):
            raise SystemExit(f"send failed: {response['Failed']}")
        for done in response["Successful"]:
            body = json.loads(batch[int(done["Id"]) - start]["MessageBody"])
            sent[done["MessageId"]] = (body["group"], body["index"])
    return sent


class Drain:
    """The shared record of the drain. Events carry one global sequence
    number, taken under the lock:
      received: taken after the ReceiveMessage answer arrived, so after the
                server handed the message out;
      delete:   taken before the DeleteMessageBatch request is sent, so
                before the server can have applied it.
    A correct FIFO server therefore always gives delete(i) < received(i+1)."""

    def __init__(self, endpoint, queue_url, wait_seconds, idle_seconds, deadline_seconds,
                 receive_visibility=0, attempt_ids=False, hold_seconds=0.0):
        self.endpoint = endpoint
        self.hold = hold_seconds
        self.receive_visibility = receive_visibility
        self.attempt_ids = attempt_ids
        self.queue_url = queue_url
        self.wait_seconds = wait_seconds
        self.idle_seconds = idle_seconds
        self.deadline = time.monotonic() + deadline_seconds
        self.lock = threading.Lock()
        self.sequence = 0
        self.last_receive = time.monotonic()
        self.receives = collections.defaultdict(list)  # message id -> [sequence]
        self.delete_sent = {}                            # message id -> first sequence
        self.deleted = set()
        self.batches = 0
        self.batch_of = {}                               # message id -> (batch, position), last
        self.errors = collections.Counter()

    def _next(self):
        self.sequence += 1
        return self.sequence

    def finished(self):
        now = time.monotonic()
        with self.lock:
            return now > self.deadline or now - self.last_receive > self.idle_seconds

    def run_receiver(self):
        """Receive until the drain is over. With hold 0 a batch is deleted
        before the next receive; else it is handed to a deleter thread that
        deletes it `hold` seconds later (its processing time) while this
        thread receives again at once, as a consumer with a buffer does."""
        client = make_client(self.endpoint)
        to_delete = queue.Queue()
        deleter = None
        if self.hold > 0:
            deleter = threading.Thread(target=self._run_deleter, args=(to_delete,), daemon=True)
            deleter.start()
        while not self.finished():
            request = {"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10,
                       "WaitTimeSeconds": self.wait_seconds, "AttributeNames": ["All"]}
            if self.receive_visibility:
                request["VisibilityTimeout"] = self.receive_visibility
            if self.attempt_ids:
                request["ReceiveRequestAttemptId"] = uuid.uuid4().hex
            try:
                answer = client.receive_message(**request)
            except (botocore.exceptions.ClientError,
                    botocore.exceptions.BotoCoreError) as error:
                with self.lock:
                    self.errors[f"ReceiveMessage: {error}"[:160]] += 1
                continue
            messages = answer.get("Messages", [])
            if not messages:
                continue
            with self.lock:
                self.last_receive = time.monotonic()
                self.batches += 1
                for position, message in enumerate(messages):
                    self.receives[message["MessageId"]].append(self._next())
                    self.batch_of[message["MessageId"]] = (self.batches, position)
            if deleter is None:
                self._delete(client, messages)
            else:
                to_delete.put((time.monotonic() + self.hold, messages))
        if deleter is not None:
            to_delete.put(None)
            deleter.join(self.hold + 60)

    def _run_deleter(self, to_delete):
        client = make_client(self.endpoint)
        while (item := to_delete.get()) is not None:
            due, messages = item
            time.sleep(max(0.0, due - time.monotonic()))
            self._delete(client, messages)

    def _delete(self, client, messages):
        with self.lock:
            for message in messages:
                self.delete_sent.setdefault(message["MessageId"], self._next())
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                   for n, m in enumerate(messages)]
        try:
            result = client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except (botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError) as error:
            with self.lock:
                self.errors[f"DeleteMessageBatch: {error}"[:160]] += 1
            return
        with self.lock:
            for done in result.get("Successful", []):
                self.deleted.add(messages[int(done["Id"])]["MessageId"])
            for failed in result.get("Failed", []):
                self.errors[f"DeleteMessageBatch entry: {failed.get('Code')}"] += 1


def group_order_violations(sent, drain):
    """Messages received before their predecessor in the group was received
    and its delete sent."""
    by_group = collections.defaultdict(dict)
    for message_id, (group, index) in sent.items():
        by_group[group][index] = message_id
    violations = []
    for group, members in sorted(by_group.items()):
        for index in range(1, len(members)):
            before, after = members[index - 1], members[index]
            if after not in drain.receives:
                continue
            first_receive = drain.receives[after][0]
            delete_of_before = drain.delete_sent.get(before)
            # One receive may hand out several messages of a group, in order.
            batch_before = drain.batch_of.get(before)
            batch_after = drain.batch_of.get(after)
            if (batch_before and batch_after and batch_before[0] == batch_after[0]
                    and len(drain.receives[after]) == 1):
                if batch_before[1] < batch_after[1]:
                    continue
                violations.append(f"{group}: message {index} ahead of message {index - 1} "
                                  "in one receive")
                continue
            if delete_of_before is None or delete_of_before > first_receive:
                violations.append(
                    f"{group}: message {index} received (event {first_receive}) before "
                    f"message {index - 1} was " +
                    ("received" if before not in drain.receives else
                     f"deleted (received at event {drain.receives[before][0]}, "
                     f"delete sent at event {delete_of_before})"))
    return violations


def queue_counts(client, queue_url):
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return {name: int(value) for name, value in attributes.items()}


def sweep(client, queue_url, sent, seconds):
    """One thread receives (and deletes) for up to `seconds` or until two
    empty long polls in a row. Returns {message id: (group, index)}."""
    found = {}
    empty = 0
    end = time.monotonic() + seconds
    while empty < 2 and time.monotonic() < end:
        messages = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            empty += 1
            continue
        empty = 0
        for message in messages:
            found[message["MessageId"]] = sent.get(message["MessageId"])
        client.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="SQS endpoint URL")
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--visibility-timeout", type=int, default=30)
    parser.add_argument("--wait", type=int, default=1, help="WaitTimeSeconds of a receive")
    parser.add_argument("--idle", type=float, default=3.0,
                        help="end the drain after this long without a message")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="end the drain after this long in any case")
    parser.add_argument("--receive-visibility", type=int, default=0,
                        help="VisibilityTimeout sent with each receive (0: none, the queue's)")
    parser.add_argument("--attempt-ids", action="store_true",
                        help="send a new ReceiveRequestAttemptId with each receive")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds between receiving a batch and deleting it; > 0: "
                             "the thread receives again meanwhile (a consumer's buffer)")
    parser.add_argument("--keep-queue", action="store_true")
    options = parser.parse_args()

    client = make_client(options.endpoint)
    queue_url = create_queue(client, options.seed, options.visibility_timeout)
    sent = fill_queue(client, queue_url, options.messages, options.groups, options.seed)

    drain = Drain(options.endpoint, queue_url, options.wait, options.idle, options.deadline,
                  options.receive_visibility, options.attempt_ids, options.hold)
    started = time.monotonic()
    threads = [threading.Thread(target=drain.run_receiver, name=f"receiver-{n}")
               for n in range(options.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(options.deadline + 60)
    drained_in = time.monotonic() - started

    counts = queue_counts(client, queue_url)
    left = sweep(client, queue_url, sent, seconds=15)
    never_received = sorted(sent[m] for m in sent if m not in drain.receives)
    duplicates = {m: len(r) for m, r in drain.receives.items() if len(r) > 1}
    violations = group_order_violations(sent, drain)
    left_in_queue = sum(counts.values())

    print(f"endpoint {options.endpoint}  threads {options.threads}  messages {len(sent)}  "
          f"groups {options.groups}  seed {options.seed}  drained in {drained_in:.1f} s")
    print(f"received (distinct) {len(drain.receives)}  deleted {len(drain.deleted)}  "
          f"received twice or more {len(duplicates)}  never received {len(never_received)}")
    print("left in queue: " + "  ".join(f"{k.removeprefix('ApproximateNumberOf')} {v}"
                                         for k, v in sorted(counts.items())) +
          f"  |  final single-thread sweep received {len(left)}")
    if never_received:
        print("  never received:", never_received[:20], "..." if len(never_received) > 20 else "")
    if left:
        print("  sweep found:", sorted(v for v in left.values() if v)[:20])
    for error, number in sorted(drain.errors.items()):
        print(f"  error x{number}: {error}")
    print(f"group order violations {len(violations)}")
    for violation in violations[:10]:
        print("  " + violation)

    if not options.keep_queue:
        client.delete_queue(QueueUrl=queue_url)
    ok = not left_in_queue and not left and not never_received and not violations
    print("RESULT", "exact" if ok else "NOT EXACT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
