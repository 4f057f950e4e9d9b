// The service's signing key: a KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256), so the private key never leaves
// KMS. Only the completion worker may sign with it (the 'sign:build' grant); GET /v2/keys serves its public half
// from the database, where the signer records it.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export class SigningKey extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'enot-builder: signs build statements, ERTS statements and checksum indexes (ECDSA P-256)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // Every signature ever served names this key: deleting it would leave nothing to re-sign with, so it stays.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
