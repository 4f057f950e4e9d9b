// Runs in a fresh Node process (compiled to plain JS, no loader): imports one Lambda bundle and serves
// it one API Gateway event, timing both, then reports to the parent over IPC and exits.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface ColdStartSample {
  /** import() of the bundle: module evaluation, including the SDK clients it loads. */
  importMs: number;
  /** The handler's first invocation: config, clients, the first queries and answer. */
  firstEventMs: number;
  /** Since this process started (Node's own start-up included). */
  sinceProcessStartMs: number;
  statusCode: number;
  bodyBytes: number;
}

const [bundlePath, eventPath] = process.argv.slice(2);
const event = JSON.parse(readFileSync(eventPath, 'utf8')) as Record<string, unknown>;
const deadline = Date.now() + 29_000;
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'enot-bench',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:enot-bench',
  memoryLimitInMB: '512',
  awsRequestId: '8f5e1c0a-5b0e-4c39-9a57-0d7e4b1f2a11',
  logGroupName: '/aws/lambda/enot-bench',
  logStreamName: '2024/06/01/[$LATEST]0123456789abcdef',
  getRemainingTimeInMillis: () => deadline - Date.now(),
  done: () => {},
  fail: () => {},
  succeed: () => {},
};

const started = performance.now();
const mod = (await import(pathToFileURL(bundlePath).href)) as {
  handler: (e: unknown, c: unknown) => Promise<{ statusCode: number; body?: string }>;
};
const imported = performance.now();
const result = await mod.handler(event, context);
const answered = performance.now();

const sample: ColdStartSample = {
  importMs: imported - started,
  firstEventMs: answered - imported,
  sinceProcessStartMs: answered,
  statusCode: result.statusCode,
  bodyBytes: Buffer.byteLength(result.body ?? ''),
};
// Exit once the parent has it: SDK clients keep sockets open that would hold the process.
process.send!(sample, () => process.exit(0));
