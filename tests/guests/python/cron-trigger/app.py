"""Boson test guest (Python, componentize-py): a cron trigger handler (exports
handle-cron-event, world `local:guest/cron-trigger-app` of tests/guests/wit/triggers.wit) that
records each run's timestamp in Redis through the generated fermyon:spin/redis@2.0.0 and
fermyon:spin/variables@2.0.0 bindings. See tests/guests/README.md ("trigger guests").
With the variable `trap_every_third` = "yes", a run whose timestamp is a multiple of 3 traps
after recording (the trigger must go on).
"""
import wit_world
from componentize_py_types import Err
from wit_world.imports import cron_types, redis, variables


class WitWorld(wit_world.WitWorld):
    def handle_cron_event(self, metadata: cron_types.Metadata) -> None:
        """RPUSH <record_key> <timestamp in decimal>; a variable or Redis error becomes other(...)."""
        try:
            address = variables.get("redis_address")
            key = variables.get("record_key").encode("utf-8")
            with redis.Connection.open(address) as conn:
                conn.execute("RPUSH", [redis.RedisParameter_Binary(key),
                                       redis.RedisParameter_Binary(str(metadata.timestamp).encode("ascii"))])
        except Err as err:  # variables or redis error
            raise Err(cron_types.Error_Other(repr(err.value))) from None
        if metadata.timestamp % 3 == 0 and _variable_or_none("trap_every_third") == "yes":
            raise RuntimeError("trapping on purpose (trap_every_third)")


def _variable_or_none(name: str):
    try:
        return variables.get(name)
    except Err:
        return None
