"""Boson test guest (Python, componentize-py): a NATS trigger handler (exports
boson:nats/inbound-nats@0.1.0, world `local:guest/nats-trigger-app` of
tests/guests/wit/triggers.wit) that records each message, its subject and headers in Redis through
the generated fermyon:spin/redis@2.0.0 and fermyon:spin/variables@2.0.0 bindings, and replies
"reply:<payload>". See tests/guests/README.md ("trigger guests").
"""
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import redis, types, variables


def trap_or_loop(payload: bytes) -> None:
    if payload == b"trap":
        raise RuntimeError("trap requested")  # not the interface's Err: the instance traps
    if payload == b"loop":
        while True:  # burns CPU until the host interrupts it at its deadline
            pass


def record(payload: bytes, extra: List[Tuple[bytes, List[bytes]]]) -> Optional[str]:
    """RPUSH <record_key> <payload>, then RPUSH <record_key><suffix> <values...> for each entry of
    `extra` with values. Returns None, or why it failed: a variable or Redis error, or the first
    attempt of a "fail-once:" payload (counted by INCR <record_key>:attempts:<payload>)."""
    def binary(value: bytes) -> redis.RedisParameter:
        return redis.RedisParameter_Binary(value)

    try:
        address = variables.get("redis_address")
        key = variables.get("record_key").encode("utf-8")
        with redis.Connection.open(address) as conn:
            if payload.startswith(b"fail-once:"):
                attempts = conn.execute("INCR", [binary(key + b":attempts:" + payload)])
                if attempts == [redis.RedisResult_Int64(1)]:
                    return "fail-once: the first attempt fails"
            conn.execute("RPUSH", [binary(key), binary(payload)])
            for suffix, values in extra:
                if values:
                    conn.execute("RPUSH", [binary(key + suffix)] + [binary(v) for v in values])
    except Err as err:  # variables or redis error
        return repr(err.value)
    return None


class InboundNats(exports.InboundNats):
    def handle_message(self, message: types.Message) -> Optional[bytes]:
        trap_or_loop(message.payload)
        headers = [f"{name}={value}".encode("utf-8") for name, value in message.headers]
        why = record(message.payload, [(b":subjects", [message.subject.encode("utf-8")]),
                                       (b":headers", headers)])
        if why is not None:
            raise Err(types.Error_Other(why))
        return b"reply:" + message.payload
