"""A Redis message handler written with the Spin Python SDK: `handle_message` runs once for every
message published on the channel in spin.toml's `[[trigger.redis]]`."""
from spin_sdk.wit import exports


class RedisHandler(exports.RedisHandler):
    async def handle_message(self, message: bytes) -> None:
        # Printed lines go to .boson/logs/{{name}}.stdout.log (`boson up --follow {{name}}` shows them).
        print(f"{{name}} received: {message.decode('utf-8', 'replace')}", flush=True)
