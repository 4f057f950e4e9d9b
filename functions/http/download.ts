// Turns a BlobStore download (redirect or stream) into an HttpResult, with what is known of its bytes in headers.
import type { Attestation, DownloadResponse } from '#core/ports.js';
import type { HttpResult } from './envelope.js';

/** Quotes, backslashes, control and non-ASCII characters could break out of the header: they become '_'. */
export function attachmentHeader(filename: string): string {
  return `attachment; filename="${filename.replace(/[^\x20-\x7e]|["\\]/g, '_')}"`;
}

/**
 * X-Enot-Sha256 (hex), and for a signed artifact X-Enot-Signature (base64 DER) and X-Enot-Statement (base64 of the
 * statement's bytes, so a client verifies with no second request). Only headers: the bodies stay as the contract says.
 */
export function attestationHeaders(attestation: Attestation | undefined): Record<string, string> {
  if (!attestation) return {};
  const headers: Record<string, string> = { 'X-Enot-Sha256': attestation.sha256 };
  if (attestation.signed) {
    headers['X-Enot-Signature'] = attestation.signed.signature;
    headers['X-Enot-Statement'] = Buffer.from(attestation.signed.statement, 'utf8').toString('base64');
  }
  return headers;
}

export function downloadResult(download: DownloadResponse): HttpResult {
  if (download.kind === 'redirect') {
    // On AWS the headers ride on the redirect: the bytes then come from S3, which cannot add them.
    return {
      statusCode: download.status, headers: { Location: download.location, ...attestationHeaders(download.attestation) }, body: '',
    };
  }
  const headers: Record<string, string> = {
    ...attestationHeaders(download.attestation),
    'Content-Type': download.contentType,
    'Content-Length': String(download.size),
  };
  if (download.filename) headers['Content-Disposition'] = attachmentHeader(download.filename);
  return { statusCode: 200, headers, body: '', stream: download.body };
}
