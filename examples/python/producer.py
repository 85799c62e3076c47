"""Publishes one envelope to Instant and prints the bridge's receipt.

    pip install -r requirements.txt     (nats-py 2.16.0)
    python3 producer.py [channel] [message]      (NATS_URL, default nats://127.0.0.1:4222)
"""
import asyncio
import json
import os
import sys

import nats


async def main() -> int:
    channel = sys.argv[1] if len(sys.argv) > 1 else "public"
    message = sys.argv[2] if len(sys.argv) > 2 else "hello from Python"
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"), name="instant-example-python")
    try:
        envelope = {"channel": channel, "message": message, "event_class": "example", "data": {"from": "python"}}
        # A request: the bridge answers once Centrifugo accepted the message.
        reply = await nc.request("instant.publish", json.dumps(envelope).encode(), timeout=5)
        receipt = json.loads(reply.data)
        print(json.dumps(receipt, separators=(",", ":")))
        return 0 if receipt.get("ok") else 1
    finally:
        await nc.drain()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
