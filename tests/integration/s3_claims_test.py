"""Several widget_consumer processes on one S3 request bucket (RELIABILITY.md,
"several consumers on one bucket"), cooperating through claims made with S3
conditional writes:

- three consumers drain 3,000 requests that create, update and delete shared
  widgets: the widget bucket equals the producer's expected state (its model,
  tests/support/request_generator.hpp, follows DESIGN.md's rules, not the
  consumer's code), the applied counts of the three summaries add up to the
  number of valid requests (none applied twice), nothing is left but the
  rejected requests and the claim prefix is empty;
- the same with one of the three SIGKILLed twice and started again: its
  partition claims expire (a 15 s lifetime) and are taken over, the store is
  exact, nothing is left but the rejected requests, the claim prefix is empty;
- a server that does not honour conditional writes (s3rver ignores
  If-None-Match and If-Match) is refused at start-up with a one-line reason,
  and --single-consumer runs on it.

WIDGET_CONSUMER_CLAIMS_REQUESTS sets the size of the runs (default 3000).
"""

import os
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

CONSUMERS = 3
REQUESTS = int(os.environ.get("WIDGET_CONSUMER_CLAIMS_REQUESTS", "3000"))
# Idle long enough to outlast a pass that hands out nothing while another
# consumer holds the keys.
ARGUMENTS = ["--concurrency", "8", "--max-idle", "8000"]
# The kill run's claim lifetime: the dead consumer's partitions wait this long
# before the others take them over. A consumer renews its 32 partition claims
# at a third of it and stops handing out from one not renewed for three
# quarters, so 15 s leaves room on a loaded server.
KILL_LIFETIME = ["--claim-lifetime", "15"]


def summary_counts(text):
    """(applied, not found) of the consumer's summary line."""
    line = p.summary_line(text)
    if not line:
        return 0, 0
    applied = int(line.split("summary:", 1)[1].split()[0])
    not_found = int(line.split(" not found", 1)[0].rsplit(" ", 1)[1])
    return applied, not_found


class ClaimsOnOneBucket(unittest.TestCase):
    def setUp(self):
        self.env = p.aws_environment()
        self.s3 = p.client("s3")
        self.consumers = []
        self.folder = tempfile.mkdtemp(prefix="wc-claims-")

    def tearDown(self):
        for each in self.consumers:
            each.kill()

    def make_backlog(self, seed):
        requests, widgets = p.unique("claims-req"), p.unique("claims-widgets")
        self.s3.create_bucket(Bucket=requests)
        self.s3.create_bucket(Bucket=widgets)
        expected = os.path.join(self.folder, f"expected-{seed}.json")
        counts = p.produce(self.env, "-rb", requests, "-mwr", str(REQUESTS), "--seed", str(seed),
                           "--invalid-ratio", "0.01", "--expected-state", expected)
        return requests, widgets, expected, counts

    def start(self, requests, widgets, name, extra=()):
        return p.consumer(["-rb", requests, "-wb", widgets, *ARGUMENTS, *extra], self.env, name)

    def describe(self, outputs):
        return "\n".join(f"run {i}: {p.summary_line(o)}" for i, o in enumerate(outputs))

    def assert_drained(self, requests, widgets, expected, counts):
        ok, report = p.check_store(expected, "s3", widgets, self.env)
        self.assertTrue(ok, report)
        left = p.all_keys(self.s3, requests)
        self.assertEqual([k for k in left if not k.startswith("rejected/")], [])
        self.assertEqual(len([k for k in left if not k.endswith(".reason")]), counts["invalid"])

    def test_three_consumers_apply_each_request_once_in_order(self):
        requests, widgets, expected, counts = self.make_backlog(16)
        started = time.monotonic()
        self.consumers = [self.start(requests, widgets, f"claims{i}") for i in range(CONSUMERS)]
        codes = [c.wait(600) for c in self.consumers]
        outputs = [c.stderr() + c.stdout() for c in self.consumers]
        print(f"{REQUESTS} requests {counts}, {CONSUMERS} consumers: "
              f"{time.monotonic() - started:.1f} s\n{self.describe(outputs)}")

        self.assertEqual(codes, [0] * CONSUMERS, self.describe(outputs))
        self.assert_drained(requests, widgets, expected, counts)
        applied = [summary_counts(o) for o in outputs]
        valid = REQUESTS - counts["invalid"]
        self.assertEqual(sum(a for a, _ in applied), valid, self.describe(outputs))
        # In order: no update or delete ever found its widget missing.
        self.assertEqual(sum(n for _, n in applied), 0, self.describe(outputs))

    def test_a_consumer_killed_twice_loses_nothing(self):
        requests, widgets, expected, counts = self.make_backlog(17)
        started = time.monotonic()
        self.consumers = [self.start(requests, widgets, f"steady{i}", KILL_LIFETIME) for i in range(2)]
        outputs, kills = [], 0
        for delay in (3.0, 4.0):
            victim = self.start(requests, widgets, f"victim{kills}", KILL_LIFETIME)
            self.consumers.append(victim)
            time.sleep(delay)
            if victim.kill():
                kills += 1
                print(f"  kill {kills} after {delay:.1f} s")
            outputs.append(victim.stderr() + victim.stdout())
        last = self.start(requests, widgets, "victim-final", KILL_LIFETIME)
        self.consumers.append(last)
        codes = [c.wait(600) for c in (self.consumers[0], self.consumers[1], last)]
        outputs += [c.stderr() + c.stdout() for c in (self.consumers[0], self.consumers[1], last)]
        print(f"{REQUESTS} requests {counts}, {kills} kills: "
              f"{time.monotonic() - started:.1f} s\n{self.describe(outputs)}")

        self.assertEqual(kills, 2, "the backlog drained before the kills")
        self.assertEqual(codes, [0, 0, 0], self.describe(outputs))
        self.assert_drained(requests, widgets, expected, counts)


class ServerWithoutConditionalWrites(unittest.TestCase):
    def test_s3rver_is_refused_at_start_up_unless_single_consumer(self):
        url = p.s3rver_url()
        env = p.aws_environment(url, "S3RVER", "S3RVER")
        s3 = p.client("s3", url, "S3RVER", "S3RVER")
        requests, widgets = p.unique("claims-refused"), p.unique("claims-widgets")
        s3.create_bucket(Bucket=requests)
        s3.create_bucket(Bucket=widgets)
        s3.put_object(Bucket=requests, Key="1700000000000", Body=(
            b'{"type":"create","requestId":"r1","widgetId":"w1","owner":"Mary Matthews"}'))

        with p.consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000"], env,
                        "refused") as run:
            code = run.wait(60)
            output = run.stderr() + run.stdout()
        self.assertEqual(code, 1, output)
        reason = [line for line in output.splitlines() if "conditional writes" in line]
        self.assertEqual(len(reason), 1, output)
        self.assertIn(f"s3://{requests}/claims/", reason[0])
        self.assertIn("--single-consumer", reason[0])
        self.assertEqual(p.all_keys(s3, requests), ["1700000000000"])  # nothing touched

        with p.consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000",
                         "--single-consumer"], env, "alone") as run:
            code = run.wait(60)
            output = run.stderr() + run.stdout()
        self.assertEqual(code, 0, output)
        self.assertEqual(p.all_keys(s3, requests), [])
        self.assertEqual(len(p.all_keys(s3, widgets)), 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
