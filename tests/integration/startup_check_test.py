"""Start-up checks and usage errors of the built programs (README, "Exit
status"):

- what retrying cannot fix is found before the first poll and ends the
  program within 2 s with exit code 1 and one message that names the
  resource, the region, the endpoint, where the credentials came from, and
  what to check: a missing request bucket, queue or widget table, a table
  keyed by something other than id (S), a wrong secret (on the server that
  verifies signatures) and no credentials at all;
- a bad command line gets one line naming the problem, then where help is,
  and exit code 2, in every program; --help alone exits 0.
"""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

PROGRAMS = ["widget_consumer", "widget_producer", "s3_to_s3", "s3_to_dynamodb", "sqs_to_s3",
            "sqs_to_dynamodb"]
# Built only with libpq (examples/CMakeLists.txt).
if os.access(os.path.join(os.environ.get("WIDGET_CONSUMER_PROGRAMS", ""), "s3_to_postgresql"),
             os.X_OK):
    PROGRAMS.append("s3_to_postgresql")
# Time allowed from start to exit, as the README promises.
LIMIT_SECONDS = 2.0


def run(program, arguments, env, timeout=30):
    start = time.monotonic()
    done = subprocess.run([p.program(program), *arguments], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done, time.monotonic() - start


class StartupChecks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = p.client("s3")
        cls.dynamodb = p.client("dynamodb")
        cls.sqs = p.client("sqs")
        cls.requests = p.unique("requests")
        cls.widgets = p.unique("widgets")
        cls.table = p.make_table(cls.dynamodb, p.unique("widgets"))
        for bucket in (cls.requests, cls.widgets):
            cls.s3.create_bucket(Bucket=bucket)
        cls.queue = p.unique("requests")
        cls.sqs.create_queue(QueueName=cls.queue)
        cls.dead_letters = p.unique("rejected")
        cls.sqs.create_queue(QueueName=cls.dead_letters)

    def assert_fails_fast(self, arguments, env, *expected, program="widget_consumer"):
        # -mrt well past the limit: only the start-up check can end it in time.
        done, elapsed = run(program, [*arguments, "-mrt", "20000"], env)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 1, output)
        self.assertLess(elapsed, LIMIT_SECONDS, output)
        for text in expected:
            self.assertIn(text, output)
        # One message (a line), not one per failed poll.
        self.assertEqual(len(output.strip().splitlines()), 1, output)
        return output

    def test_missing_request_bucket(self):
        missing = p.unique("no-such-bucket")
        output = self.assert_fails_fast(["-rb", missing, "-wb", self.widgets], p.aws_environment(),
                                        f"s3://{missing}", "NoSuchBucket", "region us-east-1",
                                        p.moto_url(), "credentials from environment",
                                        "Check that the bucket exists")
        self.assertNotIn("testing (secret", output)

    def test_missing_widget_bucket(self):
        missing = p.unique("no-such-bucket")
        self.assert_fails_fast(["-rb", self.requests, "-wb", missing], p.aws_environment(),
                               f"s3://{missing}", "NoSuchBucket", "Check that the bucket exists",
                               program="s3_to_s3")

    def test_missing_queue(self):
        missing = p.unique("no-such-queue")
        self.assert_fails_fast(["-rq", missing, "-wb", self.widgets, "--dead-letter-queue",
                                self.dead_letters], p.aws_environment(), missing,
                               "QueueDoesNotExist", "region us-east-1", p.moto_url(),
                               "Check that the queue")

    def test_missing_table(self):
        missing = p.unique("no-such-table")
        self.assert_fails_fast(["-rb", self.requests, "-dwt", missing], p.aws_environment(),
                               f"DynamoDB table {missing}", "ResourceNotFoundException",
                               "region us-east-1", p.moto_url(), "Check that the table exists")

    def test_table_with_the_wrong_key(self):
        table = p.unique("keyed-by-name")
        self.dynamodb.create_table(
            TableName=table, KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
        self.assert_fails_fast(["-rb", self.requests, "-dwt", table], p.aws_environment(),
                               f"DynamoDB table {table}", "keyed by name (S)",
                               "partition key is id, of type S", program="s3_to_dynamodb")

    def test_wrong_secret_on_the_signature_checking_server(self):
        url, key, secret = p.iam_server()
        wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
        env = p.aws_environment(url, key, wrong)
        output = self.assert_fails_fast(["-rb", self.requests, "-wb", self.widgets], env,
                                        "SignatureDoesNotMatch", url, f"key id {key}",
                                        "secret belong together")
        self.assertNotIn(wrong, output)
        self.assertNotIn(secret, output)

    def test_no_credentials_at_all(self):
        env = p.aws_environment()
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        # As on a laptop: no instance metadata service answers (a real
        # attempt, bounded by its own 1 s timeout, is made).
        del env["AWS_EC2_METADATA_DISABLED"]
        self.assert_fails_fast(["-rq", self.queue, "-dwt", self.table, "--dead-letter-queue",
                                self.dead_letters], env, "no AWS credentials", "environment:",
                               "AWS_ACCESS_KEY_ID", program="sqs_to_dynamodb")


class UsageErrors(unittest.TestCase):
    def test_every_program_gives_one_line_and_exit_code_2(self):
        for program in PROGRAMS:
            with self.subTest(program=program):
                done, _ = run(program, ["--no-such-flag"], p.aws_environment())
                self.assertEqual(done.returncode, 2, done.stderr)
                lines = done.stderr.splitlines()
                self.assertEqual(len(lines), 2, done.stderr)
                self.assertIn("no-such-flag", lines[0])
                self.assertEqual(lines[1], f"Try '{program} --help' for more information.")
                self.assertEqual(done.stdout, "")

    def test_a_wrong_combination_names_it(self):
        done, _ = run("widget_consumer", ["-rb", "a", "-rq", "b", "-wb", "c"], p.aws_environment())
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stderr.splitlines()[0],
                         "widget_consumer: more than one request source: give only one of -rb, "
                         "-rq, --request-dir")

    def test_help_alone_exits_0_and_lists_the_exit_codes(self):
        for program in PROGRAMS:
            with self.subTest(program=program):
                done, _ = run(program, ["--help"], p.aws_environment())
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertIn("usage:", done.stdout)
                self.assertIn("Exit status", done.stdout)
                self.assertNotIn("moto", done.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
