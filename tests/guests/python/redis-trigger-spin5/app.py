"""Boson test guest (Python, WASI 0.3, spin-sdk 5.x): a Redis trigger handler on the SDK's own
world `spin:up/redis-trigger@4.1.0` (exports the asynchronous spin:redis/inbound-redis@3.0.0 as
the SDK's `spin_sdk.wit.exports.RedisHandler`), recording each message in Redis through the SDK's
asynchronous `spin_sdk.redis` and `spin_sdk.variables` (spin:redis/redis@3.0.0,
spin:variables/variables@3.0.0). See tests/guests/README.md ("trigger guests").
"""
from typing import Optional

from componentize_py_types import Err
from spin_sdk import redis, variables
from spin_sdk.wit import exports
from spin_sdk.wit.imports import spin_redis_redis_3_0_0 as redis_wit


async def record(payload: bytes) -> Optional[str]:
    """RPUSH <record_key> <payload>. Returns None, or why it failed: a variable or Redis error, or
    the first attempt of a "fail-once:" payload (counted by INCR <record_key>:attempts:<payload>)."""
    def binary(value: bytes) -> redis_wit.RedisParameter:
        return redis_wit.RedisParameter_Binary(value)

    try:
        address = await variables.get("redis_address")
        key = (await variables.get("record_key")).encode("utf-8")
        # the context manager drops the connection resource on exit
        with await redis.open(address) as conn:
            if payload.startswith(b"fail-once:"):
                attempts = await conn.execute("INCR", [binary(key + b":attempts:" + payload)])
                if attempts == [redis_wit.RedisResult_Int64(1)]:
                    return "fail-once: the first attempt fails"
            await conn.execute("RPUSH", [binary(key), binary(payload)])
    except Err as err:  # variables or redis error
        return repr(err.value)
    return None


class RedisHandler(exports.RedisHandler):
    async def handle_message(self, message: bytes) -> None:
        if message == b"trap":
            raise RuntimeError("trap requested")  # not the interface's Err: the instance traps
        if message == b"loop":
            while True:  # burns CPU until the host interrupts it at its deadline
                pass
        why = await record(message)
        if why is not None:
            raise Err(redis_wit.Error_Other(why))
