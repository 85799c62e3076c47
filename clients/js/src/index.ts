// Instant's browser client: gets tokens from the token service, connects
// to Centrifugo, and hands each message to the handlers that want it.
//
//   <script src="https://tokens.example.com/instant/client.js"></script>
//   const instant = Instant.createInstant({tokenUrl: "https://tokens.example.com", wsUrl: "wss://rt.example.com/connection/websocket"});
//   instant.on("*", (m) => console.log(m.channel, m.message, m.data));
//   instant.start();
import { Centrifuge, UnauthorizedError } from "centrifuge";

import { Client } from "./client";
import type { Instant, InstantOptions } from "./types";

export type {
  Instant,
  InstantChannel,
  InstantFilter,
  InstantIdentity,
  InstantMessage,
  InstantOptions,
  InstantState,
  MessageHandler,
  StateHandler,
} from "./types";
export { TokenServiceError } from "./api";

/** The client's version. */
export const version = "0.1.0";

/** createInstant makes a client; nothing is fetched or connected before start(), login() or whoami(). */
export function createInstant(options: InstantOptions): Instant {
  return new Client(options, { Centrifuge, UnauthorizedError });
}
