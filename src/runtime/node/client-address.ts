import { getConnInfo } from "@hono/node-server/conninfo";
import type { ClientAddress } from "../../routes/ratelimit.js";
import { HEADER_NAME } from "../env-schema.js";

/**
 * The client's address on the Node server: the socket's peer, unless `trustProxy` names the header a reverse
 * proxy in front of the server sets (`x-forwarded-for`, `x-real-ip`, …). A header is believed only when named:
 * otherwise any client could pick its own identity and its own rate-limit budget. For a list such as
 * X-Forwarded-For the last entry counts, the one the trusted proxy appended (entries before it came from the
 * client). A request without the header falls back to the socket.
 */
export function nodeClientAddress(trustProxy?: string): ClientAddress {
  const header = trustProxy?.trim().toLowerCase() || undefined;
  if (header !== undefined && !HEADER_NAME.test(header)) {
    throw new Error(
      `edgeml: TRUST_PROXY must name one HTTP header (e.g. x-forwarded-for); got "${trustProxy}"`,
    );
  }
  return (c) => {
    if (header) {
      const listed = c.req.header(header)?.split(",").at(-1)?.trim();
      if (listed) return listed;
    }
    try {
      return getConnInfo(c).remote.address;
    } catch {
      // Not served by @hono/node-server (app.request in tests, the CLI in process): no socket to read.
      return undefined;
    }
  };
}
