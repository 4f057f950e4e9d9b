// Every API handler as Lambda runs it: recorded API Gateway proxy events, the AWS adapters on local stand-ins
// (s3rver for S3, the Data API test server for Aurora), answering as the local server does on the same data.
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '#adapters/blob/fs-blob-store.js';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { openDataApiStore } from '#adapters/postgres/open-store.js';
import type { Build } from '#core/model.js';
import type { BlobStore, Store } from '#core/ports.js';
import { loadConfig } from '#functions/config.js';
import { startLocalServer, type LocalServer } from '#functions/local/server.js';
import { routes } from '#functions/routes.js';
import { openMetrics, useDeps, type Deps } from '#functions/wiring.js';
import {
  eventProblems, invokeLambda, listApigwFixtures, loadApigwEvent, placeholdersOf, proxyResultProblems,
  resultHeader, routeOf, toHttpRequest, type LambdaInvocation, type Placeholders,
} from '#support/apigw-events.js';
import { startDataApiServer, type DataApiServer } from '#support/data-api-server.js';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';
import { startS3rver, type TestS3 } from '#support/s3rver.js';
import { idlePipeline } from '#support/pipeline-deps.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const PRESIGN_TTL_S = 120;

// --- the fixtures themselves (no database needed) ---

/** A value for every placeholder any fixture uses, so each can be loaded on its own. */
const SAMPLE_VALUES: Placeholders = {
  name: 'cowboy', firstName: 'nothing', lastName: 'cow', namespace: 'alice', fullName: 'alice/cowboy_utils',
  ref: '1.0.0', otherRef: '1.1.0', erlVersion: '25', release: '25', n: '2', buildId: randomUUID(),
};

describe('recorded API Gateway events', () => {
  it('are consistent REST proxy events for a route of the table', async () => {
    const names = await listApigwFixtures();
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      const event = await loadApigwEvent(name, SAMPLE_VALUES);
      expect(eventProblems(event), name).toEqual([]);
      expect(typeof event.requestContext.requestTimeEpoch, name).toBe('number');
    }
  });

  it('cover every route of the table', async () => {
    const covered = new Set<string>();
    for (const name of await listApigwFixtures()) covered.add(routeOf(await loadApigwEvent(name, SAMPLE_VALUES)).name);
    expect([...covered].sort()).toEqual(routes.map((r) => r.name).sort());
  });

  it('refuse to load with a placeholder left unfilled', async () => {
    expect(await placeholdersOf('download')).toEqual(['buildId']);
    await expect(loadApigwEvent('download')).rejects.toThrow(/\{\{buildId\}\}/);
  });

  it('get a fresh request id and time per load, and a Content-Length of the filled body', async () => {
    const a = await loadApigwEvent('get', { fullName: 'a/b', ref: '1.0.0', erlVersion: '25' });
    const b = await loadApigwEvent('get', { fullName: 'alice/cowboy_utils', ref: '1.0.0', erlVersion: '25' });
    expect(a.requestContext.requestId).not.toBe(b.requestContext.requestId);
    expect(Math.abs(a.requestContext.requestTimeEpoch - Date.now())).toBeLessThan(60_000);
    expect(b.headers['Content-Length']).toBe(String(Buffer.byteLength(b.body!)));
    expect(Number(b.headers['Content-Length']) - Number(a.headers['Content-Length'])).toBe('alice/cowboy_utils'.length - 3);
    expect(JSON.parse(b.body!)).toEqual({ full_name: 'alice/cowboy_utils', versions: [{ ref: '1.0.0', erl_version: '25' }] });
  });

  it('replay as the same HTTP request: method, path, every query value, the client\'s headers and body', async () => {
    const event = await loadApigwEvent('search-repeated-name', { firstName: 'nothing', lastName: 'cow' });
    const { url, init } = toHttpRequest(event, 'http://127.0.0.1:9');
    expect(url).toBe('http://127.0.0.1:9/search?name=nothing&name=cow');
    expect(init.method).toBe('GET');
    expect(init.body).toBeUndefined();
    const headers = init.headers as Headers;
    expect(headers.get('user-agent')).toBe('curl/8.5.0');
    expect(headers.get('x-forwarded-for')).toBe('10.0.4.17, 192.0.2.140');
    expect(headers.has('host')).toBe(false);
    const post = toHttpRequest(await loadApigwEvent('get-malformed-json'), 'http://127.0.0.1:9');
    expect(post.init.method).toBe('POST');
    expect(Buffer.from(post.init.body as Buffer).toString()).toBe('{"full_name": "alice/cowboy_utils", ');
  });
});

