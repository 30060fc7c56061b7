"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): Spin key-value stores, variables, SQLite,
outbound Redis, MySQL and MQTT through the SDK's asynchronous `spin_sdk.key_value`,
`spin_sdk.variables`, `spin_sdk.sqlite`, `spin_sdk.redis`, `spin_sdk.mysql` and `spin_sdk.mqtt`
modules (`spin:key-value/key-value@3.0.0`, `spin:variables/variables@3.0.0`,
`spin:sqlite/sqlite@3.1.0`, `spin:redis/redis@3.0.0`, `spin:mysql/mysql@3.0.0`,
`spin:mqtt/mqtt@3.0.0`), in the SDK's world `spin:up/http-trigger@4.1.0`. The /sql, /redis,
/mysql and /mqtt routes have the same contract as python/kv (spin-sdk 3). See
tests/guests/README.md.
"""
import json
import math
from typing import Any, List, Optional
from urllib.parse import unquote

from componentize_py_types import Err
from spin_sdk import http, key_value, mqtt, mysql, redis, sqlite, variables
from spin_sdk.http import Request, Response
from spin_sdk.util import collect
from spin_sdk.wit.imports import spin_key_value_key_value_3_0_0 as kv_wit
from spin_sdk.wit.imports import spin_mqtt_mqtt_3_0_0 as mqtt_wit
from spin_sdk.wit.imports import spin_mysql_mysql_3_0_0 as mysql_wit
from spin_sdk.wit.imports import spin_redis_redis_3_0_0 as redis_wit
from spin_sdk.wit.imports import spin_sqlite_sqlite_3_1_0 as sql_wit
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


# ---------------------------------------------------------------- spin:sqlite/sqlite@3.1.0

class BadRequest(Exception):
    pass


S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def reject_constant(name: str) -> Any:
    """json.loads calls this for the non-standard NaN, Infinity, -Infinity: not accepted."""
    raise BadRequest()


def utf8_checked(s: str) -> str:
    """Rejects strings with lone surrogates (JSON allows "\\ud800"; a WIT string may not hold it)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest()
    return s


def sql_param(param: Any) -> sql_wit.Value:
    """Decodes one tagged JSON parameter ({"integer": 5}, ...) into a sqlite value."""
    if not isinstance(param, dict) or len(param) != 1:
        raise BadRequest()
    tag, v = next(iter(param.items()))
    if tag == "integer" and isinstance(v, int) and not isinstance(v, bool) and S64_MIN <= v <= S64_MAX:
        return sql_wit.Value_Integer(v)
    if tag == "real":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return sql_wit.Value_Real(float(v))
        if isinstance(v, str) and v in NON_FINITE:
            return sql_wit.Value_Real(NON_FINITE[v])
    if tag == "text" and isinstance(v, str):
        return sql_wit.Value_Text(utf8_checked(v))
    if tag == "blob" and isinstance(v, str) and len(v) % 2 == 0 and all(c in HEX_DIGITS for c in v):
        return sql_wit.Value_Blob(bytes.fromhex(v))
    if tag == "null" and v is True:
        return sql_wit.Value_Null()
    raise BadRequest()


def sql_value(value: sql_wit.Value) -> Any:
    """Encodes one sqlite value the tagged JSON way."""
    if isinstance(value, sql_wit.Value_Integer):
        return {"integer": value.value}
    if isinstance(value, sql_wit.Value_Real):
        r = value.value
        if math.isnan(r):
            return {"real": "nan"}
        if math.isinf(r):
            return {"real": "inf" if r > 0 else "-inf"}
        return {"real": r}
    if isinstance(value, sql_wit.Value_Text):
        return {"text": value.value}
    if isinstance(value, sql_wit.Value_Blob):
        return {"blob": bytes(value.value).hex()}
    return {"null": True}


def sql_error(err: Err) -> Response:
    value = err.value
    if isinstance(value, sql_wit.Error_AccessDenied):
        return text(403, "access-denied")
    if isinstance(value, sql_wit.Error_NoSuchDatabase):
        return text(404, "no-such-database")
    if isinstance(value, sql_wit.Error_InvalidConnection):
        return text(400, "error: invalid-connection")
    if isinstance(value, sql_wit.Error_DatabaseFull):
        return text(400, "error: database-full")
    if isinstance(value, sql_wit.Error_Io):
        return text(400, f"error: io: {value.value}")
    return text(400, f"error: {value!r}")


