"""Runs moto's server (S3, SQS, DynamoDB, IAM on one port) with changes that
make its SQS keep guarantees real AWS keeps.

1. Deleted messages stay deleted, sent messages stay sent. moto 5.2's
   Queue.delete_message rebuilds the queue's message list without a lock, and
   the server answers requests on several threads: two deletes at once (two
   consumers, or a killed consumer's last DeleteMessageBatch still running when
   its successor's first arrives) lose one another's work, so a deleted message
   comes back after its visibility timeout, and a send racing a delete is
   lost. Run in-process, 3 threads deleting 1,000 received messages left
   259-617 of them in the queue. A deleted request delivered again is applied
   again: a widget's create replayed after its delete brought the widget back.

2. On a FIFO queue, AWS hands out a message group to one receive at a time:
   while a group's messages are in flight, no other ReceiveMessage gets the
   group's next message, and once they are deleted (or time out) the group is
   available again, in order. moto 5.2 gets this wrong in three ways:
   - it decides which groups are in flight once, when a receive starts, so a
     long poll that began earlier can take a group's next message while its
     predecessor is still being processed (two consumers then apply one
     widget's requests out of order);
   - for the same reason a long poll does not see a group freed while it waits,
     and waits its full time although messages are there;
   - when several in-flight messages of a group time out together, it still
     counts the group as in flight until it reaches the group's last message,
     and hands that one out first.

3. A message whose visibility timeout ran out is no longer in flight: AWS
   refuses to change its visibility (MessageNotInflight) and hands it out
   again, first of its group on a FIFO queue. moto 5.2 hides it again without
   counting it in flight, so its FIFO group looks free: a late heartbeat of a
   consumer that then died let the group's next message go to its successor
   while the one before it was still hidden, and the older request was
   applied last (crash_test.py saw a widget with an older update, and a
   deleted widget back). Here such a change is refused as AWS does.

4. A receive is one moment for SQS: what is visible is decided once. moto
   5.2 asks each message whether it is visible at the moment it gets to it,
   and when it meets an in-flight message that has just timed out it takes it
   out of the in-flight set and looks again at which groups are in flight.
   Two messages of a group received together time out a few milliseconds
   apart (moto copies each one it hands out before it marks the next); a
   pass that begins between the two skips the first (its group is in flight,
   held by the second) and then, meeting the second just timed out, frees the
   group and hands out the second alone, ahead of the first. The fault test
   saw exactly that: a widget's later update applied before the earlier one,
   each once. Here every receive pass sees one moment.

5. SendMessage checks what AWS checks: the message's size is its body plus
   each message attribute's name, data type and value, against the queue's
   MaximumMessageSize, and the body and attribute values may hold only
   #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. moto 5.2
   counts the body alone and checks no characters, so a dead-letter send that
   AWS refuses for good (a reject reason quoting U+FFFF, a body near the limit
   once the reason is added) went through here.

6. A FIFO message's SequenceNumber rises, as SQS's does within a message
   group. moto 5.2 draws 20 random digits when the sender names a
   deduplication id, so the stores' fence (position.hpp), which orders a
   FIFO group's requests by it, refused half of them as stale; under
   content-based deduplication it gives none. Here one counter numbers every
   FIFO message as it joins its queue, under the queue's lock.

1 and 2 are fixed by one lock per queue. Deletes and sends take it. A receive is
a loop of moto's own receive with no wait, each pass under the lock with the
timed-out messages first taken out of the in-flight set, and the waiting done
between passes without the lock. Each pass sees the groups as they are now; no
receive waits behind another's long poll.

A long poll waits on the queue's condition between passes: a send, a delete or
a visibility change wakes it, and so does the moment the next hidden or
delayed message becomes visible (at the latest every _MAX_WAIT_SECONDS, for
what changes a queue in other ways). moto's own long poll makes a pass every
10 ms or so, and a pass copies the queue's in-flight groups and every message
it hands out: a few dozen long polls at once (the fault test runs six
consumers with three receivers each) kept the server's one Python thread
busy enough that a visibility change waited over 1.5 s for its answer, and the
messages it was for were handed out again meanwhile.

Usage: the same arguments as moto_server (scripts/emulators passes them).
"""

import functools
import itertools
import sys
import threading
import time

import moto.sqs.exceptions
import moto.sqs.models
from moto.server import main

_MAX_WAIT_SECONDS = 0.25
_locks_guard = threading.Lock()
# The moment of the receive pass this thread is in (item 4), else None.
_pass_moment = threading.local()


def _now_millis():
    moment = getattr(_pass_moment, "millis", None)
    return moment if moment is not None else moto.sqs.models.unix_time_millis()


# moto's own, but against the pass's moment: strictly after visible_at, as moto.
moto.sqs.models.Message.visible = property(lambda message: _now_millis() > message.visible_at)
moto.sqs.models.Message.delayed = property(lambda message: _now_millis() < message.delayed_until)


def _changed_of(queue):
    """The queue's own lock, made on first use, as a condition notified when
    the queue changed in a way that may let a waiting receive take a message.
    Re-entrant: a receive pass that dead-letters a message adds it to another
    queue under that queue's lock, and a queue may be its own dead-letter
    queue."""
    changed = queue.__dict__.get("_widget_consumer_changed")
    if changed is None:
        with _locks_guard:
            changed = queue.__dict__.setdefault("_widget_consumer_changed",
                                                threading.Condition(threading.RLock()))
    return changed


