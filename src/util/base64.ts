/**
 * The bytes of base64 text, standard or URL-safe alphabet, padded or not. `atob`, not Buffer: runtime-agnostic.
 * Throws (a DOMException from `atob`) when the text is not base64.
 */
export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
