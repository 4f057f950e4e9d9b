// Percent-decoding of request target parts that never throws: what is not valid becomes U+FFFD, which the
// parameter check (parameter-text.ts) then refuses with a 400 naming the parameter.

const ESCAPE = /%[0-9A-Fa-f]{2}/y;
const text = new TextEncoder();

/**
 * `decodeURIComponent`, except that a malformed escape (`%zz`, a lone `%`) and bytes that are not UTF-8
 * (`%ff`, an encoded surrogate) decode to U+FFFD instead of throwing.
 */
export function decodeComponent(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return decodeLoosely(s);
  }
}

/** A query string's name or value: `+` is a space (application/x-www-form-urlencoded), then as above. */
export function decodeQueryComponent(s: string): string {
  return decodeComponent(s.includes('+') ? s.replaceAll('+', ' ') : s);
}

function decodeLoosely(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length;) {
    ESCAPE.lastIndex = i;
    if (ESCAPE.test(s)) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
      continue;
    }
    if (s[i] === '%') {
      // The UTF-8 of U+FFFD, so the malformed escape is marked in the decoded text.
      bytes.push(0xef, 0xbf, 0xbd);
      i++;
      continue;
    }
    const cp = s.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    for (const b of text.encode(s.slice(i, i + width))) bytes.push(b);
    i += width;
  }
  return Buffer.from(bytes).toString('utf8');
}
