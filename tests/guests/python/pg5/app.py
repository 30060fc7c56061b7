"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): outbound PostgreSQL through both versions
spin-sdk 5 imports, `spin:postgres/postgres@3.0.0` (synchronous) and
`spin:postgres/postgres@4.2.0` (synchronous and asynchronous calls, the connection builder), and
the SDK's own `spin_sdk.postgres` wrapper, in the SDK's world `spin:up/http-trigger@4.1.0`.

One route: POST /pg/<version>/<op> with a JSON body
  {"address": "postgres://...", "open": "open", "ca": "<PEM>", "statement": "...",
   "params": [<tagged value>, ...]}
- version "3": op "query" | "execute"; "open" is ignored (3.0.0 has only `open`).
- version "4": op "query" | "execute" (synchronous calls), "query-async" | "execute-async";
  "open" is "open" | "open-async" | "builder" | "builder-async" (a connection-builder, with
  `set-ca-root(ca)` first when "ca" is given, then `build` / `build-async`) | "sdk"
  (spin_sdk.postgres.Connection: `open-async`, and its query / execute are the async calls).
A tagged value is a one-member object named by its WIT case: {"int32": 5}, {"str": "x"},
{"binary": "<hex>"}, {"date": [y, m, d]}, {"time": [h, m, s, ns]}, {"datetime": [y, m, d, h, m,
s, ns]}, {"timestamp": secs}, {"uuid": "..."}, {"jsonb": "<JSON text>"}, {"decimal": "1.5"},
{"range-int32": [lower, upper]} with each bound null or [value, "inclusive" | "exclusive"],
{"array-str": ["a", null]}, {"interval": {"micros": 1, "days": 2, "months": 3}},
{"db-null": true}; results use the same encoding ({"unsupported": "<hex>"} for 4.2.0, true for
3.0.0), floats as numbers or "nan" / "inf" / "-inf".
Answers: query -> 200 {"columns": [{"name": ..., "type": "int32" | "other:<pg type>"}],
"rows": [[...]]}; execute -> 200 {"affected": n}; an error -> 400 {"error": "<case>",
"message": ...} or, for a server error, {"error": "query-failed", "db-error": {...}}; a malformed
request -> 400 "bad-request". See tests/guests/README.md.
"""
import json
import math
from typing import Any, Callable, Dict, List, Tuple

from componentize_py_types import Err
from spin_sdk import http, postgres
from spin_sdk.http import Request, Response
from spin_sdk.util import collect
from spin_sdk.wit.imports import spin_postgres_postgres_3_0_0 as pg3
from spin_sdk.wit.imports import spin_postgres_postgres_4_2_0 as pg4


class BadRequest(Exception):
    pass


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode("utf-8"))


def json_response(status: int, value: Any) -> Response:
    return Response(status, {"content-type": "application/json"},
                    json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def camel(case: str) -> str:
    """`range-int32` -> `RangeInt32` (the Python class suffix componentize-py generates)."""
    return "".join(part[:1].upper() + part[1:] for part in case.split("-"))


def kebab(name: str) -> str:
    """`RangeInt32` -> `range-int32`."""
    out = ""
    for i, c in enumerate(name):
        if c.isupper() and i > 0:
            out += "-"
        out += c.lower()
    return out


def case_of(value: Any) -> str:
    """The WIT case name of a variant value (`DbValue_RangeInt32` -> `range-int32`)."""
    return kebab(type(value).__name__.split("_", 1)[1])


# ---------------------------------------------------------------- parameters

S8, S16, S32, S64 = (-(1 << 7), (1 << 7) - 1), (-(1 << 15), (1 << 15) - 1), \
    (-(1 << 31), (1 << 31) - 1), (-(1 << 63), (1 << 63) - 1)
U8, U32 = (0, (1 << 8) - 1), (0, (1 << 32) - 1)
INTS = {"int8": S8, "int16": S16, "int32": S32, "int64": S64, "timestamp": S64}
TUPLES = {"date": (S32, U8, U8), "time": (U8, U8, U8, U32), "datetime": (S32, U8, U8, U8, U8, U8, U32)}
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def int_in(v: Any, bounds: Tuple[int, int]) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and bounds[0] <= v <= bounds[1]:
        return v
    raise BadRequest()


def string(v: Any) -> str:
    if not isinstance(v, str):
        raise BadRequest()
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest()
    return v


def real(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and v in NON_FINITE:
        return NON_FINITE[v]
    raise BadRequest()


def optional(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else f(v)


def range_bounds(v: Any, element: Callable[[Any], Any], wit: Any) -> Tuple[Any, Any]:
    if not isinstance(v, list) or len(v) != 2:
        raise BadRequest()

    def bound(b: Any) -> Any:
        if b is None:
            return None
        if not isinstance(b, list) or len(b) != 2 or b[1] not in ("inclusive", "exclusive"):
            raise BadRequest()
        return (element(b[0]), wit.RangeBoundKind[b[1].upper()])
    return (bound(v[0]), bound(v[1]))


def list_of(v: Any, element: Callable[[Any], Any]) -> List[Any]:
    if not isinstance(v, list):
        raise BadRequest()
    return [element(e) for e in v]


def param(wit: Any, tagged: Any) -> Any:
    """Decodes one tagged JSON value into `wit`'s `parameter-value`."""
    if not isinstance(tagged, dict) or len(tagged) != 1:
        raise BadRequest()
    tag, v = next(iter(tagged.items()))
    ctor = getattr(wit, "ParameterValue_" + camel(tag), None) if isinstance(tag, str) else None
    if ctor is None:
        raise BadRequest()
    if tag == "db-null":
        if v is not True:
            raise BadRequest()
        return ctor()
    if tag in INTS:
        return ctor(int_in(v, INTS[tag]))
    if tag in TUPLES:
        spec = TUPLES[tag]
        if not isinstance(v, list) or len(v) != len(spec):
            raise BadRequest()
        return ctor(tuple(int_in(e, b) for e, b in zip(v, spec)))
    if tag == "boolean" and isinstance(v, bool):
        return ctor(v)
    if tag in ("floating32", "floating64"):
        return ctor(real(v))
    if tag in ("str", "uuid", "decimal"):
        return ctor(string(v))
    if tag == "binary":
        try:
            return ctor(bytes.fromhex(string(v)))
        except ValueError:
            raise BadRequest()
    if tag == "jsonb":
        return ctor(string(v).encode("utf-8"))
    if tag == "range-int32":
        return ctor(range_bounds(v, lambda e: int_in(e, S32), wit))
    if tag == "range-int64":
        return ctor(range_bounds(v, lambda e: int_in(e, S64), wit))
    if tag == "range-decimal":
        return ctor(range_bounds(v, string, wit))
    if tag == "array-int32":
        return ctor(list_of(v, optional(lambda e: int_in(e, S32))))
    if tag == "array-int64":
        return ctor(list_of(v, optional(lambda e: int_in(e, S64))))
    if tag in ("array-decimal", "array-str"):
        return ctor(list_of(v, optional(string)))
    if tag == "interval" and isinstance(v, dict) and set(v) == {"micros", "days", "months"}:
        return ctor(wit.Interval(micros=int_in(v["micros"], S64), days=int_in(v["days"], S32),
                                 months=int_in(v["months"], S32)))
    raise BadRequest()