def json_response(value: Any) -> Response:
    return Response(200, {"content-type": "application/json"},
                    json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


async def route_sql(segments: List[str], body: bytes) -> Response:
    # segments: ["sql", label]
    if len(segments) != 2:
        return text(404, "not-found")
    try:
        request = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
        if not isinstance(request, dict) or not isinstance(request.get("statement"), str):
            raise BadRequest()
        params = request.get("params", [])
        if not isinstance(params, list):
            raise BadRequest()
        statement = utf8_checked(request["statement"])
        values = [sql_param(p) for p in params]
    except (ValueError, RecursionError, BadRequest):
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return text(400, "bad-request")
    try:
        # Connection.open is `open-async`; execute is `execute-async`: the column names, a stream
        # of rows and a future with the statement's final result. `collect` drains the stream,
        # then raises the future's Err, if any. The connection is dropped on leaving `with`.
        with await sqlite.Connection.open(segments[1]) as conn:
            columns, rows, done = await conn.execute(statement, values)
            row_list = await collect((rows, done))
    except Err as err:
        return sql_error(err)
    return json_response({
        "columns": list(columns),
        "rows": [[sql_value(v) for v in row.values] for row in row_list],
    })


# ---------------------------------------------------------------- spin:redis/redis@3.0.0

def query_param(query: str, name: str) -> Optional[str]:
    """The percent-decoded value of the first `name` parameter of `query` (`name` alone gives
    ""), or None. `+` is not a space (as in the C guest)."""
    for item in query.split("&"):
        if item == name:
            return ""
        if item.startswith(name + "="):
            return unquote(item[len(name) + 1:])
    return None


def redis_error(err: Err) -> Response:
    """Maps a spin:redis/redis@3.0.0 error to the guest's response."""
    value = err.value
    if isinstance(value, redis_wit.Error_InvalidAddress):
        return text(400, "error: invalid-address")
    if isinstance(value, redis_wit.Error_TooManyConnections):
        return text(503, "error: too-many-connections")
    if isinstance(value, redis_wit.Error_TypeError):
        return text(400, "error: type-error")
    if isinstance(value, redis_wit.Error_Other):
        return text(500, f"error: other: {value.value}")
    return text(500, f"error: {value!r}")


def redis_result(value: redis_wit.RedisResult) -> Any:
    """Encodes one `execute` result: {"nil": true}, {"status": "OK"}, {"int64": 5},
    {"binary": "<text>"} (the bytes as a string when they are valid UTF-8, else lowercase hex)."""
    if isinstance(value, redis_wit.RedisResult_Status):
        return {"status": value.value}
    if isinstance(value, redis_wit.RedisResult_Int64):
        return {"int64": value.value}
    if isinstance(value, redis_wit.RedisResult_Binary):
        data = bytes(value.value)
        try:
            return {"binary": data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"binary": data.hex()}
    return {"nil": True}


def redis_command(body: bytes) -> List[str]:
    """The `execute` body: a non-empty JSON array of strings (the command, then its arguments)."""
    try:
        command = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise BadRequest()
        return [utf8_checked(a) for a in command]
    except (ValueError, RecursionError):
        raise BadRequest()


def split_list(body: bytes) -> List[str]:
    """`a,b,c` -> ["a", "b", "c"]; an empty body -> []."""
    data = body.decode("utf-8", errors="replace")
    return data.split(",") if data else []


REDIS_KEYED = ("publish", "set", "get", "incr", "del", "sadd", "smembers", "srem")


async def route_redis(segments: List[str], query: str, body: bytes) -> Response:
    # segments: ["redis", op, name?]
    op = segments[1] if len(segments) >= 2 else ""
    if not ((op in REDIS_KEYED and len(segments) == 3) or (op == "execute" and len(segments) == 2)):
        return text(404, "not-found")
    address = query_param(query, "addr")
    if address is None:
        return text(400, "bad-request")
    command: List[str] = []
    if op == "execute":
        try:
            command = redis_command(body)
        except BadRequest:
            return text(400, "bad-request")
    key = segments[2] if op != "execute" else ""
    try:
        # the context manager drops the connection resource on exit
        with await redis.open(address) as conn:
            if op == "publish":
                await conn.publish(key, body)
                return text(200, "ok")
            if op == "set":
                await conn.set(key, body)
                return text(200, "ok")
            if op == "get":
                value: Optional[bytes] = await conn.get(key)
                if value is None:
                    return text(404, "missing")
                return Response(200, {"content-type": "text/plain"}, bytes(value))
            if op == "incr":
                return text(200, str(await conn.incr(key)))
            if op == "del":
                return text(200, str(await conn.del_([key])))
            if op == "sadd":
                return text(200, str(await conn.sadd(key, split_list(body))))
            if op == "srem":
                return text(200, str(await conn.srem(key, split_list(body))))
            if op == "smembers":
                return json_response(sorted(await conn.smembers(key)))
            args: List[redis_wit.RedisParameter] = [
                redis_wit.RedisParameter_Binary(a.encode("utf-8")) for a in command[1:]]
            results = await conn.execute(command[0], args)
            return json_response([redis_result(r) for r in results])
    except Err as err:
        return redis_error(err)


# ---------------------------------------------------------------- spin:mysql/mysql@3.0.0

# `parameter-value` case name -> (constructor, minimum, maximum)
MYSQL_INTS = {
    "int8": (mysql_wit.ParameterValue_Int8, -(1 << 7), (1 << 7) - 1),
    "int16": (mysql_wit.ParameterValue_Int16, -(1 << 15), (1 << 15) - 1),
    "int32": (mysql_wit.ParameterValue_Int32, -(1 << 31), (1 << 31) - 1),
    "int64": (mysql_wit.ParameterValue_Int64, -(1 << 63), (1 << 63) - 1),
    "uint8": (mysql_wit.ParameterValue_Uint8, 0, (1 << 8) - 1),
    "uint16": (mysql_wit.ParameterValue_Uint16, 0, (1 << 16) - 1),
    "uint32": (mysql_wit.ParameterValue_Uint32, 0, (1 << 32) - 1),
    "uint64": (mysql_wit.ParameterValue_Uint64, 0, (1 << 64) - 1),
}
MYSQL_FLOATS = {"floating32": mysql_wit.ParameterValue_Floating32,
                "floating64": mysql_wit.ParameterValue_Floating64}

# `db-value` class -> case name
DB_VALUE_NAMES = {
    mysql_wit.DbValue_Boolean: "boolean",
    mysql_wit.DbValue_Int8: "int8",
    mysql_wit.DbValue_Int16: "int16",
    mysql_wit.DbValue_Int32: "int32",
    mysql_wit.DbValue_Int64: "int64",
    mysql_wit.DbValue_Uint8: "uint8",
    mysql_wit.DbValue_Uint16: "uint16",
    mysql_wit.DbValue_Uint32: "uint32",
    mysql_wit.DbValue_Uint64: "uint64",
    mysql_wit.DbValue_Floating32: "floating32",
    mysql_wit.DbValue_Floating64: "floating64",
    mysql_wit.DbValue_Str: "str",
    mysql_wit.DbValue_Binary: "binary",
    mysql_wit.DbValue_DbNull: "db-null",
    mysql_wit.DbValue_Unsupported: "unsupported",
}

# `error` class -> case name
MYSQL_ERROR_NAMES = {
    mysql_wit.Error_ConnectionFailed: "connection-failed",
    mysql_wit.Error_BadParameter: "bad-parameter",
    mysql_wit.Error_QueryFailed: "query-failed",
    mysql_wit.Error_ValueConversionFailed: "value-conversion-failed",
    mysql_wit.Error_Other: "other",
}


def json_real(v: Any) -> float:
    """A JSON number, or "inf", "-inf", "nan", as a float (an integer too large for a float
    becomes +-inf, as C's strtod makes it)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str) and v in NON_FINITE:
        return NON_FINITE[v]
    raise BadRequest()


def mysql_param(param: Any) -> mysql_wit.ParameterValue:
    """Decodes one tagged JSON parameter ({"int32": 5}, {"str": "x"}, ...; the tag is a
    `parameter-value` case name) into a mysql parameter value."""
    if not isinstance(param, dict) or len(param) != 1:
        raise BadRequest()
    tag, v = next(iter(param.items()))
    if tag in MYSQL_INTS:
        ctor, lo, hi = MYSQL_INTS[tag]
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            return ctor(v)
        raise BadRequest()
    if tag in MYSQL_FLOATS:
        return MYSQL_FLOATS[tag](json_real(v))
    if tag == "boolean" and isinstance(v, bool):
        return mysql_wit.ParameterValue_Boolean(v)
    if tag == "str" and isinstance(v, str):
        return mysql_wit.ParameterValue_Str(utf8_checked(v))
    if tag == "binary" and isinstance(v, str) and len(v) % 2 == 0 and all(c in HEX_DIGITS for c in v):
        return mysql_wit.ParameterValue_Binary(bytes.fromhex(v))
    if tag == "db-null" and v is True:
        return mysql_wit.ParameterValue_DbNull()
    raise BadRequest()


def json_float(r: float) -> Any:
    if math.isnan(r):
        return "nan"
    if math.isinf(r):
        return "inf" if r > 0 else "-inf"
    return r


def db_value(value: mysql_wit.DbValue) -> Any:
    """Encodes one db-value as a one-member object named by its case."""
    name = DB_VALUE_NAMES.get(type(value), "unsupported")
    if name in ("db-null", "unsupported"):
        return {name: True}
    v = value.value
    if name in ("floating32", "floating64"):
        return {name: json_float(v)}
    if name == "binary":
        return {name: bytes(v).hex()}
    return {name: v}


def mysql_error(err: Err) -> Response:
    """Every mysql error -> 400 "error: <case>: <message>"."""
    value = err.value
    name = MYSQL_ERROR_NAMES.get(type(value))
    if name is None:
        return text(400, f"error: {value!r}")
    return text(400, f"error: {name}: {value.value}")


async def route_mysql(segments: List[str], query: str, body: bytes) -> Response:
    # segments: ["mysql", "query" | "execute"]
    if len(segments) != 2 or segments[1] not in ("query", "execute"):
        return text(404, "not-found")
    address = query_param(query, "addr")
    if address is None:
        return text(400, "bad-request")
    try:
        request = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
        if not isinstance(request, dict) or not isinstance(request.get("statement"), str):
            raise BadRequest()
        params = request.get("params", [])
        if not isinstance(params, list):
            raise BadRequest()
        statement = utf8_checked(request["statement"])
        values = [mysql_param(p) for p in params]
    except (ValueError, RecursionError, BadRequest):
        return text(400, "bad-request")
    try:
        # `open` and both calls are async; the connection is dropped on leaving `with`
        with await mysql.open(address) as conn:
            if segments[1] == "execute":
                await conn.execute(statement, values)
                return text(200, "ok")
            # query: the columns, a stream of rows and a future with the final result;
            # `collect` drains the stream, then raises the future's Err, if any
            columns, rows, done = await conn.query(statement, values)
            row_list = await collect((rows, done))
    except Err as err:
        return mysql_error(err)
    return json_response({
        "columns": [{"name": c.name, "type": c.data_type.name.lower()} for c in columns],
        "rows": [[db_value(v) for v in row] for row in row_list],
    })


# ---------------------------------------------------------------- spin:mqtt/mqtt@3.0.0

MQTT_QOS = {"0": mqtt_wit.Qos.AT_MOST_ONCE, "1": mqtt_wit.Qos.AT_LEAST_ONCE, "2": mqtt_wit.Qos.EXACTLY_ONCE}

# mqtt `error` class -> (case name, carries a message)
MQTT_ERROR_NAMES = {
    mqtt_wit.Error_InvalidAddress: ("invalid-address", False),
    mqtt_wit.Error_TooManyConnections: ("too-many-connections", False),
    mqtt_wit.Error_ConnectionFailed: ("connection-failed", True),
    mqtt_wit.Error_Other: ("other", True),
}


def mqtt_error(err: Err) -> Response:
    """Every mqtt error -> 400 "error: <case>" (+ ": <message>")."""
    value = err.value
    entry = MQTT_ERROR_NAMES.get(type(value))
    if entry is None:
        return text(400, f"error: {value!r}")
    name, has_message = entry
    return text(400, f"error: {name}: {value.value}" if has_message else f"error: {name}")


async def route_mqtt(segments: List[str], query: str, body: bytes) -> Response:
    # segments: ["mqtt", "publish", topic]
    if len(segments) != 3 or segments[1] != "publish":
        return text(404, "not-found")
    address = query_param(query, "addr")
    qos = MQTT_QOS.get(query_param(query, "qos") or "")
    if address is None or qos is None:
        return text(400, "bad-request")
    try:
        with await mqtt.open(address, "", "", 30) as conn:
            await conn.publish(segments[2], body, qos)
    except Err as err:
        return mqtt_error(err)
    return text(200, "ok")


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path, _, query = request.uri.partition("?")
        # path segments, percent-decoded (so a key may contain "/" as %2F)
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] == "kv":
            return await route_kv(segments, request.body or b"")
        if segments[0] == "var":
            return await route_var(segments)
        if segments[0] == "sql":
            return await route_sql(segments, request.body or b"")
        if segments[0] == "redis":
            return await route_redis(segments, query, request.body or b"")
        if segments[0] == "mysql":
            return await route_mysql(segments, query, request.body or b"")
        if segments[0] == "mqtt":
            return await route_mqtt(segments, query, request.body or b"")
        return text(404, "not-found")
