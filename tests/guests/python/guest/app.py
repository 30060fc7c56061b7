"""Boson test guest (Python): dispatches on the first path segment. See tests/guests/README.md."""
import json
import os
import re
import sys
import time
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import environment, outgoing_handler, streams
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Connect,
    Method_Delete,
    Method_Get,
    Method_Head,
    Method_Options,
    Method_Other,
    Method_Patch,
    Method_Post,
    Method_Put,
    Method_Trace,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
    Scheme_Other,
)

# wasi:io output streams accept at most 4096 bytes per blocking-write-and-flush.
WRITE_CHUNK = 4096
READ_CHUNK = 64 * 1024

METHODS = {
    Method_Get: "GET",
    Method_Head: "HEAD",
    Method_Post: "POST",
    Method_Put: "PUT",
    Method_Delete: "DELETE",
    Method_Connect: "CONNECT",
    Method_Options: "OPTIONS",
    Method_Trace: "TRACE",
    Method_Patch: "PATCH",
}


def method_name(method) -> str:
    if isinstance(method, Method_Other):
        return method.value
    return METHODS.get(type(method), "UNKNOWN")


def error_text(err) -> str:
    """An error-code (or other error value) as text: `connection-refused`, `DNS-error(...)`."""
    value = err.value if isinstance(err, Err) else err
    name = type(value).__name__
    if name.startswith("ErrorCode_"):
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", name[len("ErrorCode_"):]).lower()
        payload = getattr(value, "value", None)
        return kebab if payload is None else f"{kebab}({payload!r})"
    return f"{name}: {value!r}"


def read_all(stream: streams.InputStream) -> bytes:
    data = bytearray()
    while True:
        try:
            chunk = stream.blocking_read(READ_CHUNK)
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise
        data += chunk
    return bytes(data)


def respond(response_out: ResponseOutparam, status: int, body: bytes,
            content_type: str = "text/plain") -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", content_type.encode())]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out_body.write() as stream:
        for i in range(0, len(body), WRITE_CHUNK):
            stream.blocking_write_and_flush(body[i:i + WRITE_CHUNK])
    OutgoingBody.finish(out_body, None)


def outbound(url: str) -> Tuple[int, bytes]:
    """GET `url` via wasi:http/outgoing-handler; returns (200, body) or (502, error text)."""
    parts = urlsplit(url)
    request = OutgoingRequest(Fields())
    request.set_method(Method_Get())
    if parts.scheme == "http":
        request.set_scheme(Scheme_Http())
    elif parts.scheme == "https":
        request.set_scheme(Scheme_Https())
    else:
        request.set_scheme(Scheme_Other(parts.scheme))
    request.set_authority(parts.netloc)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    request.set_path_with_query(path)
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        return 502, f"error: {error_text(e)}\n".encode()
    with future:
        result = future.get()
        while result is None:
            with future.subscribe() as pollable:
                pollable.block()
            result = future.get()
    # option<result<result<incoming-response, error-code>>>
    if isinstance(result, Err):
        return 502, b"error: future already consumed\n"
    inner = result.value
    if isinstance(inner, Err):
        return 502, f"error: {error_text(inner)}\n".encode()
    upstream = inner.value
    status = upstream.status()
    try:
        body = upstream.consume()
        with body.stream() as stream:
            data = read_all(stream)
        IncomingBody.finish(body)
    except Err as e:
        return 502, f"error: {error_text(e)}\n".encode()
    return 200, f"status={status}\n".encode() + data


def echo(request: IncomingRequest, path_with_query: str) -> bytes:
    headers: dict = {}
    for name, value in request.headers().entries():
        name = name.lower()
        text = value.decode("utf-8", errors="replace")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    body = request.consume()
    with body.stream() as stream:
        data = read_all(stream)
    IncomingBody.finish(body)
    doc = {
        "method": method_name(request.method()),
        "path": path_with_query,
        "headers": headers,
        "body": data.decode("utf-8", errors="replace"),
    }
    return json.dumps(doc).encode()


def fs_op(op: str, path: str) -> Tuple[int, bytes]:
    """One write-side file operation (as the C guest's /fs route): 200 when it worked, 403 with
    the error when it was refused."""
    other = path + ".new"
    try:
        if op in ("write", "truncate", "append", "create"):
            flags = os.O_WRONLY
            if op == "truncate":
                flags |= os.O_TRUNC
            elif op == "append":
                flags |= os.O_APPEND
            elif op == "create":
                flags |= os.O_CREAT | os.O_EXCL
                path = other
            fd = os.open(path, flags, 0o644)
            try:
                os.write(fd, b"x")
            finally:
                os.close(fd)
        elif op == "rename":
            os.rename(path, other)
        elif op == "rename-in":
            os.rename(other, path)
        elif op == "link":
            os.link(path, other)
        elif op == "symlink":
            os.symlink("/etc/passwd", other)
        elif op == "unlink":
            os.unlink(path)
        elif op == "mkdir":
            os.mkdir(other)
        else:
            return 403, b"error: unknown op\n"
    except OSError as e:
        return 403, f"error: {e}\n".encode()
    return 200, b"done\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path_with_query = request.path_with_query() or "/"
        path = path_with_query.split("?", 1)[0]
        segments = path.split("/")  # ["", first, rest...]
        first = segments[1] if len(segments) > 1 else ""
        rest = "/".join(segments[2:])

        if first == "hello":
            respond(response_out, 200, b"hello\n")
        elif first == "env":
            # wasi:cli/environment directly: os.environ may be captured when componentize-py
            # pre-initialises the interpreter at build time.
            value = dict(environment.get_environment()).get(rest)
            if value is None:
                respond(response_out, 404, b"not set\n")
            else:
                respond(response_out, 200, value.encode())
        elif first == "file":
            try:
                with open("/" + rest, "rb") as f:
                    data = f.read()
            except OSError as e:
                respond(response_out, 404, f"error: {e}\n".encode())
            else:
                respond(response_out, 200, data)
        elif first == "fs":
            op, _, target = rest.partition("/")
            status, body = fs_op(op, "/" + target)
            respond(response_out, status, body)
        elif first == "outbound":
            target: Optional[str] = None
            for name, value in request.headers().entries():
                if name.lower() == "x-target-url":
                    target = value.decode()
            if target is None:
                respond(response_out, 502, b"error: missing x-target-url header\n")
            else:
                status, body = outbound(target)
                respond(response_out, status, body)
        elif first == "loop":
            while True:
                pass
        elif first == "alloc":
            hoard: List[bytearray] = []
            while True:
                chunk = bytearray(1 << 20)
                for i in range(0, len(chunk), 4096):
                    chunk[i] = 1
                hoard.append(chunk)
        elif first == "trap":
            raise RuntimeError("guest asked to trap")
        elif first == "stdout":
            print("guest says hi on stdout", flush=True)
            print("guest says hi on stderr", file=sys.stderr, flush=True)
            respond(response_out, 200, b"logged\n")
        elif first == "sleep":
            try:
                ms = int(rest)
            except ValueError:
                ms = 0
            time.sleep(ms / 1000)
            respond(response_out, 200, b"slept\n")
        else:
            respond(response_out, 200, echo(request, path_with_query), "application/json")
