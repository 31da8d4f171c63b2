"""Metrics and health (README, "Metrics and health"): widget_consumer with
--metrics-listen serves /metrics in the Prometheus text format, /healthz and
/readyz on a thread of its own.

- A drain scraped while it runs and after it settled everything: the
  exposition parses with prometheus_client's parser (an independent reader
  of the format), the counters only grow, and at the end they equal the
  summary line's counts.
- /readyz: ready once a poll succeeded, unready while the request server is
  stopped (SIGSTOP to our own moto, so every poll hangs), ready again when
  it comes back (SIGCONT); /healthz and /metrics answer all along.
- Malformed HTTP to the metrics port during a drain (garbage, huge headers,
  slow trickles, hundreds of connections) does not stall or crash the
  consumer: it drains to the exact expected state and exits 0.
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
import threading
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OUTCOMES = ["applied", "not_found", "rejected", "released", "failed"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=5):
    """(status, headers, body) of one GET, or None when nothing answers."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()
    except OSError:
        return None


def scrape(port):
    """{(sample name, frozenset(labels)): value} and the families, or None."""
    answer = get(port, "/metrics")
    if answer is None or answer[0] != 200:
        return None
    status, headers, body = answer
    assert headers.get("Content-Type") == CONTENT_TYPE, headers
    families = list(text_string_to_metric_families(body))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return samples, families


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def requests_of(samples, type_=None, outcome=None):
    total = 0
    for (name, labels), count in samples.items():
        found = dict(labels)
        if name != "widget_consumer_requests_total":
            continue
        if (type_ is None or found["type"] == type_) and (outcome is None or
                                                          found["outcome"] == outcome):
            total += count
    return int(total)


def summary_counts(line):
    """The counts of a summary line, by the metric they match."""
    counts = {}
    found = re.search(r"summary: (\d+) processed \((\d+) created, (\d+) updated, (\d+) deleted\), "
                      r"(\d+) not found, (\d+) rejected, (\d+) retried, (\d+) failed", line)
    assert found, line
    keys = ["processed", "created", "updated", "deleted", "not_found", "rejected", "retried",
            "failed"]
    counts.update(zip(keys, (int(g) for g in found.groups())))
    for key, text in [("settle_failures", "ack failures"), ("poll_failures", "poll failures"),
                      ("heartbeat_refusals", "heartbeat refusals")]:
        extra = re.search(r"(\d+) " + text, line)
        counts[key] = int(extra.group(1)) if extra else 0
    return counts


def check_exposition(test, samples, families):
    """What the format promises of every scrape."""
    names = {f.name: f.type for f in families}
    test.assertEqual(names["widget_consumer_requests"], "counter")
    test.assertEqual(names["widget_consumer_request_duration_seconds"], "histogram")
    test.assertEqual(names["widget_consumer_requests_in_flight"], "gauge")
    for family in families:
        if family.type != "histogram":
            continue
        buckets = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
        test.assertEqual(buckets[-1][0], "+Inf", family.name)
        counts = [count for _, count in buckets]
        test.assertEqual(counts, sorted(counts), f"{family.name} buckets are not cumulative")
        test.assertEqual(counts[-1], value(samples, family.name + "_count"), family.name)
    started = value(samples, "process_start_time_seconds")
    test.assertLess(abs(time.time() - started), 600, "process_start_time_seconds is not now-ish")


