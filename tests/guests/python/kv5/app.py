"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): Spin key-value stores and variables through
the SDK's asynchronous `spin_sdk.key_value` and `spin_sdk.variables` modules
(`spin:key-value/key-value@3.0.0`, `spin:variables/variables@3.0.0`), in the SDK's world
`spin:up/http-trigger@4.1.0`. See tests/guests/README.md for the routes.
"""
import json
from typing import List
from urllib.parse import unquote

from componentize_py_types import Err
from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response
from spin_sdk.util import collect
from spin_sdk.wit.imports import spin_key_value_key_value_3_0_0 as kv_wit
from spin_sdk.wit.imports import spin_variables_variables_3_0_0 as var_wit


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode("utf-8"))


def kv_error(err: Err) -> Response:
    """Maps a spin:key-value@3.0.0 error to the guest's response."""
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


async def route_kv(segments: List[str], body: bytes) -> Response:
    # segments: ["kv", label, op, key?]
    if len(segments) == 3 and segments[2] == "keys":
        label, op, key = segments[1], "keys", ""
    elif len(segments) == 4 and segments[2] in ("get", "set", "delete", "exists"):
        label, op, key = segments[1], segments[2], segments[3]
    else:
        return text(404, "not-found")
    try:
        # the context manager drops the store resource on exit
        with await key_value.open(label) as store:
            if op == "get":
                value = await store.get(key)
                if value is None:
                    return text(404, "missing")
                return Response(200, {"content-type": "text/plain"}, bytes(value))
            if op == "set":
                await store.set(key, body)
                return text(200, "ok")
            if op == "delete":
                await store.delete(key)
                return text(200, "ok")
            if op == "exists":
                return text(200, "true" if await store.exists(key) else "false")
            # get-keys: a stream of keys plus a future with the final result; `collect`
            # drains the stream and raises the future's Err, if any
            keys = sorted(await collect(await store.get_keys()))
            return Response(200, {"content-type": "application/json"},
                            json.dumps(keys, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except Err as err:
        return kv_error(err)


async def route_var(segments: List[str]) -> Response:
    if len(segments) != 2:
        return text(404, "not-found")
    try:
        return text(200, await variables.get(segments[1]))
    except Err as err:
        value = err.value
        if isinstance(value, var_wit.Error_InvalidName):
            return text(400, "invalid-name")
        if isinstance(value, var_wit.Error_Undefined):
            return text(404, "undefined")
        if isinstance(value, (var_wit.Error_Provider, var_wit.Error_Other)):
            return text(500, f"error: {value.value}")
        return text(500, f"error: {value!r}")


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path = request.uri.partition("?")[0]
        # path segments, percent-decoded (so a key may contain "/" as %2F)
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] == "kv":
            return await route_kv(segments, request.body or b"")
        if segments[0] == "var":
            return await route_var(segments)
        return text(404, "not-found")
