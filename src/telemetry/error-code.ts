import type { Context } from "hono";

/**
 * The code of the error answer a request got, noted where the `{error, code}` body is made (the app's error handler,
 * its 404, the validation hook, the rate limiter), so that the metrics middleware labels the answer without parsing
 * its body again. An error answer made anywhere else is not noted: the middleware then reads the code from a copy of
 * the body, so every error answer is still counted under its code.
 */
const codes = new WeakMap<Context, string>();

export const noteErrorCode = (c: Context, code: string): void => {
  codes.set(c, code);
};

export const notedErrorCode = (c: Context): string | undefined => codes.get(c);
