// cdk-nag findings this service acknowledges on purpose: how a finding id names a resource, and the ones every
// ServiceFunction carries, each with the reason it stands.
import { Stack, Validations } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import type { Grant } from '#functions/routes.js';
import { BLOB_DELETE_PREFIXES, BLOB_READ_PREFIXES, BUILD_OUTPUT_PREFIXES, INDEX_PREFIX } from './grants.js';

/**
 * How cdk-nag spells a (possibly tokenized) value in a finding id, e.g. `<BucketF00.Arn>/logs/*`, so an
 * acknowledgement can name exactly one finding. Mirrors cdk-nag's flattening of CloudFormation intrinsics.
 */
export function nagName(scope: IConstruct, value: string): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    const fn = node as Record<string, unknown>;
    if (fn['Fn::Join']) {
      const [delimiter, items] = fn['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if (fn['Fn::Sub']) return visit(fn['Fn::Sub']);
    if (fn['Fn::GetAtt']) {
      const [resource, attribute] = fn['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if (fn['Fn::ImportValue']) return visit(fn['Fn::ImportValue']);
    if (fn.Ref) return `<${visit(fn.Ref)}>`;
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}

/** What a function's findings depend on: what it is granted, on which bucket, and whether it is traced. */
export interface FunctionFindingsInput {
  grants: readonly Grant[];
  bucket?: s3.IBucket;
  tracing?: boolean;
}

/** Acknowledges, on `scope` (a ServiceFunction), the findings its runtime, tracing and bucket grants raise. */
export function acknowledgeFunctionFindings(scope: IConstruct, { grants, bucket, tracing }: FunctionFindingsInput): void {
  Validations.of(scope).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Pinned to Node.js 22 on purpose: the bundle target (infra/bundling.ts, node22) and the tests match it; ' +
      'move runtime and target together.',
  });
  if (tracing) {
    Validations.of(scope).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.',
    });
  }
  if (grants.includes('blob:read') && bucket) {
    for (const prefix of BLOB_READ_PREFIXES) {
      Validations.of(scope).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagName(scope, bucket.arnForObjects(`${prefix}*`))}]`,
        reason:
          `Downloads hand out presigned URLs for any package, ERTS tarball or build log, so GetObject covers ` +
          `every key under ${prefix} and nothing outside the three read prefixes.`,
      });
    }
  }
  if ((grants.includes('blob:read-index') || grants.includes('blob:write-index')) && bucket) {
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagName(scope, bucket.arnForObjects(`${INDEX_PREFIX}*`))}]`,
      reason:
        `The checksum indexes are one pair of keys per OTP release (${INDEX_PREFIX}<release>.txt and .txt.sig), ` +
        'and releases are added without a deploy; the prefix holds nothing else.',
    });
  }
  if (grants.includes('blob:upload-build') && bucket) {
    for (const prefix of BUILD_OUTPUT_PREFIXES) {
      Validations.of(scope).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagName(scope, bucket.arnForObjects(`${prefix}*`))}]`,
        reason:
          `Each build's keys are named after its build id, made per request, so the PutObject the dispatcher's ` +
          `presigned upload URLs carry covers ${prefix}; every URL it signs names one key of one build.`,
      });
    }
  }
  if (grants.includes('blob:delete') && bucket) {
    for (const prefix of BLOB_DELETE_PREFIXES) {
      Validations.of(scope).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagName(scope, bucket.arnForObjects(`${prefix}*`))}]`,
        reason:
          `The retention sweep deletes the expired logs and superseded packages it finds in the database, any key ` +
          `under ${prefix}; DeleteObject only adds a delete marker in the versioned bucket, and erts/ is not covered.`,
      });
    }
  }
}
