// Environment -> typed, validated configuration. The only file that reads process.env.
// The namespace import lets esbuild drop the parts of zod no schema uses.
import * as z from 'zod';
import { BUILD_LIMIT_DEFAULTS } from './core/build-contract-names.mjs';
import { isOtpRelease } from './core/version-names.js';
import { RETENTION_DEFAULTS } from './core/retention.js';
import { parseAdminTokens } from './core/authorization.js';
import type { BuildLimits } from './core/build-contract.js';
import type { DependencyPolicy } from './core/build-contract.js';
import type { RateLimitConfig } from './core/rate-limits.js';

const csv = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));

const optional = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === '' ? undefined : s.trim()));

const schema = z.object({
  /** `aws` inside Lambda (set by the stack), `local` for `npm start` and tests. */
  ENOT_RUNTIME: z.enum(['local', 'aws']).default('local'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Address the local server binds; 0.0.0.0 to serve other machines (e.g. from a container). */
  HOST: z.string().min(1).default('127.0.0.1'),
  ENOT_DATA_DIR: z.string().min(1).default('./.enot-data'),
  DATABASE_URL: optional,
  ENOT_ALLOWED_CLONE_URLS: csv.default(['https://github.com/']),
  /** In the one spelling requests must use (25, 26.2), so a request that leaves it out names the same version. */
  ENOT_DEFAULT_ERL_VERSION: optional.refine((v) => v === undefined || isOtpRelease(v), {
    message: 'must be an OTP release such as 25 or 26.2 (no leading zeros, at most three parts)',
  }),
  ENOT_BUILD_TIMEOUT_S: z.coerce.number().int().positive().default(900),
  ENOT_BUILD_CONCURRENCY: z.coerce.number().int().positive().default(2),
  /** Seconds a local worker's claim on a build lasts without a heartbeat; then another worker takes the build over. */
  ENOT_BUILD_LEASE_S: z.coerce.number().min(1).default(30),
  /** A build log's cap; past it the log ends with a truncation note. */
  ENOT_BUILD_LOG_MAX_BYTES: z.coerce.number().int().positive().default(1024 * 1024),
  /** `auto`: the package's code runs in buildspec/sandbox.mjs's sandbox, and builds are refused where it cannot; `off`: never (said in every log). */
  ENOT_SANDBOX: z.enum(['auto', 'off']).default('auto'),
  // The sandbox's per-build limits (defaults shared with the build scripts: BUILD_LIMIT_DEFAULTS).
  /** Address space per process of the package's code (RLIMIT_AS). */
  ENOT_BUILD_MEMORY_MB: z.coerce.number().int().positive().default(BUILD_LIMIT_DEFAULTS.memoryMb),
  /** The size-limited filesystem holding the clone, HOME and /tmp while the package's code runs. */
  ENOT_BUILD_DISK_MB: z.coerce.number().int().positive().default(BUILD_LIMIT_DEFAULTS.diskMb),
  /** Processes and threads of the build's uid (RLIMIT_NPROC). */
  ENOT_BUILD_MAX_PROCESSES: z.coerce.number().int().positive().default(BUILD_LIMIT_DEFAULTS.maxProcesses),
  /** The longest output line the build log keeps (the rest of the line is dropped, with a note). */
  ENOT_BUILD_LOG_LINE_MAX_BYTES: z.coerce.number().int().positive().default(BUILD_LIMIT_DEFAULTS.logLineMaxBytes),
  /** `prefix=replacement`: builds clone `prefix...` from `replacement...` (a mirror; tests map GitHub to local repos). */
  ENOT_CLONE_REWRITE: optional,
  /** The hex repository builds fetch hex dependencies from (repo.hex.pm's layout), and the PEM key its registry is signed with. */
  ENOT_HEX_REPO_URL: z.string().url().default('https://repo.hex.pm'),
  ENOT_HEX_REPO_PUBLIC_KEY: optional,
  /** A build's dependency limits: how deep the chain of deps of deps, how many in all, how many bytes in all. */
  ENOT_DEPS_MAX_DEPTH: z.coerce.number().int().positive().default(5),
  ENOT_DEPS_MAX_COUNT: z.coerce.number().int().positive().default(100),
  ENOT_DEPS_MAX_MB: z.coerce.number().int().positive().default(256),
  /** Days a finished build's log is kept; then the retention sweep removes it and /build_log says it expired. */
  ENOT_LOG_RETENTION_DAYS: z.coerce.number().int().positive().default(RETENTION_DEFAULTS.logDays),
  /** Days the artifact of a superseded build (an older success of a rebuilt version) is kept once superseded. */
  ENOT_SUPERSEDED_RETENTION_DAYS: z.coerce.number().int().positive().default(RETENTION_DEFAULTS.supersededDays),
  /** The most versions one POST /buildAsync may ask for (each may become a build). */
  ENOT_MAX_VERSIONS_PER_REQUEST: z.coerce.number().int().positive().default(20),
  // Rate limits per client (0: off). Builds count only the new builds a request queues (hexpm/bob allows 10 an hour).
  ENOT_BUILD_REQUESTS_PER_HOUR: z.coerce.number().int().min(0).default(10),
  ENOT_READ_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** Proxies of this deployment whose X-Forwarded-For names the client; none by default (the header is not believed). */
  ENOT_TRUSTED_PROXIES: csv.default([]),
  GIT_SECRET: optional,
  /** Admin Bearer tokens, comma-separated, each plain or `sha256:<hex>` (functions/core/authorization.ts). */
  ENOT_ADMIN_TOKENS: optional,
  ENOT_PUBLIC_URL: optional,
  /** Largest request body accepted, in bytes (413 above). */
  ENOT_MAX_BODY_BYTES: z.coerce.number().int().positive().default(1024 * 1024),
  /** Lifetime of presigned download URLs. */
  ENOT_PRESIGN_TTL_S: z.coerce.number().int().positive().default(300),
  /** What signed statements say the builder builds for; default: this machine's (on AWS: the amd64 builder image). */
  ENOT_BUILDER_ARCH: z.enum(['amd64', 'arm64']).optional(),
  ENOT_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  // The local server's limits on what a client may hold (seconds may be fractions, for tests).
  /** Time to receive a request's headers (408 past it). */
  ENOT_HTTP_HEADERS_TIMEOUT_S: z.coerce.number().positive().default(10),
  /** Time to receive a whole request, headers and body (408 past it). */
  ENOT_HTTP_REQUEST_TIMEOUT_S: z.coerce.number().positive().default(30),
  /** Longest pause between two pieces of a request body (408 past it). */
  ENOT_HTTP_BODY_IDLE_TIMEOUT_S: z.coerce.number().positive().default(10),
  /** Open connections at once; more are closed as they arrive. */
  ENOT_HTTP_MAX_CONNECTIONS: z.coerce.number().int().positive().default(256),
  /** Largest request line plus headers, in bytes (431 above). */
  ENOT_HTTP_MAX_HEADER_BYTES: z.coerce.number().int().min(1024).default(16 * 1024),
  // AWS runtime (set by the CDK stack on every function)
  ENOT_BUCKET: optional,
  ENOT_DB_CLUSTER_ARN: optional,
  ENOT_DB_SECRET_ARN: optional,
  ENOT_DB_NAME: z.string().default('enot'),
  ENOT_QUEUE_URL: optional,
  ENOT_BUILD_PROJECT: optional,
  ENOT_MAIL_FROM: optional,
  /** The KMS key that signs statements and indexes (set by the stack on the function that signs). */
  ENOT_SIGNING_KEY_ID: optional,
  ENOT_GIT_SECRET_ARN: optional,
  /** The Secrets Manager secret holding the admin tokens (ENOT_ADMIN_TOKENS's format), on functions that check tokens. */
  ENOT_ADMIN_TOKENS_SECRET_ARN: optional,
  AWS_REGION: optional,
  // Endpoint overrides: local stand-ins for AWS services in tests (s3rver, the Data API test server)
  ENOT_S3_ENDPOINT: optional,
  ENOT_RDS_DATA_ENDPOINT: optional,
});

export interface Config {
  runtime: 'local' | 'aws';
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  allowedCloneUrls: string[];
  /** Undefined locally until the installed Erlang has been asked. */
  defaultErlVersion?: string;
  buildTimeoutS: number;
  buildConcurrency: number;
  /** How long a local worker's lease on an in-flight build lasts without a heartbeat (it renews it every third). */
  buildLeaseS: number;
  buildLogMaxBytes: number;
  sandbox: 'auto' | 'off';
  /** The sandbox's per-build limits. */
  buildLimits: BuildLimits;
  cloneRewrite?: { prefix: string; replacement: string };
  /** What builds may fetch as dependencies, and how much (the deps step before the offline build). */
  dependencies: DependencyPolicy;
  /** The most versions one POST /buildAsync may ask for. */
  maxVersionsPerRequest: number;
  /** Retention (functions/core/retention.ts): days a build log is kept, days a superseded artifact is kept. */
  logRetentionDays: number;
  supersededRetentionDays: number;
  /** New builds per hour and reads per minute per client, and whose X-Forwarded-For is believed. */
  rateLimits: RateLimitConfig;
  gitSecret?: string;
  /** SHA-256 hashes (hex) of the admin tokens of ENOT_ADMIN_TOKENS; empty when none is set. */
  adminTokenHashes: string[];
  publicUrl: string;
  maxBodyBytes: number;
  presignTtlS: number;
  /** The builder's architecture, as signed statements name it (`amd64`, `arm64`). */
  arch: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** The local server's connection limits. */
  http: {
    headersTimeoutS: number;
    requestTimeoutS: number;
    bodyIdleTimeoutS: number;
    maxConnections: number;
    maxHeaderBytes: number;
  };
  aws: {
    region?: string;
    bucket?: string;
    dbClusterArn?: string;
    dbSecretArn?: string;
    dbName: string;
    queueUrl?: string;
    buildProject?: string;
    mailFrom?: string;
    /** The KMS signing key's id or ARN (only on the function granted 'sign:build'). */
    signingKeyId?: string;
    gitSecretArn?: string;
    adminTokensSecretArn?: string;
    s3Endpoint?: string;
    rdsDataEndpoint?: string;
  };
}

/** Parses an environment (process.env by default); throws with every problem listed. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  // node refuses a headers limit past the whole request's, and it would mean nothing.
  if (e.ENOT_HTTP_HEADERS_TIMEOUT_S > e.ENOT_HTTP_REQUEST_TIMEOUT_S) {
    throw new Error('Invalid configuration: ENOT_HTTP_HEADERS_TIMEOUT_S must not exceed ENOT_HTTP_REQUEST_TIMEOUT_S');
  }
  return {
    runtime: e.ENOT_RUNTIME,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.ENOT_DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    allowedCloneUrls: e.ENOT_ALLOWED_CLONE_URLS,
    defaultErlVersion: e.ENOT_DEFAULT_ERL_VERSION,
    buildTimeoutS: e.ENOT_BUILD_TIMEOUT_S,
    buildConcurrency: e.ENOT_BUILD_CONCURRENCY,
    buildLeaseS: e.ENOT_BUILD_LEASE_S,
    buildLogMaxBytes: e.ENOT_BUILD_LOG_MAX_BYTES,
    sandbox: e.ENOT_SANDBOX,
    buildLimits: {
      memoryMb: e.ENOT_BUILD_MEMORY_MB,
      diskMb: e.ENOT_BUILD_DISK_MB,
      maxProcesses: e.ENOT_BUILD_MAX_PROCESSES,
      logLineMaxBytes: e.ENOT_BUILD_LOG_LINE_MAX_BYTES,
    },
    cloneRewrite: parseRewrite(e.ENOT_CLONE_REWRITE),
    dependencies: {
      allowedCloneUrls: e.ENOT_ALLOWED_CLONE_URLS,
      hexRepoUrl: e.ENOT_HEX_REPO_URL.replace(/\/+$/, ''),
      hexPublicKey: e.ENOT_HEX_REPO_PUBLIC_KEY,
      maxDepth: e.ENOT_DEPS_MAX_DEPTH,
      maxCount: e.ENOT_DEPS_MAX_COUNT,
      maxBytes: e.ENOT_DEPS_MAX_MB * 1024 * 1024,
    },
    maxVersionsPerRequest: e.ENOT_MAX_VERSIONS_PER_REQUEST,
    logRetentionDays: e.ENOT_LOG_RETENTION_DAYS,
    supersededRetentionDays: e.ENOT_SUPERSEDED_RETENTION_DAYS,
    rateLimits: {
      buildRequestsPerHour: e.ENOT_BUILD_REQUESTS_PER_HOUR,
      readRequestsPerMinute: e.ENOT_READ_REQUESTS_PER_MINUTE,
      trustedProxies: e.ENOT_TRUSTED_PROXIES,
    },
    gitSecret: e.GIT_SECRET,
    adminTokenHashes: adminTokenHashesOf(e.ENOT_ADMIN_TOKENS),
    publicUrl: (e.ENOT_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    maxBodyBytes: e.ENOT_MAX_BODY_BYTES,
    presignTtlS: e.ENOT_PRESIGN_TTL_S,
    // The builder image is built for linux/amd64 (buildspec/Dockerfile) while the Lambdas run on arm64.
    arch: e.ENOT_BUILDER_ARCH ?? (e.ENOT_RUNTIME === 'aws' ? 'amd64' : process.arch === 'x64' ? 'amd64' : process.arch),
    logLevel: e.ENOT_LOG_LEVEL,
    http: {
      headersTimeoutS: e.ENOT_HTTP_HEADERS_TIMEOUT_S,
      requestTimeoutS: e.ENOT_HTTP_REQUEST_TIMEOUT_S,
      bodyIdleTimeoutS: e.ENOT_HTTP_BODY_IDLE_TIMEOUT_S,
      maxConnections: e.ENOT_HTTP_MAX_CONNECTIONS,
      maxHeaderBytes: e.ENOT_HTTP_MAX_HEADER_BYTES,
    },
    aws: {
      region: e.AWS_REGION,
      bucket: e.ENOT_BUCKET,
      dbClusterArn: e.ENOT_DB_CLUSTER_ARN,
      dbSecretArn: e.ENOT_DB_SECRET_ARN,
      dbName: e.ENOT_DB_NAME,
      queueUrl: e.ENOT_QUEUE_URL,
      buildProject: e.ENOT_BUILD_PROJECT,
      mailFrom: e.ENOT_MAIL_FROM,
      signingKeyId: e.ENOT_SIGNING_KEY_ID,
      gitSecretArn: e.ENOT_GIT_SECRET_ARN,
      adminTokensSecretArn: e.ENOT_ADMIN_TOKENS_SECRET_ARN,
      s3Endpoint: e.ENOT_S3_ENDPOINT,
      rdsDataEndpoint: e.ENOT_RDS_DATA_ENDPOINT,
    },
  };
}

/** ENOT_ADMIN_TOKENS as hashes; a malformed entry stops the start, named by position (never its text). */
function adminTokenHashesOf(value: string | undefined): string[] {
  try {
    return parseAdminTokens(value ?? '');
  } catch (error) {
    throw new Error(`Invalid configuration: ENOT_ADMIN_TOKENS: ${(error as Error).message}`);
  }
}

function parseRewrite(value: string | undefined): { prefix: string; replacement: string } | undefined {
  if (value === undefined) return undefined;
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1) throw new Error('Invalid configuration: ENOT_CLONE_REWRITE must be prefix=replacement');
  return { prefix: value.slice(0, at), replacement: value.slice(at + 1) };
}
