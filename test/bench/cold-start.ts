// Lambda cold start: bundles every route's entry the way the stack does (infra/bundling.ts), then times,
// in fresh Node processes, import of the bundle plus its first API Gateway event, against an empty
// handler bundled the same way. The AWS runtime runs against local stand-ins: the Data API test
// server over the bench database and s3rver.
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { routes, type Route } from '#functions/routes.js';
import { startDataApiServer } from '#support/data-api-server.js';
import { S3RVER_CREDENTIALS, startS3rver } from '#support/s3rver.js';
import { esbuildOptions } from '../../infra/bundling.js';
import type { ColdStartSample } from './cold-start-child.js';

/** The webhook secret of the cold-start runs: /callback verifies a signed ping, as GitHub sends one. */
const COLD_START_WEBHOOK_SECRET = 'enot-bench-webhook-secret';

const FUNCTIONS_DIR = fileURLToPath(new URL('../../functions/', import.meta.url));
const CHILD_SOURCE = fileURLToPath(new URL('./cold-start-child.ts', import.meta.url));
const EMPTY_SOURCE = fileURLToPath(new URL('./empty-handler.ts', import.meta.url));
const SPAWN_TIMEOUT_MS = 30_000;
export const EMPTY_HANDLER = 'empty handler';

/** What the first events ask for: a package, version and build that exist in the bench database. */
export interface ColdStartFixture {
  fullName: string;
  ref: string;
  erlVersion: string;
  buildId: string;
}

export interface ColdStartRow {
  name: string;
  entry: string;
  bundleBytes: number;
  /** Medians over the repetitions, in ms. */
  importMs: number;
  firstEventMs: number;
  /** import + first event: the figure the target compares. */
  coldMs: number;
  /** Since the process started (Node's start-up included). */
  processMs: number;
  statusCode: number;
  repetitions: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `01/May/2024:12:07:31 +0000`, as API Gateway writes requestContext.requestTime. */
function requestTime(at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(at.getUTCDate())}/${MONTHS[at.getUTCMonth()]}/${at.getUTCFullYear()}:${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())} +0000`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A REST API (v1) proxy event as API Gateway sends it for `route`, with realistic headers and context. */
function apiGatewayEvent(route: Route, fixture: ColdStartFixture): Record<string, unknown> {
  const pathParameters: Record<string, string> = {};
  const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    pathParameters[name] = name === 'id' ? fixture.buildId : name === 'version' ? fixture.erlVersion : 'x';
    return pathParameters[name];
  });
  const queries: Record<string, Record<string, string>> = {
    search: { name: fixture.fullName.split('/')[1] },
    'build-log': { build_id: fixture.buildId },
    'last-builds': { n: '20' },
  };
  const query = queries[route.name] ?? null;
  // The build routes get what they get in production: a request for a version already built (answered from
  // the database, build once), a rebuild of an existing build, and GitHub's signed ping.
  const bodies: Record<string, unknown> = {
    'build-async': {
      full_name: fixture.fullName, clone_url: `https://github.com/${fixture.fullName}.git`,
      versions: { ref: fixture.ref, erl_version: fixture.erlVersion }, notify_email: false,
    },
    rebuild: { build_id: fixture.buildId },
    callback: { zen: 'Keep it logically awesome.', hook_id: 1, repository: { full_name: fixture.fullName } },
  };
  const body = route.method === 'POST'
    ? JSON.stringify(bodies[route.name] ?? { full_name: fixture.fullName, versions: { ref: fixture.ref, erl_version: fixture.erlVersion } })
    : null;
  const webhook: Record<string, string> = route.name === 'callback' && body
    ? {
      'X-GitHub-Event': 'ping',
      'X-GitHub-Delivery': randomUUID(),
      'X-Hub-Signature-256': `sha256=${createHmac('sha256', COLD_START_WEBHOOK_SECRET).update(body).digest('hex')}`,
    }
    : {};
  const host = 'k3x9q2m7ab.execute-api.eu-west-1.amazonaws.com';
  const now = new Date();
  const headers: Record<string, string> = {
    Accept: '*/*',
    'Accept-Encoding': 'gzip, deflate',
    Host: host,
    'User-Agent': 'python-requests/2.31.0',
    'X-Amzn-Trace-Id': `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)}`,
    'X-Forwarded-For': '198.51.100.23',
    'X-Forwarded-Port': '443',
    'X-Forwarded-Proto': 'https',
    ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
    ...webhook,
  };
  return {
    resource: route.path,
    path,
    httpMethod: route.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null,
    pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : null,
    stageVariables: null,
    requestContext: {
      resourceId: 'g8j4ua',
      resourcePath: route.path,
      httpMethod: route.method,
      extendedRequestId: 'Xy1AbCdEfGhIjK=',
      requestTime: requestTime(now),
      path: `/prod${path}`,
      accountId: '123456789012',
      protocol: 'HTTP/1.1',
      stage: 'prod',
      domainPrefix: 'k3x9q2m7ab',
      requestTimeEpoch: now.getTime(),
      requestId: randomUUID(),
      identity: { sourceIp: '198.51.100.23', userAgent: 'python-requests/2.31.0', accountId: null, caller: null, user: null, userArn: null },
      domainName: host,
      deploymentId: 'w2z1v8',
      apiId: 'k3x9q2m7ab',
    },
    body,
    isBase64Encoded: false,
  };
}

