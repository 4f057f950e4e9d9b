// The local Mailer: each mail becomes an .eml file (RFC 5322, readable by any mail client) in a directory.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Mail, Mailer } from '#core/ports.js';

/** A header value on one line: a CR or LF in it would start a header of its own. */
function headerValue(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** RFC 2047 for a subject that is not plain ASCII. */
function encodeSubject(s: string): string {
  const line = headerValue(s);
  return /^[\x20-\x7e]*$/.test(line) ? line : `=?UTF-8?B?${Buffer.from(line, 'utf8').toString('base64')}?=`;
}

export class EmlMailer implements Mailer {
  constructor(private readonly dir: string, private readonly from = 'enot-builder@localhost') {}

  async send(mail: Mail): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const now = new Date();
    const text = [
      `From: ${headerValue(this.from)}`,
      `To: ${headerValue(mail.to)}`,
      `Subject: ${encodeSubject(mail.subject)}`,
      `Date: ${now.toUTCString()}`,
      `Message-ID: <${randomUUID()}@enot-builder.local>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      mail.text.replace(/\r?\n/g, '\r\n'),
    ].join('\r\n');
    // Written whole under a temporary name, so a reader never sees half a message.
    const name = `${now.toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}.eml`;
    const tmp = join(this.dir, `.${name}.tmp`);
    await writeFile(tmp, text, 'utf8');
    await rename(tmp, join(this.dir, name));
  }
}
