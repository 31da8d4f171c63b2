#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for tests and benchmarks.

It sits between an AWS client and the local AWS server (moto) on loopback:

    fault_proxy.py --upstream http://127.0.0.1:PORT --listen-port 0 --port-file FILE
                   [--seed N] [--delay-ms D] [--slow-ms S] [--fault KIND=RATE ...]
                   [--stats-file FILE] [--stats-interval-ms MS]

Each request independently draws at most one fault from a seeded RNG, each
kind at its own rate:

  throttle     answered here, never forwarded: the service's retryable
               throttling error (S3 503 SlowDown, DynamoDB 400
               ProvisionedThroughputExceededException, SQS 500 InternalError)
  after        forwarded and applied, then the client gets a 500 InternalError
               instead of the answer: shows whether retries are idempotent
  reset        the connection is reset (RST) before the request is forwarded
  reset-after  forwarded and applied, then the connection is reset
  slow         forwarded and applied; the answer is held --slow-ms (3000) so
               the client's timeout trips first

--message-fault KIND:TEXT[:COUNT] (repeatable, SQS JSON protocol only) aims
at chosen messages instead of at random: the proxy reads the ReceiveMessage
answers passing through and remembers each message whose Body contains TEXT;
a DeleteMessage or DeleteMessageBatch naming one of its receipt handles, or a
SendMessage whose MessageBody contains TEXT (a consumer's dead-letter send),
then gets KIND, at most COUNT times per message (default: always):

  refuse       answered 500 InternalError here, never forwarded
  after        forwarded and applied, then answered 500 InternalError

--delay-ms D adds D/2 ms before forwarding and D/2 ms before answering, a
simulated round trip, on every request.

--hold HEADER=PATH (repeatable) holds every request that carries HEADER
before it is forwarded, until PATH exists (at most 60 s): a test makes one
kind of call slow, e.g. S3 CopyObject (x-amz-copy-source), while the others
go through, and says when it may go on. Counted as "held".

A request whose client closed its connection before the request was
forwarded (it gave up waiting) is dropped, not forwarded: on a loaded machine
this process may read a request long after it was sent, and forwarding it
then would apply it after the client's retry, and after the requests that
followed, which no fault above stands for. The server's own lateness is
counted instead: an answer that came more than --late-ms after its request
arrived is "late" (the client's timeout had tripped, so the call may land
after its retry), and the slowest answer is kept in ms.

Both sides keep connections alive: each client connection gets its own
upstream connection, opened when first needed and reopened when the server
closes it. Bodies are streamed, whatever their framing (Content-Length,
chunked, or until the server closes).

With --parent-pid PID the proxy ends (as on SIGTERM) when the thread that
started it ends, the test's process killed included (Linux's parent-death
signal), and at once if PID is no longer its parent: a killed test leaves no
proxy behind.

The listening port goes to --port-file (written atomically once listening);
counts go to --stats-file as JSON every --stats-interval-ms and on SIGTERM or
SIGINT, after which the proxy exits 0. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ipaddress
import json
import os
import random
import signal
import socket
import struct
import sys
import time
import uuid
from urllib.parse import urlsplit

FAULT_KINDS = ("throttle", "after", "reset", "reset-after", "slow")
MESSAGE_FAULT_KINDS = ("refuse", "after")
SQS_DELETES = ("AmazonSQS.DeleteMessage", "AmazonSQS.DeleteMessageBatch")
SQS_AIMED = SQS_DELETES + ("AmazonSQS.SendMessage",)
CHUNK = 64 * 1024
MAX_HEAD = 64 * 1024
SMALL_BODY = 1024 * 1024


class ProtocolError(Exception):
    pass


