// The Mailer on SES (AWS runtime): a plain-text SendEmail from the stack's verified sender address.
// The SDK is loaded on first use, not at import: only the completion worker ever mails.
import type { SendEmailCommandInput, SESClient, SESClientConfig } from '@aws-sdk/client-ses';
import type { Mail, Mailer } from '#core/ports.js';
import { lazyRequire } from '#adapters/lazy-require.js';

type SesSdk = typeof import('@aws-sdk/client-ses');

const sesSdk = lazyRequire<SesSdk>('@aws-sdk/client-ses');

export interface SesMailerOptions {
  /** The From address: an SES-verified identity (ENOT_MAIL_FROM). */
  from: string;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: SESClient;
  clientConfig?: SESClientConfig;
}

/** A header value on one line: a CR or LF in it would start a header of its own. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

export class SesMailer implements Mailer {
  private client: SESClient | undefined;

  constructor(private readonly options: SesMailerOptions) {
    this.client = options.client;
  }

  /** The SendEmail request for a mail; SES encodes a non-ASCII subject itself from the charset. */
  sendEmailInput(mail: Mail): SendEmailCommandInput {
    return {
      Source: this.options.from,
      Destination: { ToAddresses: [mail.to] },
      Message: {
        Subject: { Data: oneLine(mail.subject), Charset: 'UTF-8' },
        Body: { Text: { Data: mail.text, Charset: 'UTF-8' } },
      },
    };
  }

  async send(mail: Mail): Promise<void> {
    const sdk = sesSdk();
    this.client ??= new sdk.SESClient(this.options.clientConfig ?? {});
    await this.client.send(new sdk.SendEmailCommand(this.sendEmailInput(mail)));
  }
}
