// The one bucket: packages under artifacts/, ERTS tarballs under erts/, build logs under logs/.
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { RETENTION_DEFAULTS } from '#core/retention.js';

/**
 * Days an expired build log's bytes outlive it as a noncurrent version: a log past its retention is gone, not
 * recoverable for another half year like an overwritten package.
 */
export const EXPIRED_LOG_NONCURRENT_DAYS = 1;

export interface StorageProps {
  /** Days a build log stays before S3 expires it: ENOT_LOG_RETENTION_DAYS's default, which the functions use. @default 180 */
  logRetentionDays?: number;
  /** Days an overwritten or deleted object's old version is kept. @default 180 */
  noncurrentRetentionDays?: number;
  /** S3 server access logs into a second bucket. @default false */
  accessLogs?: boolean;
}

export class Storage extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogsBucket?: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    // S3 log delivery by bucket policy rather than the legacy ACL, so both buckets can disable ACLs.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);

    if (props.accessLogs) {
      this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        // Server access logging delivers only into SSE-S3 buckets.
        encryption: s3.BucketEncryption.S3_MANAGED,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      autoDeleteObjects: false,
      lifecycleRules: [
        {
          // Also what a superseded package the retention sweep deleted (a delete marker) stays recoverable for.
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(props.noncurrentRetentionDays ?? 180),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        // The same days as the sweep's, which marks the builds' rows so /build_log says the log expired. Superseded
        // packages are not a lifecycle rule: S3 cannot tell which are superseded, the sweep deletes them by key.
        // Where rules overlap, S3 applies the shortest expiration, so an expired log's bytes go a day later.
        {
          id: 'expire-build-logs',
          prefix: 'logs/',
          expiration: Duration.days(props.logRetentionDays ?? RETENTION_DEFAULTS.logDays),
          noncurrentVersionExpiration: Duration.days(EXPIRED_LOG_NONCURRENT_DAYS),
        },
      ],
      ...(this.accessLogsBucket
        ? { serverAccessLogsBucket: this.accessLogsBucket, serverAccessLogsPrefix: 'artifacts-bucket/' }
        : {}),
    });
    if (!this.accessLogsBucket) {
      Validations.of(this.bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          'Server access logs are off by default to save a second bucket: every read goes through a presigned URL ' +
          'that an API function issued and logged (API access log), and only the build role writes. ' +
          'Set the bucketAccessLogs context to true to turn them on.',
      });
    }
  }
}
