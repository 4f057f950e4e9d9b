// Recorded API Gateway REST proxy events (fixtures/apigw/*.json): loading with placeholders, invoking the
// route's Lambda handler with a realistic context, replaying an event over HTTP, and checking both shapes.
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { routes, type Route } from '#functions/routes.js';
import { matchPath } from '#http/router.js';

export const APIGW_FIXTURES_DIR = fileURLToPath(new URL('./fixtures/apigw/', import.meta.url));

/** What the recorded API's account, id and stage are (the fixtures spell them out; checks compare against these). */
export const RECORDED_API = {
  accountId: '123456789012',
  apiId: 'k3x9q2m7ab',
  region: 'eu-west-1',
  stage: 'prod',
} as const;

/**
 * Values for `{{name}}` placeholders. A string that is exactly one placeholder takes the value with its
 * type (so `"{{requestTimeEpoch}}"` becomes a number); inside a longer string the value is inserted as
 * text, as is, so a value that goes into a JSON body must not need escaping there.
 */
export type Placeholders = Record<string, string | number>;

const PLACEHOLDER = /\{\{(\w+)\}\}/g;
const WHOLE_PLACEHOLDER = /^\{\{(\w+)\}\}$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function fixturePath(name: string): string {
  return join(APIGW_FIXTURES_DIR, `${name}.json`);
}

/** The fixture names (file names without `.json`), sorted. */
export async function listApigwFixtures(): Promise<string[]> {
  return (await readdir(APIGW_FIXTURES_DIR))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** The placeholders of a fixture (besides the per-request ones the loader fills itself). */
export async function placeholdersOf(name: string): Promise<string[]> {
  const text = await readFile(fixturePath(name), 'utf8');
  const names = new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]));
  for (const own of Object.keys(perRequestValues(new Date()))) names.delete(own);
  names.delete('contentLength');
  return [...names].sort();
}

