// A checker of SigV4 presigned requests in front of s3rver, which checks no V4 signature itself: a request signed in
// its query string whose signature, credential or lifetime does not hold is refused with 403, as S3 refuses it;
// every request that holds, and every other request (the SDK's own, signed in headers), is passed on unchanged.
// It also stands in for S3's checks of a browser-style POST Object upload, which s3rver accepts without reading
// its policy or checksum: the policy's SigV4 signature, its expiry and every condition, and the body against
// x-amz-checksum-sha256 (BadDigest), and it hands that checksum back on a HEAD or GET with x-amz-checksum-mode,
// as S3 keeps it with the object. Written from the SigV4 and POST policy specifications, not with the SDK's
// signer, so the two can disagree.
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
  /** The query-signed requests and POST uploads refused so far, with why. */
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

function refuse(res: ServerResponse, code: string, message: string, status = 403): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** One part of a multipart/form-data body. */
interface FormPart { name: string; filename?: string; value: Buffer }

/** The parts of a multipart/form-data body (RFC 7578), or undefined when it is not one. */
function parseMultipart(contentType: string | undefined, body: Buffer): FormPart[] | undefined {
  const boundary = /^multipart\/form-data;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  if (!boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const parts: FormPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) return undefined;
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') return parts;
    const headersEnd = body.indexOf('\r\n\r\n', at);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headersEnd);
    if (headersEnd < 0 || next < 0) return undefined;
    const headers = body.subarray(at, headersEnd).toString('utf8');
    const disposition = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1];
    if (name === undefined) return undefined;
    const filename = /\bfilename="([^"]*)"/.exec(disposition)?.[1];
    parts.push({ name, ...(filename !== undefined ? { filename } : {}), value: body.subarray(headersEnd + 4, next) });
    at = next + 2;
  }
}

/** S3's POST policy conditions: `{field: value}`, ["eq" | "starts-with", "$field", value], ["content-length-range", min, max]. */
type PolicyCondition = Record<string, string> | [string, string | number, string | number];

/** Fields no condition need cover (S3's rule): the signature, the policy, the file and x-ignore-*. */
const UNCONDITIONED_FIELD = /^(x-amz-signature|policy|file|x-ignore-.*)$/i;

/**
 * Why a POST Object upload to `bucket` does not hold, as S3 would answer it (status, code, message), or the key it
 * may store with its checksum. Every check S3 makes of a form is made here; s3rver makes none of them.
 */
function postRefusal(
  parts: FormPart[], bucket: string, credentials: { accessKeyId: string; secretAccessKey: string }, now: number,
): { status: number; code: string; reason: string } | { key: string; checksum?: string } {
  const denied = (reason: string) => ({ status: 403, code: 'AccessDenied', reason });
  const fileAt = parts.findIndex((part) => part.name === 'file');
  if (fileAt < 0) return { status: 400, code: 'InvalidArgument', reason: 'POST requires exactly one file upload per request.' };
  // S3 ignores whatever follows the file.
  const fields = new Map(parts.slice(0, fileAt).map((part) => [part.name.toLowerCase(), part.value.toString('utf8')]));
  const file = parts[fileAt].value;
  const policyText = fields.get('policy');
  const signature = fields.get('x-amz-signature');
  const credential = fields.get('x-amz-credential') ?? '';
  const amzDate = fields.get('x-amz-date') ?? '';
  if (!policyText || !signature || fields.get('x-amz-algorithm') !== ALGORITHM) return denied('incomplete POST policy signature');
  const [accessKeyId, day, region, service, terminator] = credential.split('/');
  if (accessKeyId !== credentials.accessKeyId) return denied(`unknown access key ${accessKeyId}`);
  if (terminator !== 'aws4_request' || service !== 's3' || day !== amzDate.slice(0, 8)) return denied('malformed credential scope');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), 'aws4_request');
  if (hmac(key, policyText).toString('hex') !== signature) {
    return { status: 403, code: 'SignatureDoesNotMatch', reason: 'signature does not match' };
  }

  let policy: { expiration?: unknown; conditions?: unknown };
  try {
    policy = JSON.parse(Buffer.from(policyText, 'base64').toString('utf8')) as typeof policy;
  } catch {
    return { status: 400, code: 'InvalidPolicyDocument', reason: 'Invalid Policy: Invalid JSON.' };
  }
  const expiration = Date.parse(String(policy.expiration));
  if (!Number.isFinite(expiration) || !Array.isArray(policy.conditions)) {
    return { status: 400, code: 'InvalidPolicyDocument', reason: 'Invalid Policy: no expiration or conditions.' };
  }
  if (now > expiration) return denied('Invalid according to Policy: Policy expired.');

  const valueOf = (name: string) => (name.toLowerCase() === 'bucket' ? bucket : fields.get(name.toLowerCase()));
  const covered = new Set<string>(['bucket']);
  for (const condition of policy.conditions as PolicyCondition[]) {
    const failed = denied(`Invalid according to Policy: Policy Condition failed: ${JSON.stringify(condition)}`);
    if (!Array.isArray(condition)) {
      const entries = Object.entries(condition);
      if (entries.length !== 1) return failed;
      const [[name, value]] = entries;
      covered.add(name.toLowerCase());
      if (valueOf(name) !== value) return failed;
      continue;
    }
    const [op, subject, operand] = condition;
    if (op === 'content-length-range') {
      if (file.length < Number(subject) || file.length > Number(operand)) {
        return { status: 400, code: file.length > Number(operand) ? 'EntityTooLarge' : 'EntityTooSmall', reason: 'Your proposed upload is outside the allowed size.' };
      }
      continue;
    }
    if (typeof subject !== 'string' || !subject.startsWith('$') || typeof operand !== 'string') return failed;
    const name = subject.slice(1);
    covered.add(name.toLowerCase());
    const value = valueOf(name);
    if (value === undefined) return failed;
    if (op === 'eq' ? value !== operand : op === 'starts-with' ? !value.startsWith(operand) : true) return failed;
  }
  for (const name of fields.keys()) {
    if (!UNCONDITIONED_FIELD.test(name) && !covered.has(name)) {
      return denied(`Invalid according to Policy: Extra input fields: ${name}`);
    }
  }

  const objectKey = fields.get('key');
  if (!objectKey) return { status: 400, code: 'InvalidArgument', reason: "Bucket POST must contain a field named 'key'." };
  const checksum = fields.get('x-amz-checksum-sha256');
  const algorithm = fields.get('x-amz-checksum-algorithm');
  if (algorithm !== undefined && algorithm.toUpperCase() !== 'SHA256') {
    return { status: 400, code: 'InvalidRequest', reason: `the checksum given is not for ${algorithm}` };
  }
  if (checksum !== undefined && createHash('sha256').update(file).digest('base64') !== checksum) {
    return { status: 400, code: 'BadDigest', reason: 'The SHA256 you specified did not match the calculated checksum.' };
  }
  return { key: objectKey, ...(checksum !== undefined ? { checksum } : {}) };
}

