// A checker of SigV4 presigned URLs in front of s3rver, which checks no V4 signature itself: a request signed in
// its query string whose signature, credential or lifetime does not hold is refused with 403, as S3 refuses it;
// every request that holds, and every other request (the SDK's own, signed in headers), is passed on unchanged.
// Written from the SigV4 specification, not with the SDK's signer, so the two can disagree.
import { createHash, createHmac } from 'node:crypto';
import { createServer, request as forward, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { startS3rver, S3RVER_CREDENTIALS, type TestS3 } from './s3rver.js';

export interface SigV4CheckingProxy {
  /** `http://127.0.0.1:<port>`: presign against this endpoint, and send the presigned requests here. */
  endpoint: string;
  /** The checker's clock, in ms since the epoch; replace it to see how an expired URL is answered. */
  now: () => number;
  /** The query-signed requests refused so far, with why. */
  refused: { method: string; path: string; reason: string }[];
  close(): Promise<void>;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3 refuses a request dated this far ahead of its clock. */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** RFC 3986 encoding, as SigV4 wants query names and values (encodeURIComponent leaves !'()* alone). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** 20261121T011530Z -> ms since the epoch, or NaN. */
function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : Number.NaN;
}

/** Why a query-signed request does not hold, or undefined when it does. */
function refusal(req: IncomingMessage, credentials: { accessKeyId: string; secretAccessKey: string }, now: number): string | undefined {
  const url = req.url ?? '/';
  const at = url.indexOf('?');
  const path = at < 0 ? url : url.slice(0, at);
  const pairs = (at < 0 ? '' : url.slice(at + 1)).split('&').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? [decodeURIComponent(part), ''] : [decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1))];
  });
  const param = (name: string) => pairs.find(([n]) => n === name)?.[1];
  const signature = param('X-Amz-Signature');
  const credential = param('X-Amz-Credential');
  const amzDate = param('X-Amz-Date') ?? '';
  const expires = Number(param('X-Amz-Expires'));
  const signedHeaders = param('X-Amz-SignedHeaders');
  if (param('X-Amz-Algorithm') !== ALGORITHM || !signature || !credential || !signedHeaders) return 'incomplete query signature';
  const [accessKeyId, day, region, service, terminator] = credential.split('/');
  if (accessKeyId !== credentials.accessKeyId) return `unknown access key ${accessKeyId}`;
  if (terminator !== 'aws4_request' || day !== amzDate.slice(0, 8)) return 'malformed credential scope';
  const signedAt = parseAmzDate(amzDate);
  if (!Number.isFinite(signedAt) || !Number.isInteger(expires) || expires < 1 || expires > 7 * 24 * 3600) return 'malformed date or expiry';
  if (now > signedAt + expires * 1000) return 'request has expired';
  if (signedAt > now + MAX_CLOCK_SKEW_MS) return 'request is dated in the future';

  const canonicalQuery = pairs
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [uriEncode(name), uriEncode(value)])
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  let canonicalHeaders = '';
  for (const name of signedHeaders.split(';')) {
    const value = req.headers[name];
    if (value === undefined) return `signed header ${name} is missing`;
    canonicalHeaders += `${name}:${String(value).trim().replace(/\s+/g, ' ')}\n`;
  }
  const canonicalRequest = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), 'aws4_request');
  const expected = hmac(key, stringToSign).toString('hex');
  return expected === signature ? undefined : 'signature does not match';
}

function refuse(res: ServerResponse, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Starts the checker on a free port, forwarding to `target` (s3rver's endpoint). */
export async function startSigV4CheckingProxy(
  target: string, credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<SigV4CheckingProxy> {
  const upstream = new URL(target);
  const proxy: Omit<SigV4CheckingProxy, 'endpoint' | 'close'> = { now: () => Date.now(), refused: [] };
  const server = createServer((req, res) => {
    const querySigned = /[?&]X-Amz-Signature=/.test(req.url ?? '');
    const reason = querySigned ? refusal(req, credentials, proxy.now()) : undefined;
    if (reason) {
      proxy.refused.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], reason });
      req.resume();
      refuse(res, reason === 'request has expired' ? 'AccessDenied' : 'SignatureDoesNotMatch', reason);
      return;
    }
    const out = forward({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (error) => {
      res.destroy(error);
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    }),
  });
}

/** s3rver behind the checker, and an S3BlobStore that signs for the checker's address as the dispatcher signs for S3's. */
export interface CheckedS3 {
  s3: TestS3;
  checker: SigV4CheckingProxy;
  client: S3Client;
  blobs: S3BlobStore;
  close(): Promise<void>;
}

export async function startCheckedS3(): Promise<CheckedS3> {
  const s3 = await startS3rver();
  const checker = await startSigV4CheckingProxy(s3.endpoint, S3RVER_CREDENTIALS);
  const client = new S3Client({ endpoint: checker.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
  return {
    s3, checker, client,
    blobs: new S3BlobStore({ client, bucket: s3.bucket, presignTtlS: 60 }),
    async close() {
      client.destroy();
      await checker.close();
      await s3.close();
    },
  };
}
