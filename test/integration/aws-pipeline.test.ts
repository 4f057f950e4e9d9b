// The build pipeline's AWS side: the SQS, CodeBuild and SES adapters' calls (mocked SQS/CodeBuild/SES call
// shapes with aws-sdk-client-mock), and the worker entry points as Lambda runs them, on a real store, with
// recorded CodeBuild "Build State Change" events and the build's files in s3rver. The upload forms in StartBuild
// are really presigned (signing is local); presigned-upload.test.ts POSTs through them.
import {
  AccountLimitExceededException, CodeBuildClient, CodeBuildServiceException, ResourceNotFoundException, StartBuildCommand,
  type StartBuildCommandInput,
} from '@aws-sdk/client-codebuild';
import { SendEmailCommand, SESClient, type SendEmailCommandInput } from '@aws-sdk/client-ses';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import type { Context, EventBridgeEvent, ScheduledEvent, SQSRecord } from 'aws-lambda';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3BlobStore } from '#adapters/blob/s3-blob-store.js';
import { CodeBuildBuilder, timeoutMinutes, uploadFormExpiryS, type PresignUpload } from '#adapters/builder/codebuild-builder.js';
import { parseBuildStateChange } from '#functions/workers/codebuild-state-change.js';
import { SesMailer } from '#adapters/mail/ses-mailer.js';
import { InMemoryMetrics } from '#adapters/metrics/memory-metrics.js';
import { parseBuildMessage } from '#core/build-queue-message.js';
import { SQS_BATCH_MAX, SqsBuildQueue } from '#adapters/queue/sqs-build-queue.js';
import {
  BUILD_ENV, BUILDER_QUEUE_LIMIT_S, buildBlobKeys, buildEnvironment, OUTPUT_CONTENT_TYPES, UPLOAD_CHECKSUM_FIELD, UPLOAD_FORM_ENV,
  UPLOAD_MAX_BYTES, type BuildResult, type UploadForm,
} from '#core/build-contract.js';
import type { Build } from '#core/model.js';
import { BuilderBusyError } from '#core/errors.js';
import type { BuildJob, Store } from '#core/ports.js';
import { COMPLETION_GRACE_S } from '#core/reap-builds.js';
import { loadConfig, type Config } from '#functions/config.js';
import { deps, openBuilder, openBuildQueue, openMailer, useDeps, type Deps } from '#functions/wiring.js';
import { handler as buildFinished } from '#functions/workers/build-finished.js';
import { handler as reapBuildsWorker } from '#functions/workers/reap-builds.js';
import { handler as startBuild } from '#functions/workers/start-build.js';
import { openTestStore } from '#support/databases.js';
import { startS3rver, type TestS3 } from '#support/s3rver.js';
import { lambdaContext } from '#support/apigw-events.js';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const QUEUE_URL = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/enot-builder-BuildPipelineQueue`;
const PROJECT = 'enot-builder-builds';
const FROM = 'builds@enot.example.org';
const PUBLIC_URL = 'https://enot.example.org';
const TIMEOUT_S = 900;
const FAKE_CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };

const CODEBUILD_FIXTURES = fileURLToPath(new URL('../support/fixtures/codebuild/', import.meta.url));

type CodeBuildEvent = EventBridgeEvent<'CodeBuild Build State Change', Record<string, unknown>>;

/** A recorded CodeBuild event with its placeholders filled: the build's ENOT_BUILD_ID and CodeBuild's own id. */
async function codeBuildEvent(name: string, values: { buildId: string; codeBuildUuid?: string }): Promise<CodeBuildEvent> {
  const all: Record<string, string> = {
    eventId: randomUUID(),
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    codeBuildUuid: randomUUID(),
    ...values,
  };
  const text = await readFile(join(CODEBUILD_FIXTURES, `${name}.json`), 'utf8');
  return JSON.parse(text.replace(/\{\{(\w+)\}\}/g, (match, key: string) => {
    if (!(key in all)) throw new Error(`${name}.json: no value for ${match}`);
    return all[key];
  })) as CodeBuildEvent;
}

/** A Lambda context as the runtime hands it to a worker (its timeout as the stack sets it). */
const workerContext = (worker: string): Context => lambdaContext({ name: worker }, 60_000);

/** One SQS record as the event source mapping delivers it. */
function sqsRecord(body: string): SQSRecord {
  const sent = Date.now() - 1500;
  return {
    messageId: randomUUID(),
    receiptHandle: `AQEB${randomBytes(120).toString('base64')}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(sent),
      SenderId: 'AROA4EXAMPLEROLEID0001:enot-builder-build-async',
      ApproximateFirstReceiveTimestamp: String(sent + 120),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:enot-builder-BuildPipelineQueue`,
    awsRegion: REGION,
  };
}

const throttling = () => new CodeBuildServiceException({
  name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', $metadata: { httpStatusCode: 400 },
});

/** Presigns for real (signing needs no network) with the fake credentials, and records what it was asked. */
function recordingPresigner(bucket = 'enot-builder-blobs'): { presign: PresignUpload; calls: [string, string, number, number][] } {
  const store = new S3BlobStore({ client: new S3Client({ region: REGION, credentials: FAKE_CREDENTIALS }), bucket, presignTtlS: 60 });
  const calls: [string, string, number, number][] = [];
  return {
    calls,
    presign: (key, contentType, expiresS, maxBytes) => {
      calls.push([key, contentType, expiresS, maxBytes]);
      return store.presignPost(key, contentType, expiresS, maxBytes);
    },
  };
}

/**
 * The three upload forms of a StartBuild input, by output, each checked to be one POST form whose signed policy
 * names exactly that output's key and Content-Type, expires `expiresS` after signing and requires the checksum.
 */
function expectUploadForms(input: StartBuildCommandInput, buildId: string, expiresS: number): Record<keyof typeof UPLOAD_FORM_ENV, UploadForm> {
  const vars = Object.fromEntries((input.environmentVariablesOverride ?? []).map((v) => [v.name, v]));
  const keys = buildBlobKeys(buildId);
  const forms = {} as Record<keyof typeof UPLOAD_FORM_ENV, UploadForm>;
  for (const output of Object.keys(UPLOAD_FORM_ENV) as (keyof typeof UPLOAD_FORM_ENV)[]) {
    const variable = vars[UPLOAD_FORM_ENV[output]];
    expect(variable?.type, output).toBe('PLAINTEXT');
    const form = JSON.parse(variable!.value!) as UploadForm;
    expect(new URL(form.url).protocol, output).toBe('https:');
    expect(form.fields, output).toMatchObject({ key: keys[output], 'Content-Type': OUTPUT_CONTENT_TYPES[output] });
    const policy = JSON.parse(Buffer.from(form.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: unknown[] };
    expect(policy.conditions, output).toEqual(expect.arrayContaining([
      ['eq', '$key', keys[output]],
      ['eq', '$Content-Type', OUTPUT_CONTENT_TYPES[output]],
      ['content-length-range', 0, UPLOAD_MAX_BYTES[output]],
      ['starts-with', `$${UPLOAD_CHECKSUM_FIELD}`, ''],
    ]));
    const signedAt = Date.UTC(...(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(form.fields['X-Amz-Date'])!.slice(1)
      .map(Number).map((n, i) => (i === 1 ? n - 1 : n)) as [number, number, number, number, number, number]));
    expect(Date.parse(policy.expiration) - signedAt, output).toBe(expiresS * 1000);
    forms[output] = form;
  }
  return forms;
}

const job = (over: Partial<BuildJob> = {}): BuildJob => ({
  buildId: randomUUID(), namespace: 'alice', name: 'cowboy_utils', cloneUrl: 'https://github.com/alice/cowboy_utils',
  ref: '1.0.0', erlVersion: '25', timeoutS: 901, ...over,
});

// --- the adapters' calls ---

describe('SqsBuildQueue (mocked SQS call shapes)', () => {
  const client = new SQSClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const queue = new SqsBuildQueue({ queueUrl: QUEUE_URL, client });
  let sqs: AwsClientStub<SQSClient>;
  const inputs = () => sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input as SendMessageBatchCommandInput);

  // Mocks are made in hooks, not at collection: mocking an instance undoes a class mock made before it.
  beforeAll(() => {
    sqs = mockClient(client);
  });
  beforeEach(() => sqs.reset());
  afterAll(() => sqs.restore());

  it('sends every build id once, at most ten per call, to the queue, as {"buildId"} bodies with ids unique per call', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
      Successful: input.Entries!.map((e) => ({ Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: 'x' })),
      Failed: [],
    }));
    const ids = Array.from({ length: 23 }, () => randomUUID());
    await queue.enqueue([...ids, ids[0]]);

    const calls = inputs();
    expect(calls.map((c) => c.Entries!.length)).toEqual([10, 10, 3]);
    for (const call of calls) {
      expect(call.QueueUrl).toBe(QUEUE_URL);
      expect(call.Entries!.length).toBeLessThanOrEqual(SQS_BATCH_MAX);
      expect(new Set(call.Entries!.map((e) => e.Id)).size).toBe(call.Entries!.length);
      for (const e of call.Entries!) {
        expect(e.Id).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
        expect(Object.keys(JSON.parse(e.MessageBody!))).toEqual(['buildId']);
      }
    }
    const sent = calls.flatMap((c) => c.Entries!.map((e) => parseBuildMessage(e.MessageBody!)));
    expect(sent).toEqual(ids);
  });

  it('sends nothing for no ids', async () => {
    await queue.enqueue([]);
    expect(inputs()).toEqual([]);
  });

  it('sends the entries SQS refused once more, and only those', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    sqs.on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: 'b0', MessageId: 'm0', MD5OfMessageBody: 'x' }, { Id: 'b2', MessageId: 'm2', MD5OfMessageBody: 'x' }],
        Failed: [{ Id: 'b1', SenderFault: false, Code: 'InternalError', Message: 'try again' }],
      })
      .resolves({ Successful: [{ Id: 'b0', MessageId: 'm1', MD5OfMessageBody: 'x' }], Failed: [] });
    await queue.enqueue(ids);

    const calls = inputs();
    expect(calls).toHaveLength(2);
    expect(calls[1].Entries!.map((e) => parseBuildMessage(e.MessageBody!))).toEqual([ids[1]]);
  });

  it('throws naming the builds SQS refused twice', async () => {
    const ids = [randomUUID(), randomUUID()];
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
      Successful: [],
      Failed: input.Entries!.map((e) => ({ Id: e.Id, SenderFault: false, Code: 'InternalError', Message: 'unavailable' })),
    }));
    const failure = queue.enqueue(ids);
    await expect(failure).rejects.toThrow(/refused 2 build message/);
    await expect(failure).rejects.toThrow(ids[1]);
    expect(inputs()).toHaveLength(2);
  });
});

describe('CodeBuildBuilder (mocked CodeBuild call shapes)', () => {
  const client = new CodeBuildClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const presigner = recordingPresigner();
  const builder = new CodeBuildBuilder({ projectName: PROJECT, client, presignUpload: presigner.presign });
  let codebuild: AwsClientStub<CodeBuildClient>;
  const inputs = () => codebuild.commandCalls(StartBuildCommand).map((c) => c.args[0].input as StartBuildCommandInput);

  beforeAll(() => {
    codebuild = mockClient(client);
  });
  beforeEach(() => {
    codebuild.reset();
    presigner.calls.length = 0;
  });
  afterAll(() => codebuild.restore());

  it('starts the project with exactly the contract\'s variables and upload forms, in plain text, the timeout and an idempotency token', async () => {
    const codeBuildId = `${PROJECT}:${randomUUID()}`;
    codebuild.on(StartBuildCommand).resolves({ build: { id: codeBuildId, arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:build/${codeBuildId}` } });
    const j = job();
    expect(await builder.start(j)).toEqual({ builderId: codeBuildId });

    const [input] = inputs();
    expect(input.projectName).toBe(PROJECT);
    expect(input.timeoutInMinutesOverride).toBe(16);
    expect(input.idempotencyToken).toBe(j.buildId);
    const overrides = input.environmentVariablesOverride!;
    expect(overrides.every((v) => v.type === 'PLAINTEXT')).toBe(true);
    expect(overrides.map((v) => v.name).sort()).toEqual([...Object.values(BUILD_ENV), ...Object.values(UPLOAD_FORM_ENV)].sort());
    const formNames = new Set<string>(Object.values(UPLOAD_FORM_ENV));
    expect(Object.fromEntries(overrides.filter((v) => !formNames.has(v.name!)).map((v) => [v.name, v.value]))).toEqual(buildEnvironment(j));
    // Queued up to CodeBuild's queue limit, then run up to the timeout, then publish: 901 + 1800 + 600 s.
    const expiresS = j.timeoutS + BUILDER_QUEUE_LIMIT_S + 600;
    expect(expiresS).toBe(3301);
    expectUploadForms(input, j.buildId, expiresS);
    // Each form was signed for its own key with the content type publish must send and its output's size bound.
    const keys = buildBlobKeys(j.buildId);
    expect(presigner.calls.sort()).toEqual([
      [keys.artifact, OUTPUT_CONTENT_TYPES.artifact, expiresS, UPLOAD_MAX_BYTES.artifact],
      [keys.log, OUTPUT_CONTENT_TYPES.log, expiresS, UPLOAD_MAX_BYTES.log],
      [keys.result, OUTPUT_CONTENT_TYPES.result, expiresS, UPLOAD_MAX_BYTES.result],
    ].sort());
    // Nothing of the service's own environment rides along, and no signing secret: a form names the key id only.
    expect(JSON.stringify(input)).not.toMatch(/SECRET|PASSWORD|TOKEN_|DATABASE|AWS_|ENOT_DB_|GIT_SECRET/);
    expect(JSON.stringify(input)).not.toContain(FAKE_CREDENTIALS.secretAccessKey);
    expect(JSON.stringify(input)).not.toContain(encodeURIComponent(FAKE_CREDENTIALS.secretAccessKey));
    expect(Object.keys(input).sort()).toEqual(['environmentVariablesOverride', 'idempotencyToken', 'projectName', 'queuedTimeoutInMinutesOverride', 'timeoutInMinutesOverride']);
  });

  it('lets the upload forms live no longer than S3 allows (seven days)', () => {
    expect(uploadFormExpiryS(900)).toBe(3300);
    expect(uploadFormExpiryS(2160 * 60)).toBe(2160 * 60 + BUILDER_QUEUE_LIMIT_S + 600);
    expect(uploadFormExpiryS(30 * 24 * 3600)).toBe(7 * 24 * 3600);
  });

  it('starts nothing when the forms cannot be signed, and says why (not busy)', async () => {
    const failing = new CodeBuildBuilder({
      projectName: PROJECT, client, presignUpload: () => Promise.reject(new Error('Could not load credentials from any providers')),
    });
    const start = failing.start(job());
    await expect(start).rejects.toThrow(/Could not load credentials/);
    await expect(start).rejects.not.toBeInstanceOf(BuilderBusyError);
    expect(inputs()).toEqual([]);
  });

  it('keeps the timeout within what CodeBuild accepts', () => {
    expect(timeoutMinutes(60)).toBe(5);
    expect(timeoutMinutes(900)).toBe(15);
    expect(timeoutMinutes(901)).toBe(16);
    expect(timeoutMinutes(200_000)).toBe(2160);
  });

  it('says busy (retry later) when throttled or at the account\'s build limit', async () => {
    codebuild.on(StartBuildCommand).rejectsOnce(throttling()).rejectsOnce(new AccountLimitExceededException({
      message: 'Cannot have more than 20 active builds for the account', $metadata: { httpStatusCode: 400 },
    }));
    const throttled = builder.start(job());
    await expect(throttled).rejects.toBeInstanceOf(BuilderBusyError);
    await expect(throttled).rejects.toThrow(/ThrottlingException.*Rate exceeded/);
    await expect(builder.start(job())).rejects.toBeInstanceOf(BuilderBusyError);
  });

  it('passes on a missing project as an error, not as busy', async () => {
    codebuild.on(StartBuildCommand).rejects(new ResourceNotFoundException({
      message: `Project cannot be found: arn:aws:codebuild:${REGION}:${ACCOUNT}:project/${PROJECT}`, $metadata: { httpStatusCode: 400 },
    }));
    const start = builder.start(job());
    await expect(start).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(start).rejects.not.toBeInstanceOf(BuilderBusyError);
  });

  it('refuses an answer without a build id', async () => {
    codebuild.on(StartBuildCommand).resolves({});
    await expect(builder.start(job())).rejects.toThrow(/without a build id/);
  });
});