/** `01/May/2024:12:07:31 +0000`, the way API Gateway writes requestContext.requestTime. */
export function apigwRequestTime(at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(at.getUTCDate())}/${MONTHS[at.getUTCMonth()]}/${at.getUTCFullYear()}:`
    + `${p(at.getUTCHours())}:${p(at.getUTCMinutes())}:${p(at.getUTCSeconds())} +0000`;
}

/** What differs from one request to the next; a caller's values take precedence. */
function perRequestValues(at: Date): Placeholders {
  return {
    requestId: randomUUID(),
    requestTimeEpoch: at.getTime(),
    requestTime: apigwRequestTime(at),
    // X-Amzn-Trace-Id root: 1-<epoch seconds, hex>-<96 random bits, hex>
    traceId: `Root=1-${Math.floor(at.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`,
    extendedRequestId: `${randomBytes(11).toString('base64').replace(/[+/]/g, 'A').slice(0, 14)}=`,
  };
}

function fill(value: unknown, values: Placeholders): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_PLACEHOLDER.exec(value);
    if (whole && whole[1] in values) return values[whole[1]];
    return value.replace(PLACEHOLDER, (match, key: string) => (key in values ? String(values[key]) : match));
  }
  if (Array.isArray(value)) return value.map((v) => fill(v, values));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, values)]));
  }
  return value;
}

function unfilled(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(PLACEHOLDER)) found.add(m[1]);
  else if (Array.isArray(value)) value.forEach((v) => unfilled(v, found));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((v) => unfilled(v, found));
  return found;
}

/**
 * Loads fixtures/apigw/<name>.json with its placeholders filled. Per-request fields (requestId,
 * requestTimeEpoch, requestTime, traceId, extendedRequestId) are fresh unless given; `{{contentLength}}`
 * is the byte length of the filled body. Throws when a placeholder is left without a value.
 */
export async function loadApigwEvent(name: string, values: Placeholders = {}): Promise<APIGatewayProxyEvent> {
  const raw: unknown = JSON.parse(await readFile(fixturePath(name), 'utf8'));
  const first = fill(raw, { ...perRequestValues(new Date()), ...values }) as APIGatewayProxyEvent;
  const event = fill(first, { contentLength: String(Buffer.byteLength(first.body ?? '', 'utf8')) }) as APIGatewayProxyEvent;
  const missing = unfilled(event);
  if (missing.size > 0) throw new Error(`fixture ${name}: no value for ${[...missing].map((m) => `{{${m}}}`).join(', ')}`);
  return event;
}

/** The route of the table that API Gateway would send this event to (resource and method). */
export function routeOf(event: APIGatewayProxyEvent): Route {
  const route = routes.find((r) => r.path === event.resource && r.method === event.httpMethod);
  if (!route) throw new Error(`no route for ${event.httpMethod} ${event.resource}`);
  return route;
}

/** The handler module's subpath import, as a bundle for that route would load it. */
export function handlerSpecifier(route: Route): string {
  return `#functions/${route.entry.replace(/\.ts$/, '.js')}`;
}

export type LambdaHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<unknown>;

export async function loadLambdaHandler(route: Route): Promise<LambdaHandler> {
  const mod = (await import(handlerSpecifier(route))) as { handler?: LambdaHandler };
  if (typeof mod.handler !== 'function') throw new Error(`${route.entry} exports no handler`);
  return mod.handler;
}

/** A context as the Node.js Lambda runtime hands it over: ids, names, and a deadline `timeoutMs` away (routes and workers). */
export function lambdaContext(route: Pick<Route, 'name'>, timeoutMs = 10_000): Context {
  const deadline = Date.now() + timeoutMs;
  const functionName = `enot-builder-prod-${route.name}`;
  const today = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
  const unsupported = () => {
    throw new Error('the callback-style context methods are not for async handlers');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${RECORDED_API.region}:${RECORDED_API.accountId}:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${today}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

export interface LambdaInvocation {
  route: Route;
  context: Context;
  /** What the handler returned, as the Lambda runtime would serialize it to API Gateway. */
  result: unknown;
}

/** Invokes the event's route handler the way the Lambda runtime does (one event, one fresh context). */
export async function invokeLambda(event: APIGatewayProxyEvent): Promise<LambdaInvocation> {
  const route = routeOf(event);
  const handler = await loadLambdaHandler(route);
  const context = lambdaContext(route);
  return { route, context, result: await handler(event, context) };
}

// Set by the HTTP client or the connection, not by the caller: fetch sets its own.
const NOT_REPLAYED = new Set(['host', 'content-length', 'connection', 'accept-encoding']);

/** The HTTP request the event records, aimed at `baseUrl` (the local server): method, path, query, headers, body. */
export function toHttpRequest(event: APIGatewayProxyEvent, baseUrl: string): { url: string; init: RequestInit } {
  const url = new URL(event.path, baseUrl);
  for (const [k, vs] of Object.entries(event.multiValueQueryStringParameters ?? {})) {
    for (const v of vs ?? []) url.searchParams.append(k, v);
  }
  const headers = new Headers();
  for (const [k, vs] of Object.entries(event.multiValueHeaders ?? {})) {
    if (NOT_REPLAYED.has(k.toLowerCase())) continue;
    for (const v of vs ?? []) headers.append(k, String(v));
  }
  const body = event.body == null ? undefined : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  return { url: url.toString(), init: { method: event.httpMethod, headers, body, redirect: 'manual' } };
}

/** A header of a proxy result, looked up case-insensitively (API Gateway treats the names so). */
export function resultHeader(result: APIGatewayProxyResult, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(result.headers ?? {})) if (k.toLowerCase() === wanted) return String(v);
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) if (k.toLowerCase() === wanted) return vs.join(',');
  return undefined;
}

const RESULT_KEYS = new Set(['statusCode', 'headers', 'multiValueHeaders', 'body', 'isBase64Encoded']);

/**
 * Why API Gateway would refuse `result` as a Lambda proxy response (502 "Malformed Lambda proxy
 * response"), or [] when it is a valid one. It must also survive the runtime's JSON serialization unchanged.
 */
export function proxyResultProblems(result: unknown): string[] {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return ['the result is not an object'];
  const r = result as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(r)) if (!RESULT_KEYS.has(key)) problems.push(`unexpected key ${key}`);
  if (typeof r.statusCode !== 'number' || !Number.isInteger(r.statusCode) || r.statusCode < 100 || r.statusCode > 599) {
    problems.push(`statusCode ${JSON.stringify(r.statusCode)} is not an HTTP status number`);
  }
  if (typeof r.body !== 'string') problems.push(`body is ${typeof r.body}, not a string`);
  if ('isBase64Encoded' in r && typeof r.isBase64Encoded !== 'boolean') problems.push('isBase64Encoded is not a boolean');
  if ('headers' in r) {
    if (r.headers === null || typeof r.headers !== 'object' || Array.isArray(r.headers)) problems.push('headers is not an object');
    else for (const [k, v] of Object.entries(r.headers)) if (typeof v !== 'string') problems.push(`header ${k} is ${typeof v}, not a string`);
  }
  if ('multiValueHeaders' in r) {
    const mv = r.multiValueHeaders;
    if (mv === null || typeof mv !== 'object' || Array.isArray(mv)) problems.push('multiValueHeaders is not an object');
    else {
      for (const [k, vs] of Object.entries(mv)) {
        if (!Array.isArray(vs) || vs.some((v) => typeof v !== 'string')) problems.push(`multiValueHeaders ${k} is not a list of strings`);
      }
    }
  }
  if (problems.length === 0 && JSON.stringify(JSON.parse(JSON.stringify(r))) !== JSON.stringify(r)) {
    problems.push('the result changes when serialized');
  }
  return problems;
}

function lowerKeys(record: Record<string, unknown>): string[] {
  return Object.keys(record).map((k) => k.toLowerCase());
}

/**
 * Why `event` could not be what API Gateway sends for a REST proxy integration on the recorded API,
 * or [] when its parts agree: resource and path, path parameters, both header and query maps, stage
 * path, request context, Content-Length.
 */