# ---------------------------------------------------------------- results

def json_float(r: float) -> Any:
    if math.isnan(r):
        return "nan"
    if math.isinf(r):
        return "inf" if r > 0 else "-inf"
    return r


def db_value(value: Any) -> Dict[str, Any]:
    """Encodes one `db-value` (either version) as a tagged JSON value."""
    case = case_of(value)
    if case == "db-null":
        return {case: True}
    if case == "unsupported":
        payload = getattr(value, "value", None)
        return {case: True if payload is None else bytes(payload).hex()}
    v = value.value
    if case in ("floating32", "floating64"):
        return {case: json_float(v)}
    if case == "binary":
        return {case: bytes(v).hex()}
    if case == "jsonb":
        return {case: bytes(v).decode("utf-8")}
    if case in ("date", "time", "datetime"):
        return {case: list(v)}
    if case.startswith("range-"):
        return {case: [None if b is None else [b[0], b[1].name.lower()] for b in v]}
    if case.startswith("array-"):
        return {case: list(v)}
    if case == "interval":
        return {case: {"micros": v.micros, "days": v.days, "months": v.months}}
    return {case: v}


def column_type(data_type: Any) -> str:
    if isinstance(data_type, pg3.DbDataType):
        return data_type.name.lower().replace("_", "-")
    case = case_of(data_type)
    return f"other:{data_type.value}" if case == "other" else case