def _under_queue_lock(method):
    @functools.wraps(method)
    def locked(queue, *arguments, **keywords):
        changed = _changed_of(queue)
        with changed:
            try:
                return method(queue, *arguments, **keywords)
            finally:
                changed.notify_all()

    return locked


def _seconds_until_a_message_shows(queue):
    """How long until the next hidden or delayed message becomes visible
    (None: none is)."""
    now = moto.sqs.models.unix_time_millis()
    soonest = None
    for message in queue._messages:
        for moment in (message.visible_at, message.delayed_until):
            if moment > now and (soonest is None or moment < soonest):
                soonest = moment
    return None if soonest is None else (soonest - now) / 1000.0


moto.sqs.models.Queue.delete_message = _under_queue_lock(moto.sqs.models.Queue.delete_message)
_original_add_message = moto.sqs.models.Queue.add_message

_original_receive = moto.sqs.models.SQSBackend.receive_message


def _receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                     message_attribute_names=None):
    queue = self.get_queue(queue_name)
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    changed = _changed_of(queue)
    with changed:
        while True:
            _pass_moment.millis = moto.sqs.models.unix_time_millis()
            try:
                timed_out = [message for message in queue.pending_messages if message.visible]
                queue.pending_messages.difference_update(timed_out)
                result = _original_receive(self, queue_name, count, 0, visibility_timeout,
                                           message_attribute_names)
            finally:
                _pass_moment.millis = None
            left = deadline - time.monotonic()
            if result or left <= 0:
                return result
            # A millisecond past the moment, as moto's "visible" is strict.
            shows = _seconds_until_a_message_shows(queue)
            changed.wait(min(left, _MAX_WAIT_SECONDS,
                             _MAX_WAIT_SECONDS if shows is None else shows + 0.001))


moto.sqs.models.SQSBackend.receive_message = _receive_message


class MessageNotInflight(moto.sqs.exceptions.SQSException):
    def __init__(self) -> None:
        super().__init__("MessageNotInflight", "The message referred to isn't in flight.")


_original_change_visibility = moto.sqs.models.SQSBackend.change_message_visibility
_original_change_visibility_batch = moto.sqs.models.SQSBackend.change_message_visibility_batch


def _change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
    queue = self.get_queue(queue_name)
    changed = _changed_of(queue)
    with changed:
        for message in queue._messages:
            if message.had_receipt_handle(receipt_handle):
                if message.visible:
                    raise MessageNotInflight()
                break
        _original_change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        changed.notify_all()


def _change_message_visibility_batch(self, queue_name, entries):
    # moto's batch knows only ReceiptHandleIsInvalid: one entry at a time,
    # so MessageNotInflight fails its entry, not the batch.
    succeeded, failed = [], []
    for entry in entries:
        try:
            done, errors = _original_change_visibility_batch(self, queue_name, [entry])
        except MessageNotInflight as error:
            failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "MessageNotInflight",
                           "Message": error.message})
            continue
        succeeded += done
        failed += errors
    return succeeded, failed


moto.sqs.models.SQSBackend.change_message_visibility = _change_message_visibility
moto.sqs.models.SQSBackend.change_message_visibility_batch = _change_message_visibility_batch

_original_send = moto.sqs.models.SQSBackend.send_message


def _not_sqs_text(text):
    """The first character SQS refuses in a message, or None."""
    for character in text:
        point = ord(character)
        if not (point in (0x9, 0xA, 0xD) or 0x20 <= point <= 0xD7FF
                or 0xE000 <= point <= 0xFFFD or 0x10000 <= point <= 0x10FFFF):
            return point
    return None


def _send_message(self, queue_name, message_body, message_attributes=None, *arguments,
                  **keywords):
    queue = self.get_queue(queue_name)
    size = len(message_body.encode("utf-8"))
    texts = [message_body]
    for name, attribute in (message_attributes or {}).items():
        value = attribute.get("string_value", attribute.get("StringValue")) or ""
        data_type = attribute.get("data_type", attribute.get("DataType")) or ""
        size += len(name.encode("utf-8")) + len(data_type.encode("utf-8")) + len(
            value.encode("utf-8"))
        texts.append(value)
    if size > queue.maximum_message_size:
        raise moto.sqs.exceptions.InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{queue.maximum_message_size} bytes.")
    for text in texts:
        point = _not_sqs_text(text)
        if point is not None:
            raise moto.sqs.exceptions.InvalidParameterValue(
                f"Invalid binary character '#x{point:X}' was found in the message body or "
                "a message attribute, the set of allowed characters is #x9 | #xA | #xD | "
                "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    return _original_send(self, queue_name, message_body, message_attributes, *arguments,
                          **keywords)


_sequence_numbers = itertools.count(18850000000000000000)


def _add_message(queue, message):
    """moto's add_message, with every FIFO message numbered under the queue's
    lock as it joins the queue: SQS's SequenceNumber rises within a message
    group (the fence orders FIFO requests by it, position.hpp). moto draws 20
    random digits, and none at all under content-based deduplication; a number
    given after the append would let two concurrent sends to one group swap."""
    if queue.fifo_queue:
        message.sequence_number = str(next(_sequence_numbers))
    _original_add_message(queue, message)


moto.sqs.models.SQSBackend.send_message = _send_message
moto.sqs.models.Queue.add_message = _under_queue_lock(_add_message)

if __name__ == "__main__":
    sys.exit(main())
