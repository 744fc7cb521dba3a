/**
 * Mulberry32: a tiny seeded 32-bit PRNG. Good enough statistically for row subsampling, and it makes training a pure
 * function of its seed: same data + same seed = the same model, byte for byte.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}
