"""The consumer's exit status (README, "Exit status";
examples/common/exit_status.hpp), each code shown by the real program on
moto:

- 4 when no poll ever reached the source: nothing listening on the endpoint
  (before, that run ended "max idle time reached" and exited 0, so a cron
  job or a Kubernetes Job reported success);
- 0 for a drain that settled everything, the store exact;
- 3 when the run ended as asked but left requests it took unsettled (the
  store down for the whole run: each request released), or when --max-idle
  ended it while its polls were failing (the source behind a proxy that is
  stopped once a poll succeeded; requests arrive meanwhile): the source was
  not seen empty. The next run, the server reachable, applies them all;
- 2 for a bad command line, the new --stop-deadline's checks included;
- 5 when a graceful stop outlasts --stop-deadline: our own moto is stopped
  (SIGSTOP) under a drain, so every call hangs until its 30 s timeout, then
  SIGTERM. The program ends within the deadline plus a generous slack (a
  stop used to wait out every hanging call: 30 s and more), and a second
  run, the server back, leaves the store exact: nothing was lost;
- --help and the README list the same codes.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

FINISHED, USAGE, WORK_LEFT, NEVER_REACHED, STOP_DEADLINE = 0, 2, 3, 4, 5
# The deadline the stop test gives, and what a loaded machine may add to it
# (the watch looks every 50 ms; the log's last lines; the scheduler). Below
# the 30 s HTTP timeout, which a stop waiting for a hanging call lasts at least.
DEADLINE_S = 3
SLACK_S = 20


def request_keys(s3, bucket):
    """The requests left in a bucket: not the claims, not rejected/."""
    return [key for key in p.all_keys(s3, bucket) if re.fullmatch(r"[0-9]+", key)]


def dead_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path):
    """The status of GET path on loopback, None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


