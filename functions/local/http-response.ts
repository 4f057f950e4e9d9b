// A handler's HttpResult written to a Node response: headers, a body or a stream, and the stream closed however the answer ends.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { HttpResult } from '#http/envelope.js';
import { errorResult } from '#http/errors.js';
import { CORRELATION_ID_HEADER, REQUEST_ID_HEADER } from '#http/observability.js';

const EMPTY = Buffer.alloc(0);

interface Outgoing {
  headers: Record<string, string | string[]>;
  /** The Content-Length the result declares, when it does. */
  contentLength?: string;
}

/** The result's headers and multi-value headers in one object, with the request's ids set. */
function outgoingHeaders(result: HttpResult, requestId: string, correlationId: string): Outgoing {
  const headers: Record<string, string | string[]> = {};
  let contentLength: string | undefined;
  const single = result.headers;
  if (single) {
    for (const name in single) {
      if (!Object.hasOwn(single, name)) continue;
      const value = String(single[name]);
      headers[name] = value;
      if (isContentLength(name)) contentLength = value;
    }
  }
  headers[REQUEST_ID_HEADER] = requestId;
  headers[CORRELATION_ID_HEADER] = correlationId;
  const multi = result.multiValueHeaders;
  if (multi) {
    for (const name in multi) {
      if (!Object.hasOwn(multi, name)) continue;
      headers[name] = multi[name].map(String);
      if (isContentLength(name)) contentLength = headers[name].join(',');
    }
  }
  return { headers, contentLength };
}

function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length';
}

/**
 * The whole body when `stream` already holds all of it in memory (a small file read at once), else
 * undefined. Such a body goes out in one write, with no piping.
 */
function wholeBody(stream: Readable, contentLength: string | undefined): Buffer | undefined {
  if (contentLength === undefined || stream.readableFlowing || stream.destroyed) return undefined;
  // Only a byte stream hands its buffered data back as one Buffer.
  if (stream.readableObjectMode || stream.readableEncoding !== null) return undefined;
  const size = Number(contentLength);
  if (!Number.isSafeInteger(size) || stream.readableLength !== size) return undefined;
  if (size === 0) return EMPTY;
  const chunk: unknown = stream.read();
  return Buffer.isBuffer(chunk) && chunk.length === size ? chunk : undefined;
}

/** Settles an answer once its response closes or its connection does, whichever comes first. */
class CloseWatch {
  private readonly listener = this.closed.bind(this);
  private settled = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly socket: Socket,
    private readonly stream: Readable | undefined,
    private readonly resolve: () => void,
  ) {
    res.once('close', this.listener);
    watchersOf(socket).add(this);
  }

  closed(): void {
    if (this.settled) return;
    this.settled = true;
    this.res.off('close', this.listener);
    watching.get(this.socket)?.delete(this);
    // After a complete answer the stream has ended already, and this does nothing.
    this.stream?.destroy();
    this.resolve();
  }
}

// The answers still open on each connection. One 'close' listener per connection, however many
// requests a client pipelines on it.
const watching = new WeakMap<Socket, Set<CloseWatch>>();

function watchersOf(socket: Socket): Set<CloseWatch> {
  let watchers = watching.get(socket);
  if (!watchers) {
    const created = new Set<CloseWatch>();
    socket.once('close', () => {
      for (const watch of created) watch.closed();
    });
    watching.set(socket, created);
    watchers = created;
  }
  return watchers;
}

/**
 * Writes a handler's result; resolves once the response is closed (sent, or the client gone).
 * A body stream is closed on every path: sent whole, piped to its end, the client leaving before or
 * during the answer, or a failure to write.
 *
 * The connection is watched as well as the response: on a keep-alive connection an answer can wait
 * behind the previous one, and if the client goes away meanwhile, node never closes (nor destroys)
 * that waiting response. Piping into it would wait forever, holding the file open.
 */
export function sendResult(
  req: IncomingMessage, res: ServerResponse, result: HttpResult, requestId: string, correlationId: string,
): Promise<void> {
  const stream = result.stream;
  const socket = req.socket;
  if (res.destroyed || socket.destroyed) {
    stream?.destroy();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    new CloseWatch(res, socket, stream, resolve);
    try {
      const { headers, contentLength } = outgoingHeaders(result, requestId, correlationId);
      if (!stream) {
        // A known length instead of chunked encoding, as API Gateway answers.
        const body = result.body ?? '';
        if (result.isBase64Encoded) {
          const bytes = Buffer.from(body, 'base64');
          if (contentLength === undefined) headers['Content-Length'] = String(bytes.length);
          res.writeHead(result.statusCode, headers);
          res.end(bytes);
        } else {
          if (contentLength === undefined) headers['Content-Length'] = String(Buffer.byteLength(body, 'utf8'));
          res.writeHead(result.statusCode, headers);
          // A string goes out in the same write as the head.
          res.end(body, 'utf8');
        }
        return;
      }
      res.writeHead(result.statusCode, headers);
      const whole = wholeBody(stream, contentLength);
      if (whole) {
        res.end(whole);
        stream.destroy();
        return;
      }
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    } catch (e) {
      stream?.destroy();
      if (!res.headersSent) {
        // The result could not be written as it was (an invalid header): answer the 500 instead.
        const fallback = errorResult(e, requestId);
        const { headers } = outgoingHeaders(fallback, requestId, correlationId);
        headers['Content-Length'] = String(Buffer.byteLength(fallback.body, 'utf8'));
        res.writeHead(fallback.statusCode, headers);
        res.end(fallback.body, 'utf8');
      } else {
        res.destroy();
      }
    }
  });
}
