"""An HTTP handler written with the Spin Python SDK: `handle_request` runs once per request."""
from spin_sdk import http
from spin_sdk.http import Request, Response


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        body = f"Hello from Python! You asked for {request.uri}\n"
        return Response(200, {"content-type": "text/plain"}, body.encode("utf-8"))
