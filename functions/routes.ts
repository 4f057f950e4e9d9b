// THE route table. CDK makes one Lambda per entry (infra/constructs/api.ts); the local server
// (functions/local/server.ts) mounts the same entries. A new endpoint is one file in api/ and one line here.

/** What a function may touch; infra turns each into the narrowest IAM grant. */
export type Grant =
  | 'db:read'
  | 'db:write'
  | 'blob:read' // GetObject (presigned downloads) on artifacts/, erts/, logs/
  | 'blob:upload-build' // PutObject on artifacts/, logs/: to presign a build's upload URLs, which carry it
  | 'queue:send'
  | 'secret:webhook'
  | 'secret:admin' // GetSecretValue on the admin tokens' secret: the functions that check Bearer tokens
  | 'build:start' // codebuild:StartBuild on the build project
  | 'mail:send' // ses:SendEmail from the sender identity
  | 'sign:build' // kms:Sign and kms:GetPublicKey on the signing key: statements and checksum indexes
  | 'blob:read-index' // GetObject on index/ (the checksum indexes and their signatures)
  | 'blob:write-index' // PutObject on index/: the completion writes the indexes again
  | 'blob:delete'; // DeleteObject on artifacts/, logs/ (never erts/): the retention sweep

export interface Route {
  /** Stable id: names the Lambda function and its log group. */
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** API Gateway resource path; `{param}` segments become pathParameters. A trailing slash is also accepted. */
  path: string;
  /** Module under functions/ exporting `handler`. */
  entry: string;
  /** build requests get tighter throttling than reads */
  kind: 'read' | 'build' | 'ops';
  grants: Grant[];
}