def rows_response(columns: List[Any], rows: List[List[Any]]) -> Response:
    return json_response(200, {
        "columns": [{"name": c.name, "type": column_type(c.data_type)} for c in columns],
        "rows": [[db_value(v) for v in row] for row in rows],
    })


def error_response(err: Err) -> Response:
    """Every postgres error (either version) -> 400 with its case and contents."""
    value = err.value
    case = case_of(value)
    payload = value.value
    if isinstance(payload, pg4.QueryError_DbError):
        d = payload.value
        return json_response(400, {"error": case, "db-error": {
            "as-text": d.as_text, "severity": d.severity, "code": d.code, "message": d.message,
            "detail": d.detail, "extras": [list(e) for e in d.extras]}})
    if isinstance(payload, pg4.QueryError_Text):
        payload = payload.value
    return json_response(400, {"error": case, "message": payload})


# ---------------------------------------------------------------- calls

def run3(op: str, address: str, statement: str, params: List[Any]) -> Response:
    with pg3.Connection.open(address) as conn:
        if op == "execute":
            return json_response(200, {"affected": conn.execute(statement, params)})
        result = conn.query(statement, params)
        return rows_response(result.columns, result.rows)


async def open4(how: str, address: str, ca: Any) -> Any:
    if how == "open":
        return pg4.Connection.open(address)
    if how == "open-async":
        return await pg4.Connection.open_async(address)
    with pg4.ConnectionBuilder(address) as builder:
        if ca is not None:
            builder.set_ca_root(ca)
        if how == "builder":
            return builder.build()
        return await builder.build_async()


async def run4(op: str, how: str, address: str, ca: Any, statement: str, params: List[Any]) -> Response:
    if how == "sdk":
        with await postgres.Connection.open(address) as sdk_conn:
            if op == "execute-async":
                return json_response(200, {"affected": await sdk_conn.execute(statement, params)})
            columns, rows, done = await sdk_conn.query(statement, params)
            return rows_response(columns, await collect((rows, done)))
    with await open4(how, address, ca) as conn:
        if op == "execute":
            return json_response(200, {"affected": conn.execute(statement, params)})
        if op == "execute-async":
            return json_response(200, {"affected": await conn.execute_async(statement, params)})
        if op == "query":
            result = conn.query(statement, params)
            return rows_response(result.columns, result.rows)
        # the columns, a stream of rows and a future with the final result; `collect` drains
        # the stream, then raises the future's Err, if any
        columns, rows, done = await conn.query_async(statement, params)
        return rows_response(columns, await collect((rows, done)))


OPS = {"3": ("query", "execute"), "4": ("query", "execute", "query-async", "execute-async")}
OPENS = ("open", "open-async", "builder", "builder-async", "sdk")


async def route_pg(segments: List[str], body: bytes) -> Response:
    if len(segments) != 3 or segments[2] not in OPS.get(segments[1], ()):
        return text(404, "not-found")
    version, op = segments[1], segments[2]
    wit = pg3 if version == "3" else pg4
    try:
        request = json.loads(body.decode("utf-8"))
        if not isinstance(request, dict):
            raise BadRequest()
        address = string(request.get("address"))
        statement = string(request.get("statement"))
        how = request.get("open", "open")
        ca = request.get("ca")
        if how not in OPENS or ca is not None and not isinstance(ca, str):
            raise BadRequest()
        if how == "sdk" and op not in ("query-async", "execute-async"):
            raise BadRequest()
        params = [param(wit, p) for p in list_of(request.get("params", []), lambda p: p)]
    except (ValueError, RecursionError, BadRequest):
        return text(400, "bad-request")
    try:
        if version == "3":
            return run3(op, address, statement, params)
        return await run4(op, how, address, ca, statement, params)
    except Err as err:
        return error_response(err)


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path = request.uri.partition("?")[0]
        segments = path.strip("/").split("/")
        if segments[0] == "pg":
            return await route_pg(segments, request.body or b"")
        return text(404, "not-found")
