import { platformAddress } from "../../routes/ratelimit.js";

/** Vercel sets these itself (overwriting what a client sends): the client's address as its edge saw it. */
export const VERCEL_CLIENT_ADDRESS = platformAddress("x-real-ip", "x-vercel-forwarded-for");
