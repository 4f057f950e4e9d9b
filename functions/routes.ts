// THE route table. CDK makes one Lambda per entry (infra/constructs/api.ts); the local server
// (functions/local/server.ts) mounts the same entries. A new endpoint is one file in api/ and one line here.

/** What a function may touch; infra turns each into the narrowest IAM grant. */
export type Grant =
  | 'db:read'
  | 'db:write'
  | 'blob:read' // GetObject (presigned downloads) on artifacts/, erts/, logs/
  | 'queue:send'
  | 'secret:webhook';

export interface Route {
  /** Stable id: names the Lambda function and its log group. */
  name: string;
  method: 'GET' | 'POST';
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
  { name: 'metrics', method: 'GET', path: '/metrics', entry: 'api/metrics.ts', kind: 'ops', grants: ['db:read'] },
  // blob:read for the blob store check (a HeadObject); it needs s3:ListBucket too, or a missing key answers 403, not 404.
  { name: 'health', method: 'GET', path: '/health', entry: 'api/health.ts', kind: 'ops', grants: ['db:read', 'blob:read'] },
];