async function bundle(entry: string, outfile: string): Promise<number> {
  await build({ ...esbuildOptions, entryPoints: [entry], outfile, logLevel: 'silent' });
  return (await stat(outfile)).size;
}

/** One fresh process: Node with the Lambda's NODE_OPTIONS, importing the bundle and serving the event. */
function coldRun(childScript: string, bundlePath: string, eventPath: string, env: Record<string, string>): Promise<ColdStartSample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--enable-source-maps', childScript, bundlePath, eventPath], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 10_000) stderr += chunk.toString('utf8');
    });
    let sample: ColdStartSample | undefined;
    child.on('message', (message: ColdStartSample) => {
      sample = message;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), SPAWN_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (sample) resolve(sample);
      else reject(new Error(`cold start of ${bundlePath} failed (exit ${code}): ${stderr}`));
    });
  });
}

export interface ColdStartOptions {
  outDir: string;
  databaseUrl: string;
  fixture: ColdStartFixture;
  repetitions: number;
  /** Bytes of the artifact put into S3 for the download routes. */
  artifactBytes: number;
}

/** Bundles, measures every route and the empty handler, and returns one row each (the empty one first). */
export async function measureColdStarts(options: ColdStartOptions): Promise<ColdStartRow[]> {
  const { outDir, fixture } = options;
  const bundlesDir = join(outDir, 'bundles');
  const eventsDir = join(outDir, 'events');
  await mkdir(eventsDir, { recursive: true });

  const childScript = join(outDir, 'cold-start-child.mjs');
  await build({ entryPoints: [CHILD_SOURCE], outfile: childScript, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent' });

  const targets: { name: string; entry: string; source: string; route?: Route }[] = [
    { name: EMPTY_HANDLER, entry: 'test/bench/empty-handler.ts', source: EMPTY_SOURCE },
    ...routes.map((route) => ({ name: route.name, entry: `functions/${route.entry}`, source: join(FUNCTIONS_DIR, route.entry), route })),
  ];
  const prepared: { name: string; entry: string; bundlePath: string; eventPath: string; bytes: number }[] = [];
  for (const target of targets) {
    const slug = target.route?.name ?? 'empty';
    const bundlePath = join(bundlesDir, slug, 'index.mjs');
    const bytes = await bundle(target.source, bundlePath);
    const eventPath = join(eventsDir, `${slug}.json`);
    const searchRoute = routes.find((r) => r.name === 'search') ?? routes[0];
    await writeFile(eventPath, JSON.stringify(apiGatewayEvent(target.route ?? searchRoute, fixture)));
    prepared.push({ name: target.name, entry: target.entry, bundlePath, eventPath, bytes });
  }

  const dataApi = await startDataApiServer(options.databaseUrl);
  const s3 = await startS3rver();
  try {
    const put = (key: string, body: Buffer | string, type: string) =>
      s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentType: type }));
    await put(`artifacts/${fixture.buildId}.ep`, Buffer.alloc(options.artifactBytes, 1), 'application/x-tar');
    await put(`logs/${fixture.buildId}.log`, '===> Compiling\nBuild succeeded\n', 'text/plain');
    await put(`erts/erts-${fixture.erlVersion}.tar`, Buffer.alloc(1024, 2), 'application/x-tar');

    // What the stack sets on every function (infra), pointed at the stand-ins; nothing of this shell leaks in.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      ENOT_RUNTIME: 'aws',
      ENOT_LOG_LEVEL: 'info',
      ENOT_DB_CLUSTER_ARN: 'arn:aws:rds:eu-west-1:123456789012:cluster:enot-bench',
      ENOT_DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:enot-bench-AbCdEf',
      ENOT_DB_NAME: 'enot',
      ENOT_BUCKET: s3.bucket,
      ENOT_RDS_DATA_ENDPOINT: dataApi.endpoint,
      ENOT_S3_ENDPOINT: s3.endpoint,
      ENOT_DEFAULT_ERL_VERSION: fixture.erlVersion,
      GIT_SECRET: COLD_START_WEBHOOK_SECRET,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_NAME: 'enot-bench',
      POWERTOOLS_SERVICE_NAME: 'enot-builder',
      POWERTOOLS_METRICS_NAMESPACE: 'EnotBench',
    };
    const samples = new Map<string, ColdStartSample[]>(prepared.map((p) => [p.name, []]));
    // Round-robin, so drift on the machine spreads over every target alike.
    for (let rep = 0; rep < options.repetitions; rep++) {
      for (const p of prepared) samples.get(p.name)!.push(await coldRun(childScript, p.bundlePath, p.eventPath, env));
    }
    return prepared.map((p) => {
      const s = samples.get(p.name)!;
      return {
        name: p.name,
        entry: p.entry,
        bundleBytes: p.bytes,
        importMs: median(s.map((x) => x.importMs)),
        firstEventMs: median(s.map((x) => x.firstEventMs)),
        coldMs: median(s.map((x) => x.importMs + x.firstEventMs)),
        processMs: median(s.map((x) => x.sinceProcessStartMs)),
        statusCode: s[s.length - 1].statusCode,
        repetitions: s.length,
      };
    });
  } finally {
    await s3.close();
    await dataApi.close();
  }
}