export const routes: Route[] = [
  { name: 'search', method: 'GET', path: '/search', entry: 'api/search.ts', kind: 'read', grants: ['db:read'] },
  { name: 'builds', method: 'POST', path: '/builds', entry: 'api/builds.ts', kind: 'read', grants: ['db:read'] },
  { name: 'versions', method: 'POST', path: '/versions', entry: 'api/versions.ts', kind: 'read', grants: ['db:read'] },
  { name: 'last-builds', method: 'GET', path: '/last_builds', entry: 'api/last-builds.ts', kind: 'read', grants: ['db:read'] },
  { name: 'download', method: 'GET', path: '/download/{id}', entry: 'api/download.ts', kind: 'read', grants: ['db:read', 'blob:read'] },
  { name: 'get', method: 'POST', path: '/get', entry: 'api/get.ts', kind: 'read', grants: ['db:read', 'blob:read'] },
  { name: 'download-erts', method: 'GET', path: '/download_erts/{version}', entry: 'api/download-erts.ts', kind: 'read', grants: ['db:read', 'blob:read'] },
  { name: 'build-log', method: 'GET', path: '/build_log', entry: 'api/build-log.ts', kind: 'read', grants: ['db:read', 'blob:read'] },
  { name: 'build-async', method: 'POST', path: '/buildAsync', entry: 'api/build-async.ts', kind: 'build', grants: ['db:write', 'queue:send'] },
  { name: 'rebuild', method: 'POST', path: '/rebuild', entry: 'api/rebuild.ts', kind: 'build', grants: ['db:write', 'queue:send'] },
  { name: 'callback', method: 'POST', path: '/callback', entry: 'api/callback.ts', kind: 'build', grants: ['db:write', 'queue:send', 'secret:webhook'] },
  { name: 'metrics', method: 'GET', path: '/metrics', entry: 'api/metrics.ts', kind: 'ops', grants: ['db:read'] },
  // blob:read for the blob store check (a HeadObject); it needs s3:ListBucket too, or a missing key answers 403, not 404.
  { name: 'health', method: 'GET', path: '/health', entry: 'api/health.ts', kind: 'ops', grants: ['db:read', 'blob:read'] },
  // /v2 answers errors as RFC 9457 problem details. Keys come from the database: no function but build-finished touches KMS.
  { name: 'v2-keys', method: 'GET', path: '/v2/keys', entry: 'api/v2-keys.ts', kind: 'read', grants: ['db:read'] },
  // One segment per parameter (API Gateway): {file} is `<release>.txt`, `erts.txt` or either's `.sig`, checked by the handler.
  { name: 'v2-index', method: 'GET', path: '/v2/index/{file}', entry: 'api/v2-index.ts', kind: 'read', grants: ['blob:read-index'] },
  // Token-checked (functions/core/authorization.ts): admin only, or the package's owner where it says owner.
  { name: 'v2-admin-conflicts', method: 'GET', path: '/v2/admin/conflicts', entry: 'api/v2-admin-conflicts.ts', kind: 'ops', grants: ['db:read', 'secret:admin'] },
  { name: 'v2-package-tokens', method: 'POST', path: '/v2/packages/{ns}/{name}/tokens', entry: 'api/v2-package-tokens.ts', kind: 'ops', grants: ['db:write', 'secret:admin'] },
  { name: 'v2-package-token', method: 'DELETE', path: '/v2/packages/{ns}/{name}/tokens/{id}', entry: 'api/v2-package-token.ts', kind: 'ops', grants: ['db:write', 'secret:admin'] },
  { name: 'v2-clone-url', method: 'PUT', path: '/v2/packages/{ns}/{name}/clone-url', entry: 'api/v2-clone-url.ts', kind: 'ops', grants: ['db:write', 'secret:admin'] },
  { name: 'v2-build-delete', method: 'DELETE', path: '/v2/builds/{id}', entry: 'api/v2-build-delete.ts', kind: 'ops', grants: ['db:write', 'blob:delete', 'secret:admin'] },
  { name: 'v2-version-delete', method: 'DELETE', path: '/v2/packages/{ns}/{name}/versions/{ref}', entry: 'api/v2-version-delete.ts', kind: 'ops', grants: ['db:write', 'blob:delete', 'secret:admin'] },
  { name: 'v2-package-delete', method: 'DELETE', path: '/v2/packages/{ns}/{name}', entry: 'api/v2-package-delete.ts', kind: 'ops', grants: ['db:write', 'blob:delete', 'secret:admin'] },
  // Owner or admin. The rebuild is not rate-limited (a token is required); the legacy /rebuild stays open and limited.
  { name: 'v2-rebuild', method: 'POST', path: '/v2/builds/{id}/rebuild', entry: 'api/v2-rebuild.ts', kind: 'ops', grants: ['db:write', 'queue:send', 'secret:admin'] },
  { name: 'v2-retire', method: 'PUT', path: '/v2/packages/{ns}/{name}/versions/{ref}/retirement', entry: 'api/v2-retire.ts', kind: 'ops', grants: ['db:write', 'secret:admin'] },
  { name: 'v2-unretire', method: 'DELETE', path: '/v2/packages/{ns}/{name}/versions/{ref}/retirement', entry: 'api/v2-unretire.ts', kind: 'ops', grants: ['db:write', 'secret:admin'] },
];

/** A function that is not behind the API: queue consumers, event handlers, schedules (functions/workers/). */
export interface Worker {
  name: string;
  /** Module under functions/ exporting `handler`. */
  entry: string;
  /** What invokes it: the build queue (SQS), CodeBuild's "Build State Change" events, a schedule, or a daily one. */
  trigger: 'build-queue' | 'build-events' | 'schedule' | 'daily';
  grants: Grant[];
}

export const workers: Worker[] = [
  // Claims each queued build and starts it on CodeBuild, with presigned upload URLs for the build's own keys.
  { name: 'start-build', entry: 'workers/start-build.ts', trigger: 'build-queue', grants: ['db:write', 'build:start', 'blob:upload-build'] },
  // Reads a finished build's result, marks it succeeded or failed, mails the result.
  // The only function that signs (statements of successes and ERTS, the checksum indexes it writes again).
  { name: 'build-finished', entry: 'workers/build-finished.ts', trigger: 'build-events', grants: ['db:write', 'blob:read', 'mail:send', 'sign:build', 'blob:write-index'] },
  // Fails builds stuck in flight past the timeout; re-sends builds that sat queued too long.
  { name: 'reap-builds', entry: 'workers/reap-builds.ts', trigger: 'schedule', grants: ['db:write', 'queue:send'] },
  // Expires old build logs and removes the artifacts of superseded builds (functions/core/retention.ts).
  { name: 'sweep-retention', entry: 'workers/sweep-retention.ts', trigger: 'daily', grants: ['db:write', 'blob:delete'] },
];
