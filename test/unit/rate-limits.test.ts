// Who a request counts against: the source address, and X-Forwarded-For only as far as trusted proxies passed it on.
import { describe, expect, it } from 'vitest';
import { clientAddress } from '#core/rate-limits.js';

describe('clientAddress', () => {
  it('is the source address, whatever X-Forwarded-For says, when no proxy is trusted', () => {
    expect(clientAddress('203.0.113.7', '10.0.0.1', [])).toBe('203.0.113.7');
  });

  it('spells an IPv4-mapped IPv6 address as the IPv4 address', () => {
    expect(clientAddress('::ffff:127.0.0.2', undefined, [])).toBe('127.0.0.2');
  });

  it('ignores X-Forwarded-For from an address that is not a trusted proxy', () => {
    expect(clientAddress('203.0.113.7', '10.0.0.1', ['192.0.2.1'])).toBe('203.0.113.7');
  });

  it('takes, from a trusted proxy, the rightmost address that is not a trusted proxy', () => {
    // The client wrote 6.6.6.6 itself; the outer proxy 192.0.2.2 added 198.51.100.4, the inner one 192.0.2.2.
    expect(clientAddress('192.0.2.1', '6.6.6.6, 198.51.100.4, 192.0.2.2', ['192.0.2.1', '192.0.2.2'])).toBe('198.51.100.4');
  });

  it('stops at an entry that is no address, at the proxy that passed it on', () => {
    expect(clientAddress('192.0.2.1', 'evil, not-an-ip', ['192.0.2.1'])).toBe('192.0.2.1');
  });

  it('counts a request without a source address as one unknown client', () => {
    expect(clientAddress(undefined, undefined, [])).toBe('unknown');
  });
});
