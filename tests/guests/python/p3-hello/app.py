"""Boson test guest (Python, WASI 0.3): exports wasi:http/handler@0.3.0 and responds 200
`Hello from Python p3!`.

Built against the minimal world `local:guest-p3/p3-app` (`export wasi:http/handler@0.3.0;`),
so the component imports only wasi:* interfaces. The same handler written with spin-sdk 5.x's
`spin_sdk.http.Handler` lives in ../p3-hello-spin-sdk (built only on request: it imports all of
Spin's platform interfaces).
"""
import componentize_py_async_support
from componentize_py_types import Ok
from wit_world import (
    byte_stream,
    exports,
    result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers_future,
)
from wit_world.imports.wasi_http_types import Fields, Request, Response

BODY = b"Hello from Python p3!\n"


async def _write(tx, data: bytes) -> None:
    with tx:
        await tx.write_all(data)


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        headers = Fields.from_list([
            ("content-type", b"text/plain"),
            ("content-length", str(len(BODY)).encode()),
        ])
        tx, rx = byte_stream()
        componentize_py_async_support.spawn(_write(tx, BODY))
        response, _sent = Response.new(headers, rx, trailers_future(lambda: Ok(None))[1])
        response.set_status_code(200)
        return response
