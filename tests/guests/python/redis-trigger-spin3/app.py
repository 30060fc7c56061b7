"""Boson test guest (Python, WASI 0.2, spin-sdk 3.x): a Redis trigger handler written with the
SDK's `spin_sdk.wit.exports.InboundRedis` on the SDK's own world `spin-redis` (exports
fermyon:spin/inbound-redis), recording each message in Redis through `spin_sdk.redis` and
`spin_sdk.variables` (fermyon:spin@2.0.0). See tests/guests/README.md ("trigger guests").
"""
from typing import Optional

from spin_sdk import redis, variables
from spin_sdk.wit import exports
from spin_sdk.wit.imports import redis_types
from spin_sdk.wit.imports.redis import RedisParameter_Binary, RedisResult_Int64
from spin_sdk.wit.types import Err


def record(payload: bytes) -> Optional[str]:
    """RPUSH <record_key> <payload>. Returns None, or why it failed: a variable or Redis error, or
    the first attempt of a "fail-once:" payload (counted by INCR <record_key>:attempts:<payload>).
    Nothing is printed: a host without stdio must still get the error value, not a trap."""
    try:
        address = variables.get("redis_address")
        key = variables.get("record_key").encode("utf-8")
        with redis.open(address) as conn:
            if payload.startswith(b"fail-once:"):
                attempts = conn.execute("INCR", [RedisParameter_Binary(key + b":attempts:" + payload)])
                if attempts == [RedisResult_Int64(1)]:
                    return "fail-once: the first attempt fails"
            conn.execute("RPUSH", [RedisParameter_Binary(key), RedisParameter_Binary(payload)])
    except Err as err:  # variables or redis error
        return repr(err.value)
    return None


class InboundRedis(exports.InboundRedis):
    def handle_message(self, message: bytes) -> None:
        if message == b"trap":
            raise RuntimeError("trap requested")  # not the interface's Err: the instance traps
        if message == b"loop":
            while True:  # burns CPU until the host interrupts it at its deadline
                pass
        if record(message) is not None:
            raise Err(redis_types.Error.ERROR)  # the 2.0 error carries no text
