// Turns a BlobStore download (redirect or stream) into an HttpResult.
import type { DownloadResponse } from '#core/ports.js';
import type { HttpResult } from './envelope.js';

/** Quotes, backslashes, control and non-ASCII characters could break out of the header: they become '_'. */
export function attachmentHeader(filename: string): string {
  return `attachment; filename="${filename.replace(/[^\x20-\x7e]|["\\]/g, '_')}"`;
}

export function downloadResult(download: DownloadResponse): HttpResult {
  if (download.kind === 'redirect') {
    return { statusCode: download.status, headers: { Location: download.location }, body: '' };
  }
  const headers: Record<string, string> = {
    'Content-Type': download.contentType,
    'Content-Length': String(download.size),
  };
  if (download.filename) headers['Content-Disposition'] = attachmentHeader(download.filename);
  return { statusCode: 200, headers, body: '', stream: download.body };
}