describe('SesMailer (mocked SES call shapes)', () => {
  const client = new SESClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  let ses: AwsClientStub<SESClient>;

  beforeAll(() => {
    ses = mockClient(client);
  });
  beforeEach(() => ses.reset());
  afterAll(() => ses.restore());

  it('sends a plain-text mail from the sender to the one recipient', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: '0102018f-aaaa-bbbb-cccc-000000000000-000000' });
    const mailer = new SesMailer({ from: FROM, client });
    await mailer.send({ to: 'bob@example.com', subject: 'alice/cowboy_utils 1.0.0 (OTP 25): build succeeded\r\nBcc: x@y.z', text: 'Result: ok\n' });
    const [call] = ses.commandCalls(SendEmailCommand);
    expect(call.args[0].input).toEqual({
      Source: FROM,
      Destination: { ToAddresses: ['bob@example.com'] },
      Message: {
        Subject: { Data: 'alice/cowboy_utils 1.0.0 (OTP 25): build succeeded Bcc: x@y.z', Charset: 'UTF-8' },
        Body: { Text: { Data: 'Result: ok\n', Charset: 'UTF-8' } },
      },
    } satisfies SendEmailCommandInput);
  });
});

describe('the aws wiring (mocked SQS/CodeBuild/SES call shapes)', () => {
  // Class-level mocks: the adapters make their own clients from the SDK they load on first use.
  let sqs: AwsClientStub<SQSClient>;
  let codebuild: AwsClientStub<CodeBuildClient>;
  let ses: AwsClientStub<SESClient>;
  const aws = (env: Record<string, string>): Config => loadConfig({ ENOT_RUNTIME: 'aws', AWS_REGION: REGION, ENOT_LOG_LEVEL: 'silent', ...env });

  beforeEach(() => {
    sqs = mockClient(SQSClient);
    codebuild = mockClient(CodeBuildClient);
    ses = mockClient(SESClient);
  });
  afterEach(() => {
    sqs.restore();
    codebuild.restore();
    ses.restore();
  });

  it('queues on SQS at ENOT_QUEUE_URL, and refuses to queue without one', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [{ Id: 'b0', MessageId: 'm', MD5OfMessageBody: 'x' }], Failed: [] });
    const id = randomUUID();
    await openBuildQueue(aws({ ENOT_QUEUE_URL: QUEUE_URL })).enqueue([id]);
    const [call] = sqs.commandCalls(SendMessageBatchCommand);
    expect(call.args[0].input).toMatchObject({ QueueUrl: QUEUE_URL, Entries: [{ MessageBody: JSON.stringify({ buildId: id }) }] });
    await expect(openBuildQueue(aws({})).enqueue([id])).rejects.toThrow(/ENOT_QUEUE_URL/);
  });

  it('starts builds on the ENOT_BUILD_PROJECT project with forms signed for ENOT_BUCKET, and has no builder without one', async () => {
    codebuild.on(StartBuildCommand).resolves({ build: { id: `${PROJECT}:1` } });
    expect(openBuilder(aws({}))).toBeUndefined();
    expect(openBuilder(loadConfig({ ENOT_BUILD_PROJECT: PROJECT }))).toBeUndefined();
    expect(() => openBuilder(aws({ ENOT_BUILD_PROJECT: PROJECT }))).toThrow(/ENOT_BUCKET/);
    // The SDK's default credentials, as the Lambda runtime provides them.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
    try {
      const j = job();
      const builder = openBuilder(aws({ ENOT_BUILD_PROJECT: PROJECT, ENOT_BUCKET: 'enot-blobs' }));
      expect(await builder?.start(j)).toEqual({ builderId: `${PROJECT}:1` });
      const input = codebuild.commandCalls(StartBuildCommand)[0].args[0].input;
      expect(input.projectName).toBe(PROJECT);
      const forms = expectUploadForms(input, j.buildId, uploadFormExpiryS(j.timeoutS));
      for (const form of Object.values(forms)) {
        expect(new URL(form.url).host).toBe(`enot-blobs.s3.${REGION}.amazonaws.com`);
        expect(form.fields['X-Amz-Credential']).toMatch(new RegExp(`^${FAKE_CREDENTIALS.accessKeyId}/\\d{8}/${REGION}/s3/aws4_request$`));
      }

      // The same S3 settings as the blob store: a local endpoint is signed for, path style.
      const local = openBuilder(aws({ ENOT_BUILD_PROJECT: PROJECT, ENOT_BUCKET: 'enot-blobs', ENOT_S3_ENDPOINT: 'http://127.0.0.1:4569' }));
      await local?.start(job());
      const artifact = codebuild.commandCalls(StartBuildCommand)[1].args[0].input.environmentVariablesOverride!
        .find((v) => v.name === UPLOAD_FORM_ENV.artifact)!.value!;
      expect((JSON.parse(artifact) as UploadForm).url).toBe('http://127.0.0.1:4569/enot-blobs');
      expect((JSON.parse(artifact) as UploadForm).fields.key).toMatch(/^artifacts\/[0-9a-f-]{36}\.ep$/);
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  it('mails through SES from ENOT_MAIL_FROM, and drops mail without it', async () => {
    ses.on(SendEmailCommand).resolves({ MessageId: 'm' });
    const mail = { to: 'bob@example.com', subject: 's', text: 't\n' };
    await openMailer(aws({})).send(mail);
    expect(ses.commandCalls(SendEmailCommand)).toHaveLength(0);
    await openMailer(aws({ ENOT_MAIL_FROM: FROM })).send(mail);
    expect(ses.commandCalls(SendEmailCommand).map((c) => c.args[0].input.Source)).toEqual([FROM]);
  });
});

describe('CodeBuild "Build State Change" events', () => {
  it('are realistic recorded events of our project, one per kind', async () => {
    const names = (await readdir(CODEBUILD_FIXTURES)).filter((f) => f.endsWith('.json')).sort();
    expect(names).toEqual(['erts-published.json', 'failed.json', 'in-progress.json', 'succeeded.json', 'timed-out.json']);
    // erts-published is the image's ERTS upload, not a package build (test/integration/register-erts.test.ts).
    for (const name of names.filter((n) => n !== 'erts-published.json')) {
      const buildId = randomUUID();
      const event = await codeBuildEvent(name.slice(0, -5), { buildId });
      expect(event).toMatchObject({ version: '0', source: 'aws.codebuild', 'detail-type': 'CodeBuild Build State Change', account: ACCOUNT, region: REGION });
      const detail = event.detail as Record<string, any>;
      expect(event.resources).toEqual([detail['build-id']]);
      expect(detail['project-name']).toBe(PROJECT);
      const vars = detail['additional-information'].environment['environment-variables'] as { name: string; value: string }[];
      expect(vars.find((v) => v.name === BUILD_ENV.buildId)?.value).toBe(buildId);
    }
  });

  it('read as the end of the build they name, with CodeBuild\'s build id as StartBuild gave it', async () => {
    const buildId = randomUUID();
    const codeBuildUuid = randomUUID();
    expect(parseBuildStateChange(await codeBuildEvent('succeeded', { buildId, codeBuildUuid }))).toEqual({
      kind: 'ended', ended: { buildId, builderId: `${PROJECT}:${codeBuildUuid}`, state: 'SUCCEEDED' },
    });
    expect(parseBuildStateChange(await codeBuildEvent('failed', { buildId, codeBuildUuid }))).toMatchObject({
      kind: 'ended', ended: { buildId, state: 'FAILED' },
    });
    expect(parseBuildStateChange(await codeBuildEvent('timed-out', { buildId, codeBuildUuid }))).toEqual({
      kind: 'ended', ended: { buildId, builderId: `${PROJECT}:${codeBuildUuid}`, state: 'TIMED_OUT', timeoutS: 900 },
    });
    expect(parseBuildStateChange(await codeBuildEvent('in-progress', { buildId }))).toMatchObject({ kind: 'ignored' });
  });

  it('read a FAILED build whose phase ran out of time as timed out', async () => {
    const event = await codeBuildEvent('timed-out', { buildId: randomUUID() });
    (event.detail as Record<string, unknown>)['build-status'] = 'FAILED';
    expect(parseBuildStateChange(event)).toMatchObject({ kind: 'ended', ended: { state: 'TIMED_OUT', timeoutS: 900 } });
  });

  it('ignore a build started without ENOT_BUILD_ID, and events of other kinds', async () => {
    const event = await codeBuildEvent('succeeded', { buildId: randomUUID() });
    const info = (event.detail as Record<string, any>)['additional-information'];
    info.environment['environment-variables'] = info.environment['environment-variables'].filter((v: { name: string }) => v.name !== BUILD_ENV.buildId);
    expect(parseBuildStateChange(event)).toMatchObject({ kind: 'ignored', reason: /ENOT_BUILD_ID/ });
    expect(parseBuildStateChange({ ...event, 'detail-type': 'CodeBuild Build Phase Change' })).toMatchObject({ kind: 'ignored' });
    expect(parseBuildStateChange(null)).toMatchObject({ kind: 'ignored' });
  });
});

// --- the workers as Lambda runs them ---

/** Metrics that also count flushes: every invocation ends with one. */
class FlushCountingMetrics extends InMemoryMetrics {
  flushes = 0;
  override flush(): void {
    this.flushes += 1;
  }
}

describe('the pipeline workers on a real store (mocked SQS/CodeBuild/SES call shapes)', () => {
  let store: Store;
  let closeStore: () => Promise<void>;
  let s3: TestS3;
  let blobs: S3BlobStore;
  let metrics: FlushCountingMetrics;
  const sqsClient = new SQSClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const codeBuildClient = new CodeBuildClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  const sesClient = new SESClient({ region: REGION, credentials: FAKE_CREDENTIALS });
  let sqs: AwsClientStub<SQSClient>;
  let codebuild: AwsClientStub<CodeBuildClient>;
  let ses: AwsClientStub<SESClient>;
  let refs = 0;

  beforeAll(async () => {
    sqs = mockClient(sqsClient);
    codebuild = mockClient(codeBuildClient);
    ses = mockClient(sesClient);
    ({ store, close: closeStore } = await openTestStore());
    s3 = await startS3rver();
    blobs = new S3BlobStore({ client: s3.client, bucket: s3.bucket, presignTtlS: 60 });
  });

  afterAll(async () => {
    sqs.restore();
    codebuild.restore();
    ses.restore();
    await closeStore?.();
    await s3?.close();
  });

  beforeEach(() => {
    sqs.reset();
    codebuild.reset();
    ses.reset();
    ses.on(SendEmailCommand).resolves({ MessageId: randomUUID() });
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
      Successful: input.Entries!.map((e) => ({ Id: e.Id, MessageId: randomUUID(), MD5OfMessageBody: 'x' })),
      Failed: [],
    }));
    metrics = new FlushCountingMetrics();
    const config = loadConfig({
      ENOT_RUNTIME: 'aws', AWS_REGION: REGION, ENOT_LOG_LEVEL: 'silent', ENOT_PUBLIC_URL: PUBLIC_URL,
      ENOT_BUILD_TIMEOUT_S: String(TIMEOUT_S), ENOT_BUCKET: s3.bucket, ENOT_QUEUE_URL: QUEUE_URL,
      ENOT_BUILD_PROJECT: PROJECT, ENOT_MAIL_FROM: FROM,
    });
    const installed: Deps = {
      config, store, blobs, metrics,
      queue: new SqsBuildQueue({ queueUrl: QUEUE_URL, client: sqsClient }),
      mailer: new SesMailer({ from: FROM, client: sesClient }),
      webhookSecret: () => Promise.resolve(undefined),
      builder: new CodeBuildBuilder({
        projectName: PROJECT, client: codeBuildClient,
        presignUpload: (key, contentType, expiresS, maxBytes) => blobs.presignPost(key, contentType, expiresS, maxBytes),
      }),
    };
    useDeps(installed);
  });

  async function queuedBuild(options: { notify?: boolean; notifyEmail?: string | null; createdAt?: Date } = {}): Promise<Build> {
    const repo = await store.upsertRepository({ namespace: 'alice', name: 'cowboy_utils', cloneUrl: 'https://github.com/alice/cowboy_utils' });
    const version = await store.upsertVersion({ repositoryId: repo.id, ref: `2.0.${refs++}`, erlVersion: '25' });
    return store.createBuild({ versionId: version.id, ...options });
  }

  /** StartBuild answers with a fresh CodeBuild build of the project. */
  function codeBuildStarts(): void {
    codebuild.on(StartBuildCommand).callsFake(() => {
      const id = `${PROJECT}:${randomUUID()}`;
      return { build: { id, arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:build/${id}`, buildStatus: 'IN_PROGRESS' } };
    });
  }

  describe('start-build', () => {
    it('starts a queued build on CodeBuild and records its id; a duplicate record starts nothing', async () => {
      codeBuildStarts();
      const build = await queuedBuild();
      const record = sqsRecord(JSON.stringify({ buildId: build.id }));
      expect(await startBuild({ Records: [record] }, workerContext('start-build'))).toEqual({ batchItemFailures: [] });

      const calls = codebuild.commandCalls(StartBuildCommand);
      expect(calls).toHaveLength(1);
      const input = calls[0].args[0].input as StartBuildCommandInput;
      expect(input.idempotencyToken).toBe(build.id);
      expect(input.environmentVariablesOverride).toContainEqual({ name: BUILD_ENV.buildId, value: build.id, type: 'PLAINTEXT' });
      expect(input.timeoutInMinutesOverride).toBe(TIMEOUT_S / 60);
      // The upload forms, signed for this build's keys in the bucket the function is given.
      const forms = Object.values(UPLOAD_FORM_ENV)
        .map((name) => JSON.parse(input.environmentVariablesOverride!.find((v) => v.name === name)!.value!) as UploadForm);
      expect(forms.map((f) => f.fields.key)).toEqual(Object.values(buildBlobKeys(build.id)));
      for (const form of forms) {
        expect(form.fields.bucket).toBe(s3.bucket);
        const { expiration } = JSON.parse(Buffer.from(form.fields.Policy, 'base64').toString('utf8')) as { expiration: string };
        expect(Date.parse(expiration) - Date.now()).toBeGreaterThan((TIMEOUT_S + BUILDER_QUEUE_LIMIT_S + 600 - 60) * 1000);
      }
      const view = await store.getBuild(build.id);
      expect(view?.status).toBe('running');
      expect(view?.builderId).toMatch(new RegExp(`^${PROJECT}:[0-9a-f-]{36}$`));
      expect(metrics.flushes).toBe(1);

      // SQS delivers at least once: the same message again, in a batch with itself.
      const again = { ...record, messageId: randomUUID() };
      expect(await startBuild({ Records: [again, again] }, workerContext('start-build'))).toEqual({ batchItemFailures: [] });
      expect(codebuild.commandCalls(StartBuildCommand)).toHaveLength(1);
      expect((await store.getBuild(build.id))?.builderId).toBe(view?.builderId);
    });

    it('reports a throttled build\'s message as failed and puts the build back in the queue; the others start', async () => {
      const throttled = await queuedBuild();
      const fine = await queuedBuild();
      codeBuildStarts();
      codebuild.on(StartBuildCommand, { idempotencyToken: throttled.id }).rejects(throttling());
      const a = sqsRecord(JSON.stringify({ buildId: throttled.id }));
      const b = sqsRecord(JSON.stringify({ buildId: fine.id }));

      expect(await startBuild({ Records: [a, b] }, workerContext('start-build'))).toEqual({ batchItemFailures: [{ itemIdentifier: a.messageId }] });
      expect(await store.getBuild(throttled.id)).toMatchObject({ status: 'queued', builderId: null });
      expect((await store.getBuild(throttled.id))?.message).toMatch(/^waiting to start: CodeBuild is busy \(ThrottlingException\)/);
      expect((await store.getBuild(fine.id))?.status).toBe('running');
      expect(metrics.flushes).toBe(1);

      // The redelivery, once CodeBuild has room, starts it.
      codebuild.reset();
      codeBuildStarts();
      expect(await startBuild({ Records: [{ ...a, messageId: randomUUID() }] }, workerContext('start-build'))).toEqual({ batchItemFailures: [] });
      expect((await store.getBuild(throttled.id))?.status).toBe('running');
    });

    it('drops a message that names no build instead of retrying it forever', async () => {
      codeBuildStarts();
      const records = [sqsRecord('not json'), sqsRecord(JSON.stringify({ buildId: 'nope' })), sqsRecord(JSON.stringify({ id: randomUUID() }))];
      expect(await startBuild({ Records: records }, workerContext('start-build'))).toEqual({ batchItemFailures: [] });
      expect(codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
    });

    it('fails the whole batch when the function has no builder (a deployment without ENOT_BUILD_PROJECT)', async () => {
      const build = await queuedBuild();
      const { builder: _none, ...withoutBuilder } = await deps();
      useDeps(withoutBuilder);
      await expect(startBuild({ Records: [sqsRecord(JSON.stringify({ buildId: build.id }))] }, workerContext('start-build')))
        .rejects.toThrow(/ENOT_BUILD_PROJECT/);
      expect((await store.getBuild(build.id))?.status).toBe('queued');
      expect(metrics.flushes).toBe(1);
    });
  });

  describe('build-finished', () => {
    /** A build CodeBuild is running, as start-build leaves it. */
    async function runningBuild(options: { notify?: boolean; notifyEmail?: string | null } = {}) {
      const build = await queuedBuild(options);
      const codeBuildUuid = randomUUID();
      await store.transitionBuild(build.id, ['queued'], 'running', { builderId: `${PROJECT}:${codeBuildUuid}` });
      return { build, codeBuildUuid };
    }

    /** What the build's post_build uploads to the bucket. */
    async function upload(buildId: string, result: Partial<BuildResult> | null, files: { artifact?: Buffer; log?: string }) {
      const keys = buildBlobKeys(buildId);
      if (result) {
        await blobs.put(keys.result, JSON.stringify({ buildId, status: 'succeeded', message: 'compiled with rebar3', ...result }), 'application/json');
      }
      if (files.artifact) await blobs.put(keys.artifact, files.artifact, 'application/octet-stream');
      if (files.log !== undefined) await blobs.put(keys.log, files.log, 'text/plain; charset=utf-8');
    }

    const sentMail = () => ses.commandCalls(SendEmailCommand).map((c) => c.args[0].input as SendEmailCommandInput);

    it('marks a SUCCEEDED build succeeded from its files in S3 and mails the result, once', async () => {
      const { build, codeBuildUuid } = await runningBuild({ notify: true, notifyEmail: 'bob@example.com' });
      const artifact = randomBytes(5000);
      await upload(build.id, { commitSha: 'c'.repeat(40), otpRelease: '25.3.2', tool: 'rebar3' }, { artifact, log: '==> done\n' });
      const event = await codeBuildEvent('succeeded', { buildId: build.id, codeBuildUuid });

      await buildFinished(event, workerContext('build-finished'));
      const keys = buildBlobKeys(build.id);
      expect(await store.getBuild(build.id)).toMatchObject({
        status: 'succeeded', message: 'compiled with rebar3', artifactKey: keys.artifact, artifactSize: artifact.length,
        artifactSha256: createHash('sha256').update(artifact).digest('hex'), commitSha: 'c'.repeat(40), otpRelease: '25.3.2',
        logKey: keys.log, builderId: `${PROJECT}:${codeBuildUuid}`,
      });
      expect(metrics.snapshot().counters.BuildsSucceeded).toBe(1);
      expect(metrics.flushes).toBe(1);

      const mails = sentMail();
      expect(mails).toHaveLength(1);
      expect(mails[0].Source).toBe(FROM);
      expect(mails[0].Destination).toEqual({ ToAddresses: ['bob@example.com'] });
      expect(mails[0].Message?.Subject?.Data).toMatch(/^alice\/cowboy_utils 2\.0\.\d+ \(OTP 25\): build succeeded$/);
      expect(mails[0].Message?.Body?.Text?.Data).toContain(`${PUBLIC_URL}/download/${build.id}`);
      expect(mails[0].Message?.Body?.Html).toBeUndefined();

      // EventBridge redelivers: nothing changes, no second mail.
      await buildFinished({ ...event }, workerContext('build-finished'));
      expect(sentMail()).toHaveLength(1);
      expect(metrics.snapshot().counters.BuildsSucceeded).toBe(1);
    });

    it('fails a SUCCEEDED build whose result says the package did not compile, and mails the author', async () => {
      const { build, codeBuildUuid } = await runningBuild({ notify: true });
      await upload(build.id, { status: 'failed', failure: 'compile', message: 'compile error in src/cowboy_utils.erl', authorEmail: 'alice@example.com' }, { log: 'error\n' });
      await buildFinished(await codeBuildEvent('succeeded', { buildId: build.id, codeBuildUuid }), workerContext('build-finished'));
      expect(await store.getBuild(build.id)).toMatchObject({ status: 'failed', message: 'compile error in src/cowboy_utils.erl', artifactKey: null });
      const mails = sentMail();
      expect(mails.map((m) => m.Destination?.ToAddresses)).toEqual([['alice@example.com']]);
      expect(mails[0].Message?.Subject?.Data).toMatch(/build failed$/);
    });

    it('fails a FAILED build that left no result, pointing to its log', async () => {
      const { build, codeBuildUuid } = await runningBuild();
      await upload(build.id, null, { log: 'node: build.mjs crashed\n' });
      await buildFinished(await codeBuildEvent('failed', { buildId: build.id, codeBuildUuid }), workerContext('build-finished'));
      const view = await store.getBuild(build.id);
      expect(view?.status).toBe('failed');
      expect(view?.message).toBe('the builder ended (FAILED) without a result; see the build log');
      expect(view?.logKey).toBe(buildBlobKeys(build.id).log);
      expect(sentMail()).toEqual([]);
    });

    it('fails a TIMED_OUT build with the limit it hit', async () => {
      const { build, codeBuildUuid } = await runningBuild({ notify: true, notifyEmail: 'bob@example.com' });
      await upload(build.id, { status: 'succeeded' }, { artifact: randomBytes(100), log: 'compiling...\n' });
      await buildFinished(await codeBuildEvent('timed-out', { buildId: build.id, codeBuildUuid }), workerContext('build-finished'));
      expect(await store.getBuild(build.id)).toMatchObject({ status: 'failed', message: 'timed out after 900 s', artifactKey: null });
      expect(sentMail()[0].Message?.Body?.Text?.Data).toContain('timed out after 900 s');
    });

    it('ignores IN_PROGRESS', async () => {
      const { build, codeBuildUuid } = await runningBuild({ notify: true, notifyEmail: 'bob@example.com' });
      await buildFinished(await codeBuildEvent('in-progress', { buildId: build.id, codeBuildUuid }), workerContext('build-finished'));
      expect((await store.getBuild(build.id))?.status).toBe('running');
      expect(sentMail()).toEqual([]);
      expect(metrics.flushes).toBe(1);
    });
  });

  describe('reap-builds', () => {
    it('fails a build CodeBuild lost and re-sends a lingering one through SQS', async () => {
      const limitS = TIMEOUT_S + COMPLETION_GRACE_S;
      const lost = await queuedBuild({ createdAt: new Date(Date.now() - (limitS + 600) * 1000) });
      await store.transitionBuild(lost.id, ['queued'], 'running', { at: new Date(Date.now() - (limitS + 60) * 1000) });
      const lingering = await queuedBuild({ createdAt: new Date(Date.now() - 3600 * 1000) });

      const schedule: ScheduledEvent = {
        version: '0', id: randomUUID(), 'detail-type': 'Scheduled Event', source: 'aws.events', account: ACCOUNT,
        time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), region: REGION,
        resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/enot-builder-BuildPipelineReap`], detail: {},
      };
      const report = await reapBuildsWorker(schedule, workerContext('reap-builds'));
      expect(report.failed).toContain(lost.id);
      expect(report.resent).toContain(lingering.id);
      expect((await store.getBuild(lost.id))?.status).toBe('failed');
      const sent = sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => c.args[0].input.Entries!.map((e) => parseBuildMessage(e.MessageBody!)));
      expect(sent).toContain(lingering.id);
      expect(metrics.snapshot().counters.StuckBuilds).toBeGreaterThanOrEqual(1);
      expect(metrics.flushes).toBe(1);
    });
  });
});
