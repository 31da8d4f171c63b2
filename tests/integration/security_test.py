"""Security (RELIABILITY.md, "security"), through the built widget_consumer:

- TLS verification cannot be turned off: the HTTP layer sets peer and host
  verification on and has no option to unset them, the program has no such
  flag, and an https endpoint with a self-signed certificate fails with a
  clear certificate error before a single HTTP request reaches it;
- credentials never reach an output: a distinctive secret key and session
  token are in the environment of a --verbose run with --log-dir, once
  against the server that accepts any signature and once against the one that
  refuses ours (wrong secret); neither string is in stdout, stderr or any log
  file;
- nor do the secrets of the other credential sources: a credential_process
  whose output holds the secret (accepted, and malformed), a web identity
  token, an SSO access token and the keys the SSO portal hands out, each in
  a --verbose run with --log-dir;
- awkward S3 keys round-trip exactly through the S3 source and store: request
  keys and widget ids with "..", spaces, UTF-8 and "%2F".
"""

import glob
import hashlib
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs as p  # noqa: E402

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETzzQ9"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/SESSIONTOKENzzQ9+abc=="


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Counts the requests that got through TLS; answers each with a 500."""
    requests = 0

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_GET

    def log_message(self, *args):
        pass


class TlsServer:
    """A loopback https server with a throwaway self-signed certificate for
    127.0.0.1, in a thread of this process, shut down on exit."""

    def __init__(self, folder):
        self.cert = os.path.join(folder, "cert.pem")
        key = os.path.join(folder, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True,
                       timeout=60)
        CountingHandler.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class TlsVerification(unittest.TestCase):
    def test_the_http_layer_has_no_way_to_turn_verification_off(self):
        headers = glob.glob(os.path.join(p.ROOT, "include", "**", "*.hpp"), recursive=True)
        programs = glob.glob(os.path.join(p.ROOT, "examples", "**", "*.[hc]pp"), recursive=True)
        settings = []
        for path in headers + programs:
            text = p.read_text(path)
            settings += re.findall(r"CURLOPT_SSL_VERIFY\w+\s*,\s*[^)]*", text)
            for word in ("CURLOPT_SSL_OPTIONS", "CURLSSLOPT_", "CURLOPT_PROXY_SSL_VERIFY",
                         "insecure", "no_verify", "verify_peer", "verify_tls", "skip_verify"):
                self.assertNotIn(word, text, f"{path} mentions {word}")
        self.assertEqual(sorted(settings), ["CURLOPT_SSL_VERIFYHOST, 2L",
                                            "CURLOPT_SSL_VERIFYPEER, 1L"])
        usage = subprocess.run([p.program("widget_consumer"), "--help"], capture_output=True,
                               text=True, timeout=30).stdout
        self.assertIn("--ca-bundle", usage)
        for word in ("insecure", "no-verify", "verify-ssl", "no-ssl"):
            self.assertNotIn(word, usage)

    def test_a_self_signed_endpoint_fails_with_a_certificate_error(self):
        folder = tempfile.mkdtemp(prefix="wc-tls-")
        with TlsServer(folder) as server:
            arguments = ["--endpoint-url", server.url, "-rq", "requests", "-dwt", "widgets",
                         "--dead-letter-queue", "rejected"]
            with p.consumer(arguments, p.aws_environment(server.url), "tls") as run:
                code = run.wait(60)
                output = run.stderr() + run.stdout()
            self.assertEqual(code, 1, output)
            self.assertRegex(output, r"(?i)certificate")
            self.assertIn(server.url, output)  # names where, not what was sent
            self.assertEqual(CountingHandler.requests, 0, "a request went through unverified")

            # The same server trusted through --ca-bundle: the handshake passes
            # and the request reaches it, so the refusal above was the
            # certificate check and nothing else.
            with p.consumer(arguments + ["--ca-bundle", server.cert, "--max-attempts", "1"],
                            p.aws_environment(server.url), "tls-trusted") as run:
                code = run.wait(60)
                output = run.stderr() + run.stdout()
            self.assertEqual(code, 1, output)
            self.assertNotRegex(output, r"(?i)certificate")
            self.assertGreaterEqual(CountingHandler.requests, 1, output)


class Redaction(unittest.TestCase):
    def outputs(self, run, logs, log_file):
        texts = {"stdout": run.stdout(), "stderr": run.stderr()}
        for path in glob.glob(os.path.join(logs, "**", "*"), recursive=True):
            if os.path.isfile(path):
                texts[path] = p.read_text(path)
        if log_file:
            self.assertTrue(any(n not in ("stdout", "stderr") for n in texts), "no log file")
        return texts

    def assert_no_secret(self, texts):
        for name, text in texts.items():
            for secret in (SECRET, TOKEN, SECRET[:20], TOKEN[:20]):
                self.assertNotIn(secret, text, f"{name} holds a credential")

    def run_consumer(self, arguments, env, log_file=True):
        logs = tempfile.mkdtemp(prefix="wc-redaction-")
        for log_format in ("text", "json"):
            with p.consumer(arguments + ["--verbose", "--log-dir", logs, "--log-format",
                                         log_format], env, "redaction") as run:
                code = run.wait(120)
                texts = self.outputs(run, logs, log_file)
            self.assert_no_secret(texts)
        return code, texts

    def test_an_accepted_run_logs_no_secret_nor_token(self):
        env = p.aws_environment(secret=SECRET, AWS_SESSION_TOKEN=TOKEN)
        s3 = p.client("s3")
        requests, widgets = p.unique("redact-req"), p.unique("redact-widgets")
        s3.create_bucket(Bucket=requests)
        s3.create_bucket(Bucket=widgets)
        p.produce(env, "-rb", requests, "-mwr", "30", "--seed", "3", "--invalid-ratio", "0.2")
        code, texts = self.run_consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000"],
                                        env)
        self.assertEqual(code, 0, texts["stderr"])
        self.assertIn("rejected", texts["stderr"])  # it did log requests and their reasons

    def test_a_refused_signature_logs_no_secret_nor_token(self):
        url, key, _ = p.iam_server()
        refused = r"SignatureDoesNotMatch|InvalidToken|InvalidClientTokenId|security token"
        # With a session token moto refuses the token (InvalidToken); without
        # one it checks the signature, and S3's SignatureDoesNotMatch error
        # carries the canonical request and the string to sign.
        for token in ({"AWS_SESSION_TOKEN": TOKEN}, {}):
            env = p.aws_environment(url, key, SECRET, AWS_MAX_ATTEMPTS="1", **token)
            # SQS fails at start (GetQueueUrl), before any log file is opened.
            code, texts = self.run_consumer(["-rq", "requests", "-dwt", "widgets"], env, False)
            self.assertEqual(code, 1, texts["stderr"])
            self.assertRegex(texts["stderr"], refused)
            # The S3 source fails its start-up check (a listing), before the
            # first log line.
            code, texts = self.run_consumer(["-rb", "requests", "-wb", "widgets", "--max-idle",
                                             "1000", "--max-runtime", "4000"], env, False)
            self.assertEqual(code, 1, texts["stderr"])
            self.assertRegex(texts["stderr"], refused)
            if not token:
                self.assertIn("SignatureDoesNotMatch", texts["stderr"])


class PortalHandler(http.server.BaseHTTPRequestHandler):
    """An SSO portal stub: GetRoleCredentials answers SECRET and TOKEN to the
    bearer of SSO_TOKEN."""
    answered = 0

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).answered += 1
        if self.headers.get("x-amz-sso_bearer_token") != SSO_TOKEN:
            body, status = b"{}", 401
        else:
            body, status = json.dumps({"roleCredentials": {
                "accessKeyId": "ASIASSOPORTAL", "secretAccessKey": SECRET,
                "sessionToken": TOKEN, "expiration": 4102444800000}}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


SSO_TOKEN = "aoaAAAAAGSSOACCESSTOKENzzQ9secretbearer"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.WEBIDENTITYTOKENzzQ9.signature"


class CredentialSourceRedaction(unittest.TestCase):
    """Every credential source's secrets stay out of stdout, stderr and logs."""

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="wc-credential-sources-")
        self.config = os.path.join(self.home, "config")
        s3 = p.client("s3")
        self.requests, self.widgets = p.unique("cred-req"), p.unique("cred-widgets")
        s3.create_bucket(Bucket=self.requests)
        s3.create_bucket(Bucket=self.widgets)

    def environment(self, config, **extra):
        env = p.aws_environment(HOME=self.home, AWS_CONFIG_FILE=self.config,
                                AWS_ENDPOINT_URL_STS=p.moto_url(), **extra)
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        with open(self.config, "w") as f:
            f.write(config)
        return env

    def run_and_check(self, env, secrets, profile=None):
        logs = tempfile.mkdtemp(prefix="wc-credential-logs-")
        arguments = ["-rb", self.requests, "-wb", self.widgets, "--max-idle", "500", "--verbose",
                     "--log-dir", logs] + (["-p", profile] if profile else [])
        with p.consumer(arguments, env, "credential-sources") as run:
            code = run.wait(120)
            texts = {"stdout": run.stdout(), "stderr": run.stderr()}
        for path in glob.glob(os.path.join(logs, "**", "*"), recursive=True):
            if os.path.isfile(path):
                texts[path] = p.read_text(path)
        for name, text in texts.items():
            for secret in secrets:
                self.assertNotIn(secret, text, f"{name} holds a credential")
        return code, texts

    def process_config(self, output):
        script = os.path.join(self.home, "helper.py")
        with open(script, "w") as f:
            f.write(f"print({output!r})\n")
        return f"[default]\ncredential_process = {sys.executable} {script}\n"

    def test_credential_process_output_is_never_shown(self):
        document = json.dumps({"Version": 1, "AccessKeyId": "AKIDPROCESS",
                               "SecretAccessKey": SECRET, "SessionToken": TOKEN})
        code, texts = self.run_and_check(self.environment(self.process_config(document)),
                                         [SECRET, TOKEN, SECRET[:20], TOKEN[:20]])
        self.assertEqual(code, 0, texts["stderr"])
        code, texts = self.run_and_check(self.environment(self.process_config(document[:60])),
                                         [SECRET[:20], TOKEN[:20]])
        self.assertEqual(code, 1, texts["stderr"])
        self.assertIn("credential_process of profile 'default'", texts["stderr"])

    def test_web_identity_token_is_never_shown(self):
        token_file = os.path.join(self.home, "web-token")
        with open(token_file, "w") as f:
            f.write(WEB_TOKEN)
        env = self.environment("", AWS_WEB_IDENTITY_TOKEN_FILE=token_file,
                               AWS_ROLE_ARN="arn:aws:iam::123456789012:role/pod")
        code, texts = self.run_and_check(env, [WEB_TOKEN, WEB_TOKEN[:24]])
        self.assertEqual(code, 0, texts["stderr"])

    def test_sso_token_and_portal_keys_are_never_shown(self):
        portal = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PortalHandler)
        thread = threading.Thread(target=portal.serve_forever, daemon=True)
        thread.start()
        try:
            cache = os.path.join(self.home, ".aws", "sso", "cache")
            os.makedirs(cache)
            name = hashlib.sha1(b"corp").hexdigest() + ".json"
            with open(os.path.join(cache, name), "w") as f:
                json.dump({"accessToken": SSO_TOKEN, "expiresAt": "2099-01-01T00:00:00Z"}, f)
            env = self.environment(
                "[profile dev]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = R\n"
                "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
                "sso_region = us-east-1\n",
                AWS_ENDPOINT_URL_SSO=f"http://127.0.0.1:{portal.server_address[1]}")
            code, texts = self.run_and_check(env, [SSO_TOKEN, SSO_TOKEN[:20], SECRET, TOKEN,
                                                   SECRET[:20], TOKEN[:20]], "dev")
            self.assertEqual(code, 0, texts["stderr"])
            self.assertGreater(PortalHandler.answered, 0, "the portal was never asked")
        finally:
            portal.shutdown()
            portal.server_close()
            thread.join(10)


