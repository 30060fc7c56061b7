"""Boson test guest (Python, WASI 0.2, spin-sdk 3.x): a hello handler written with
`spin_sdk.http.IncomingHandler` against the SDK's own world `spin-http` (fermyon:spin@2.0.0), so
it imports every interface of that world, as apps built with spin-sdk 3.x do.
"""
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"Hello from the Spin Python SDK!\n")
