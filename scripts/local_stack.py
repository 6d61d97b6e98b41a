#!/usr/bin/env python3
"""Local AWS stack: moto in server mode, with linearizable request handling.

moto's stock threaded server handles requests concurrently, and its DynamoDB
backend is not thread-safe: e.g. 40 concurrent TransactWriteItems that each
bump a capped counter can let more than the cap through. This server wraps
moto's WSGI app in one global lock so that every request is handled one at a
time (connections are still accepted concurrently, threaded=True).

Run with the venv built by `scripts/ensure-venv.sh local`:

    .local/venv/bin/python scripts/local_stack.py [--port 0] [--port-file PATH] [--tls-dir DIR]

When listening, prints exactly one line `READY http://HOST:PORT` on stdout (`https://` with
--tls-dir: the stack then speaks TLS with a certificate of its own CA, written to DIR/ca.pem, so
a client's real TLS path — handshake and certificate check — can be exercised and measured).
Request logging is off; warnings and errors go to stderr. Stops cleanly on
SIGTERM / SIGINT (and, with --exit-with-parent, when its parent dies).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

try:
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
except ImportError as e:  # pragma: no cover
    sys.exit(
        f"local_stack.py: {e}; run it with the venv python "
        "(scripts/ensure-venv.sh local builds .local/venv)"
    )

# Backends to build up front so the first request does not pay for it.
PREWARM = ("dynamodb", "s3")


IDEMPOTENCY_WINDOW_S = 600  # DynamoDB's ClientRequestToken window: 10 minutes


class SerializedApp:
    """WSGI middleware: one request at a time, response fully buffered; DynamoDB's
    ClientRequestToken honoured; faults injected on demand (FAULTS_PATH)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        # token -> (the request without its token, status, headers, body, completed at)
        self.tokens: dict[str, tuple[str, str, list[tuple[str, str]], list[bytes], float]] = {}
        self.faults = FaultBook()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO", "").startswith(FAULTS_PATH):
            return self.faults.control(environ, start_response)
        # Read a sized body before taking the lock, so a slow client cannot
        # hold it. (Chunked bodies are left to werkzeug.)
        length = environ.get("CONTENT_LENGTH")
        body = b""
        if length and length.isdigit():
            body = environ["wsgi.input"].read(int(length))
            environ["wsgi.input"] = io.BytesIO(body)
        call = Call.of(environ, body)
        fault = self.faults.take(call)
        if fault is not None and not fault.applies_request():
            return fault.answer_unapplied(environ, start_response, call)
        with self.lock:
            answer = self.answer(environ, call)
        if fault is not None:
            return fault.answer_applied(environ, start_response, answer)
        status, headers, chunks = answer
        start_response(status, headers)
        return chunks

    def answer(self, environ: dict[str, Any], call: "Call") -> tuple[str, list, list[bytes]]:
        """The stack's answer, under the lock; a TransactWriteItems with a ClientRequestToken
        seen within the window is answered as DynamoDB does, without applying it again."""
        token, request = call.client_request_token()
        if token is not None:
            self.forget_expired_tokens()
            seen = self.tokens.get(token)
            if seen is not None:
                if seen[0] != request:
                    return dynamodb_error(
                        400,
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical request.",
                    )
                return seen[1], seen[2], seen[3]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, list(headers)

        result = self.app(environ, capture)
        try:
            chunks = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured["status"], captured["headers"]
        # Only a transaction that was applied is remembered: a refused one changed nothing.
        if token is not None and status.startswith("200"):
            self.tokens[token] = (request, status, headers, chunks, time.monotonic())
        return status, headers, chunks

    def forget_expired_tokens(self) -> None:
        now = time.monotonic()
        for token in [t for t, seen in self.tokens.items() if now - seen[4] > IDEMPOTENCY_WINDOW_S]:
            del self.tokens[token]


def dynamodb_error(code: int, kind: str, message: str) -> tuple[str, list, list[bytes]]:
    reasons = {400: "Bad Request", 500: "Internal Server Error"}
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": message})
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", kind)]
    return f"{code} {reasons[code]}", headers, [body.encode()]


def s3_error(code: int, kind: str, message: str) -> tuple[str, list, list[bytes]]:
    reasons = {500: "Internal Server Error", 503: "Slow Down"}
    body = f"<Error><Code>{kind}</Code><Message>{message}</Message></Error>"
    return f"{code} {reasons[code]}", [("Content-Type", "application/xml")], [body.encode()]