export function eventProblems(event: APIGatewayProxyEvent): string[] {
  const problems: string[] = [];
  const ctx = event.requestContext;
  const route = routes.find((r) => r.path === event.resource && r.method === event.httpMethod);
  if (!route) problems.push(`no route for ${event.httpMethod} ${event.resource}`);
  const params = matchPath(event.resource, event.path);
  if (!params) problems.push(`path ${event.path} does not fit resource ${event.resource}`);
  else {
    const expected = Object.keys(params).length > 0 ? params : null;
    if (JSON.stringify(expected) !== JSON.stringify(event.pathParameters)) {
      problems.push(`pathParameters ${JSON.stringify(event.pathParameters)} should be ${JSON.stringify(expected)}`);
    }
  }
  if (event.stageVariables !== null) problems.push('stageVariables should be null');
  if (typeof event.isBase64Encoded !== 'boolean') problems.push('isBase64Encoded should be a boolean');
  if (event.body !== null && typeof event.body !== 'string') problems.push('body should be a string or null');
  if (!ctx) return [...problems, 'requestContext is missing'];
  const expectedContext: Record<string, unknown> = {
    accountId: RECORDED_API.accountId,
    apiId: RECORDED_API.apiId,
    stage: RECORDED_API.stage,
    httpMethod: event.httpMethod,
    resourcePath: event.resource,
    path: `/${RECORDED_API.stage}${event.path}`,
    domainName: `${RECORDED_API.apiId}.execute-api.${RECORDED_API.region}.amazonaws.com`,
    domainPrefix: RECORDED_API.apiId,
  };
  for (const [k, v] of Object.entries(expectedContext)) {
    const got = (ctx as unknown as Record<string, unknown>)[k];
    if (got !== v) problems.push(`requestContext.${k} is ${JSON.stringify(got)}, expected ${JSON.stringify(v)}`);
  }
  if (typeof ctx.requestTimeEpoch !== 'number') problems.push('requestContext.requestTimeEpoch should be a number');
  if (typeof ctx.requestId !== 'string' || ctx.requestId === '') problems.push('requestContext.requestId is missing');

  const headers = event.headers ?? {};
  const multi = event.multiValueHeaders ?? {};
  // API Gateway hands over every header and query value as a string (a typed placeholder could slip in a number).
  const strings: [string, unknown][] = [
    ...Object.entries(headers).map(([k, v]): [string, unknown] => [`header ${k}`, v]),
    ...Object.entries(multi).flatMap(([k, vs]) => (vs ?? []).map((v): [string, unknown] => [`header ${k}`, v])),
    ...Object.entries(event.queryStringParameters ?? {}).map(([k, v]): [string, unknown] => [`query ${k}`, v]),
    ...Object.entries(event.multiValueQueryStringParameters ?? {})
      .flatMap(([k, vs]) => (vs ?? []).map((v): [string, unknown] => [`query ${k}`, v])),
    ...Object.entries(event.pathParameters ?? {}).map(([k, v]): [string, unknown] => [`path parameter ${k}`, v]),
  ];
  for (const [what, v] of strings) if (typeof v !== 'string') problems.push(`${what} is ${typeof v}, not a string`);
  if (JSON.stringify(lowerKeys(headers).sort()) !== JSON.stringify(lowerKeys(multi).sort())) {
    problems.push('headers and multiValueHeaders name different headers');
  }
  for (const [k, vs] of Object.entries(multi)) {
    // API Gateway's single-value map keeps the last value of a repeated header.
    if (headers[k] !== vs?.[vs.length - 1]) problems.push(`header ${k} disagrees with multiValueHeaders`);
  }
  const header = (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  if (header('host') !== expectedContext.domainName) problems.push('Host should be the execute-api domain');
  const forwardedFor = header('x-forwarded-for')?.split(',').map((s) => s.trim());
  if (!forwardedFor || forwardedFor[forwardedFor.length - 1] !== ctx.identity?.sourceIp) {
    problems.push('X-Forwarded-For should end with requestContext.identity.sourceIp');
  }
  if (header('user-agent') !== ctx.identity?.userAgent) problems.push('User-Agent should equal requestContext.identity.userAgent');
  const length = header('content-length');
  if (event.body == null ? length !== undefined : length !== String(Buffer.byteLength(event.body))) {
    problems.push(`Content-Length ${length} does not match the body`);
  }

  const query = event.queryStringParameters;
  const multiQuery = event.multiValueQueryStringParameters;
  if ((query === null) !== (multiQuery === null)) problems.push('query maps should be both null or both present');
  if (query && multiQuery) {
    if (JSON.stringify(Object.keys(query).sort()) !== JSON.stringify(Object.keys(multiQuery).sort())) {
      problems.push('queryStringParameters and multiValueQueryStringParameters name different parameters');
    }
    for (const [k, vs] of Object.entries(multiQuery)) {
      if (query[k] !== vs?.[vs.length - 1]) problems.push(`query parameter ${k} disagrees with its multi-value list`);
    }
  }
  return problems;
}
