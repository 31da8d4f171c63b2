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
  partition claims are taken over, the store is exact, nothing is left but
  the rejected requests, the claim prefix is empty;
- three consumers on an idle bucket hold 10 or 11 partitions each; one
  SIGKILLed and started again holds its share again within 30 s (a few
  balance rounds);
- a consumer of this machine killed is taken over at once (its pid is gone),
  one of another machine only once its claims are a lifetime old;
- a claim lifetime under 5 s is refused (exit 2);
- a server that does not honour conditional writes (s3rver ignores
  If-None-Match and If-Match) is refused at start-up with a one-line reason,
  and --single-consumer runs on it (with --no-fencing: the widget store's
  fence needs the conditions too).

WIDGET_CONSUMER_CLAIMS_REQUESTS sets the size of the runs (default 3000).
"""

import os
import signal
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
# The kill run's claim lifetime. The victims run on this machine, so their
# partitions are taken over as soon as their process is gone (Takeover below
# shows both ways); the lifetime bounds how late a live consumer's renewal
# may be, and 15 s leaves room on a loaded server.
KILL_LIFETIME = ["--claim-lifetime", "15"]
# The shortest lifetime a consumer accepts (s3_claim_settings.hpp).
MIN_LIFETIME_S = 5


def summary_counts(text):
    """(applied, not found) of the consumer's summary line."""
    line = p.summary_line(text)
    if not line:
        return 0, 0
    applied = int(line.split("summary:", 1)[1].split()[0])
    not_found = int(line.split(" not found", 1)[0].rsplit(" ", 1)[1])
    return applied, not_found


