"""Runs moto's server (S3, SQS, DynamoDB, IAM on one port) with one change
that makes it keep an SQS guarantee real AWS keeps.

On a FIFO queue, AWS hands out a message group to one receive at a time: while
a group's messages are in flight, no other ReceiveMessage gets the group's
next message, and once they are deleted (or time out) the group is available
again, in order. moto 5.2 gets this wrong in three ways:
- it decides which groups are in flight once, when a receive starts, so a long
  poll that began earlier can take a group's next message while its
  predecessor is still being processed (two consumers then apply one widget's
  requests out of order);
- for the same reason a long poll does not see a group freed while it waits,
  and waits its full time although messages are there;
- when several in-flight messages of a group time out together, it still
  counts the group as in flight until it reaches the group's last message, and
  hands that one out first.
Here a FIFO receive is a loop of moto's own receive with no wait, each pass
under the queue's lock with the timed-out messages first taken out of the
in-flight set, and the waiting done between passes without the lock. Each
pass sees the groups as they are now; no receive waits behind another's long
poll. Standard queues are left as they are (AWS does not order them).

Usage: the same arguments as moto_server (scripts/emulators passes them).
"""

import collections
import sys
import threading
import time

import moto.sqs.models
from moto.server import main

_original_receive = moto.sqs.models.SQSBackend.receive_message
_queue_locks = collections.defaultdict(threading.Lock)
_locks_guard = threading.Lock()
_PASS_INTERVAL_SECONDS = 0.02


def _receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                     message_attribute_names=None):
    queue = self.get_queue(queue_name)
    if not queue.fifo_queue:
        return _original_receive(self, queue_name, count, wait_seconds_timeout,
                                 visibility_timeout, message_attribute_names)
    with _locks_guard:
        lock = _queue_locks[(id(self), queue_name)]
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with lock:
            timed_out = [message for message in queue.pending_messages if message.visible]
            queue.pending_messages.difference_update(timed_out)
            result = _original_receive(self, queue_name, count, 0, visibility_timeout,
                                       message_attribute_names)
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(_PASS_INTERVAL_SECONDS)


moto.sqs.models.SQSBackend.receive_message = _receive_message

if __name__ == "__main__":
    sys.exit(main())
