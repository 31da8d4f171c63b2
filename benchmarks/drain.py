"""The end-to-end drain benchmark; run it through benchmarks/drain, which builds
the programs first. See benchmarks/drain --help and BENCHMARKS.md.

Servers: by default the fast local ones (benchmarks/servers: versitygw for S3,
ElasticMQ for SQS, dynalite for DynamoDB), each program reaching each through
AWS_ENDPOINT_URL_S3/_SQS/_DYNAMODB; --servers moto uses one moto for all three.
For each round-trip time and each combination, on fresh resources each time:
fill the source with widget_producer, drain it with one consumer, check the
store with scripts/check_store.py (boto3), and time it. Consumers: ours
(build/bench/examples/widget_consumer) at each concurrency, the Go peer
(benchmarks/peers/go, the AWS SDK for Go v2; build/bench/peers/go_peer) at the
same concurrency, the boto3 baseline (benchmarks/baseline_consumer.py) and the
server limit (limit_client, not checked: it ignores per-widget order on
purpose). Exit status 1 when any checked store is wrong or any consumer failed.
"""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
PRODUCER = os.path.join(BUILD, "examples", "widget_producer")
CONSUMER = os.path.join(BUILD, "examples", "widget_consumer")
LIMIT = os.path.join(BUILD, "tools", "limit_client")
DELAY_PROXY = os.path.join(BUILD, "tools", "delay_proxy")
GO_PEER = os.path.join(BUILD, "peers", "go_peer")
SERVICES = ("s3", "sqs", "dynamodb")
# One key pair for every server: versitygw checks signatures against its root
# keys (benchmarks/servers starts it with these), the others accept any.
ACCESS_KEY, SECRET_KEY = "bench", "bench"
COMBINATIONS = ("s3-s3", "s3-dynamodb", "sqs-s3", "sqs-dynamodb")
# Only ours drains into PostgreSQL (the baseline and the limit client speak
# AWS alone): asked for by name, for --fencing-cost on every store.
POSTGRESQL_COMBINATIONS = ("s3-postgresql", "sqs-postgresql")
MAX_IDLE_MS = 1000
# Against moto, a FIFO receive can come back empty for over a second while the
# queue still holds messages (see BENCHMARKS.md), so SQS drains wait longer
# before calling the queue drained; the wait is subtracted from the time.
SQS_MAX_IDLE_MS = 5000


class Failed(Exception):
    pass


def stop_on_signals():
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def limit_command(names, threads, requests):
    """The limit client's command line for a source and store made by Bench.fresh."""
    (source_flag, source_name), (store_flag, store_name) = names["source"], names["store"]
    return [LIMIT, "--threads", str(threads), "--expect", str(requests),
            "--request-bucket" if source_flag == "-rb" else "--request-queue", source_name,
            "--widget-bucket" if store_flag == "-wb" else "--table", store_name]


def run_measured(command, env, timeout):
    """Runs command; returns (exit status, stdout, stderr, cpu seconds, peak RSS in KB).

    CPU (user + sys) and peak RSS come from /usr/bin/time, which forks from a
    small process: a child forked from this Python process would report the
    parent's RSS at fork as its own peak (ru_maxrss survives exec)."""
    out_path = os.path.join(BUILD, "drain-state", "last.out")
    err_path = os.path.join(BUILD, "drain-state", "last.err")
    time_path = os.path.join(BUILD, "drain-state", "last.time")
    if os.path.exists(time_path):
        os.remove(time_path)
    command = ["/usr/bin/time", "-q", "-f", "%U %S %M", "-o", time_path, *command]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        status = None
        try:
            while status is None:
                pid, raw, usage = os.wait4(process.pid, os.WNOHANG)
                if pid == process.pid:
                    status = os.waitstatus_to_exitcode(raw)
                    break
                if time.monotonic() > deadline:
                    process.kill()
                    pid, raw, usage = os.wait4(process.pid, 0)
                    status = -9
                    break
                time.sleep(0.05)
        finally:
            if status is None:
                process.kill()
                os.wait4(process.pid, 0)
        process.returncode = status
    with open(out_path, encoding="utf-8", errors="replace") as f:
        stdout = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    cpu, rss_kb = 0.0, 0
    try:
        with open(time_path) as f:
            user, system, rss = f.read().split()[-3:]
        cpu, rss_kb = float(user) + float(system), int(rss)
    except (OSError, ValueError):
        pass
    return status, stdout, stderr, cpu, rss_kb