class Metrics(unittest.TestCase):
    def setUp(self):
        self.env = p.aws_environment()
        self.folder = tempfile.mkdtemp(prefix="wc-metrics-")
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            process.kill()  # by PID, only if still running
        shutil.rmtree(self.folder, ignore_errors=True)

    def s3_backlog(self, requests_count, seed):
        s3 = p.client("s3")
        requests, widgets = p.unique("metrics-req"), p.unique("metrics-widgets")
        s3.create_bucket(Bucket=requests)
        s3.create_bucket(Bucket=widgets)
        expected = os.path.join(self.folder, f"expected-{seed}.json")
        counts = p.produce(self.env, "-rb", requests, "-mwr", str(requests_count), "--seed",
                           str(seed), "--invalid-ratio", "0.03", "--expected-state", expected)
        return requests, widgets, expected, sum(counts.values())

    def start(self, arguments, env=None):
        process = p.consumer(arguments, env or self.env, "metrics")
        self.processes.append(process)
        return process

    def test_s3_to_s3_counters_grow_during_a_drain_and_equal_the_summary_after_it(self):
        requests, widgets, expected, total = self.s3_backlog(800, 21)
        self.drain_scraped(["-rb", requests, "-wb", widgets, "--concurrency", "8"], total,
                           "s3->s3", backlog=True)
        ok, output = p.check_store(expected, "s3", widgets, self.env)
        self.assertTrue(ok, output)

    def test_sqs_to_dynamodb_counters_equal_the_summary(self):
        sqs = p.client("sqs")
        fifo = {"FifoQueue": "true"}
        queue = sqs.create_queue(QueueName=p.unique("metrics") + ".fifo",
                                 Attributes=fifo)["QueueUrl"]
        dead = sqs.create_queue(QueueName=p.unique("metrics-dlq") + ".fifo",
                                Attributes=fifo)["QueueUrl"]
        table = p.make_table(p.client("dynamodb"), p.unique("metrics"))
        expected = os.path.join(self.folder, "expected-sqs.json")
        counts = p.produce(self.env, "-rq", queue, "-mwr", "300", "--seed", "23",
                           "--invalid-ratio", "0.03", "--expected-state", expected)
        # Short long polls: moto frees a FIFO group late within one (graceful_stop_test.py).
        self.drain_scraped(["-rq", queue, "-dwt", table, "--dead-letter-queue", dead, "-qwt", "1",
                            "--concurrency", "4"], sum(counts.values()), "sqs fifo->dynamodb")
        ok, output = p.check_store(expected, "dynamodb", table, self.env)
        self.assertTrue(ok, output)

    def drain_scraped(self, arguments, total, label, backlog=False):
        """Runs a consumer with --metrics-listen until the scrapes show all
        `total` requests settled, stops it, and compares its summary with
        the last scrape. With `backlog` (the S3 source), the source's
        backlog gauge is seen above 0 during the drain and falls to 0 after
        it; without, there is no such gauge."""
        port = free_port()
        process = self.start([*arguments, "--metrics-listen", f"127.0.0.1:{port}"])
        previous, during, final = {}, 0, None
        backlogs = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and final is None:
            self.assertTrue(process.running(), process.stderr()[-3000:])
            scraped = scrape(port)
            if scraped is None:
                time.sleep(0.05)
                continue
            samples, families = scraped
            check_exposition(self, samples, families)
            for key, count in previous.items():
                if key[0].endswith("_total"):
                    self.assertGreaterEqual(samples[key], count, f"counter {key} went down")
            previous = samples
            backlogs.append(samples.get(("widget_consumer_source_backlog", frozenset())))
            settled = requests_of(samples)
            during += 0 < settled < total
            if settled >= total and value(samples, "widget_consumer_requests_in_flight") == 0:
                final = samples
            time.sleep(0.05)
        self.assertIsNotNone(final, f"not all {total} settled in time: {process.stderr()[-3000:]}")
        self.assertGreater(during, 0, "no scrape saw the drain under way")
        self.assertEqual(get(port, "/readyz")[0], 200)
        self.assertEqual(get(port, "/healthz")[0], 200)
        if backlog:
            seen = [b for b in backlogs if b is not None]
            self.assertTrue(seen and max(seen) > 0, f"no backlog seen during the drain: {backlogs}")
            self.assertLessEqual(max(seen), total)
            drained = time.monotonic() + 30
            while scrape(port)[0].get(("widget_consumer_source_backlog", frozenset())) != 0:
                self.assertLess(time.monotonic(), drained, "the backlog did not fall to 0")
                time.sleep(0.1)
            print(f"{label}: backlog gauge up to {max(seen):.0f} of {total}, then 0")
        else:
            self.assertEqual(set(backlogs), {None}, "a backlog gauge for a source without one")

        os.kill(process.popen.pid, signal.SIGTERM)
        self.assertEqual(process.wait(60), 0, process.stderr()[-3000:])
        summary = summary_counts(p.summary_line(process.stderr()))
        for type_, key in [("create", "created"), ("update", "updated"), ("delete", "deleted")]:
            self.assertEqual(summary[key], requests_of(final, type_, "applied") +
                             requests_of(final, type_, "not_found"), key)
        self.assertEqual(summary["not_found"], requests_of(final, outcome="not_found"))
        self.assertEqual(summary["rejected"], requests_of(final, outcome="rejected"))
        self.assertEqual(summary["retried"], requests_of(final, outcome="released"))
        self.assertEqual(summary["failed"], requests_of(final, outcome="failed"))
        for key in ["settle_failures", "poll_failures", "heartbeat_refusals"]:
            self.assertEqual(summary[key], int(value(final, f"widget_consumer_{key}_total")), key)
        self.assertEqual(summary["processed"] + summary["rejected"], total)
        self.assertEqual(int(value(final, "widget_consumer_request_duration_seconds_count")),
                         total)
        print(f"{label}: {total} requests, {during} scrapes during the drain; "
              f"{p.summary_line(process.stderr()).split('summary: ')[-1]}")

    def test_readyz_follows_the_request_server(self):
        state = os.path.join(self.folder, "own-moto")
        emulators = os.path.join(p.ROOT, "scripts", "emulators")
        run = subprocess.run([emulators, "start", "--port", "auto", "--state-dir", state],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(os.path.join(state, "moto.pid")) as f:
            moto_pid = int(f.read())
        with open(os.path.join(state, "moto.url")) as f:
            moto_url = f.read().strip()
        try:
            self.ready_follows(moto_pid, moto_url)
        finally:
            os.kill(moto_pid, signal.SIGCONT)
            os.kill(moto_pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(moto_pid, 0)
                    time.sleep(0.1)
                except ProcessLookupError:
                    break
            else:
                os.kill(moto_pid, signal.SIGKILL)

    def ready_follows(self, moto_pid, moto_url):
        env = p.aws_environment(moto_url)
        requests = p.unique("ready-req")
        p.client("s3", moto_url).create_bucket(Bucket=requests)
        port = free_port()
        process = self.start(["-rb", requests, "--widget-dir", os.path.join(self.folder, "w"),
                              "--metrics-listen", str(port), "--ready-within", "1500",
                              "--poll-interval", "100"], env)

        def wait_for(status, within):
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                self.assertTrue(process.running(), process.stderr()[-3000:])
                answer = get(port, "/readyz")
                if answer is not None and answer[0] == status:
                    return time.monotonic()
                time.sleep(0.1)
            self.fail(f"/readyz not {status} within {within} s: {get(port, '/readyz')}")

        wait_for(200, 30)
        stopped = time.monotonic()
        os.kill(moto_pid, signal.SIGSTOP)
        unready = wait_for(503, 15)
        self.assertGreater(unready - stopped, 1.0, "unready before --ready-within passed")
        self.assertEqual(get(port, "/healthz")[0], 200, "the process is alive meanwhile")
        self.assertIsNotNone(scrape(port), "/metrics answers while the poll hangs")
        os.kill(moto_pid, signal.SIGCONT)
        wait_for(200, 30)
        os.kill(process.popen.pid, signal.SIGTERM)
        self.assertEqual(process.wait(60), 0, process.stderr()[-3000:])

    def test_malformed_http_does_not_disturb_a_drain(self):
        requests, widgets, expected, total = self.s3_backlog(600, 22)
        port = free_port()
        process = self.start(["-rb", requests, "-wb", widgets, "--concurrency", "8",
                              "--max-idle", "3000", "--metrics-listen", f"127.0.0.1:{port}"])
        deadline = time.monotonic() + 30
        while get(port, "/healthz") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stop = threading.Event()
        attackers = [threading.Thread(target=attack, args=(port, stop)) for attack in
                     (send_garbage, send_huge_headers, trickle, hold_many_connections)]
        for attacker in attackers:
            attacker.start()
        try:
            code = process.wait(300)
        finally:
            stop.set()
            for attacker in attackers:
                attacker.join(30)
        self.assertEqual(code, 0, process.stderr()[-3000:])
        summary = summary_counts(p.summary_line(process.stderr()))
        self.assertEqual(summary["processed"] + summary["rejected"], total)
        ok, output = p.check_store(expected, "s3", widgets, self.env)
        self.assertTrue(ok, output)


# Each runs until stop is set or the port stops answering (the consumer exited).

def send_garbage(port, stop):
    junk = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50, b"GET\r\n\r\n",
            b"GET /metrics HTTP/9.9\r\n\r\n", b"\x00" * 5000, b"POST /metrics HTTP/1.1\r\n"
            b"Content-Length: 99999999\r\n\r\n" + b"x" * 10000]
    while not stop.is_set():
        for payload in junk:
            if not exchange_raw(port, payload):
                return


def send_huge_headers(port, stop):
    huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 200000 + b"\r\n\r\n"
    many = b"GET /metrics HTTP/1.1\r\n" + b"X-H: v\r\n" * 20000 + b"\r\n"
    while not stop.is_set():
        if not exchange_raw(port, huge) or not exchange_raw(port, many):
            return


def trickle(port, stop):
    """Ten connections that each send a byte every 100 ms and never finish."""
    sockets = []
    while not stop.is_set():
        while len(sockets) < 10:
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                return
        for s in list(sockets):
            try:
                s.send(b"G")
            except OSError:
                s.close()
                sockets.remove(s)
        time.sleep(0.1)
    for s in sockets:
        s.close()


def hold_many_connections(port, stop):
    while not stop.is_set():
        sockets = []
        try:
            for _ in range(300):
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            pass
        time.sleep(0.5)
        for s in sockets:
            s.close()
        if not sockets:
            return


def exchange_raw(port, payload):
    """Sends payload, reads what comes back; False when nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            try:
                s.sendall(payload)
                while s.recv(65536):
                    pass
            except OSError:
                pass  # reset or timed out: the server's choice
        return True
    except OSError:
        return False


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