class MessageFaults:
    """--message-fault: which deletes to fail, learnt from the receives, and
    which sends, by their body."""

    def __init__(self, specs: list[tuple[str, str, int | None]]) -> None:
        self.specs = specs
        self.by_handle: dict[str, tuple[int, str]] = {}  # handle -> (spec, message id)
        self.left: dict[tuple[int, str], int | None] = {}  # (spec, message id) -> faults left

    def learn(self, answer: bytes) -> None:
        """Remembers the handles of a ReceiveMessage answer's aimed-at messages."""
        try:
            messages = json.loads(answer).get("Messages") or []
        except (ValueError, AttributeError):
            return
        for message in messages:
            body, handle = message.get("Body", ""), message.get("ReceiptHandle")
            for index, (_, text, count) in enumerate(self.specs):
                if handle and text in body:
                    key = (index, message.get("MessageId", handle))
                    self.by_handle[handle] = key
                    self.left.setdefault(key, count)

    def fault_for(self, request: bytes) -> str | None:
        """The fault a delete request gets, if it names an aimed-at handle."""
        try:
            parsed = json.loads(request)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        sent = parsed.get("MessageBody")
        if isinstance(sent, str):
            for index, (kind, text, count) in enumerate(self.specs):
                if text in sent:
                    key = (index, "sent:" + sent)
                    left = self.left.setdefault(key, count)
                    if left == 0:
                        continue
                    if left is not None:
                        self.left[key] = left - 1
                    return kind
            return None
        handles = [parsed.get("ReceiptHandle")] + \
            [entry.get("ReceiptHandle") for entry in parsed.get("Entries") or []]
        for handle in handles:
            key = self.by_handle.get(handle)
            if key is None or self.left[key] == 0:
                continue
            if self.left[key] is not None:
                self.left[key] -= 1
            return self.specs[key[0]][0]
        return None


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.forwarded = 0
        self.upstream_errors = 0
        self.abandoned = 0
        self.late = 0
        self.slowest_ms = 0.0
        self.faults = {kind: 0 for kind in FAULT_KINDS}
        self.message_faults = {kind: 0 for kind in MESSAGE_FAULT_KINDS}
        self.message_fault_calls: dict[str, int] = {}  # by operation: "SendMessage"
        self.held = 0
        self.by_service: dict[str, int] = {}

    def as_json(self) -> str:
        return json.dumps(
            {
                "connections": self.connections,
                "requests": self.requests,
                "forwarded": self.forwarded,
                "upstream_errors": self.upstream_errors,
                "abandoned": self.abandoned,
                "late": self.late,
                "slowest_ms": round(self.slowest_ms),
                "faults": self.faults,
                "faults_total": sum(self.faults.values()),
                "held": self.held,
                "message_faults": self.message_faults,
                "message_fault_calls": self.message_fault_calls,
                "requests_by_service": self.by_service,
            },
            sort_keys=True,
        )