class Call:
    """What a request is, as a fault rule names it: the service's operation, and the text a
    rule's `scope` is looked for in (the path and the body: a table or a bucket name)."""

    def __init__(self, service: str, operation: str, text: str, body: bytes) -> None:
        self.service, self.operation, self.text, self.body = service, operation, text, body

    @staticmethod
    def of(environ: dict[str, Any], body: bytes) -> "Call":
        path = environ.get("PATH_INFO", "")
        text = path + " " + body.decode("utf-8", "replace")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            return Call("dynamodb", target.split(".", 1)[-1], text, body)
        method = environ.get("REQUEST_METHOD", "GET")
        operation = {
            "PUT": "PutObject",
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
        }.get(method, method)
        return Call("s3", operation, text, body)

    def client_request_token(self) -> tuple[str | None, str]:
        if self.service != "dynamodb" or self.operation != "TransactWriteItems":
            return None, ""
        try:
            request = json.loads(self.body)
        except ValueError:
            return None, ""
        token = request.pop("ClientRequestToken", None)
        return token, json.dumps(request, sort_keys=True)


FAULTS_PATH = "/_kincode/faults"
FAULT_KINDS = {
    # the stack answers 500 and applies nothing
    "internal_error",
    # DynamoDB's ThrottlingException (S3's 503 SlowDown); nothing applied
    "throttle",
    # the request is applied, then the connection is dropped before any answer: a lost answer
    "lost_answer",
    # the request is applied and answered only after delay_ms: past the caller's attempt timeout
    "slow_answer",
    # the connection is dropped before the request is applied: nothing applied
    "reset",
}


