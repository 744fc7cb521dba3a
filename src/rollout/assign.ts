import { z } from "zod";
import { EdgeMLError } from "../errors.js";
import type { Rollout } from "../storage/pointers.js";

/** A canary's weight is applied in ten-thousandths: 0.2 sends the buckets 0..1999 of 10 000 to the challenger. */
export const CANARY_BUCKETS = 10_000;

const encoder = new TextEncoder();

/**
 * FNV-1a (32-bit) over the UTF-8 bytes, then MurmurHash3's 32-bit finalizer. Hand-written because the hash must be
 * synchronous and edge-safe: WebCrypto's SHA-256 is async only, and a hashing package would cost the edge bundle
 * more than these lines. FNV-1a alone mixes its last bytes poorly into the high bits; the finalizer spreads every
 * input bit over the whole word, so client ids that differ only in their last character (client-1, client-2, …)
 * still land in independent buckets. Stable across runtimes and releases: changing it reshuffles every canary.
 */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * The client's bucket in a rollout, 0..9999: salted with the rollout id, so the same client keeps its bucket for the
 * whole rollout and a new rollout draws a fresh share of clients. The separator keeps ("ab", "c") apart from ("a", "bc").
 */
export const canaryBucket = (rolloutId: string, clientKey: string) =>
  stableHash(`${rolloutId}\n${clientKey}`) % CANARY_BUCKETS;

/** Whether a canary rollout sends this client to its challenger. Shadow rollouts never change who serves. */
export function inCanary(rollout: Pick<Rollout, "id" | "mode" | "weight">, clientKey: string): boolean {
  return (
    rollout.mode === "canary" &&
    canaryBucket(rollout.id, clientKey) < Math.round(rollout.weight * CANARY_BUCKETS)
  );
}

/** `x-client-id`: the sticky key a client may send; otherwise its address (as the rate limiter sees it) is used. */
export const CLIENT_ID_HEADER = "x-client-id";

/** Printable ASCII, no spaces at the ends: a key that logs and hashes the same everywhere. */
const CLIENT_ID = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/;

const CLIENT_ID_RULE = `${CLIENT_ID_HEADER} must be 1 to 128 printable ASCII characters without leading or trailing spaces; send a stable id per client, or omit it to be keyed by address`;

/** The header as the OpenAPI routes declare it. */
export const ClientIdSchema = z
  .string()
  .regex(CLIENT_ID, CLIENT_ID_RULE)
  .describe(
    "A stable id of the client: a canary rollout serves each id the same version (default: the address)",
  );

/** Validates a sent `x-client-id` (undefined when none was sent): a bad one is a 400 saying what is allowed. */
export function parseClientId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!CLIENT_ID.test(value)) throw new EdgeMLError("invalid_request", CLIENT_ID_RULE);
  return value;
}
