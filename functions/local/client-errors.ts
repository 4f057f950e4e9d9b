// What the local server answers when node's HTTP parser refuses a request (bad request line, bad header bytes,
// headers too large, a request too slow): the legacy envelope, as every other error, then the connection closes.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { fail, type HttpResult } from '#http/envelope.js';
import { REQUEST_ID_HEADER } from '#http/observability.js';
import type { RequestLogger } from '#functions/log.js';

export interface ParserLimits {
  maxHeaderBytes: number;
  headersTimeoutS: number;
  requestTimeoutS: number;
}

interface ParserError extends Error {
  code?: string;
  /** llhttp's reason, e.g. "Invalid header value char". */
  reason?: string;
}

/** The envelope for one parser error; `Bad request: <llhttp's reason>` unless node has a status of its own for it. */
export function parserErrorResult(error: ParserError, limits: ParserLimits): HttpResult {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return fail(431, `Request header fields too large (limit ${limits.maxHeaderBytes} bytes for the request line and headers)`);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return fail(413, 'Request body too large: chunk extensions over the limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return fail(408, `Request timeout: headers must arrive within ${limits.headersTimeoutS} s and the whole request within ${limits.requestTimeoutS} s`);
    default: {
      const reason = error.reason ?? error.message.replace(/^Parse Error: /, '');
      // llhttp's reasons are fixed ASCII sentences; anything else is not echoed.
      const printable = /^[\x20-\x7e]{1,200}$/.test(reason) ? reason : 'malformed request';
      return fail(400, `Bad request: ${printable}${error.code?.startsWith('HPE_') ? ` (${error.code})` : ''}`);
    }
  }
}

/** The result as raw HTTP/1.1 bytes, with a request id and `Connection: close`: no parser is left to frame it. */
function rawAnswer(result: HttpResult, requestId: string): string {
  const body = result.body;
  const head = [
    `HTTP/1.1 ${result.statusCode} ${STATUS_CODES[result.statusCode] ?? 'Error'}`,
    ...Object.entries(result.headers ?? {}).map(([k, v]) => `${k}: ${String(v)}`),
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}`,
    `${REQUEST_ID_HEADER}: ${requestId}`,
    'Connection: close',
  ];
  return `${head.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * The server's 'clientError' listener. Like node's own, it answers only when nothing of a response has been
 * written on the connection yet (else the answer would corrupt the one in progress), and it always closes the
 * connection. A client that reset the connection gets nothing and is no error.
 */
export function clientErrorListener(limits: ParserLimits, log: () => RequestLogger) {
  return (error: ParserError, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // node's own handler checks the same (private) field: the response in progress on this connection.
    const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    const requestId = randomUUID();
    const result = parserErrorResult(error, limits);
    log().info('request refused by the HTTP parser', {
      requestId, status: result.statusCode, code: error.code, reason: error.reason,
    });
    if (current && current.headersSent) {
      socket.destroy();
      return;
    }
    socket.end(rawAnswer(result, requestId));
    // end() flushes the answer first; a client that never reads must not keep the socket.
    socket.once('finish', () => socket.destroy());
  };
}
