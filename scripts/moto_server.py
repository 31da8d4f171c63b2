"""Runs moto's server (S3, SQS, DynamoDB, IAM on one port) with one fix that
makes it keep an SQS guarantee real AWS keeps.

On a FIFO queue, AWS hands out a message group to one receive at a time: while
a group's messages are in flight, no other ReceiveMessage gets the group's
next message. moto 5.2 decides which groups are in flight once, when a receive
starts, so a long poll that began earlier can take a group's next message
while its predecessor is still being processed, and two consumers then apply
one widget's requests out of order. Serialising the receives of each FIFO
queue restores AWS's behaviour: each receive sees the groups taken by the one
before it. Standard queues are left as they are (AWS does not order them).

A second fix for the same guarantee: when several in-flight messages of a
group time out together, moto 5.2 still counts the group as in flight until it
reaches the group's last message, and hands that one out first. Messages that
are visible again are taken out of the in-flight set before each FIFO
receive, so the group comes back in order, as on AWS.

Usage: the same arguments as moto_server (scripts/emulators passes them).
"""

import collections
import sys
import threading

import moto.sqs.models
from moto.server import main

_original_receive = moto.sqs.models.SQSBackend.receive_message
_queue_locks = collections.defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _receive_message(self, queue_name, *args, **kwargs):
    if not self.get_queue(queue_name).fifo_queue:
        return _original_receive(self, queue_name, *args, **kwargs)
    with _locks_guard:
        lock = _queue_locks[(id(self), queue_name)]
    with lock:
        queue = self.get_queue(queue_name)
        timed_out = [message for message in queue.pending_messages if message.visible]
        queue.pending_messages.difference_update(timed_out)
        return _original_receive(self, queue_name, *args, **kwargs)


moto.sqs.models.SQSBackend.receive_message = _receive_message

if __name__ == "__main__":
    sys.exit(main())
