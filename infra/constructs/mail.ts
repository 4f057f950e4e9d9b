// The SES identity build-result emails are sent from, and the one permission that sends from it.
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ses from 'aws-cdk-lib/aws-ses';
import { Construct } from 'constructs';

export interface MailProps {
  /** The From address; SES emails it a verification link on first deploy. */
  senderEmail: string;
}

export class Mail extends Construct {
  readonly identity: ses.EmailIdentity;
  readonly senderEmail: string;

  constructor(scope: Construct, id: string, props: MailProps) {
    super(scope, id);
    this.senderEmail = props.senderEmail;
    this.identity = new ses.EmailIdentity(this, 'Sender', {
      identity: ses.Identity.email(props.senderEmail),
    });
  }

  /** Lets `grantee` send from this identity only (the build-finished worker, with the build pipeline). */
  grantSend(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['ses:SendEmail', 'ses:SendRawEmail'],
      resourceArns: [this.identity.emailIdentityArn],
    });
  }
}