def backlog(test, name, seed, size, invalid_ratio):
    """A request bucket filled by widget_producer, an empty widget bucket, and
    the producer's expected state: (requests, widgets, expected path, counts)."""
    requests, widgets = p.unique(f"{name}-req"), p.unique(f"{name}-widgets")
    test.s3.create_bucket(Bucket=requests)
    test.s3.create_bucket(Bucket=widgets)
    expected = os.path.join(test.folder, f"expected-{seed}.json")
    counts = p.produce(test.env, "-rb", requests, "-mwr", str(size), "--seed", str(seed),
                       "--invalid-ratio", invalid_ratio, "--expected-state", expected)
    return requests, widgets, expected, counts


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
        return backlog(self, "claims", seed, REQUESTS, "0.01")

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
        # Shared: one measured run split 32/35/33 %. Each must apply at least a
        # fifth, well inside what a fair share (32 partitions over 3) and a
        # late starter on a loaded machine allow.
        for each, _ in applied:
            self.assertGreaterEqual(each, valid // 5, self.describe(outputs))

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


def claim_pids(s3, bucket):
    """{partition: pid} of the claims under claims/partitions/, from their bodies."""
    held = {}
    for key in p.all_keys(s3, bucket):
        if not key.startswith("claims/partitions/"):
            continue
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            continue  # given back meanwhile
        fields = dict(line.split(" ", 1) for line in body.splitlines() if " " in line)
        held[key.rsplit("/", 1)[1]] = int(fields.get("pid", "0"))
    return held


class Sharing(unittest.TestCase):
    """Three consumers on one (idle) bucket hold about a third of the 32
    partitions each; one SIGKILLed and started again gets its share back
    within a few balance rounds (2 s each): its dead pid's claims are taken
    over at once, by it or by the others, and the others give back what is
    over their share."""

    def setUp(self):
        self.env = p.aws_environment()
        self.s3 = p.client("s3")
        self.consumers = []

    def tearDown(self):
        for each in self.consumers:
            each.kill()

    def start(self, bucket, name):
        consumer = p.consumer(["-rb", bucket, "-wb", bucket + "-widgets", "--max-idle", "120000"],
                              self.env, name)
        self.consumers.append(consumer)
        return consumer

    def shares(self, bucket, consumers):
        held = claim_pids(self.s3, bucket)
        return [sum(1 for pid in held.values() if pid == c.popen.pid) for c in consumers]

    def wait_for_shares(self, bucket, consumers, least, seconds):
        """The partitions each of `consumers` holds, once each holds `least`
        (bounded by `seconds`)."""
        deadline = time.monotonic() + seconds
        while True:
            shares = self.shares(bucket, consumers)
            if min(shares) >= least or time.monotonic() > deadline:
                return shares
            time.sleep(0.5)

    def test_a_consumer_restarted_after_sigkill_gets_its_share_back(self):
        bucket = p.unique("share")
        self.s3.create_bucket(Bucket=bucket)
        self.s3.create_bucket(Bucket=bucket + "-widgets")
        consumers = [self.start(bucket, f"share{i}") for i in range(3)]
        shares = self.wait_for_shares(bucket, consumers, 10, 60)
        self.assertGreaterEqual(min(shares), 10, shares)  # 32 / 3: 10 or 11 each
        self.assertTrue(consumers[0].kill())
        started = time.monotonic()
        consumers[0] = self.start(bucket, "share-again")
        shares = self.wait_for_shares(bucket, consumers, 10, 60)
        took = time.monotonic() - started
        print(f"shares {shares} {took:.1f} s after the restart")
        self.assertGreaterEqual(min(shares), 10, shares)
        # A few balance rounds, with room for start-up on a loaded machine.
        self.assertLess(took, 30, shares)
        self.assertEqual(sum(shares), 32, shares)
        for each in consumers:
            each.popen.send_signal(signal.SIGTERM)
        self.assertEqual([each.wait(60) for each in consumers], [0, 0, 0])


class Takeover(unittest.TestCase):
    """Who may take a dead consumer's partitions over, and when."""

    def setUp(self):
        self.env = p.aws_environment()
        self.s3 = p.client("s3")
        self.folder = tempfile.mkdtemp(prefix="wc-takeover-")

    def backlog(self, seed, size):
        return backlog(self, "takeover", seed, size, "0")

    def assert_drained(self, requests, widgets, expected):
        ok, report = p.check_store(expected, "s3", widgets, self.env)
        self.assertTrue(ok, report)
        self.assertEqual(p.all_keys(self.s3, requests), [])

    def test_a_consumer_of_this_machine_killed_is_taken_over_at_once(self):
        # A lifetime of ten minutes: only knowing that the owner's process is
        # gone lets the second consumer finish within the two minutes allowed.
        requests, widgets, expected, _ = self.backlog(21, 400)
        lifetime = ["--claim-lifetime", "600", "--concurrency", "4"]
        with p.consumer(["-rb", requests, "-wb", widgets, *lifetime], self.env, "first") as first:
            for _ in range(300):  # until it has applied something (bounded: 30 s)
                if len(p.all_keys(self.s3, widgets)) > 0 or not first.running():
                    break
                time.sleep(0.1)
            self.assertTrue(first.kill(), first.stderr())
        claims = [k for k in p.all_keys(self.s3, requests) if k.startswith("claims/partitions/")]
        self.assertEqual(len(claims), 32)  # all still held by the dead process
        started = time.monotonic()
        with p.consumer(["-rb", requests, "-wb", widgets, *lifetime, "--max-idle", "3000"],
                        self.env, "second") as second:
            code = second.wait(120)
            output = second.stderr() + second.stdout()
        print(f"taken over and drained in {time.monotonic() - started:.1f} s")
        self.assertEqual(code, 0, output)
        self.assert_drained(requests, widgets, expected)

    def test_a_claim_from_another_machine_waits_out_its_lifetime(self):
        # Claims written as by a consumer elsewhere (another boot id), never
        # renewed: taken over only once the server's clock says they are a
        # lifetime old, then the backlog drains exactly.
        requests, widgets, expected, _ = self.backlog(22, 100)
        body = b"owner 0123456789abcdef elsewhere/4242\nnode other-machine pid:[1]\npid 4242\nrenewal 0\n"
        for n in range(32):
            self.s3.put_object(Bucket=requests, Key=f"claims/partitions/{n:02d}", Body=body)
        self.s3.put_object(Bucket=requests, Key="claims/members/0123456789abcdef", Body=body)
        written = time.monotonic()
        with p.consumer(["-rb", requests, "-wb", widgets, "--claim-lifetime",
                         str(MIN_LIFETIME_S), "--max-idle", "3000"], self.env, "patient") as run:
            code = run.wait(120)
            output = run.stderr() + run.stdout()
        elapsed = time.monotonic() - written
        print(f"waited and drained in {elapsed:.1f} s")
        self.assertEqual(code, 0, output)
        self.assert_drained(requests, widgets, expected)
        # The drain needed every partition, none of which was free before
        # the server's clock (whole seconds) saw them a lifetime old.
        self.assertGreaterEqual(elapsed, MIN_LIFETIME_S, output)

    def test_a_claim_naming_our_node_from_another_machine_waits_out_its_lifetime(self):
        # A VM clone restored from our snapshot shares our boot id, and every
        # host's first pid namespace has the same inode: such a machine writes
        # our node string. Its consumer's pid does not exist here. What it
        # cannot write is the lock that a consumer of this machine holds on
        # a file of its own in /dev/shm (s3_claim_liveness.hpp): without it,
        # the claims wait out their lifetime, as any other machine's.
        requests, widgets, expected, _ = self.backlog(23, 100)
        body = ("owner fedcba9876543210 clone/{pid}\nnode {node}\npid {pid}\nrenewal 0\n"
                .format(node=our_node(), pid=pid_not_here())).encode()
        for n in range(32):
            self.s3.put_object(Bucket=requests, Key=f"claims/partitions/{n:02d}", Body=body)
        self.s3.put_object(Bucket=requests, Key="claims/members/fedcba9876543210", Body=body)
        written = time.monotonic()
        with p.consumer(["-rb", requests, "-wb", widgets, "--claim-lifetime",
                         str(MIN_LIFETIME_S), "--max-idle", "3000"], self.env, "clone") as run:
            code = run.wait(120)
            output = run.stderr() + run.stdout()
        elapsed = time.monotonic() - written
        print(f"waited and drained in {elapsed:.1f} s")
        self.assertEqual(code, 0, output)
        self.assert_drained(requests, widgets, expected)
        # Not before the server's whole seconds said a lifetime (more than
        # lifetime - 1 s really), then the 3 s idle end; taken over at once,
        # the run lasts about 4 s.
        self.assertGreaterEqual(elapsed, MIN_LIFETIME_S - 1 + 3, output)


def our_node():
    """The node string a consumer of this machine writes: boot id and pid
    namespace (s3_claim_settings.hpp, claim_node())."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    return f"{boot} {os.readlink('/proc/self/ns/pid')}"


def pid_not_here():
    """A pid no process of this machine has (bounded search from the top)."""
    for pid in range(4194000, 4000000, -1):
        if not os.path.exists(f"/proc/{pid}"):
            return pid
    raise AssertionError("no free pid found")


class ClaimLifetime(unittest.TestCase):
    def test_a_lifetime_under_the_minimum_is_refused_with_exit_2(self):
        # Claim ages are whole seconds of the server's clock: a lifetime
        # under 5 s would let a claim be taken over while its holder still
        # hands out its requests (s3_claim_settings.hpp).
        env = p.aws_environment()
        for seconds in ("4", "1", "0", "-3"):
            with self.subTest(lifetime=seconds):
                with p.consumer(["-rb", "no-such-bucket", "-wb", "no-such-widgets",
                                 "--claim-lifetime", seconds, "--max-idle", "1000"], env,
                                "lifetime") as run:
                    code = run.wait(60)
                    output = run.stderr() + run.stdout()
                self.assertEqual(code, 2, output)
                first = output.splitlines()[0]
                self.assertIn("--claim-lifetime", first)
                self.assertIn(f"at least {MIN_LIFETIME_S} s", first)


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

        # The widget store's fence needs the same conditions: refused too,
        # naming the way out, and nothing touched.
        with p.consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000",
                         "--single-consumer"], env, "fenced") as run:
            code = run.wait(60)
            output = run.stderr() + run.stdout()
        self.assertEqual(code, 1, output)
        self.assertIn("--no-fencing", output)
        self.assertEqual(p.all_keys(s3, requests), ["1700000000000"])

        with p.consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000",
                         "--single-consumer", "--no-fencing"], env, "alone") as run:
            code = run.wait(60)
            output = run.stderr() + run.stdout()
        self.assertEqual(code, 0, output)
        self.assertEqual(p.all_keys(s3, requests), [])
        self.assertEqual(len(p.all_keys(s3, widgets)), 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