class AwkwardKeys(unittest.TestCase):
    def test_keys_and_widget_ids_round_trip_exactly_through_the_s3_source_and_store(self):
        env = p.aws_environment()
        s3 = p.client("s3")
        requests, widgets = p.unique("keys-req"), p.unique("keys-widgets")
        s3.create_bucket(Bucket=requests)
        s3.create_bucket(Bucket=widgets)
        ids = ["a%2Fb", "a b", "ünï/cødé €", "日本語", "x+y=z&q?", "...", "../x"]
        bodies = {}
        for n, widget in enumerate(ids):
            # The request's key is awkward too: the source lists, fetches and
            # deletes it by its exact name.
            key = f"{n:02d} {widget.replace('/', '%2F')} ../x"
            bodies[key] = json.dumps({"type": "create", "requestId": f"r{n}", "widgetId": widget,
                                      "owner": "Key Keeper", "label": widget})
        bodies["91 %2F"] = json.dumps({"type": "update", "requestId": "u", "widgetId": "a%2Fb",
                                       "owner": "Key Keeper", "description": "updated"})
        for key, body in bodies.items():
            s3.put_object(Bucket=requests, Key=key, Body=body.encode())

        with p.consumer(["-rb", requests, "-wb", widgets, "--max-idle", "1000"], env,
                        "keys") as run:
            self.assertEqual(run.wait(120), 0, run.stderr())
            output = run.stderr()

        stored = {k: json.loads(s3.get_object(Bucket=widgets, Key=k)["Body"].read())
                  for k in p.all_keys(s3, widgets)}
        self.assertEqual(sorted(stored), sorted(f"widgets/key-keeper/{w}" for w in ids), output)
        for widget in ids:
            self.assertEqual(stored[f"widgets/key-keeper/{widget}"]["label"], widget)
        self.assertEqual(stored["widgets/key-keeper/a%2Fb"]["description"], "updated")
        # Every request was applied, none set aside.
        self.assertEqual(p.all_keys(s3, requests), [], output)

if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
