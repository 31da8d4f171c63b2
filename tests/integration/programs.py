"""What the Python integration tests that run the built programs share: where
the local AWS servers and the programs are, boto3 clients, unique resource
names, and a process wrapper that always stops what it started, by PID.

Not a test itself (the name does not end in _test.py). CTest gives each test
WIDGET_CONSUMER_EMULATOR_STATE (moto.url, moto-iam.url, moto-iam.credentials,
s3rver.url, elasticmq.url) and WIDGET_CONSUMER_PROGRAMS (the folder holding widget_consumer and
widget_producer, see tests/CMakeLists.txt).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "us-east-1"


def _state(name):
    state = os.environ.get("WIDGET_CONSUMER_EMULATOR_STATE")
    if not state:
        sys.exit("WIDGET_CONSUMER_EMULATOR_STATE is not set: run this test through ctest")
    with open(os.path.join(state, name)) as f:
        return f.read()


def moto_url():
    return _state("moto.url").strip()


def s3rver_url():
    """s3rver: S3 only, key S3RVER / S3RVER."""
    return _state("s3rver.url").strip()


def elasticmq_url():
    """ElasticMQ: SQS only, any key accepted, no signature checked."""
    return _state("elasticmq.url").strip()


def sqs_url(server):
    """The SQS endpoint of a server an SQS test runs on: "moto" or
    "elasticmq". Pass it to client("sqs", ...) and, as
    AWS_ENDPOINT_URL_SQS, to aws_environment(): the programs' other services
    stay on moto."""
    return {"moto": moto_url, "elasticmq": elasticmq_url}[server]()


def iam_server():
    """(url, key id, secret) of the instance that verifies every signature."""
    keys = dict(line.split("=", 1) for line in _state("moto-iam.credentials").split())
    return _state("moto-iam.url").strip(), keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"]


def program(name):
    folder = os.environ.get("WIDGET_CONSUMER_PROGRAMS", "")
    path = os.path.join(folder, name)
    if not folder or not os.access(path, os.X_OK):
        sys.exit(f"{name} not found in WIDGET_CONSUMER_PROGRAMS={folder!r}: build the targets "
                 "widget_consumer_program and widget_producer first")
    return path


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def aws_environment(url=None, key="testing", secret="testing", **extra):
    """The environment of a program: only the AWS settings we choose, so the
    caller's profile, session token or endpoint cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=url or moto_url(), AWS_ACCESS_KEY_ID=key,
               AWS_SECRET_ACCESS_KEY=secret, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_CONFIG_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    env.update(extra)
    return env


def client(service, url=None, key="testing", secret="testing"):
    return boto3.client(service, endpoint_url=url or moto_url(), region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def make_table(dynamodb, name):
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    return name


def queue_counts(sqs, url):
    """(visible, in flight, delayed) messages of a queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return tuple(int(found[n]) for n in names)


def fifo_redelivers_in_order(sqs):
    """Whether the server redelivers a FIFO group's timed-out messages first
    one first, as AWS does. moto 5.2 frees them one at a time while it walks
    the queue and so hands out the group's LAST message first, which
    reorders a widget's requests after any crash (scripts/moto_server.py can
    fix that). Takes about 1.5 s."""
    url = sqs.create_queue(QueueName=unique("order-probe") + ".fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    try:
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": "g",
             "MessageDeduplicationId": f"d{i}"} for i in range(3)])
        taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)
        if len(taken.get("Messages", [])) != 3:
            return False
        time.sleep(1.5)
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        return [m["Body"] for m in again.get("Messages", [])][:1] == ["m0"]
    finally:
        sqs.delete_queue(QueueUrl=url)


def all_keys(s3, bucket):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return keys


def delete_claims(s3, bucket):
    """Everything under claims/, deleted as `aws s3 rm --recursive` does;
    returns how many."""
    keys = [k for k in all_keys(s3, bucket) if k.startswith("claims/")]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    return len(keys)


def check_store(expected_path, kind, name, env):
    """scripts/check_store.py: (ok, its output)."""
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check_store.py"),
                          expected_path, kind, name], env=env, capture_output=True, text=True,
                         timeout=300)
    return run.returncode == 0, run.stdout + run.stderr


def produce(env, *arguments, timeout=600):
    """Runs widget_producer; returns its counts line parsed, e.g.
    {"create": 10, "update": 3, "delete": 1, "invalid": 0}."""
    run = subprocess.run([program("widget_producer"), *arguments], env=env, capture_output=True,
                         text=True, timeout=timeout)
    if run.returncode != 0:
        raise AssertionError(f"widget_producer failed ({run.returncode}): {run.stderr}")
    counts = {}
    inside = run.stdout.split("(", 1)[1].split(")", 1)[0]
    for part in inside.split(","):
        number, kind = part.split()
        counts[kind] = int(number)
    return counts


class Process:
    """A program we started: output to files in a temporary folder, stopped
    by its PID (SIGKILL) on the way out of the with-block, however it ends."""

    def __init__(self, arguments, env, name="process"):
        self.folder = tempfile.mkdtemp(prefix=f"wc-{name}-")
        self.stdout_path = os.path.join(self.folder, "stdout")
        self.stderr_path = os.path.join(self.folder, "stderr")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(arguments, env=env, stdout=out, stderr=err,
                                          stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    def running(self):
        return self.popen.poll() is None

    def kill(self):
        """SIGKILL by PID if still running; returns True if it was."""
        if self.popen.poll() is not None:
            return False
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        return True

    def wait(self, timeout):
        """The exit code; on timeout the process is killed and AssertionError raised."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.popen.args[0]} still running after {timeout} s; "
                                 f"stderr: {self.stderr()[-2000:]}")

    def stdout(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()


def consumer(arguments, env, name="consumer"):
    return Process([program("widget_consumer"), *arguments], env, name)


def summary_line(text):
    """The consumer's summary line, or ''."""
    lines = [line for line in text.splitlines() if "summary:" in line]
    return lines[-1] if lines else ""


def processed_count(text):
    """N of 'summary: N processed' (0 when there is no summary)."""
    line = summary_line(text)
    return int(line.split("summary:", 1)[1].split()[0]) if line else 0


def read_text(path):
    with open(path, errors="replace") as f:
        return f.read()


def dump_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f)


class FaultProxy:
    """tests/support/fault_proxy.py between a program and `upstream`, for the
    length of a with-block: started with this venv's python, bounded wait for
    its port, stopped by its PID (SIGTERM, then SIGKILL). --parent-pid ends
    it with this process if the test dies first. `arguments` are the proxy's
    own (--message-fault, --fault, --delay-ms, --seed)."""

    def __init__(self, upstream, *arguments):
        self.folder = tempfile.mkdtemp(prefix="wc-proxy-")
        port_file = os.path.join(self.folder, "port")
        self.stats_path = os.path.join(self.folder, "stats.json")
        script = os.path.join(ROOT, "tests", "support", "fault_proxy.py")
        self.log = open(os.path.join(self.folder, "log"), "wb")
        self.popen = subprocess.Popen(
            [sys.executable, script, "--upstream", upstream, "--port-file", port_file,
             "--stats-file", self.stats_path, "--stats-interval-ms", "200",
             "--parent-pid", str(os.getpid()), *arguments],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"fault_proxy did not start: {read_text(self.log.name)}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{read_text(port_file).strip()}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stats(self):
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.log.close()