/** Starts the checker on a free port, forwarding to `target` (s3rver's endpoint). */
export async function startSigV4CheckingProxy(
  target: string, credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<SigV4CheckingProxy> {
  const upstream = new URL(target);
  const proxy: Omit<SigV4CheckingProxy, 'endpoint' | 'close'> = { now: () => Date.now(), refused: [] };
  // The x-amz-checksum-sha256 of each object uploaded by a checked POST, by "bucket/key", as S3 keeps it.
  const checksums = new Map<string, string>();
  const pass = (req: IncomingMessage, res: ServerResponse, body?: Buffer, after?: (status: number) => void) => {
    const objectPath = decodeURIComponent((req.url ?? '/').split('?')[0].slice(1));
    const out = forward({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
    }, (answer) => {
      const status = answer.statusCode ?? 502;
      after?.(status);
      const stored = checksums.get(objectPath);
      const headers = { ...answer.headers };
      if (stored && (req.method === 'HEAD' || req.method === 'GET') && status < 300
        && String(req.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED') {
        headers['x-amz-checksum-sha256'] = stored;
        headers['x-amz-checksum-type'] = 'FULL_OBJECT';
      }
      res.writeHead(status, headers);
      answer.pipe(res);
    });
    out.on('error', (error) => {
      res.destroy(error);
    });
    // Any other write replaces the object, and the checksum S3 kept with it.
    if (req.method === 'PUT' || req.method === 'DELETE') checksums.delete(objectPath);
    if (body) out.end(body);
    else req.pipe(out);
  };
  const server = createServer((req, res) => {
    const bucketPost = req.method === 'POST' && /^\/[^/?]+\/?(\?|$)/.test(req.url ?? '') && !/[?&]X-Amz-Signature=/.test(req.url ?? '');
    if (bucketPost) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const bucket = decodeURIComponent((req.url ?? '/').split('?')[0].split('/')[1]);
        const parts = parseMultipart(req.headers['content-type'], body);
        const checked = parts
          ? postRefusal(parts, bucket, credentials, proxy.now())
          : { status: 412, code: 'PreconditionFailed', reason: 'Bucket POST must be of the enclosure-type multipart/form-data' };
        if ('reason' in checked) {
          proxy.refused.push({ method: 'POST', path: (req.url ?? '').split('?')[0], reason: checked.reason });
          refuse(res, checked.code, checked.reason, checked.status);
          return;
        }
        const objectPath = `${bucket}/${checked.key}`;
        pass(req, res, body, (status) => {
          if (status >= 300) return;
          if (checked.checksum) checksums.set(objectPath, checked.checksum);
          else checksums.delete(objectPath);
        });
      });
      return;
    }
    const querySigned = /[?&]X-Amz-Signature=/.test(req.url ?? '');
    const reason = querySigned ? refusal(req, credentials, proxy.now()) : undefined;
    if (reason) {
      proxy.refused.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], reason });
      req.resume();
      refuse(res, reason === 'request has expired' ? 'AccessDenied' : 'SignatureDoesNotMatch', reason);
      return;
    }
    pass(req, res);
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
