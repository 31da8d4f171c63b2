"""scripts/moto_server.py keeps SQS guarantees moto 5.2 breaks (its docstring
says which). The patched backend runs in this process; for the races, threads
stand in for the server's request threads, with a tiny GIL switch interval so
that they interleave inside moto's methods as often as they can."""

import os
import runpy
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
runpy.run_path(os.path.join(ROOT, "scripts", "moto_server.py"), run_name="moto_server")

import moto.sqs.models  # noqa: E402
from moto.sqs.models import sqs_backends  # noqa: E402  (patched above)


MESSAGES = 300
THREADS = 3


class ConcurrentQueueChanges(unittest.TestCase):
    def setUp(self):
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)
        self.backend = sqs_backends["123456789012"]["us-east-1"]

    def tearDown(self):
        sys.setswitchinterval(self.switch_interval)

    def received_queue(self, name, attributes=None):
        """A queue holding MESSAGES messages, all received (in flight)."""
        queue = self.backend.create_queue(name, **(attributes or {}))
        fifo = name.endswith(".fifo")
        for i in range(MESSAGES):
            self.backend.send_message(name, f"m{i}", group_id=f"g{i}" if fifo else None,
                                      deduplication_id=f"d{i}" if fifo else None)
        taken = []
        for _ in range(MESSAGES):
            taken += self.backend.receive_message(name, 10, 0, 600)
            if len(taken) >= MESSAGES:
                break
        self.assertEqual(len(taken), MESSAGES)
        return queue, [message.receipt_handle for message in taken]

    def run_threads(self, *targets):
        threads = [threading.Thread(target=target) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            self.assertFalse(thread.is_alive())

    def deleters(self, name, handles):
        def delete(part):
            return lambda: [self.backend.delete_message(name, handle) for handle in part]
        return [delete(handles[k::THREADS]) for k in range(THREADS)]

    def test_concurrent_deletes_all_take_effect(self):
        for name in ("deletes", "deletes.fifo"):
            with self.subTest(queue=name):
                attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
                queue, handles = self.received_queue(name, attributes)
                self.run_threads(*self.deleters(name, handles))
                # Unpatched, a third or more of them were back in the queue.
                self.assertEqual(len(queue._messages), 0)

    def test_sends_during_deletes_are_kept(self):
        queue, handles = self.received_queue("sends")
        late = [f"late{i}" for i in range(200)]
        sender = lambda: [self.backend.send_message("sends", body) for body in late]  # noqa: E731
        self.run_threads(sender, *self.deleters("sends", handles))
        self.assertEqual(sorted(message.body for message in queue._messages), sorted(late))


class FifoSequenceNumbers(unittest.TestCase):
    def test_sequence_numbers_rise_in_send_order(self):
        backend = sqs_backends["123456789012"]["us-east-1"]
        backend.create_queue("rising.fifo", FifoQueue="true")
        numbers = [int(backend.send_message("rising.fifo", f"m{i}", group_id="g",
                                            deduplication_id=f"d{i}").sequence_number)
                   for i in range(50)]
        # Unpatched, 20 random digits each: sorted only by chance.
        self.assertEqual(numbers, sorted(numbers))
        self.assertEqual(len(set(numbers)), 50)

    def test_concurrent_sends_to_one_group_are_numbered_in_queue_order(self):
        backend = sqs_backends["123456789012"]["us-east-1"]
        queue = backend.create_queue("concurrent.fifo", FifoQueue="true")
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)
        try:
            def sender(k):
                return lambda: [backend.send_message("concurrent.fifo", f"m{k}-{i}", group_id="g",
                                                     deduplication_id=f"d{k}-{i}")
                                for i in range(200)]
            threads = [threading.Thread(target=sender(k)) for k in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        finally:
            sys.setswitchinterval(switch_interval)
        # A number given after the append let two sends swap: the group's
        # order of delivery disagreed with its numbers (a fenced store then
        # refused the later request as stale).
        numbers = [int(message.sequence_number) for message in queue._messages]
        self.assertEqual(len(numbers), THREADS * 200)
        self.assertEqual(numbers, sorted(numbers))

    def test_content_based_deduplication_numbers_messages_too(self):
        backend = sqs_backends["123456789012"]["us-east-1"]
        backend.create_queue("content.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        numbers = [backend.send_message("content.fifo", f"m{i}", group_id="g").sequence_number
                   for i in range(5)]
        # Unpatched: None, and the fence had no position for the request.
        self.assertTrue(all(number is not None for number in numbers), numbers)
        self.assertEqual([int(n) for n in numbers], sorted(int(n) for n in numbers))


class VisibilityOfMessagesNoLongerInFlight(unittest.TestCase):
    def test_a_timed_out_message_keeps_its_place_first_in_its_group(self):
        backend = sqs_backends["123456789012"]["eu-west-1"]
        name = "late-heartbeat.fifo"
        backend.create_queue(name, FifoQueue="true")
        for i in range(2):
            backend.send_message(name, f"m{i}", group_id="g", deduplication_id=f"d{i}")
        [first] = backend.receive_message(name, 1, 0, 1)
        self.assertEqual(first.body, "m0")
        # In flight: its visibility can change, and the group is taken.
        backend.change_message_visibility(name, first.receipt_handle, 1)
        self.assertEqual(backend.receive_message(name, 10, 0, 30), [])

        time.sleep(1.2)  # its visibility timeout runs out
        with self.assertRaises(Exception) as refused:
            backend.change_message_visibility(name, first.receipt_handle, 30)
        self.assertEqual(getattr(refused.exception, "code", None), "MessageNotInflight")
        succeeded, failed = backend.change_message_visibility_batch(
            name, [{"Id": "late", "ReceiptHandle": first.receipt_handle, "VisibilityTimeout": 30}])
        self.assertEqual(succeeded, [])
        self.assertEqual([(f["Id"], f["Code"]) for f in failed], [("late", "MessageNotInflight")])

        # moto 5.2 accepted the late extension; after a receive had taken m0
        # out of the in-flight set, that hid m0 with its group free, and m1
        # went out alone while m0 was still hidden.
        again = backend.receive_message(name, 10, 0, 30)
        self.assertEqual([message.body for message in again], ["m0", "m1"])


class ReceivePassesSeeOneMoment(unittest.TestCase):
    def test_messages_of_a_group_timing_out_during_a_pass_keep_their_order(self):
        backend = sqs_backends["123456789012"]["ap-south-1"]
        name = "one-moment.fifo"
        queue = backend.create_queue(name, FifoQueue="true")
        for i in range(2):
            backend.send_message(name, f"m{i}", group_id="g", deduplication_id=f"d{i}")
        self.assertEqual([m.body for m in backend.receive_message(name, 10, 0, 30)], ["m0", "m1"])
        m0, m1 = queue._messages

        # m0 has timed out; m1, received with it, times out a moment later:
        # during the next pass, once it has read which groups are in flight.
        real_clock = moto.sqs.models.unix_time_millis
        start = real_clock()
        m0.visible_at, m1.visible_at = start - 10, start + 50
        late = []
        groups = moto.sqs.models.Queue.pending_message_groups

        def read_groups(queue):
            late.append(True)
            return groups.fget(queue)

        moto.sqs.models.unix_time_millis = lambda: start + 100 if late else start
        moto.sqs.models.Queue.pending_message_groups = property(read_groups)
        try:
            during = backend.receive_message(name, 10, 0, 30)
        finally:
            moto.sqs.models.unix_time_millis = real_clock
            moto.sqs.models.Queue.pending_message_groups = groups
        self.assertTrue(late, "the pass did not read the groups in flight: the test is void")
        # moto 5.2 skipped m0 (its group held by m1), then freed the group on
        # meeting m1 timed out and handed m1 out alone, ahead of m0.
        self.assertEqual([m.body for m in during], [])

        m1.visible_at = real_clock() - 1
        self.assertEqual([m.body for m in backend.receive_message(name, 10, 0, 30)], ["m0", "m1"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
