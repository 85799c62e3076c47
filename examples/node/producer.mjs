// Publishes one envelope to Instant and prints the bridge's receipt.
//
//   npm ci && node producer.mjs [channel] [message]     (NATS_URL, default nats://127.0.0.1:4222)
import { connect } from "nats";

const [channel = "public", message = "hello from Node.js"] = process.argv.slice(2);
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", name: "instant-example-node" });
try {
  const envelope = { channel, message, event_class: "example", data: { from: "node" } };
  // A request: the bridge answers once Centrifugo accepted the message.
  const reply = await nc.request("instant.publish", JSON.stringify(envelope), { timeout: 5000 });
  const receipt = reply.json();
  console.log(JSON.stringify(receipt));
  process.exitCode = receipt.ok ? 0 : 1;
} finally {
  await nc.drain();
}