describe('the proxy result check', () => {
  it('accepts what API Gateway accepts', () => {
    expect(proxyResultProblems({ statusCode: 200, headers: { 'Content-Type': JSON_TYPE }, body: '{}' })).toEqual([]);
    expect(proxyResultProblems({ statusCode: 302, headers: { Location: 'https://x' }, body: '', isBase64Encoded: false })).toEqual([]);
    expect(proxyResultProblems({ statusCode: 200, multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'] }, body: 'x' })).toEqual([]);
  });

  it('names what would make API Gateway answer 502', () => {
    expect(proxyResultProblems({ statusCode: '200', body: '' })).toEqual(['statusCode "200" is not an HTTP status number']);
    expect(proxyResultProblems({ statusCode: 200, body: { a: 1 } })).toEqual(['body is object, not a string']);
    expect(proxyResultProblems({ statusCode: 200, body: '', headers: { 'Content-Length': 3 } }))
      .toEqual(['header Content-Length is number, not a string']);
    expect(proxyResultProblems({ statusCode: 200, body: '', isBase64Encoded: 'true' })).toEqual(['isBase64Encoded is not a boolean']);
    // A stream the local server would pipe cannot cross the Lambda boundary.
    expect(proxyResultProblems({ statusCode: 200, body: '', stream: {} })).toEqual(['unexpected key stream']);
    expect(proxyResultProblems(undefined)).toEqual(['the result is not an object']);
  });
});

// --- the handlers on both runtimes ---

const BASE = Date.parse('2024-05-01T00:00:00Z');
/** Hour `h` of the seed's timeline (plus minutes, so build_date shows them). */
const T = (h: number) => new Date(BASE + h * 3_600_000 + 13 * 60_000);

interface Seeded extends Build {
  artifact?: Buffer;
  log?: string;
}

describe.skipIf(!TEST_DATABASE_URL)('API handlers on Lambda and on the local server', () => {
  let db: TestDatabase;
  let dataApi: DataApiServer;
  let s3: TestS3;
  let rds: RDSDataClient;
  let dataDir: string;
  let store: Store;
  let awsDeps: Deps;
  let localDeps: Deps;
  let server: LocalServer;

  const s = {} as Record<'a1' | 'a1b' | 'a2' | 'a3' | 'a4f' | 'b1' | 'c1f' | 'd1q', Seeded>;
  const ertsBytes = randomBytes(9000);

  /** The same bytes under the same key in S3 (Lambda) and on disk (local server). */
  async function putBoth(key: string, bytes: Buffer | string, contentType: string): Promise<void> {
    for (const blobs of [awsDeps.blobs, localDeps.blobs] as BlobStore[]) await blobs.put(key, bytes, contentType);
  }

  async function seedBuild(
    namespace: string, name: string, ref: string, erlVersion: string,
    status: 'succeeded' | 'failed' | 'queued', at: Date, log?: string,
  ): Promise<Seeded> {
    const repo = await store.upsertRepository({ namespace, name, cloneUrl: `https://github.com/${namespace}/${name}` });
    const version = await store.upsertVersion({ repositoryId: repo.id, ref, erlVersion });
    const build = await store.createBuild({ versionId: version.id, createdAt: new Date(at.getTime() - 20 * 60_000) });
    if (status === 'queued') return build;
    await store.transitionBuild(build.id, ['queued'], 'running', { at: new Date(at.getTime() - 15 * 60_000) });
    let artifact: Buffer | undefined;
    if (status === 'succeeded') {
      artifact = randomBytes(4000 + Math.floor(Math.random() * 4000));
      await putBoth(`artifacts/${build.id}.ep`, artifact, 'application/x-tar');
    }
    if (log !== undefined) await putBoth(`logs/${build.id}.log`, log, TEXT_TYPE);
    const done = await store.transitionBuild(build.id, ['running'], status, {
      at,
      message: status === 'succeeded' ? 'Build succeeded' : 'Compile error in src/broken.erl',
      artifactKey: artifact ? `artifacts/${build.id}.ep` : null,
      artifactSize: artifact?.length ?? null,
      artifactSha256: artifact ? createHash('sha256').update(artifact).digest('hex') : null,
      logKey: log !== undefined ? `logs/${build.id}.log` : null,
    });
    expect(done?.status).toBe(status);
    return { ...done!, artifact, log };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dataApi = await startDataApiServer(db.url);
    s3 = await startS3rver();
    dataDir = await mkdtemp(join(tmpdir(), 'enot-aws-handlers-'));

    const awsConfig = loadConfig({
      ENOT_RUNTIME: 'aws',
      ENOT_BUCKET: s3.bucket,
      ENOT_DB_CLUSTER_ARN: 'arn:aws:rds:us-east-1:123456789012:cluster:enot',
      ENOT_DB_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:enot-db',
      ENOT_DB_NAME: 'enot',
      AWS_REGION: 'us-east-1',
      ENOT_S3_ENDPOINT: s3.endpoint,
      ENOT_RDS_DATA_ENDPOINT: dataApi.endpoint,
      ENOT_PRESIGN_TTL_S: String(PRESIGN_TTL_S),
      ENOT_LOG_LEVEL: 'silent',
    });
    rds = new RDSDataClient({
      endpoint: awsConfig.aws.rdsDataEndpoint,
      region: awsConfig.aws.region,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    // Migrated here; in AWS the deploy does it.
    store = await openDataApiStore({
      resourceArn: awsConfig.aws.dbClusterArn!,
      secretArn: awsConfig.aws.dbSecretArn!,
      database: awsConfig.aws.dbName,
      client: rds,
    });
    awsDeps = {
      config: awsConfig,
      store,
      blobs: new S3BlobStore({ client: s3.client, bucket: awsConfig.aws.bucket!, presignTtlS: awsConfig.presignTtlS }),
      ...idlePipeline(),
      metrics: openMetrics(awsConfig),
    };
    const localConfig = loadConfig({ ENOT_RUNTIME: 'local', ENOT_DATA_DIR: dataDir, ENOT_LOG_LEVEL: 'silent', PORT: '0' });
    localDeps = {
      config: localConfig, store, blobs: new FsBlobStore(join(dataDir, 'blobs')), metrics: openMetrics(localConfig), ...idlePipeline(),
    };

    // alice/cowboy_utils: 1.0.0@25 built twice (the rebuild is newer), 1.0.0@26, 1.1.0@25, 2.0.0@25 failed;
    // bob/cowlib one success; carol/broken only failed; dave/pending only queued.
    s.a1 = await seedBuild('alice', 'cowboy_utils', '1.0.0', '25', 'succeeded', T(1), '===> Compiling cowboy_utils\n');
    s.a2 = await seedBuild('alice', 'cowboy_utils', '1.0.0', '26', 'succeeded', T(2));
    s.a3 = await seedBuild('alice', 'cowboy_utils', '1.1.0', '25', 'succeeded', T(3), '===> Compiling cowboy_utils\r\n===> Done\r\n');
    s.a4f = await seedBuild('alice', 'cowboy_utils', '2.0.0', '25', 'failed', T(4),
      'src/broken.erl:3:1: syntax error before: \'end\'\n✗ build failed — exit 1\n\u0000trailing NUL\n');
    s.a1b = await seedBuild('alice', 'cowboy_utils', '1.0.0', '25', 'succeeded', T(5), '===> Rebuilt ✓\n');
    s.b1 = await seedBuild('bob', 'cowlib', '0.9.1', '25', 'succeeded', T(6), 'cowlib: ok\n');
    s.c1f = await seedBuild('carol', 'broken', '1.0.0', '25', 'failed', T(7), 'carol/broken: no Makefile, no rebar.config\n');
    s.d1q = await seedBuild('dave', 'pending', '0.1.0', '26', 'queued', T(8));
    const ertsKey = 'erts/25/erts-13.2.tar';
    await putBoth(ertsKey, ertsBytes, 'application/x-tar');
    await store.putErts({
      release: '25', ertsVersion: '13.2', key: ertsKey, size: ertsBytes.length,
      sha256: createHash('sha256').update(ertsBytes).digest('hex'),
    });

    server = await startLocalServer({ deps: localDeps, port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
    rds?.destroy();
    await dataApi?.close();
    await s3?.close();
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  interface Pair {
    event: APIGatewayProxyEvent;
    lambda: LambdaInvocation & { result: APIGatewayProxyResult };
    local: Response;
    localBody: Buffer;
  }

  /**
   * Sends one recorded request to both runtimes: first the route's Lambda handler on the AWS
   * dependencies, then the local server on the local ones. The dependencies are process-wide, so
   * each phase installs its own before it runs.
   */
  async function both(fixture: string, values: Placeholders = {}): Promise<Pair> {
    const event = await loadApigwEvent(fixture, values);
    useDeps(awsDeps);
    const lambda = await invokeLambda(event);
    expect(proxyResultProblems(lambda.result), `${fixture}: ${JSON.stringify(lambda.result)}`).toEqual([]);
    const result = lambda.result as APIGatewayProxyResult;
    // The Lambda request id names the answer, so a user's report can be found in the logs.
    expect(resultHeader(result, 'X-Request-Id')).toBe(lambda.context.awsRequestId);

    useDeps(localDeps);
    const { url, init } = toHttpRequest(event, server.url);
    const local = await fetch(url, init);
    const localBody = Buffer.from(await local.arrayBuffer());
    return { event, lambda: { ...lambda, result }, local, localBody };
  }

  /** Same status, same JSON content type, same envelope on both; returns its `response`. */
  async function sameJson(fixture: string, values: Placeholders, status: number): Promise<unknown> {
    const { lambda: { result }, local, localBody } = await both(fixture, values);
    expect(result.statusCode, result.body).toBe(status);
    expect(local.status, localBody.toString()).toBe(status);
    expect(resultHeader(result, 'Content-Type')).toBe(JSON_TYPE);
    expect(local.headers.get('content-type')).toBe(JSON_TYPE);
    expect(result.isBase64Encoded ?? false).toBe(false);
    const fromLambda = JSON.parse(result.body) as { result: unknown; response: unknown };
    expect(fromLambda).toEqual(JSON.parse(localBody.toString('utf8')));
    expect(Object.keys(fromLambda).sort()).toEqual(['response', 'result']);
    expect(fromLambda.result).toBe(status === 200);
    if (status !== 200) expect(typeof fromLambda.response).toBe('string');
    return fromLambda.response;
  }

  async function sameError(fixture: string, values: Placeholders, status: number): Promise<string> {
    return (await sameJson(fixture, values, status)) as string;
  }

  /** Same status and exactly the same plain-text bytes on both. */
  async function sameText(fixture: string, values: Placeholders, status: number, text: string): Promise<void> {
    const { lambda: { result }, local, localBody } = await both(fixture, values);
    expect(result.statusCode, result.body).toBe(status);
    expect(local.status).toBe(status);
    expect(resultHeader(result, 'Content-Type')).toBe(TEXT_TYPE);
    expect(local.headers.get('content-type')).toBe(TEXT_TYPE);
    expect(result.isBase64Encoded ?? false).toBe(false);
    expect(Buffer.from(result.body, 'utf8')).toEqual(Buffer.from(text, 'utf8'));
    expect(localBody).toEqual(Buffer.from(text, 'utf8'));
  }

  /**
   * The one legitimate difference: Lambda redirects to a presigned S3 URL, the local server streams.
   * What the redirect leads to must be exactly what the local server streamed, named the same.
   */
  async function sameDownload(
    fixture: string, values: Placeholders, redirectStatus: 302 | 303, expected: { bytes: Buffer; filename: string },
  ): Promise<void> {
    const { lambda: { result }, local, localBody } = await both(fixture, values);
    const disposition = `attachment; filename="${expected.filename}"`;

    expect(local.status).toBe(200);
    expect(local.headers.get('content-type')).toBe('application/x-tar');
    expect(local.headers.get('content-disposition')).toBe(disposition);
    expect(local.headers.get('content-length')).toBe(String(expected.bytes.length));
    expect(localBody).toEqual(expected.bytes);

    expect(result.statusCode).toBe(redirectStatus);
    expect(result.body).toBe('');
    const location = resultHeader(result, 'Location');
    expect(location).toBeDefined();
    const target = new URL(location!);
    expect(`${target.protocol}//${target.host}`).toBe(s3.endpoint);
    expect(target.pathname.startsWith(`/${s3.bucket}/`)).toBe(true);
    expect(target.searchParams.get('X-Amz-Expires')).toBe(String(PRESIGN_TTL_S));

    const fromS3 = await fetch(location!);
    expect(fromS3.status).toBe(200);
    expect(Buffer.from(await fromS3.arrayBuffer())).toEqual(localBody);
    expect(fromS3.headers.get('content-disposition')).toBe(local.headers.get('content-disposition'));
    expect(fromS3.headers.get('content-type')).toBe(local.headers.get('content-type'));
  }

  const ids = (list: unknown) => (list as { build_id: string }[]).map((p) => p.build_id);

  describe('GET /search', () => {
    it('answers the same package list', async () => {
      const found = await sameJson('search', { name: 'cowboy' }, 200);
      expect(ids(found)).toEqual([s.a1b.id, s.a4f.id, s.a3.id, s.a2.id]);
      const failed = (found as { build_id: string; success: boolean; path: string }[]).find((p) => p.build_id === s.a4f.id);
      expect(failed).toMatchObject({ success: false, path: `/build_log?build_id=${s.a4f.id}` });
    });

    it('answers the same with every filter', async () => {
      const found = await sameJson('search-filtered', {
        name: 'utils', namespace: 'alice', ref: '1.0.0', erlVersion: '25',
      }, 200);
      expect(found).toEqual([{
        build_id: s.a1b.id, namespace: 'alice', name: 'cowboy_utils', success: true, path: `/download/${s.a1b.id}`,
        build_date: '2024-05-01 05:13', version: '1.0.0', erl_version: '25',
      }]);
    });

    it('takes the last of a repeated parameter on both', async () => {
      const found = await sameJson('search-repeated-name', { firstName: 'nothing', lastName: 'cow' }, 200);
      expect(ids(found)).toEqual([s.b1.id, s.a1b.id, s.a4f.id, s.a3.id, s.a2.id]);
    });

    it('answers the same 400 without a name', async () => {
      expect(await sameError('search-missing-name', {}, 400)).toBe('Validation failed: query parameter name is required');
    });
  });

  describe('POST /builds', () => {
    it('answers the same downloadable builds', async () => {
      const builds = await sameJson('builds', { fullName: 'alice/cowboy_utils' }, 200);
      expect(ids(builds)).toEqual([s.a1b.id, s.a3.id, s.a2.id, s.a1.id]);
      expect((builds as { created_date: unknown }[])[0]).toMatchObject({
        result: true, artifact_path: `/download/${s.a1b.id}`, created_date: s.a1b.createdAt.getTime(),
      });
    });

    it('answers the same with version filters', async () => {
      const builds = await sameJson('builds-versions', {
        fullName: 'alice/cowboy_utils', ref: '1.1.0', otherRef: '1.0.0', erlVersion: '26',
      }, 200);
      expect(ids(builds)).toEqual([s.a3.id, s.a2.id]);
    });

    it('answers the same 400 for a missing field', async () => {
      expect(await sameError('builds-missing-full-name', {}, 400)).toBe('Validation failed: full_name is required');
    });

    it('answers the same 400 for malformed JSON', async () => {
      expect(await sameError('builds-malformed-json', {}, 400)).toMatch(/^Malformed JSON body: /);
    });
  });

  describe('POST /versions', () => {
    const refs = (list: unknown) =>
      (list as { ref: string; erl_version: string }[]).map((v) => `${v.ref}@${v.erl_version}`);

    it('answers the same installable versions', async () => {
      const versions = await sameJson('versions', { fullName: 'alice/cowboy_utils' }, 200);
      expect(refs(versions)).toEqual(['1.0.0@25', '1.1.0@25', '1.0.0@26']);
      for (const v of versions as { version_id: number; versionId: number }[]) expect(v.version_id).toBe(v.versionId);
    });

    it('answers the same for the client\'s single-object versions', async () => {
      const versions = await sameJson('versions-single-object', { fullName: 'alice/cowboy_utils', ref: '1.0.0' }, 200);
      expect(refs(versions)).toEqual(['1.0.0@25', '1.0.0@26']);
    });

    it('answers the same empty list for a package that never built', async () => {
      expect(await sameJson('versions', { fullName: 'carol/broken' }, 200)).toEqual([]);
    });

    it('answers the same 400 for a wrong type and for malformed JSON', async () => {
      expect(await sameError('versions-wrong-type', {}, 400)).toBe('Validation failed: full_name must be a string (got number)');
      expect(await sameError('versions-malformed-json', {}, 400)).toMatch(/^Malformed JSON body: /);
    });
  });

  describe('GET /last_builds', () => {
    it('answers the same last builds', async () => {
      expect(ids(await sameJson('last-builds', {}, 200))).toEqual([s.b1.id, s.a1b.id, s.a3.id, s.a2.id]);
    });

    it('answers the same with n', async () => {
      expect(ids(await sameJson('last-builds-n', { n: '2' }, 200))).toEqual([s.b1.id, s.a1b.id]);
    });

    it('answers the same 400 for a bad n', async () => {
      expect(await sameError('last-builds-invalid-n', {}, 400)).toBe('Validation failed: query parameter n must be a positive integer');
    });
  });

  describe('GET /download/{id}', () => {
    it('redirects to exactly the bytes the local server streams', async () => {
      await sameDownload('download', { buildId: s.a2.id }, 302, { bytes: s.a2.artifact!, filename: 'cowboy_utils.ep' });
      await sameDownload('download', { buildId: s.a1.id }, 302, { bytes: s.a1.artifact!, filename: 'cowboy_utils.ep' });
    });

    it('answers the same 404 for a failed, queued, unknown or non-UUID build', async () => {
      for (const buildId of [s.a4f.id, s.d1q.id, randomUUID(), 'latest']) {
        await sameText('download', { buildId }, 404, 'No such build');
      }
    });
  });

  describe('POST /get', () => {
    it('answers 303 to exactly the package the local server streams', async () => {
      await sameDownload('get', { fullName: 'alice/cowboy_utils', ref: '1.0.0', erlVersion: '25' }, 303,
        { bytes: s.a1b.artifact!, filename: 'cowboy_utils.ep' });
      await sameDownload('get', { fullName: 'alice/cowboy_utils', ref: '1.0.0', erlVersion: '26' }, 303,
        { bytes: s.a2.artifact!, filename: 'cowboy_utils.ep' });
      await sameDownload('get-latest', { fullName: 'bob/cowlib' }, 303, { bytes: s.b1.artifact!, filename: 'cowlib.ep' });
    });

    it('answers exactly `No such build` with 200 on both', async () => {
      await sameText('get', { fullName: 'alice/cowboy_utils', ref: '3.0.0', erlVersion: '25' }, 200, 'No such build');
      await sameText('get-latest', { fullName: 'carol/broken' }, 200, 'No such build');
      await sameText('get-latest', { fullName: 'nobody/nothing' }, 200, 'No such build');
    });

    it('answers the same 400 for malformed JSON and a missing field', async () => {
      expect(await sameError('get-malformed-json', {}, 400)).toMatch(/^Malformed JSON body: /);
      expect(await sameError('get-missing-field', {}, 400)).toBe('Validation failed: full_name is required');
    });
  });

  describe('GET /download_erts/{version}', () => {
    it('redirects to exactly the ERTS the local server streams', async () => {
      await sameDownload('download-erts', { release: '25' }, 302, { bytes: ertsBytes, filename: 'erts-13.2.tar' });
    });

    it('answers exactly `No such erlang` with 200 on both', async () => {
      await sameText('download-erts', { release: '26.2' }, 200, 'No such erlang');
    });

    it('answers the same 400 for something that is not an OTP release', async () => {
      expect(await sameError('download-erts', { release: 'R16B' }, 400)).toMatch(/^Validation failed: path parameter version /);
    });
  });

  describe('GET /build_log', () => {
    it('answers the same log, byte for byte', async () => {
      await sameText('build-log', { buildId: s.a4f.id }, 200, s.a4f.log!);
      await sameText('build-log', { buildId: s.a3.id }, 200, s.a3.log!);
      await sameText('build-log-trailing-slash', { buildId: s.b1.id }, 200, s.b1.log!);
    });

    it('answers the same 404 for an unknown build id and for a build without a log', async () => {
      expect(await sameError('build-log', { buildId: randomUUID() }, 404)).toBe('No such build');
      expect(await sameError('build-log', { buildId: s.a2.id }, 404)).toBe(`No log for build ${s.a2.id} yet`);
      expect(await sameError('build-log', { buildId: s.d1q.id }, 404)).toBe(`No log for build ${s.d1q.id} yet`);
    });

    it('answers the same 400 without a UUID build_id', async () => {
      expect(await sameError('build-log-missing-id', {}, 400)).toBe('Validation failed: query parameter build_id is required');
      expect(await sameError('build-log', { buildId: '42' }, 400)).toBe('Validation failed: query parameter build_id must be a UUID');
    });
  });

  describe('GET /health', () => {
    it('answers the same healthy report (S3 and the Data API answer on Lambda), timings aside', async () => {
      const { lambda: { result }, local, localBody } = await both('health');
      expect(result.statusCode, result.body).toBe(200);
      expect(local.status, localBody.toString()).toBe(200);
      expect(resultHeader(result, 'Content-Type')).toBe(JSON_TYPE);
      expect(local.headers.get('content-type')).toBe(JSON_TYPE);
      expect(resultHeader(result, 'Cache-Control')).toBe(local.headers.get('cache-control'));
      // How long each check took is the one thing that may differ.
      const withoutTimings = (text: string) =>
        JSON.parse(text, (key, value: unknown) => (key === 'ms' ? typeof value : value)) as unknown;
      const fromLambda = withoutTimings(result.body);
      expect(fromLambda).toEqual(withoutTimings(localBody.toString('utf8')));
      expect(fromLambda).toEqual({
        result: true,
        response: { status: 'ok', checks: { database: { ok: true, ms: 'number' }, blobs: { ok: true, ms: 'number' }, artifacts: { ok: true, ms: 'number' }, builder: { ok: true, ms: 'number' } } },
      });
    });
  });

  describe('GET /metrics', () => {
    it('answers the same store gauges; only the local process adds its own totals', async () => {
      const { lambda: { result }, local, localBody } = await both('metrics');
      expect(result.statusCode, result.body).toBe(200);
      expect(local.status).toBe(200);
      const contentType = resultHeader(result, 'Content-Type');
      expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(local.headers.get('content-type')).toBe(contentType);
      expect(result.isBase64Encoded ?? false).toBe(false);
      // Lambda has no process-wide totals (its counters go to CloudWatch as EMF); the local server
      // appends them after the same gauges, so the Lambda answer is the local one's beginning.
      const localText = localBody.toString('utf8');
      expect(localText.startsWith(result.body)).toBe(true);
      expect(result.body).not.toMatch(/_total /);
      expect(localText.slice(result.body.length)).toMatch(/^# HELP enot_\w+_total /);
      const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(result.body)?.[1]);
      expect(sample('enot_builds{status="succeeded"}')).toBe(5);
      expect(sample('enot_builds{status="failed"}')).toBe(2);
      expect(sample('enot_builds{status="queued"}')).toBe(1);
      expect(sample('enot_queue_depth')).toBe(1);
    });
  });
});