class ExitStatus(unittest.TestCase):
    def setUp(self):
        self.env = p.aws_environment()
        self.s3 = p.client("s3")
        self.folder = tempfile.mkdtemp(prefix="wc-exit-")

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def backlog(self, count, seed):
        requests = p.unique("exit-req")
        self.s3.create_bucket(Bucket=requests)
        expected = os.path.join(self.folder, f"expected-{seed}.json")
        p.produce(self.env, "-rb", requests, "-mwr", str(count), "--seed", str(seed),
                  "--expected-state", expected)
        return requests, expected

    def run_consumer(self, arguments, env, name, timeout=120):
        with p.consumer(arguments, env, name) as run:
            code = run.wait(timeout)
            return code, run.stderr() + run.stdout()

    def test_nothing_listening_exits_4(self):
        url = f"http://127.0.0.1:{dead_port()}"
        code, output = self.run_consumer(["-rb", "requests", "-wb", "widgets", "--endpoint-url",
                                          url, "--max-idle", "1000"], p.aws_environment(url),
                                         "unreached")
        self.assertEqual(code, NEVER_REACHED, output)
        self.assertIn("(max idle time reached)", p.summary_line(output), output)
        self.assertIn("exit status 4: no poll of the source succeeded", output)

    def test_a_drain_exits_0_with_the_store_exact(self):
        requests, expected = self.backlog(60, 41)
        widgets = p.unique("exit-widgets")
        self.s3.create_bucket(Bucket=widgets)
        code, output = self.run_consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000"],
                                         self.env, "drain")
        self.assertEqual(code, FINISHED, output[-3000:])
        self.assertNotIn("exit status", output)
        ok, check = p.check_store(expected, "s3", widgets, self.env)
        self.assertTrue(ok, check)
        self.assertEqual(request_keys(self.s3, requests), [])

    def test_a_store_down_for_the_whole_run_exits_3_and_loses_nothing(self):
        requests, expected = self.backlog(30, 42)
        table = p.make_table(p.client("dynamodb"), p.unique("exit-widgets"))
        # Only DynamoDB is unreachable: the requests are listed and taken,
        # and every store call fails (connection refused, retried, released).
        down = p.aws_environment(AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{dead_port()}")
        code, output = self.run_consumer(["-rb", requests, "-dwt", table, "-mrt", "4000"], down,
                                         "store-down")
        self.assertEqual(code, WORK_LEFT, output[-3000:])
        self.assertIn("(max runtime reached)", p.summary_line(output), output[-3000:])
        self.assertRegex(output, r"exit status 3: [1-9][0-9]* requests taken were left unsettled")
        self.assertEqual(len(request_keys(self.s3, requests)), 30, "a request left the source")

        code, output = self.run_consumer(["-rb", requests, "-dwt", table, "--max-idle", "1000"],
                                         self.env, "store-back")
        self.assertEqual(code, FINISHED, output[-3000:])
        ok, check = p.check_store(expected, "dynamodb", table, self.env)
        self.assertTrue(ok, check)

    def test_idle_while_the_source_fails_exits_3_and_loses_nothing(self):
        requests = p.unique("exit-req")
        self.s3.create_bucket(Bucket=requests)
        table = p.make_table(p.client("dynamodb"), p.unique("exit-widgets"))
        port = dead_port()
        arguments = ["-rb", requests, "-dwt", table, "--max-idle", "8000"]
        with p.FaultProxy(p.moto_url()) as proxy:
            # S3 through the proxy, DynamoDB straight to moto.
            env = p.aws_environment(AWS_ENDPOINT_URL_S3=proxy.url)
            with p.consumer([*arguments, "--metrics-listen", f"127.0.0.1:{port}"], env,
                            "source-down") as run:
                deadline = time.monotonic() + 60
                while run.running() and time.monotonic() < deadline \
                        and http_status(port, "/readyz") != 200:
                    time.sleep(0.1)
                self.assertTrue(run.running(), run.stderr()[-3000:])
                self.assertEqual(http_status(port, "/readyz"), 200, "no poll succeeded")
                proxy.stop()  # connections refused from here on
                # Requests arrive while the consumer cannot see them.
                expected = os.path.join(self.folder, "expected-44.json")
                p.produce(self.env, "-rb", requests, "-mwr", "20", "--seed", "44",
                          "--expected-state", expected)
                code = run.wait(120)
                output = run.stderr()
        self.assertEqual(code, WORK_LEFT, output[-3000:])
        self.assertIn("(max idle time reached)", p.summary_line(output), output[-3000:])
        self.assertIn("polls failed: the source was not seen empty", output)
        self.assertEqual(len(request_keys(self.s3, requests)), 20)

        code, output = self.run_consumer(arguments, self.env, "source-back")
        self.assertEqual(code, FINISHED, output[-3000:])
        ok, check = p.check_store(expected, "dynamodb", table, self.env)
        self.assertTrue(ok, check)

    def test_a_bad_command_line_exits_2(self):
        for arguments in (["--no-such-flag"], ["-rb", "r", "-wb", "w", "--stop-deadline", "-1"],
                          ["-rb", "r", "-wb", "w", "--stop-deadline", "soon"]):
            with self.subTest(arguments=arguments):
                done = subprocess.run([p.program("widget_consumer"), *arguments], env=self.env,
                                      capture_output=True, text=True, timeout=30)
                self.assertEqual(done.returncode, USAGE, done.stderr)
                self.assertIn("for more information", done.stderr)
        done = subprocess.run([p.program("widget_consumer"), "-rb", "r", "-wb", "w",
                               "--stop-deadline", "-1"], env=self.env, capture_output=True,
                              text=True, timeout=30)
        self.assertIn("--stop-deadline must be between 0 and 86400 seconds", done.stderr)

    def test_help_and_readme_list_the_same_exit_codes(self):
        done = subprocess.run([p.program("widget_consumer"), "--help"], env=self.env,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, FINISHED, done.stderr)
        epilog = done.stdout.split("Exit status:\n", 1)[1]
        in_help = re.findall(r"^  (\d+|128\+n) ", epilog, re.MULTILINE)
        readme = p.read_text(os.path.join(p.ROOT, "README.md"))
        section = readme.split("### Exit status", 1)[1].split("\n#", 1)[0]
        in_readme = re.findall(r"^\| `?(\d+|128\+n)`? \|", section, re.MULTILINE)
        self.assertEqual(in_help, ["0", "1", "2", "3", "4", "5", "128+n"], epilog)
        self.assertEqual(in_readme, in_help, section)
        self.assertIn("--stop-deadline", done.stdout)


class OwnMoto:
    """A moto of this test's own (scripts/emulators, a state folder of its
    own), which it may stop and continue (SIGSTOP, SIGCONT) without
    touching the servers the other tests share; stopped by its PID."""

    def __init__(self, folder):
        self.state = os.path.join(folder, "own-moto")
        run = subprocess.run([os.path.join(p.ROOT, "scripts", "emulators"), "start", "--port",
                              "auto", "--state-dir", self.state], capture_output=True, text=True,
                             timeout=120)
        if run.returncode != 0:
            raise AssertionError(f"own moto did not start: {run.stdout}{run.stderr}")
        self.pid = int(p.read_text(os.path.join(self.state, "moto.pid")))
        self.url = p.read_text(os.path.join(self.state, "moto.url")).strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)


