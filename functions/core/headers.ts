// HTTP header lookup for the code that reads request headers (the webhook signature, correlation ids, /callback).

/** Headers as API Gateway (one value each) or node (repeated headers as arrays) hand them over. */
export type HeaderMap = Record<string, string | string[] | undefined> | null | undefined;

/** A header's value whatever its case (API Gateway keeps the client's spelling; node lower-cases). */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  // for...in walks own keys in the same order as Object.entries, without building the pairs.
  for (const key in headers) {
    if (!Object.hasOwn(headers, key) || key.toLowerCase() !== wanted) continue;
    const value = headers[key];
    if (value === undefined) continue;
    return Array.isArray(value) ? value.join(',') : value;
  }
  return undefined;
}