class Head:
    """A request or response head: the first line and the headers in order."""

    def __init__(self, first_line: str, headers: list[tuple[str, str]]) -> None:
        self.first_line = first_line
        self.headers = headers

    def get(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def tokens(self, name: str) -> set[str]:
        lowered = name.lower()
        result: set[str] = set()
        for key, value in self.headers:
            if key.lower() == lowered:
                result.update(t.strip().lower() for t in value.split(",") if t.strip())
        return result

    def encode(self) -> bytes:
        lines = [self.first_line] + [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """Reads one head; None on a clean EOF before its first byte."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise ProtocolError("connection closed inside a message head") from e
    except asyncio.LimitOverrunError as e:
        raise ProtocolError("message head too large") from e
    lines = raw.decode("latin-1").split("\r\n")
    while lines and lines[0] == "":  # tolerated leading empty lines (RFC 9112 2.2)
        lines.pop(0)
    if not lines:
        raise ProtocolError("empty message head")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return Head(lines[0], headers)


async def relay_body(reader: asyncio.StreamReader, head: Head, writer: asyncio.StreamWriter | None,
                     until_eof: bool) -> None:
    """Copies one message body from reader to writer (None: discards it).

    Chunked bodies are copied with their framing, trailers included, so what
    the far side sees is byte for byte what was sent."""
    if "chunked" in head.tokens("Transfer-Encoding"):
        while True:
            size_line = await reader.readuntil(b"\r\n")
            if writer is not None:
                writer.write(size_line)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as e:
                raise ProtocolError(f"bad chunk size {size_line!r}") from e
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    if writer is not None:
                        writer.write(line)
                    if line == b"\r\n":
                        break
                break
            await copy_exactly(reader, writer, size + 2)  # the data and its CRLF
            if writer is not None:
                await writer.drain()
    elif (length := head.get("Content-Length")) is not None:
        try:
            count = int(length)
        except ValueError as e:
            raise ProtocolError(f"bad Content-Length {length!r}") from e
        await copy_exactly(reader, writer, count)
    elif until_eof:
        while data := await reader.read(CHUNK):
            if writer is not None:
                writer.write(data)
                await writer.drain()
    if writer is not None:
        await writer.drain()


async def copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None,
                       count: int) -> None:
    while count > 0:
        data = await reader.read(min(count, CHUNK))
        if not data:
            raise ProtocolError("connection closed inside a body")
        count -= len(data)
        if writer is not None:
            writer.write(data)
            if writer.transport.get_write_buffer_size() > CHUNK:
                await writer.drain()


def service_of(head: Head) -> str:
    """s3, dynamodb, sqs or sqs-query: decides the shape of an injected error."""
    target = head.get("X-Amz-Target") or ""
    if target.startswith("DynamoDB"):
        return "dynamodb"
    if target.startswith("AmazonSQS"):
        return "sqs"
    authorization = head.get("Authorization") or ""
    scope = authorization.partition("Credential=")[2].split(",", 1)[0].split("/")
    service = scope[3] if len(scope) >= 5 else ""
    if service == "dynamodb":
        return "dynamodb"
    if service == "sqs":
        return "sqs" if "json" in (head.get("Content-Type") or "") else "sqs-query"
    return "s3"


def error_response(service: str, throttle: bool, method: str) -> bytes:
    """The retryable error a real service answers when it is overloaded
    (throttle) or failed inside (after)."""
    request_id = str(uuid.uuid4())
    extra: list[tuple[str, str]] = []
    if service == "dynamodb":
        code = "ProvisionedThroughputExceededException" if throttle else "InternalServerError"
        status = "400 Bad Request" if throttle else "500 Internal Server Error"
        content_type = "application/x-amz-json-1.0"
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                           "message": "injected by fault_proxy"}).encode()
        extra.append(("x-amzn-RequestId", request_id))
    elif service == "sqs":
        status, content_type = "500 Internal Server Error", "application/x-amz-json-1.0"
        body = json.dumps({"__type": "com.amazonaws.sqs#InternalError",
                           "message": "injected by fault_proxy"}).encode()
        extra += [("x-amzn-RequestId", request_id),
                  ("x-amzn-query-error", "InternalError;Receiver")]
    elif service == "sqs-query":
        status, content_type = "500 Internal Server Error", "text/xml"
        body = ("<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Receiver</Type>"
                "<Code>InternalError</Code><Message>injected by fault_proxy</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    else:
        code = "SlowDown" if throttle else "InternalError"
        status = "503 Slow Down" if throttle else "500 Internal Server Error"
        content_type = "application/xml"
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
                f"<Code>{code}</Code><Message>injected by fault_proxy</Message>"
                f"<RequestId>{request_id}</RequestId></Error>").encode()
        extra.append(("x-amz-request-id", request_id))
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + extra
    head = Head(f"HTTP/1.1 {status}", headers).encode()
    return head if method == "HEAD" else head + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes with an RST rather than a FIN: what a crashed peer looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_small_body(reader: asyncio.StreamReader, head: Head) -> bytes | None:
    """The body of a request framed by a Content-Length of at most
    SMALL_BODY, read whole; None (nothing read) for any other request."""
    if "chunked" in head.tokens("Transfer-Encoding"):
        return None
    length = head.get("Content-Length") or "0"
    if not length.isdigit() or int(length) > SMALL_BODY:
        return None
    return await reader.readexactly(int(length))


def client_gone(writer: asyncio.StreamWriter) -> bool:
    """True when the client closed (or reset) its connection: peeks at its
    socket without consuming anything. The request was read whole already,
    so what is left to read there is only a next request or the close."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        # asyncio's TransportSocket cannot recv: peek through a duplicate.
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def response_has_body(method: str, status: int) -> bool:
    return method != "HEAD" and not (100 <= status < 200 or status in (204, 304))


class Upstream:
    """One keep-alive connection to the server, owned by one client connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.writer is None or self.writer.is_closing() or self.reader.at_eof():
            self.close()
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD)
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


class Proxy:
    def __init__(self, args: argparse.Namespace) -> None:
        upstream = urlsplit(args.upstream)
        if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
            raise SystemExit("fault_proxy: --upstream must be http://HOST:PORT")
        if not is_loopback(upstream.hostname):
            raise SystemExit("fault_proxy: the upstream must be on loopback")
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port
        self.random = random.Random(args.seed)
        self.rates = args.faults
        self.half_delay = args.delay_ms / 2000.0
        self.slow = args.slow_ms / 1000.0
        self.late_after = args.late_ms / 1000.0 if args.late_ms > 0 else None
        self.stats = Stats()
        self.message_faults = MessageFaults(args.message_faults) if args.message_faults else None
        self.verbose = args.verbose
        self.holds = args.holds
        self.tasks: set[asyncio.Task] = set()

    async def hold(self, head: Head) -> None:
        """Waits, bounded, while a --hold names a header of this request."""
        for header, path in self.holds:
            if head.get(header) is None:
                continue
            self.stats.held += 1
            for _ in range(3000):  # 60 s
                if os.path.exists(path):
                    break
                await asyncio.sleep(0.02)

    def choose_fault(self) -> str | None:
        if not self.rates:
            return None
        roll = self.random.random()
        for kind in FAULT_KINDS:
            rate = self.rates.get(kind, 0.0)
            if roll < rate:
                return kind
            roll -= rate
        return None

    async def serve_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        self.stats.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = Upstream(self.upstream_host, self.upstream_port)
        try:
            while await self.serve_request(reader, writer, upstream):
                pass
        except (ConnectionError, ProtocolError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            upstream.close()
            writer.close()
            self.tasks.discard(asyncio.current_task())

    async def serve_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            upstream: Upstream) -> bool:
        """Serves one request; False when the client connection is done."""
        head = await read_head(reader)
        if head is None:
            return False
        arrived = time.monotonic()
        method = head.first_line.split(" ", 1)[0]
        service = service_of(head)
        self.stats.requests += 1
        self.stats.by_service[service] = self.stats.by_service.get(service, 0) + 1
        client_keeps = "close" not in head.tokens("Connection") and \
            not head.first_line.endswith("HTTP/1.0")
        await self.hold(head)
        fault = self.choose_fault()
        if fault is not None:
            self.stats.faults[fault] += 1
        expects_continue = "100-continue" in head.tokens("Expect")

        if fault in ("throttle", "reset"):
            if expects_continue:
                # The body was not sent yet and will not be read: the
                # connection cannot be reused after the answer.
                client_keeps = False
            else:
                await relay_body(reader, head, None, until_eof=False)
            if self.half_delay:
                await asyncio.sleep(self.half_delay)
            if fault == "reset":
                reset(writer)
                return False
            answer = error_response(service, True, method)
            if not client_keeps:
                answer = answer.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            writer.write(answer)
            await writer.drain()
            return client_keeps

        if expects_continue:
            # Answered here rather than by the server: the body then flows
            # through without waiting for a 100 the server may never send.
            head.headers = [(k, v) for k, v in head.headers if k.lower() != "expect"]
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if self.half_delay:
            await asyncio.sleep(self.half_delay)
        # A small body is read whole first, so that whether the client is
        # still there can be seen before anything reaches the server.
        body = await read_small_body(reader, head) if not expects_continue else None
        if body is not None and client_gone(writer):
            self.stats.abandoned += 1
            return False
        target = head.get("X-Amz-Target") or ""
        if self.message_faults is not None and body is not None and target in SQS_AIMED:
            aimed = self.message_faults.fault_for(body)
            if aimed is not None:
                self.stats.message_faults[aimed] += 1
                operation = target.rpartition(".")[2]
                calls = self.stats.message_fault_calls
                calls[operation] = calls.get(operation, 0) + 1
                if aimed == "refuse":
                    writer.write(error_response(service, False, method))
                    await writer.drain()
                    return client_keeps
                fault = "after"
        try:
            up_reader, up_writer = await upstream.connection()
            up_writer.write(head.encode())
            if body is not None:
                up_writer.write(body)
            else:
                await relay_body(reader, head, up_writer, until_eof=False)
            response = await read_head(up_reader)
            while response is not None and 100 <= response_status(response) < 200:
                response = await read_head(up_reader)  # interim answers: not for the client
            if response is None:
                raise ConnectionError("the server closed without answering")
            waited = time.monotonic() - arrived
            self.stats.slowest_ms = max(self.stats.slowest_ms, waited * 1000.0)
            if self.late_after is not None and waited > self.late_after:
                self.stats.late += 1
        except (OSError, ConnectionError, ProtocolError, asyncio.IncompleteReadError) as e:
            self.stats.upstream_errors += 1
            if self.verbose:
                print(f"fault_proxy: upstream {method} failed: {e!r}", file=sys.stderr)
            upstream.close()
            # What a gateway says; the client's retry decides what happens.
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            await writer.drain()
            return False
        self.stats.forwarded += 1

        status = response_status(response)
        has_body = response_has_body(method, status)
        framed = not has_body or response.get("Content-Length") is not None or \
            "chunked" in response.tokens("Transfer-Encoding")
        server_keeps = framed and "close" not in response.tokens("Connection")

        if fault in ("after", "reset-after"):
            if has_body:
                await relay_body(up_reader, response, None, until_eof=True)
            if not server_keeps:
                upstream.close()
            if self.half_delay:
                await asyncio.sleep(self.half_delay)
            if fault == "reset-after":
                reset(writer)
                return False
            writer.write(error_response(service, False, method))
            await writer.drain()
            return client_keeps

        answer = None
        if self.message_faults is not None and target == "AmazonSQS.ReceiveMessage" and has_body:
            answer = await read_small_body(up_reader, response)
            if answer is not None:
                self.message_faults.learn(answer)
        if fault == "slow":
            await asyncio.sleep(self.slow)
        if self.half_delay:
            await asyncio.sleep(self.half_delay)
        # The client's connection outlives the server's (moto closes after
        # every answer): only an answer framed by the close ends it.
        keeps = client_keeps and framed
        response.headers = [(k, v) for k, v in response.headers
                            if k.lower() not in ("connection", "keep-alive")]
        if not keeps:
            response.headers.append(("Connection", "close"))
        writer.write(response.encode())
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        elif has_body:
            await relay_body(up_reader, response, writer, until_eof=True)
        else:
            await writer.drain()
        if not server_keeps:
            upstream.close()
        return keeps


def response_status(head: Head) -> int:
    parts = head.first_line.split(" ", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError) as e:
        raise ProtocolError(f"bad status line {head.first_line!r}") from e


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def parse_fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}: {text!r}")
    try:
        value = float(rate)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"bad rate in {text!r}") from e
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"rate must be 0..1 in {text!r}")
    return kind, value


def parse_hold(text: str) -> tuple[str, str]:
    header, sep, path = text.partition("=")
    if not sep or not header or not path:
        raise argparse.ArgumentTypeError(f"expected HEADER=PATH, got {text!r}")
    return header, path


def parse_message_fault(text: str) -> tuple[str, str, int | None]:
    kind, _, rest = text.partition(":")
    aimed, _, count = rest.rpartition(":") if rest.count(":") else (rest, "", "")
    if kind not in MESSAGE_FAULT_KINDS or not aimed:
        raise argparse.ArgumentTypeError(
            f"expected KIND:TEXT[:COUNT] with KIND one of {', '.join(MESSAGE_FAULT_KINDS)}: "
            f"{text!r}")
    if count and not count.isdigit():
        raise argparse.ArgumentTypeError(f"bad count in {text!r}")
    return kind, aimed, int(count) if count else None


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--listen-port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added round trip, ms")
    parser.add_argument("--slow-ms", type=float, default=3000.0, help="hold of a slow answer")
    parser.add_argument("--late-ms", type=float, default=0.0,
                        help="count answers slower than this as late (0: none)")
    parser.add_argument("--fault", action="append", type=parse_fault, default=[],
                        metavar="KIND=RATE")
    parser.add_argument("--message-fault", action="append", type=parse_message_fault,
                        default=[], dest="message_faults", metavar="KIND:TEXT[:COUNT]")
    parser.add_argument("--hold", action="append", type=parse_hold, default=[], dest="holds",
                        help="HEADER=PATH: hold requests carrying HEADER until PATH exists")
    parser.add_argument("--stats-file")
    parser.add_argument("--verbose", action="store_true", help="log upstream failures")
    parser.add_argument("--stats-interval-ms", type=float, default=1000.0)
    parser.add_argument("--parent-pid", type=int, help="end when this parent ends")
    args = parser.parse_args(argv)
    args.faults = dict(args.fault)
    if sum(args.faults.values()) > 1.0:
        parser.error("the fault rates add up to more than 1")
    if args.delay_ms < 0 or args.slow_ms < 0:
        parser.error("delays cannot be negative")
    return args


def end_with_parent(parent_pid: int) -> None:
    """SIGTERM when the parent (the thread that started us) ends; if it has
    already, before this was set, end now."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
        raise SystemExit(f"fault_proxy: prctl failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent_pid:
        raise SystemExit("fault_proxy: the parent is gone")


async def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if args.parent_pid is not None:
        end_with_parent(args.parent_pid)
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.serve_client, "127.0.0.1", args.listen_port,
                                        limit=MAX_HEAD, backlog=256)
    port = server.sockets[0].getsockname()[1]
    write_atomically(args.port_file, f"{port}\n")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def save_stats() -> None:
        if args.stats_file:
            try:
                write_atomically(args.stats_file, proxy.stats.as_json() + "\n")
            except OSError as e:
                print(f"fault_proxy: cannot write stats: {e}", file=sys.stderr)

    interval = max(args.stats_interval_ms, 10.0) / 1000.0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
        save_stats()

    server.close()
    for task in list(proxy.tasks):
        task.cancel()
    await asyncio.gather(*proxy.tasks, return_exceptions=True)
    save_stats()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