class StopDeadline(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="wc-deadline-")

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def test_a_stop_during_an_outage_ends_at_the_deadline_and_loses_nothing(self):
        with OwnMoto(self.folder) as moto:
            env = p.aws_environment(moto.url)
            s3 = p.client("s3", moto.url)
            requests, widgets = p.unique("deadline-req"), p.unique("deadline-widgets")
            s3.create_bucket(Bucket=requests)
            s3.create_bucket(Bucket=widgets)
            expected = os.path.join(self.folder, "expected.json")
            p.produce(env, "-rb", requests, "-mwr", "1500", "--seed", "43",
                      "--expected-state", expected)
            arguments = ["-rb", requests, "-wb", widgets, "--concurrency", "4"]
            with p.consumer([*arguments, "--stop-deadline", str(DEADLINE_S)], env,
                            "deadline") as run:
                # Under way: some widgets stored, so calls are in flight.
                deadline = time.monotonic() + 120
                while (run.running() and time.monotonic() < deadline
                       and s3.list_objects_v2(Bucket=widgets, MaxKeys=20).get("KeyCount", 0) < 20):
                    time.sleep(0.1)
                self.assertTrue(run.running(), run.stderr()[-3000:])
                os.kill(moto.pid, signal.SIGSTOP)
                time.sleep(0.5)  # let calls start that cannot end
                signalled = time.monotonic()
                run.popen.send_signal(signal.SIGTERM)
                code = run.wait(DEADLINE_S + SLACK_S)
                took = time.monotonic() - signalled
                output = run.stderr()
            print(f"stop during an outage: exit {code} after {took:.1f} s "
                  f"(deadline {DEADLINE_S} s)")
            self.assertEqual(code, STOP_DEADLINE, output[-3000:])
            self.assertGreaterEqual(took, DEADLINE_S - 0.5, "the deadline did not wait")
            self.assertIn("stop deadline passed", output)
            os.kill(moto.pid, signal.SIGCONT)
            # The dead process's last calls wait in the stopped server's
            # sockets and land as it goes on, as after a SIGKILL: once it
            # answers us, they are under way; let them end before the next
            # run writes the same widgets.
            s3.list_objects_v2(Bucket=widgets, MaxKeys=1)
            time.sleep(1)

            # The server back: the rest is drained, and the store is what the
            # requests lead to (none lost; any applied twice is idempotent).
            with p.consumer([*arguments, "--max-idle", "2000"], env, "after") as run:
                code = run.wait(300)
                output = run.stderr()
            self.assertEqual(code, FINISHED, output[-3000:])
            ok, check = p.check_store(expected, "s3", widgets, env)
            self.assertTrue(ok, check)
            self.assertEqual(request_keys(s3, requests), [])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
