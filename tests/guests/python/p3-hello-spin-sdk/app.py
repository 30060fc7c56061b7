"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): the p3-hello handler written with
`spin_sdk.http.Handler` against the SDK's world `spin:up/http-trigger@4.1.0`.

Not part of the default build (it imports every Spin platform interface); build it with
`BOSON_BUILD_SPIN_SDK_P3=1 tests/guests/build.sh` -> python/p3-hello-spin-sdk.wasm.
"""
from spin_sdk import http
from spin_sdk.http import Request, Response


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"Hello from Python p3!\n")
