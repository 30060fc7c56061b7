"""Boson test guest (Python, WASI 0.2, spin-sdk 3.x): Spin key-value stores and variables
through `spin_sdk.key_value` and `spin_sdk.variables` (fermyon:spin@2.0.0). See
tests/guests/README.md for the routes.
"""
import json
from typing import List, Optional
from urllib.parse import unquote

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import key_value as kv_wit
from spin_sdk.wit.imports import variables as var_wit
from spin_sdk.wit.types import Err


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode("utf-8"))


def kv_error(err: Err) -> Response:
    """Maps a fermyon:spin/key-value error to the guest's response."""
    value = err.value
    if isinstance(value, kv_wit.Error_AccessDenied):
        return text(403, "access-denied")
    if isinstance(value, kv_wit.Error_NoSuchStore):
        return text(404, "no-such-store")
    if isinstance(value, kv_wit.Error_StoreTableFull):
        return text(500, "error: store-table-full")
    if isinstance(value, kv_wit.Error_Other):
        return text(500, f"error: {value.value}")
    return text(500, f"error: {value!r}")


def route_kv(method: str, segments: List[str], body: bytes) -> Response:
    # segments: ["kv", label, op, key?]
    if len(segments) == 3 and segments[2] == "keys":
        label, op, key = segments[1], "keys", None
    elif len(segments) == 4 and segments[2] in ("get", "set", "delete", "exists"):
        label, op, key = segments[1], segments[2], segments[3]
    else:
        return text(404, "not-found")
    try:
        with key_value.open(label) as store:
            if op == "get":
                value: Optional[bytes] = store.get(key)
                if value is None:
                    return text(404, "missing")
                return Response(200, {"content-type": "text/plain"}, bytes(value))
            if op == "set":
                store.set(key, body)
                return text(200, "ok")
            if op == "delete":
                store.delete(key)
                return text(200, "ok")
            if op == "exists":
                return text(200, "true" if store.exists(key) else "false")
            keys = sorted(store.get_keys())
            return Response(200, {"content-type": "application/json"},
                            json.dumps(keys, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except Err as err:
        return kv_error(err)


def route_var(segments: List[str]) -> Response:
    if len(segments) != 2:
        return text(404, "not-found")
    try:
        return text(200, variables.get(segments[1]))
    except Err as err:
        value = err.value
        if isinstance(value, var_wit.Error_InvalidName):
            return text(400, "invalid-name")
        if isinstance(value, var_wit.Error_Undefined):
            return text(404, "undefined")
        if isinstance(value, (var_wit.Error_Provider, var_wit.Error_Other)):
            return text(500, f"error: {value.value}")
        return text(500, f"error: {value!r}")


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.uri.split("?", 1)[0]
        # path segments, percent-decoded (so a key may contain "/" as %2F)
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] == "kv":
            return route_kv(request.method, segments, request.body or b"")
        if segments[0] == "var":
            return route_var(segments)
        return text(404, "not-found")