class Fault:
    def __init__(self, rule: dict[str, Any]) -> None:
        kind = rule.get("fault")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault must be one of {sorted(FAULT_KINDS)}")
        self.kind: str = kind
        self.operation: str = str(rule["operation"])
        self.scope: str = str(rule.get("scope", ""))
        self.skip: int = int(rule.get("skip", 0))
        self.times: int = int(rule.get("times", 1))
        self.delay_s: float = int(rule.get("delay_ms", 3000)) / 1000
        self.seen = 0
        self.fired = 0

    def matches(self, call: Call) -> bool:
        return call.operation == self.operation and self.scope in call.text

    def describe(self) -> dict[str, Any]:
        return {"fault": self.kind, "operation": self.operation, "scope": self.scope,
                "skip": self.skip, "times": self.times, "fired": self.fired}

    def applies_request(self) -> bool:
        return self.kind in ("lost_answer", "slow_answer")

    def answer_unapplied(self, environ: dict[str, Any], start_response: Any, call: Call) -> list[bytes]:
        if self.kind == "reset":
            reset_connection(environ)
        if call.service == "dynamodb":
            status, headers, body = (
                dynamodb_error(500, "InternalServerError", "injected fault")
                if self.kind == "internal_error"
                else dynamodb_error(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
            )
        else:
            status, headers, body = (
                s3_error(500, "InternalError", "injected fault")
                if self.kind == "internal_error"
                else s3_error(503, "SlowDown", "Please reduce your request rate.")
            )
        start_response(status, headers)
        return body

    def answer_applied(self, environ: dict[str, Any], start_response: Any, answer: tuple) -> list[bytes]:
        if self.kind == "lost_answer":
            reset_connection(environ)
        time.sleep(self.delay_s)  # slow_answer: outside the lock, other callers go on
        status, headers, chunks = answer
        start_response(status, headers)
        return chunks


def reset_connection(environ: dict[str, Any]) -> None:
    """Drop the caller's connection: no answer at all, the connection closed under it (the
    caller reads the end of the stream where its answer should be). werkzeug takes the
    ConnectionResetError as a client gone away, reads the closed socket and ends it with a
    reset (SO_LINGER 0)."""
    import socket
    import struct

    sock = environ.get("werkzeug.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionResetError("injected fault: connection dropped")


class FaultBook:
    """Fault rules set over HTTP by the tests (the fault-injection tier):

        POST   /_kincode/faults  {"operation": "TransactWriteItems", "scope": "<table>",
                                  "fault": "lost_answer", "times": 1, "skip": 0, "delay_ms": 3000}
        GET    /_kincode/faults  the rules, with how often each fired
        DELETE /_kincode/faults?scope=<text>  removes the rules of that scope (all without one)

    A rule fires on the calls to `operation` whose path or body contains `scope`, after
    skipping `skip` of them, `times` times (-1: every time). The first rule that matches fires.
    """

    def __init__(self) -> None:
        self.rules: list[Fault] = []
        self.lock = threading.Lock()

    def take(self, call: Call) -> Fault | None:
        with self.lock:
            for rule in self.rules:
                if not rule.matches(call):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip or (rule.times >= 0 and rule.fired >= rule.times):
                    continue
                rule.fired += 1
                return rule
        return None

    def control(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from urllib.parse import parse_qs

        method = environ.get("REQUEST_METHOD")
        status, body = "200 OK", None
        try:
            with self.lock:
                if method == "POST":
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    rule = Fault(json.loads(environ["wsgi.input"].read(length)))
                    self.rules.append(rule)
                    status, body = "201 Created", rule.describe()
                elif method == "DELETE":
                    scope = parse_qs(environ.get("QUERY_STRING", "")).get("scope", [None])[0]
                    self.rules = [r for r in self.rules if scope is not None and r.scope != scope]
                    status, body = "204 No Content", None
                elif method == "GET":
                    body = [r.describe() for r in self.rules]
                else:
                    status, body = "405 Method Not Allowed", {"error": "GET, POST or DELETE"}
        except (KeyError, ValueError, TypeError) as e:
            status, body = "400 Bad Request", {"error": str(e)}
        start_response(status, [("Content-Type", "application/json")])
        return [] if body is None else [json.dumps(body).encode()]


def back_up_only_touched_items() -> None:
    """Make moto's transactions cost what they touch, not what the table holds.

    moto backs a TransactWriteItems up by deep-copying each table it names once per item,
    so a transaction on a table of a few thousand items takes seconds (past the functions'
    2 s attempt timeout, whose retry then meets its own first write). Under the global lock
    nothing else runs meanwhile, so saving just the items the transaction names and putting
    them back if it fails is the same rollback. Checked by scripts/check_linearizable.py.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    whole_table_backup = DynamoDBBackend.transact_write_items

    def named_item_key(table: Any, op: dict[str, Any]) -> dict[str, Any] | None:
        if "Item" not in op:
            return op.get("Key")
        key_attrs = [table.hash_key_attr, table.range_key_attr]
        try:
            return {a: op["Item"][a] for a in key_attrs if a is not None}
        except KeyError:
            return None  # moto refuses the item itself

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            if len(entry) != 1:
                continue  # moto refuses it before writing anything
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            key = named_item_key(table, op) if table is not None else None
            if key is None:
                continue
            current = self.get_item(table.name, key)
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            saved.append((table.name, key, before))
        Table.__deepcopy__ = lambda table, memo: table  # the whole-table backup: a no-op
        try:
            whole_table_backup(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(saved):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise
        finally:
            del Table.__deepcopy__

    DynamoDBBackend.transact_write_items = transact_write_items


def query_only_the_partition() -> None:
    """A Query reads its partition, not the whole table.

    moto answers every Query by sorting all the table's items (comparing them in Python) and
    then filtering them by the partition key, so each read costs what the table holds: the
    cleanup's walk over the expiry index was most of the stack's CPU under the cleanup, age and
    erasure tests. Only the named partition can match, so moto is handed just that: for a Query
    on the table its partition; for a Query on an index the items whose index key attributes
    hold exactly the queried strings (moto still checks and sorts them itself; a number or
    binary key, where equal values may be spelt differently, is left to moto whole).
    """
    from moto.dynamodb.models.table import Table

    whole_table_query = Table.query
    signature = inspect.signature(whole_table_query)

    def candidates(table: Any, hash_key: Any, named: dict[str, Any]) -> Callable[[], list] | None:
        if named.get("index_name") is None:
            if hash_key is None or not table.range_key_attr:
                return None
            partition = table.items.get(hash_key, {})
            return lambda: list(partition.values())
        conditions = [(name, value.value) for name, value in named.get("hash_key_conditions") or []
                      if value.type == "S"]
        if not conditions or len(conditions) != len(named["hash_key_conditions"]):
            return None

        def matching() -> list:
            found = []
            for partition in table.items.values():
                for item in partition.values() if table.range_key_attr else [partition]:
                    if all(getattr(item.attrs.get(name), "type", None) == "S"
                           and item.attrs[name].value == value for name, value in conditions):
                        found.append(item)
            return found

        return matching

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        named = signature.bind(self, hash_key, *args, **kwargs).arguments
        only = candidates(self, hash_key, named)
        if only is None:
            return whole_table_query(self, hash_key, *args, **kwargs)
        self.all_items = only  # this call only
        try:
            return whole_table_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def look_up_each_backend_once() -> None:
    """Work whose answer never changes, done once instead of on every request.

    On every request moto's dispatcher lists its own package directory (a listdir and ~170
    isdir calls) and tries the URL patterns of every service to find the backend for the
    request's host, and each answer lists the handler class's methods by reflection
    (inspect.getmembers). Profiled under the erasure tests (py-spy), that was ~15 % of the
    stack's CPU. The modules, the host → backend map and a class's methods are fixed for the
    server's life, so they are looked up once.
    """
    import functools

    from moto import backends
    from moto.core import responses

    modules = frozenset(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    find_backend = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = find_backend(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
        responses.method_names_from_class
    )


def tls_context(directory: str, host: str) -> Any:
    """A fresh CA (DIR/ca.pem) and a server certificate it signs for HOST, as a public
    endpoint's would be: an ECDSA P-256 leaf under a separate root, valid for a day."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    window = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def certificate(subject: str, issuer: str, key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(window[0])
            .not_valid_after(window[1])
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        certificate("kincode local stack CA", "kincode local stack CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    try:
        alt_names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        alt_names = [x509.DNSName(host)]
    leaf = (
        certificate(host, "kincode local stack CA", leaf_key)
        .add_extension(x509.SubjectAlternativeName(alt_names + [x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    os.makedirs(directory, exist_ok=True)
    pem = serialization.Encoding.PEM
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    server_pem = os.path.join(directory, "server.pem")
    with open(server_pem, "wb") as f:
        f.write(leaf.public_bytes(pem))
        f.write(
            leaf_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_pem)
    return context


class QuietHandler(MotoRequestHandler):
    """moto's handler, without the access log, keeping connections open between requests.

    werkzeug (3.1.9, pinned) closes every connection after one answer, then reads whatever
    the caller sent next for up to 10 ms, so that a body the application left unread cannot
    be taken for the next request line. Here every body with a length is read whole before
    the answer (SerializedApp, FaultBook), so that read is skipped (`keep_connections_open`)
    and the connection stays open, as DynamoDB's and S3's do; only a chunked request still
    closes it. Each call then costs no new connection, no new server thread and no TLS
    handshake, for the tests and functions here as for the deployed functions, which hold
    their connections.
    """

    # The headers and the body go out in separate writes: on a connection kept open, Nagle's
    # algorithm would hold the body back until the caller acknowledges the headers (~40 ms).
    disable_nagle_algorithm = True

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log
        pass

    def send_header(self, keyword: str, value: str) -> None:
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and "chunked" not in self.headers.get("Transfer-Encoding", "").lower()
        ):
            return
        super().send_header(keyword, value)


def keep_connections_open() -> None:
    """Skips werkzeug's read-what-is-left after each answer (see QuietHandler)."""
    import selectors
    import types

    from werkzeug import serving

    class NothingLeftToRead:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list:
            return []

        def close(self) -> None:
            pass

    serving.selectors = types.SimpleNamespace(  # type: ignore[attr-defined]
        DefaultSelector=NothingLeftToRead, EVENT_READ=selectors.EVENT_READ
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--port-file", help="write the bound port to this file")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="shut down when the parent process goes away (e.g. killed wrapper)",
    )
    parser.add_argument(
        "--tls-dir",
        help="speak TLS, with a certificate of a fresh CA whose certificate goes to DIR/ca.pem",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    back_up_only_touched_items()
    query_only_the_partition()
    look_up_each_backend_once()
    keep_connections_open()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for name in PREWARM:
        dispatcher.app_instances[name] = create_backend_app(name)  # type: ignore[arg-type]

    server = make_server(
        args.host,
        args.port,
        SerializedApp(dispatcher),
        threaded=True,
        request_handler=QuietHandler,
        ssl_context=tls_context(args.tls_dir, args.host) if args.tls_dir else None,
    )
    port = server.server_port
    # moto builds some URLs (e.g. S3 presigned/redirects) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever() (running in this thread) to
        # notice, so it must be called from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.exit_with_parent:
        parent = os.getppid()

        def watch_parent() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            server.shutdown()

        threading.Thread(target=watch_parent, daemon=True).start()

    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    scheme = "https" if args.tls_dir else "http"
    print(f"READY {scheme}://{args.host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        if args.port_file:
            try:
                os.remove(args.port_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