def tree_cpu_seconds(pid):
    """User + sys CPU seconds of pid and its live descendants (a server may be
    a wrapper script around its JVM or node process)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo += [child for child, parent in parents.items() if parent == current]
    return total


class Bench:
    def __init__(self, args):
        self.args = args
        self.state = os.path.join(BUILD, "drain-state")
        os.makedirs(self.state, exist_ok=True)
        self.urls = {}  # service -> the server's own URL
        self.server_pids = {}  # service -> its server's pid, for its CPU
        self.proxy = None
        self.proxy_urls = {}  # service -> the delay proxy's URL in front of it
        self.serial = 0
        self.results = []
        self.failures = []
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                        AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            self.env.pop(name, None)

    # --- servers -------------------------------------------------------------
    def endpoints(self, urls):
        """The environment that sends each service's calls to urls[service]."""
        return dict(self.env, **{f"AWS_ENDPOINT_URL_{service.upper()}": urls[service]
                                 for service in SERVICES})

    def start_servers(self):
        if self.args.servers == "moto":
            subprocess.run([os.path.join(ROOT, "scripts", "emulators"), "start", "--port", "auto",
                            "--state-dir", self.state], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(self.state, "moto.url")) as f:
                url = f.read().strip()
            self.urls = {service: url for service in SERVICES}
            self.server_pids = {service: self.read_pid(os.path.join(self.state, "moto.pid"))
                                for service in SERVICES}
        else:
            subprocess.run([os.path.join(ROOT, "benchmarks", "servers"), "start", "--state-dir",
                            os.path.join(self.state, "servers"), "--access-key", ACCESS_KEY,
                            "--secret-key", SECRET_KEY], check=True, stdout=subprocess.DEVNULL)
            for service in SERVICES:
                with open(os.path.join(self.state, "servers", f"{service}.url")) as f:
                    self.urls[service] = f.read().strip()
                self.server_pids[service] = self.read_pid(
                    os.path.join(self.state, "servers", f"{service}.pid"))
        if any(c in POSTGRESQL_COMBINATIONS for c in self.args.combinations):
            self.start_postgresql()
        import boto3  # noqa: E402 (the venv's; only once the servers are up)
        from botocore.config import Config
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        self.s3 = session.client("s3", endpoint_url=self.urls["s3"],
                                 config=Config(s3={"addressing_style": "path"}))
        self.sqs = session.client("sqs", endpoint_url=self.urls["sqs"])
        self.dynamodb = session.client("dynamodb", endpoint_url=self.urls["dynamodb"])

    def start_postgresql(self):
        folder = os.path.join(self.state, "postgresql")
        subprocess.run([os.path.join(ROOT, "scripts", "postgresql"), "start", "--state-dir",
                        folder], check=True, stdout=subprocess.DEVNULL)
        def read(name):
            with open(os.path.join(folder, f"postgresql.{name}")) as f:
                return f.read().strip()
        self.postgresql = {"url": read("url"), "user": read("user"),
                           "password": read("credentials")}
        self.urls["postgresql"] = self.postgresql["url"]
        self.server_pids["postgresql"] = self.read_pid(os.path.join(folder, "postgresql.pid"))
        self.env["PGPASSWORD"] = self.postgresql["password"]

    def psql(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.postgresql["url"],
                        "-U", self.postgresql["user"], "-c", sql], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    @staticmethod
    def read_pid(path):
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def server_cpu(self):
        """CPU seconds used so far by each server (by service; one moto serves all)."""
        return {service: tree_cpu_seconds(pid) if pid else 0.0
                for service, pid in self.server_pids.items()}

    def stop_servers(self):
        if "postgresql" in self.urls:
            subprocess.run([os.path.join(ROOT, "scripts", "postgresql"), "stop", "--state-dir",
                            os.path.join(self.state, "postgresql")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.args.servers == "moto":
            subprocess.run([os.path.join(ROOT, "scripts", "emulators"), "stop", "--state-dir",
                            self.state], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run([os.path.join(ROOT, "benchmarks", "servers"), "stop", "--state-dir",
                            os.path.join(self.state, "servers")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_proxy(self, rtt_ms):
        """benchmarks/delay_proxy.cpp in front of each server, rtt_ms added."""
        self.stop_proxy()
        port_file = os.path.join(self.state, "proxy.ports")
        if os.path.exists(port_file):
            os.remove(port_file)
        proxied = [service for service in (*SERVICES, "postgresql") if service in self.urls]
        upstream_ports = ",".join(str(urllib.parse.urlsplit(self.urls[service]).port)
                                  for service in proxied)
        self.proxy = subprocess.Popen(
            [DELAY_PROXY, "--upstream-port", upstream_ports, "--rtt-ms", str(rtt_ms),
             "--port-file", port_file, "--threads", str(self.args.proxy_threads)],
            stdin=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    ports = f.read().split()
                # The servers' own URLs (http://, postgresql://…/postgres), on the proxy's port.
                self.proxy_urls = {
                    service: urllib.parse.urlsplit(self.urls[service])._replace(
                        netloc=f"127.0.0.1:{port}").geturl()
                    for service, port in zip(proxied, ports)}
                return
            if self.proxy.poll() is not None:
                raise Failed("delay_proxy exited at start")
            time.sleep(0.05)
        raise Failed("delay_proxy did not start listening")

    def stop_proxy(self):
        if self.proxy is not None:
            if self.proxy.poll() is None:
                self.proxy.terminate()
                try:
                    self.proxy.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proxy.kill()
                    self.proxy.wait()
            self.proxy = None
            self.proxy_urls = {}

    # --- one run -------------------------------------------------------------
    def fresh(self, combination, requests, seed):
        """Creates a filled source and an empty store; returns their names."""
        self.serial += 1
        base = f"drain-{os.getpid()}-{self.serial}"
        source, store = combination.split("-")
        names = {"expected": os.path.join(self.state, f"{base}.expected.json")}
        if store == "postgresql":
            database = base.replace("-", "_")
            self.psql(f"CREATE DATABASE {database}")
            names["database"] = database
            names["store"] = ["-pdbu", self.postgresql["user"], "--pdb-create-schema"]
            server = urllib.parse.urlsplit(self.urls["postgresql"])
            names["check"] = ["postgresql", self.database_url(server._replace(
                netloc=f"{self.postgresql['user']}@{server.netloc}").geturl(), database)]
        elif store == "s3":
            names["store"] = ["-wb", f"{base}-widgets"]
            names["check"] = ["s3", f"{base}-widgets"]
            self.s3.create_bucket(Bucket=f"{base}-widgets")
        else:
            names["store"] = ["-dwt", f"{base}-widgets"]
            names["check"] = ["dynamodb", f"{base}-widgets"]
            self.dynamodb.create_table(
                TableName=f"{base}-widgets",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST")
        if source == "s3":
            names["source"] = ["-rb", f"{base}-requests"]
            self.s3.create_bucket(Bucket=f"{base}-requests")
        else:
            fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
            names["source"] = ["-rq", f"{base}-requests.fifo"]
            names["dlq"] = f"{base}-rejected.fifo"
            self.sqs.create_queue(QueueName=f"{base}-requests.fifo", Attributes=fifo)
            self.sqs.create_queue(QueueName=names["dlq"], Attributes=fifo)
        fill_env = self.endpoints(self.urls)
        started = time.monotonic()
        subprocess.run([PRODUCER, *names["source"], "-mwr", str(requests), "--seed", str(seed),
                        "--invalid-ratio", str(self.args.invalid_ratio), "--expected-state",
                        names["expected"]], env=fill_env, check=True, stdout=subprocess.DEVNULL)
        names["fill_seconds"] = time.monotonic() - started
        return names

    @staticmethod
    def database_url(server_url, database):
        """The URL of one database on the server at server_url (postgresql://…/postgres)."""
        return server_url.rsplit("/", 1)[0] + "/" + database

    def check(self, names):
        result = subprocess.run([PYTHON, os.path.join(ROOT, "scripts", "check_store.py"),
                                 names["expected"], *names["check"]],
                                env=self.endpoints(self.urls),
                                capture_output=True, text=True)
        return result.returncode == 0, (result.stdout + result.stderr).strip()

    def warm_up(self, combination, requests):
        """Drains one throwaway queue with the limit client, unmeasured: ElasticMQ runs on a
        JVM that compiles its hot paths during the first drains (ours at c=8 four times in a
        row: 138, 179, 238, 260 requests/s), so without this the first consumers measured,
        ours, meet a slower server than the limit client after them."""
        names = self.fresh(combination, requests, seed=999)
        command = limit_command(names, self.args.limit_threads_sqs, requests)
        status, _, stderr, _, _ = run_measured(command, self.endpoints(self.urls),
                                               self.args.timeout)
        if status != 0:
            raise Failed(f"warm-up drain of {combination}: {stderr.strip()[-300:]}")
        print(f"drain: ElasticMQ warmed up ({requests} requests, not measured)", flush=True)

    def drain(self, combination, rtt, consumer, concurrency, requests, proxied=None):
        """One drain; proxied (default: rtt > 0) sends its calls through the delay proxy."""
        names = self.fresh(combination, requests, seed=1000 + self.serial)
        proxied = rtt > 0 if proxied is None else proxied
        env = self.endpoints(self.proxy_urls if proxied else self.urls)
        source_flag, source_name = names["source"]
        timeout = self.args.timeout
        record = {"combination": combination, "rtt_ms": rtt, "consumer": consumer,
                  "concurrency": concurrency, "requests": requests, "proxied": proxied}
        if consumer.startswith("ours"):
            idle_ms = MAX_IDLE_MS if source_flag == "-rb" else SQS_MAX_IDLE_MS
            store_flags = names["store"]
            if "database" in names:
                server = (self.proxy_urls if proxied else self.urls)["postgresql"]
                store_flags = ["-pdbc", self.database_url(server, names["database"]), *store_flags]
            command = [CONSUMER, *names["source"], *store_flags, "--concurrency",
                       str(concurrency), "--max-idle", str(idle_ms)]
            if consumer == "ours-unfenced":
                command += ["--no-fencing"]
            if source_flag == "-rq":
                command += ["--dead-letter-queue", names["dlq"], "-qwt", str(self.args.queue_wait)]
                if self.args.queue_receivers:
                    command += ["--queue-receivers", str(self.args.queue_receivers)]
            elif self.args.single_consumer:
                command += ["--single-consumer"]
            if self.args.perf:
                # perf forks our consumer itself: the CPU and RSS columns of
                # such a run include perf's, so use them for profiles only.
                os.makedirs(self.args.perf, exist_ok=True)
                data = os.path.join(self.args.perf, f"{combination}-rtt{rtt}-c{concurrency}.data")
                command = ["perf", "record", "-F", "499", "-g", "-q", "-o", data, "--", *command]
        elif consumer.startswith("go"):
            idle_ms = MAX_IDLE_MS if source_flag == "-rb" else SQS_MAX_IDLE_MS
            command = [GO_PEER, "--request-bucket" if source_flag == "-rb" else "--request-queue",
                       source_name,
                       "--widget-bucket" if names["store"][0] == "-wb" else "--table",
                       names["store"][1], "--concurrency", str(concurrency),
                       "--max-idle", str(idle_ms)]
            if source_flag == "-rq":
                command += ["--dead-letter-queue", names["dlq"], "--queue-wait",
                            str(self.args.queue_wait)]
            command += shlex.split(self.args.go_peer_args)
            if consumer == "go-sdk-pool":
                command += ["--sdk-idle-pool"]
        elif consumer == "baseline":
            command = [PYTHON, os.path.join(ROOT, "benchmarks", "baseline_consumer.py"),
                       "--request-bucket" if source_flag == "-rb" else "--request-queue",
                       source_name,
                       "--widget-bucket" if names["store"][0] == "-wb" else "--table",
                       names["store"][1]]
        else:
            command = limit_command(names, concurrency, requests)
        servers_before = self.server_cpu()
        status, stdout, stderr, cpu, rss_kb = run_measured(command, env, timeout)
        servers_after = self.server_cpu()
        with open(os.path.join(self.state, f"drain-{self.serial}-{consumer}.err"), "w") as f:
            f.write(stderr)  # each drain's log, to read after the run
        # The store's server's CPU per request: where a fenced write costs the
        # server more (a condition to parse and check), not the consumer.
        record["server_cpu_ms_per_request"] = {
            service: round((servers_after[service] - servers_before[service]) * 1000 / requests, 3)
            for service in servers_before}
        record.update(status=status, cpu_seconds=round(cpu, 3), peak_rss_mb=round(rss_kb / 1024, 1))
        seconds = None
        if consumer.startswith("ours"):
            match = re.search(r"summary: (\d+) processed.* (\d+) rejected, (\d+) retried, "
                              r"(\d+) failed.* in ([\d.]+) s", stderr)
            stale = re.search(r"summary: .* (\d+) stale", stderr)
            record["stale"] = int(stale.group(1)) if stale else 0
            if match:
                handled = int(match.group(1)) + int(match.group(2))
                seconds = float(match.group(5)) - idle_ms / 1000
                if handled < requests or int(match.group(4)) > 0:
                    status = status or 1
                    stderr += f"\nhandled {handled} of {requests}"
        elif consumer == "baseline" or consumer.startswith("go"):
            try:
                summary = json.loads(stdout.strip().splitlines()[-1])
                seconds = summary["seconds"]
                # The Go peer counts what it deleted: every request, rejects included.
                if consumer.startswith("go") and summary["requests"] < requests:
                    status = status or 1
                    stderr += f"\nhandled {summary['requests']} of {requests}"
            except (ValueError, IndexError, KeyError):
                pass
        else:
            match = re.search(r"in ([\d.]+) s", stdout)
            seconds = float(match.group(1)) if match else None
        if status != 0 or seconds is None:
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            self.failures.append(f"{combination} rtt={rtt} {consumer} c={concurrency}: "
                                 f"exit {status}: {tail}\n    command: {' '.join(command)}")
            record["ok"] = False
        else:
            record["seconds"] = round(seconds, 3)
            record["rate"] = round(requests / max(seconds, 1e-3), 1)
            record["cpu_ms_per_request"] = round(cpu * 1000 / requests, 3)
            record["ok"] = True
        if not consumer.startswith("limit"):
            ok, message = self.check(names)
            record["check"] = message.splitlines()[0] if message else ""
            if not ok:
                record["ok"] = False
                self.failures.append(f"{combination} rtt={rtt} {consumer} c={concurrency}: "
                                     f"{message}")
        self.results.append(record)
        shown = f"{record.get('rate', 0):9.1f} req/s" if "rate" in record else "   FAILED     "
        print(f"  {combination:13} rtt {rtt:>3} ms  {consumer:11} c={concurrency:<3} "
              f"n={requests:<6} {shown}  cpu {record['cpu_seconds']:7.2f} s  "
              f"rss {record['peak_rss_mb']:6.1f} MB  fill {names['fill_seconds']:.1f} s  "
              f"{record.get('check', '')}", flush=True)
        return record

    # --- memory run ----------------------------------------------------------
    def memory_run(self, requests):
        if self.args.memory_source == "s3":
            return self.memory_run_s3(requests)
        folder = os.path.join(self.state, f"memory-{os.getpid()}")
        subprocess.run(["rm", "-rf", folder], check=True)
        subprocess.run([PRODUCER, "--request-dir", f"{folder}/requests", "-mwr", str(requests),
                        "--seed", "7", "--invalid-ratio", str(self.args.invalid_ratio)],
                       check=True, stdout=subprocess.DEVNULL)
        command = [CONSUMER, "--request-dir", f"{folder}/requests", "--widget-dir",
                   f"{folder}/widgets", "--concurrency", str(self.args.memory_concurrency),
                   "--max-idle", str(MAX_IDLE_MS)]
        status, _, stderr, cpu, rss_kb = run_measured(command, self.env, self.args.timeout)
        handled = self.handled(stderr)
        # Rejected requests are moved into the source's rejected/ folder: set
        # aside, not left over.
        left = len([name for name in os.listdir(f"{folder}/requests") if name != "rejected"]
                   if os.path.isdir(f"{folder}/requests") else [])
        self.memory_result("directory->directory", requests, status, handled, left, cpu, rss_kb)
        subprocess.run(["rm", "-rf", folder], check=True)

    def memory_run_s3(self, requests):
        """S3 -> S3 on loopback: the S3 source's listing window, read-ahead and fetch pool
        are what a directory source does not have. The store is not checked object by
        object (that many GETs from boto3 take longer than the drain); the summary's
        count and an empty request bucket are."""
        names = self.fresh("s3-s3", requests, seed=7)
        command = [CONSUMER, *names["source"], *names["store"], "--concurrency",
                   str(self.args.memory_concurrency), "--max-idle", str(MAX_IDLE_MS)]
        status, _, stderr, cpu, rss_kb = run_measured(command, self.endpoints(self.urls),
                                                      self.args.timeout)
        # Rejected requests are moved under rejected/ in the same bucket: set
        # aside, not left over; the delimiter keeps them out of Contents.
        listed = self.s3.list_objects_v2(Bucket=names["source"][1], MaxKeys=1000, Delimiter="/")
        left = len(listed.get("Contents", []))
        self.memory_result("s3->s3", requests, status, self.handled(stderr), left, cpu, rss_kb,
                           seconds=self.summary_seconds(stderr))

    @staticmethod
    def handled(stderr):
        match = re.search(r"summary: (\d+) processed.* (\d+) rejected.* in ([\d.]+) s", stderr)
        return int(match.group(1)) + int(match.group(2)) if match else 0

    @staticmethod
    def summary_seconds(stderr):
        match = re.search(r"summary: .* in ([\d.]+) s", stderr)
        return float(match.group(1)) - MAX_IDLE_MS / 1000 if match else None

    def memory_result(self, what, requests, status, handled, left, cpu, rss_kb, seconds=None):
        ok = status == 0 and handled == requests and left == 0
        rate = f", {requests / seconds:.0f} requests/s" if seconds else ""
        print(f"  {what} c={self.args.memory_concurrency} n={requests}: "
              f"{'ok' if ok else 'FAILED'}, {handled} handled, {left} left, "
              f"peak RSS {rss_kb / 1024:.1f} MB, cpu {cpu:.2f} s{rate}", flush=True)
        if not ok:
            self.failures.append(f"memory run: exit {status}, {handled} of {requests} handled")
        self.memory = {"source": what, "requests": requests, "peak_rss_mb": round(rss_kb / 1024, 1),
                       "cpu_seconds": round(cpu, 2), "seconds": seconds, "ok": ok}


def summarise(bench, args):
    print("\n== results (requests/s; CPU ms per request = user+sys of the consumer process; "
          "peak RSS of the consumer process)")
    header = (f"{'combination':13} {'RTT':>4} {'baseline':>9} {'ours c=1':>9} {'ours best':>14} "
              f"{'limit':>9} {'best/base':>9} {'best/limit':>10} {'CPU ms/req ours':>15} "
              f"{'CPU ms/req base':>15} {'CPU ratio':>9} {'RSS ours':>8} {'RSS base':>8} "
              f"{'proxy/direct':>12}")
    print(header)
    rows = []
    for rtt in args.rtt_ms:
        for combination in args.combinations:
            runs = [r for r in bench.results if r["combination"] == combination
                    and r["rtt_ms"] == rtt and r.get("ok")]
            base = next((r for r in runs if r["consumer"] == "baseline"), None)
            limit = next((r for r in runs if r["consumer"] == "limit"), None)
            # The delay proxy's own ceiling: the limit client through it with
            # nothing added, against the same client straight to the servers.
            through = next((r for r in runs if r["consumer"] == "limit-proxy"), None)
            ours = [r for r in runs if r["consumer"] == "ours"]
            one = next((r for r in ours if r["concurrency"] == 1), None)
            best = max(ours, key=lambda r: r["rate"], default=None)
            row = {"combination": combination, "rtt_ms": rtt, "baseline": base, "one": one,
                   "best": best, "limit": limit, "limit_proxy": through}
            rows.append(row)

            def rate(r):
                return f"{r['rate']:.1f}" if r else "-"
            ratio = lambda a, b, k="rate": f"{a[k] / b[k]:.1f}x" if a and b and b[k] else "-"
            cpu_ratio = (f"1/{base['cpu_ms_per_request'] / best['cpu_ms_per_request']:.0f}"
                         if base and best and best["cpu_ms_per_request"] else "-")
            share = f"{100 * best['rate'] / limit['rate']:.0f}%" if best and limit else "-"
            ceiling = (f"{100 * through['rate'] / limit['rate']:.0f}%" if through and limit
                       else "-")
            print(f"{combination:13} {rtt:>4} {rate(base):>9} {rate(one):>9} "
                  f"{(rate(best) + ' (c=' + str(best['concurrency']) + ')') if best else '-':>14} "
                  f"{rate(limit):>9} {ratio(best, base):>9} "
                  f"{share:>10} "
                  f"{(best['cpu_ms_per_request'] if best else '-')!s:>15} "
                  f"{(base['cpu_ms_per_request'] if base else '-')!s:>15} {cpu_ratio:>9} "
                  f"{(str(best['peak_rss_mb']) if best else '-'):>8} "
                  f"{(str(base['peak_rss_mb']) if base else '-'):>8} "
                  f"{ceiling:>12}")
    return rows


def summarise_go_peer(bench, args):
    """Ours against the Go peer at each concurrency, with the baseline and the limit
    client of the same row."""
    if not any(r["consumer"] == "go" for r in bench.results):
        return
    print("\n== ours against the Go peer (AWS SDK for Go v2), same row and concurrency "
          "(requests/s; CPU ms per request; peak RSS MB)")
    print(f"{'combination':13} {'RTT':>4} {'c':>4} {'ours':>8} {'go':>8} {'baseline':>8} "
          f"{'limit':>8} {'ours/go':>7} {'ours/limit':>10} {'CPU ours':>8} {'CPU go':>7} "
          f"{'CPU base':>8} {'CPU ours/go':>11} {'RSS ours':>8} {'RSS go':>7} {'RSS ours/go':>11}")
    for rtt in args.rtt_ms:
        for combination in args.combinations:
            runs = [r for r in bench.results if r["combination"] == combination
                    and r["rtt_ms"] == rtt and r.get("ok")]
            base = next((r for r in runs if r["consumer"] == "baseline"), None)
            limit = next((r for r in runs if r["consumer"] == "limit"), None)
            for concurrency in args.concurrency:
                ours = next((r for r in runs if r["consumer"] == "ours"
                             and r["concurrency"] == concurrency), None)
                go = next((r for r in runs if r["consumer"] == "go"
                           and r["concurrency"] == concurrency), None)
                if not ours and not go:
                    continue
                get = lambda r, k: r[k] if r else None  # noqa: E731
                ratio = lambda a, b: f"{a / b:.2f}" if a is not None and b else "-"  # noqa: E731
                show = lambda v: "-" if v is None else str(v)  # noqa: E731
                print(f"{combination:13} {rtt:>4} {concurrency:>4} {show(get(ours, 'rate')):>8} "
                      f"{show(get(go, 'rate')):>8} {show(get(base, 'rate')):>8} "
                      f"{show(get(limit, 'rate')):>8} "
                      f"{ratio(get(ours, 'rate'), get(go, 'rate')):>7} "
                      f"{ratio(get(ours, 'rate'), get(limit, 'rate')):>10} "
                      f"{show(get(ours, 'cpu_ms_per_request')):>8} "
                      f"{show(get(go, 'cpu_ms_per_request')):>7} "
                      f"{show(get(base, 'cpu_ms_per_request')):>8} "
                      f"{ratio(get(ours, 'cpu_ms_per_request'), get(go, 'cpu_ms_per_request')):>11} "
                      f"{show(get(ours, 'peak_rss_mb')):>8} {show(get(go, 'peak_rss_mb')):>7} "
                      f"{ratio(get(ours, 'peak_rss_mb'), get(go, 'peak_rss_mb')):>11}")


def summarise_fencing(bench, args):
    """What the fence costs: ours against ours --no-fencing, paired in one run."""
    print("\n== fencing cost (requests/s with the fence / without, same row, pairs in "
          "alternating order)")
    print(f"{'combination':13} {'RTT':>4} {'c':>4} {'fenced':>9} {'unfenced':>9} {'ratio':>6} "
          f"{'pairs min..max':>15} {'CPU ms/req f/u':>15} {'store server CPU ms/req f/u':>28} "
          f"{'stale':>6}")
    for rtt in args.rtt_ms:
        for combination in args.combinations:
            for concurrency in args.concurrency:
                runs = [r for r in bench.results if r["combination"] == combination
                        and r["rtt_ms"] == rtt and r["concurrency"] == concurrency
                        and r.get("ok")]
                fenced = [r for r in runs if r["consumer"] == "ours"]
                unfenced = [r for r in runs if r["consumer"] == "ours-unfenced"]
                if not fenced or not unfenced:
                    continue
                mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
                store = combination.split("-")[1]
                server = lambda rs: sum(  # noqa: E731
                    r["server_cpu_ms_per_request"].get(store, 0.0) for r in rs) / len(rs)
                pairs = [f["rate"] / u["rate"] for f, u in zip(fenced, unfenced) if u["rate"]]
                print(f"{combination:13} {rtt:>4} {concurrency:>4} {mean(fenced, 'rate'):9.1f} "
                      f"{mean(unfenced, 'rate'):9.1f} "
                      f"{mean(fenced, 'rate') / mean(unfenced, 'rate'):6.2f} "
                      f"{min(pairs):7.2f}..{max(pairs):<6.2f} "
                      f"{mean(fenced, 'cpu_ms_per_request'):7.3f}/"
                      f"{mean(unfenced, 'cpu_ms_per_request'):<7.3f} "
                      f"{server(fenced):>18.3f}/{server(unfenced):<9.3f} "
                      f"{sum(r.get('stale', 0) for r in fenced):>6}")


def write_plot(bench, args):
    """docs/throughput.png: requests/s against concurrency, ours and the baseline."""
    data = os.path.join(bench.state, "plot")
    os.makedirs(data, exist_ok=True)
    plots = []
    colours = {"s3-s3": "#1b9e77", "s3-dynamodb": "#d95f02", "sqs-s3": "#7570b3",
               "sqs-dynamodb": "#e7298a"}
    panels = []
    for rtt in args.rtt_ms:
        lines = []
        for combination in args.combinations:
            ours = sorted((r for r in bench.results if r["combination"] == combination
                           and r["rtt_ms"] == rtt and r["consumer"] == "ours" and r.get("ok")),
                          key=lambda r: r["concurrency"])
            base = next((r for r in bench.results if r["combination"] == combination
                         and r["rtt_ms"] == rtt and r["consumer"] == "baseline" and r.get("ok")),
                        None)
            limit = next((r for r in bench.results if r["combination"] == combination
                          and r["rtt_ms"] == rtt and r["consumer"] == "limit" and r.get("ok")),
                         None)
            path = os.path.join(data, f"{combination}-{rtt}.dat")
            with open(path, "w") as f:
                for r in ours:
                    f.write(f"{r['concurrency']} {r['rate']}\n")
            colour = colours.get(combination, "black")
            if ours:
                lines.append(f"'{path}' using 1:2 with linespoints lw 2 pt 7 lc rgb '{colour}' "
                             f"title 'ours {combination}'")
            if base:
                lines.append(f"{base['rate']} with lines dt 2 lw 2 lc rgb '{colour}' "
                             f"title 'baseline {combination}'")
            if limit:
                lines.append(f"{limit['rate']} with lines dt 3 lw 1 lc rgb '{colour}' "
                             f"title 'limit {combination}'")
        panels.append((rtt, lines))
    servers = ("versitygw, ElasticMQ, dynalite" if args.servers == "fast" else "moto") + \
        " on 127.0.0.1"
    script = [
        "set terminal pngcairo noenhanced size 1400,620 font 'DejaVu Sans,11'",
        f"set output '{args.plot}'",
        f"set multiplot layout 1,{len(panels)} title 'widget_consumer drain: requests/s against "
        f"concurrency ({servers}; baseline = boto3, one thread; dotted = limit client)'",
        "set logscale x 2", "set logscale y 10", "set grid", "set key outside bottom center "
        "horizontal maxrows 4 font ',9'", "set xlabel 'ours: --concurrency (baseline: 1 thread)'",
        "set ylabel 'requests/s (log scale)'", "set xrange [0.8:90]",
    ]
    for rtt, lines in panels:
        script.append(f"set title 'RTT {rtt} ms" + (" (loopback)" if rtt == 0 else
                                                     " (delay proxy)") + "'")
        script.append("plot " + ", \\\n  ".join(lines) if lines else "plot 0 notitle")
    script.append("unset multiplot")
    gp = os.path.join(data, "throughput.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", gp], check=True)
    print(f"\nplot: {args.plot}")


def main():
    parser = argparse.ArgumentParser(prog="benchmarks/drain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", choices=("fast", "moto"), default="fast",
                        help="fast: versitygw, ElasticMQ and dynalite (benchmarks/servers, "
                             "installed by benchmarks/setup); moto: one moto for all three")
    parser.add_argument("--requests", type=int, default=5000, help="requests per drain (5000)")
    parser.add_argument("--slow-requests", type=int, default=0,
                        help="requests for the baseline and ours at concurrency 1 (they are slow; "
                             "their rate is steady); 0 = N on loopback, min(N, 400) with RTT")
    parser.add_argument("--combinations", default=",".join(COMBINATIONS),
                        help="comma-separated, of " + ", ".join(COMBINATIONS + POSTGRESQL_COMBINATIONS)
                        + " (PostgreSQL: ours only, a cluster of scripts/postgresql)")
    parser.add_argument("--rtt-ms", default="0,20",
                        help="comma-separated added round-trip times in ms (0,20)")
    parser.add_argument("--concurrency", default="1,8,32,64",
                        help="our consumer's --concurrency values (1,8,32,64)")
    parser.add_argument("--limit-threads", type=int, default=64, help="limit_client threads")
    parser.add_argument("--limit-threads-sqs", type=int, default=8,
                        help="limit_client threads on the SQS combinations (8): ElasticMQ "
                             "serves one queue's calls in turn, so more receives only wait "
                             "longer (at 64 past its 20 s request timeout: HTTP 503)")
    parser.add_argument("--warm-up", type=int, default=3000,
                        help="requests the limit client drains, unmeasured, before the first "
                             "SQS drain on ElasticMQ (3000; 0 = none)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-limit", action="store_true")
    parser.add_argument("--no-go-peer", action="store_true",
                        help="leave out the Go peer (benchmarks/peers/go)")
    parser.add_argument("--go-peer-args", default="",
                        help="more arguments for the Go peer, e.g. --sdk-idle-pool")
    parser.add_argument("--go-peer-sdk-pool", action="store_true",
                        help="also drain each row with the Go peer on the SDK's idle pool "
                             "(go-sdk-pool: 10 idle connections per host)")
    parser.add_argument("--no-proxy-ceiling", action="store_true",
                        help="skip the limit client through the delay proxy at 0 ms added (run "
                             "on the RTT 0 rows when an RTT above 0 is asked for)")
    parser.add_argument("--proxy-threads", type=int, default=1,
                        help="the delay proxy's event loops (1)")
    parser.add_argument("--invalid-ratio", type=float, default=0.02)
    parser.add_argument("--queue-wait", type=int, default=1,
                        help="our consumer's -qwt on SQS: a short long poll, so an empty queue "
                             "costs one call a second and --max-idle still ends the drain")
    parser.add_argument("--memory-requests", type=int, default=0,
                        help="also drain this many requests for peak RSS (--memory-source)")
    parser.add_argument("--memory-concurrency", type=int, default=32)
    parser.add_argument("--memory-source", choices=("directory", "s3"), default="directory",
                        help="the memory run's source and store: directory->directory, or "
                             "S3->S3 on the servers at loopback")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory run (with --memory-requests)")
    parser.add_argument("--queue-receivers", type=int,
                        help="our consumer's --queue-receivers on SQS sources (its default)")
    parser.add_argument("--single-consumer", action="store_true",
                        help="our consumer without claims on S3 sources (--single-consumer): "
                             "what the claims cost, against a default run")
    parser.add_argument("--fencing-cost", type=int, default=0, metavar="PAIRS",
                        help="drain each row PAIRS times with the fence and without "
                             "(--no-fencing), in alternating order, and print the rate ratio")
    parser.add_argument("--perf", metavar="DIR",
                        help="run ours under `perf record -g`, one DIR/<combination>-rtt<R>-c<C>.data "
                             "per drain (profiles only: CPU and RSS then include perf's)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per drain")
    parser.add_argument("--plot", help="write a PNG plot here (gnuplot)")
    parser.add_argument("--json", help="write every run's record here")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny: 60 requests, S3->S3 and SQS->DynamoDB, concurrency 8, "
                             "loopback only, moto (scripts/test); the Go peer too when built")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.combinations, args.rtt_ms = 60, "s3-s3,sqs-dynamodb", "0"
        args.concurrency, args.limit_threads, args.timeout = "8", 8, 120
        args.servers = "moto"
    args.combinations = [c for c in args.combinations.split(",") if c]
    for c in args.combinations:
        if c not in COMBINATIONS + POSTGRESQL_COMBINATIONS:
            parser.error(f"unknown combination {c!r}")
        if c in POSTGRESQL_COMBINATIONS and not (args.no_baseline and args.no_limit):
            parser.error(f"{c}: the baseline and the limit client have no PostgreSQL store; "
                         "add --no-baseline --no-limit")
    args.rtt_ms = [int(float(x)) for x in args.rtt_ms.split(",") if x != ""]
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x]
    def slow(rtt):
        """Requests for the baseline and ours at concurrency 1 (slow, steady rates)."""
        if args.slow_requests:
            return min(args.slow_requests, args.requests)
        return min(args.requests, 400) if rtt > 0 else args.requests

    go_peer = not args.no_go_peer and not args.memory_only and not args.fencing_cost
    if go_peer and not os.access(GO_PEER, os.X_OK):
        print(f"drain: the Go peer is left out: {GO_PEER} is not built (benchmarks/setup go-peer "
              "builds it when go is installed)", flush=True)
        go_peer = False
    go_peer = go_peer and not any(c in POSTGRESQL_COMBINATIONS for c in args.combinations)

    stop_on_signals()
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.start_servers()
        servers = (f"moto at {bench.urls['s3']}" if args.servers == "moto" else
                   f"versitygw at {bench.urls['s3']}, ElasticMQ at {bench.urls['sqs']}, "
                   f"dynalite at {bench.urls['dynamodb']}")
        print(f"drain: {servers}; {args.requests} requests per drain "
              f"({args.invalid_ratio:.0%} invalid), combinations {','.join(args.combinations)}, "
              f"RTT {args.rtt_ms} ms, ours at concurrency {args.concurrency}\n", flush=True)
        sqs = [c for c in args.combinations if c.startswith("sqs")]
        if sqs and args.servers == "fast" and not args.memory_only and args.warm_up:
            bench.warm_up(sqs[0], args.warm_up)
        for rtt in [] if args.memory_only else args.rtt_ms:
            if rtt > 0:
                bench.start_proxy(rtt)
                print(f"drain: RTT {rtt} ms through benchmarks/delay_proxy.cpp at "
                      f"{', '.join(bench.proxy_urls.values())} (fill and check go to the "
                      f"servers directly)", flush=True)
            ceiling = (rtt == 0 and any(r > 0 for r in args.rtt_ms) and not args.no_limit
                       and not args.no_proxy_ceiling)
            if ceiling:
                bench.start_proxy(0)
            for combination in args.combinations:
                if not args.no_baseline:
                    bench.drain(combination, rtt, "baseline", 1, slow(rtt))
                for concurrency in args.concurrency:
                    n = slow(rtt) if concurrency == 1 else args.requests
                    if args.fencing_cost:
                        # Pairs in alternating order, so drift on a shared
                        # machine falls on both sides alike.
                        for i in range(args.fencing_cost):
                            pair = ("ours-unfenced", "ours") if i % 2 == 0 else ("ours",
                                                                                 "ours-unfenced")
                            for consumer in pair:
                                bench.drain(combination, rtt, consumer, concurrency, n)
                    else:
                        bench.drain(combination, rtt, "ours", concurrency, n)
                    if go_peer:
                        bench.drain(combination, rtt, "go", concurrency, n)
                    if go_peer and args.go_peer_sdk_pool:
                        bench.drain(combination, rtt, "go-sdk-pool", concurrency, n)
                threads = (args.limit_threads_sqs if combination.startswith("sqs")
                           else args.limit_threads)
                if not args.no_limit:
                    bench.drain(combination, rtt, "limit", threads, args.requests)
                if ceiling:
                    bench.drain(combination, rtt, "limit-proxy", threads, args.requests,
                                proxied=True)
            bench.stop_proxy()
        if args.memory_requests:
            bench.memory_run(args.memory_requests)
        summarise(bench, args)
        summarise_go_peer(bench, args)
        if args.fencing_cost:
            summarise_fencing(bench, args)
        if args.plot:
            write_plot(bench, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"results": bench.results, "memory": getattr(bench, "memory", None),
                           "args": {k: v for k, v in vars(args).items()}}, f, indent=1)
    except (Failed, subprocess.CalledProcessError, OSError) as e:
        bench.failures.append(f"{type(e).__name__}: {e}")
    finally:
        bench.stop_proxy()
        bench.stop_servers()
    print(f"\ndrain: {time.monotonic() - started:.0f} s")
    if bench.failures:
        print("drain: FAILED:")
        for failure in bench.failures:
            print(f"  {failure}")
        return 1
    print("drain: every checked store matches the expected state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
