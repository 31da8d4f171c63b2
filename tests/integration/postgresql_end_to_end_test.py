"""End to end into PostgreSQL: the producer writes requests (invalid ones
mixed in) with the state they lead to; s3_to_postgresql (S3 bucket) and
widget_consumer (SQS FIFO queue) apply them to the fixture's PostgreSQL
server, which the test takes down as a crash would (SIGQUIT) and starts
again mid-run. At the end the tables equal the expected state (read with
psql, by scripts/check_store.py), the source holds only the rejected
requests, and the password is nowhere in the programs' output.

The PostgreSQL tests take the server in turn (CTest RESOURCE_LOCK postgresql,
tests/CMakeLists.txt): the restart would break the others' connections.
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

STATE = os.environ.get("WIDGET_CONSUMER_EMULATOR_STATE", "")


def state(name):
    with open(os.path.join(STATE, name)) as f:
        return f.read().strip()


@unittest.skipUnless(os.path.exists(os.path.join(STATE, "postgresql.url")),
                     "no PostgreSQL server in the fixture (built without libpq)")
class PostgreSQLEndToEnd(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="wc-postgresql-")
        self.user, self.password = state("postgresql.user"), state("postgresql.credentials")
        admin = state("postgresql.url")
        self.database = p.unique("e2e").replace("-", "_")
        self.psql(admin, f"CREATE DATABASE {self.database}")
        self.url = admin.rsplit("/", 1)[0] + "/" + self.database
        # The password reaches the programs as libpq reads it, PGPASSWORD.
        self.env = p.aws_environment(PGPASSWORD=self.password)

    def tearDown(self):
        self.psql(state("postgresql.url"), f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")

    def psql(self, url, sql):
        run = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                              "-d", url, "-U", self.user, "-c", sql],
                             env=dict(os.environ, PGPASSWORD=self.password),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        return run.stdout.strip()

    def widget_count(self):
        try:
            return int(self.psql(self.url, "SELECT count(*) FROM widgets") or 0)
        except AssertionError:
            return 0  # the tables are not there yet, or the server is down

    def run_with_restart(self, arguments, name):
        """Runs the program; once widgets arrive, crashes and restarts the
        server; returns the program's output after it exits 0."""
        with p.Process(arguments, self.env, name) as running:
            deadline = time.monotonic() + 120
            while running.running() and self.widget_count() < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(running.running(), "drained before the server could be restarted: "
                            + running.stderr()[-2000:])
            restart = subprocess.run([os.path.join(p.ROOT, "scripts", "postgresql"), "restart",
                                      "--immediate", "--state-dir", STATE],
                                     capture_output=True, text=True, timeout=120)
            self.assertEqual(restart.returncode, 0, restart.stderr)
            code = running.wait(600)
            output = running.stderr() + running.stdout()
        self.assertEqual(code, 0, output[-3000:])
        self.assertNotIn(self.password, output)
        # The restart is transient: retried and released, never a failure.
        self.assertIn(" 0 failed", p.summary_line(output), p.summary_line(output))
        return output

    def check_tables(self, expected):
        owner_url = self.url.replace("postgresql://", f"postgresql://{self.user}@", 1)
        ok, report = p.check_store(expected, "postgresql", owner_url, self.env)
        self.assertTrue(ok, report)
        print(f"  {report.strip()}")

    def test_s3_to_postgresql(self):
        s3 = p.client("s3")
        requests = p.unique("pg-req")
        s3.create_bucket(Bucket=requests)
        expected = os.path.join(self.folder, "expected-s3.json")
        counts = p.produce(self.env, "-rb", requests, "-mwr", "1500", "--seed", "17",
                           "--invalid-ratio", "0.02", "--expected-state", expected)
        started = time.monotonic()
        output = self.run_with_restart(
            [p.program("s3_to_postgresql"), "-rb", requests, "-pdbc", self.url, "-pdbu", self.user,
             "--pdb-create-schema", "--concurrency", "8", "--max-idle", "4000"], "s3-to-pg")
        print(f"s3->postgresql: 1500 requests {counts}, server restarted mid-run, "
              f"{time.monotonic() - started:.1f} s; {p.summary_line(output)}")
        self.check_tables(expected)
        left = p.all_keys(s3, requests)
        self.assertEqual([k for k in left if not k.startswith("rejected/")], [])
        self.assertEqual(len([k for k in left if not k.endswith(".reason")]), counts["invalid"])

    def test_sqs_fifo_to_postgresql(self):
        sqs = p.client("sqs")
        fifo = {"FifoQueue": "true"}
        queue = sqs.create_queue(QueueName=p.unique("pg") + ".fifo", Attributes=fifo)["QueueUrl"]
        dead = sqs.create_queue(QueueName=p.unique("pg-dlq") + ".fifo",
                                Attributes=fifo)["QueueUrl"]
        expected = os.path.join(self.folder, "expected-sqs.json")
        # moto's FIFO queue slows down with its length: 400 is a backlog it
        # drains in about half a minute (crash_test.py).
        counts = p.produce(self.env, "-rq", queue, "-mwr", "400", "--seed", "17",
                           "--invalid-ratio", "0.02", "--expected-state", expected)
        started = time.monotonic()
        output = self.run_with_restart(
            [p.program("widget_consumer"), "-rq", queue, "--dead-letter-queue", dead,
             "-pdbc", self.url, "-pdbu", self.user, "--pdb-create-schema", "-qwt", "1",
             "-qvt", "2", "--concurrency", "8", "--max-idle", "6000"], "sqs-to-pg")
        print(f"sqs fifo->postgresql: 400 requests {counts}, server restarted mid-run, "
              f"{time.monotonic() - started:.1f} s; {p.summary_line(output)}")
        self.check_tables(expected)
        self.assertEqual(p.queue_counts(sqs, queue), (0, 0, 0))
        self.assertEqual(p.queue_counts(sqs, dead)[0], counts["invalid"])

    def test_what_cannot_heal_ends_the_program_at_once(self):
        requests = tempfile.mkdtemp(prefix="wc-pg-requests-")
        secret = "Wr0ng-Pa55word-" + p.unique("x")
        base = [p.program("widget_consumer"), "--request-dir", requests, "-pdbc", self.url,
                "-pdbu", self.user, "--max-idle", "2000"]
        for arguments, expected in [(["-pdbp", secret], "password authentication failed"),
                                    ([], "--pdb-create-schema")]:
            with p.Process(base + arguments, self.env, "pg-refused") as running:
                code = running.wait(120)
                output = running.stderr() + running.stdout()
            self.assertEqual(code, 1, output)
            self.assertIn(expected, output)
            self.assertNotIn(secret, output)
            self.assertNotIn(self.password, output)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
