"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): a hello handler written with
`spin_sdk.http.Handler` against the SDK's own world `spin:up/http-trigger@4.1.0`, so it imports
every Spin platform interface, as apps built with the current Spin Python SDK do.
"""
from spin_sdk import http
from spin_sdk.http import Request, Response


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"Hello from the Spin Python SDK 5!\n")
