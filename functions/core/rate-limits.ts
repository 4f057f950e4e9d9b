// Rate limits per client: new builds per hour and reads per minute, counted in fixed windows in the Store so that
// every process (each Lambda, every local server on one database) counts against the same numbers.
import { RateLimitedError } from './errors.js';
import type {
  BuildRequestStore, BuildRequestWrites, Log, RateLimitCounters, RateLimitedBuildStore, RateLimitWindow,
} from './ports.js';

/** The limits (functions/config.ts provides them). A limit of 0 is off. */
export interface RateLimitConfig {
  /** New builds one client (or one repository's webhook) may queue per hour. */
  buildRequestsPerHour: number;
  /** Requests to the read routes one client may make per minute. */
  readRequestsPerMinute: number;
  /** Addresses whose X-Forwarded-For is believed (a proxy of this deployment); none by default. */
  trustedProxies: readonly string[];
}

/** What the X-RateLimit-* headers say of one limited answer. */
export interface RateLimitStatus {
  limit: number;
  remaining: number;
  /** When the current window ends (X-RateLimit-Reset, in unix seconds). */
  resetAt: Date;
}

export const BUILD_WINDOW_S = 3600;
export const READ_WINDOW_S = 60;

/** Windows that started this long ago have ended, for every limit here (the longest window is an hour). */
const PRUNE_AFTER_S = BUILD_WINDOW_S;
/** How often one process deletes ended windows: when a request opens a new window, at most this often. */
const PRUNE_INTERVAL_MS = 60_000;
let nextPruneAt = 0;

function statusOf(window: RateLimitWindow, limit: number, windowS: number): RateLimitStatus {
  return {
    limit,
    remaining: Math.max(0, limit - window.count),
    resetAt: new Date(window.windowStart.getTime() + windowS * 1000),
  };
}

/**
 * Deletes ended windows when `window` was just opened, at most once a minute per process, so the table holds about
 * an hour of buckets. A failure only delays the prune: it is logged, never answered.
 */
async function pruneWhenOpened(store: RateLimitCounters, window: RateLimitWindow | null, log: Log): Promise<void> {
  if (!window?.opened || Date.now() < nextPruneAt) return;
  nextPruneAt = Date.now() + PRUNE_INTERVAL_MS;
  try {
    await store.pruneRateLimits(PRUNE_AFTER_S);
  } catch (error) {
    log.warn('pruning ended rate limit windows failed; the next opened window tries again', { error: String(error) });
  }
}

// --- who a request counts against ---

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
/** What an address in X-Forwarded-For may look like (IPv4, IPv6); anything else is not believed. */
const ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)$/i;

/** One spelling per address: an IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 address. */
function canonicalAddress(address: string): string {
  const trimmed = address.trim();
  const mapped = IPV4_MAPPED.exec(trimmed);
  return (mapped ? mapped[1] : trimmed).toLowerCase();
}

/**
 * The client a request counts against: the connection's source address (API Gateway's sourceIp, the local socket's
 * remote address). Only when that address is a trusted proxy is its X-Forwarded-For believed, read from the right:
 * the first address that is not itself a trusted proxy is the client (what a client wrote further left is not
 * believed). An entry that is no address ends the walk at the proxy that passed it on.
 */
export function clientAddress(sourceIp: string | undefined, forwardedFor: string | undefined, trustedProxies: readonly string[]): string {
  let client = canonicalAddress(sourceIp ?? '') || 'unknown';
  if (trustedProxies.length === 0 || !forwardedFor) return client;
  const trusted = new Set(trustedProxies.map(canonicalAddress));
  const hops = forwardedFor.split(',').map(canonicalAddress);
  for (let i = hops.length - 1; i >= 0 && trusted.has(client); i--) {
    if (!ADDRESS.test(hops[i])) break;
    client = hops[i];
  }
  return client;
}

// --- new builds ---

/** Whose budget a build request spends: a client's, or (signed webhooks) a repository's. */
export interface BuildBudget {
  /** The counter's bucket: `build:<address>` or `webhook:<namespace/name>`. */
  bucket: string;
  /** Who it is, as the refusal says it: `from one client`, `for one repository`. */
  who: string;
}

export function clientBuildBudget(client: string): BuildBudget {
  return { bucket: `build:${client}`, who: 'from one client' };
}

export function repositoryBuildBudget(fullName: string): BuildBudget {
  return { bucket: `webhook:${fullName.toLowerCase()}`, who: 'for one repository' };
}

export interface BuildBudgetDeps {
  store: RateLimitedBuildStore;
  config: { rateLimits: RateLimitConfig };
  log: Log;
}

function buildLimitText(limit: number, budget: BuildBudget): string {
  return `at most ${limit} new builds per hour ${budget.who}`;
}

/**
 * Runs a build request use case (`request`, given the store to use) within `budget`'s new builds for the hour.
 * Input: the budget, and the use case over a BuildRequestStore.
 * Output: the use case's answer and the budget left after it (undefined when the limit is off).
 * Primary course: the use case runs with a store whose transactions count the builds it creates (a request answered
 * from build-once creates none and costs nothing, so it is answered even when no budget is left); before its
 * transaction commits, the new builds are checked against the budget and added to the counter in one conditional
 * upsert, and when they do not fit the transaction rolls back: a 429, and nothing of the request is written or
 * enqueued. The counter's row stays locked until the commit, so two concurrent requests of one client cannot both
 * spend the last build.
 */
export async function withinBuildBudget<T>(
  deps: BuildBudgetDeps, budget: BuildBudget, request: (store: BuildRequestStore) => Promise<T>,
): Promise<{ answer: T; status?: RateLimitStatus }> {
  const limit = deps.config.rateLimits.buildRequestsPerHour;
  if (limit === 0) return { answer: await request(deps.store) };
  const { store } = deps;
  let spent: RateLimitWindow | null = null;
  const counting: BuildRequestStore = {
    getBuildJob: (id) => store.getBuildJob(id),
    transaction: (fn) => store.transaction(async (tx) => {
      let created = 0;
      const answer = await fn(countingCreates(tx, () => { created += 1; }));
      if (created === 0) return answer;
      spent = await tx.addToRateLimit(budget.bucket, BUILD_WINDOW_S, created, limit);
      if (!spent) {
        const now = await tx.rateLimitCount(budget.bucket, BUILD_WINDOW_S);
        const left = Math.max(0, limit - now.count);
        // The plain text when nothing is left (what most refusals are); else what this request asked for.
        const text = left === 0 ? buildLimitText(limit, budget)
          : `${buildLimitText(limit, budget)} (this request would queue ${created} and ${left} remain)`;
        throw new RateLimitedError(text, limit, statusOf(now, limit, BUILD_WINDOW_S).resetAt);
      }
      return answer;
    }),
  };
  const answer = await request(counting);
  await pruneWhenOpened(store, spent, deps.log);
  // Nothing new queued spent nothing; the headers still say what is left.
  const window = spent ?? await store.rateLimitCount(budget.bucket, BUILD_WINDOW_S);
  return { answer, status: statusOf(window, limit, BUILD_WINDOW_S) };
}

/** `tx` as it is, except that each build it creates is reported to `onCreate` (every other method passes through). */
function countingCreates<W extends BuildRequestWrites>(tx: W, onCreate: () => void): W {
  const createBuild: BuildRequestWrites['createBuild'] = async (input) => {
    const build = await tx.createBuild(input);
    onCreate();
    return build;
  };
  return new Proxy(tx, {
    get(target, key) {
      if (key === 'createBuild') return createBuild;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

// --- reads ---
// A read is counted in this process first and written to the counter in batches: an upsert per read is a commit per
// read (measured locally: 0.36 ms on PGlite, 0.46 ms on Postgres, against 0.08 ms for the read's own lookup), and
// every read of one client would wait on that client's one row. The counter gets a client's first read of each
// window at once (which also learns what the other processes counted), then every READ_BATCH reads or
// READ_FLUSH_MS, whichever comes first. What this process counted and what the database said are never more than
// the truth, so a refusal is never early; the limit may be passed by at most READ_BATCH per process.

export const READ_BATCH = 20;
export const READ_FLUSH_MS = 1000;
/** The clients one process keeps a tally for; past it, the tallies of ended windows are dropped. */
const MAX_TALLIES = 10_000;
/** Counts added unconditionally: a refused read counts too (it was made). */
const NO_LIMIT = 2_147_483_647;

interface Tally {
  /** The window's start, by the database's clock, in ms. */
  windowStart: number;
  /** The window's count as the database last answered it. */
  known: number;
  /** Reads counted here and not yet written. */
  pending: number;
  flushedAt: number;
}

// Per Store, so that two stores in one process (tests, two local servers) never mix their counts.
const talliesByStore = new WeakMap<object, Map<string, Tally>>();

function talliesOf(store: object): Map<string, Tally> {
  let tallies = talliesByStore.get(store);
  if (!tallies) talliesByStore.set(store, (tallies = new Map()));
  return tallies;
}

function dropEnded(tallies: Map<string, Tally>, now: number): void {
  for (const [bucket, t] of tallies) if (now >= t.windowStart + READ_WINDOW_S * 1000) tallies.delete(bucket);
  if (tallies.size >= MAX_TALLIES) tallies.clear();
}

/** Writes `n` reads to the counter and takes what it answers as the window's count. */
async function flush(
  store: RateLimitCounters, tallies: Map<string, Tally>, bucket: string, n: number, now: number,
): Promise<{ tally: Tally; window: RateLimitWindow }> {
  const window = await store.addToRateLimit(bucket, READ_WINDOW_S, n, NO_LIMIT);
  if (!window) throw new Error(`the read counter of ${bucket} refused ${n} reads`);
  const start = window.windowStart.getTime();
  const previous = tallies.get(bucket);
  // Reads counted here while the statement ran stay pending (of the same window only).
  const pending = previous && previous.windowStart === start ? previous.pending : 0;
  const tally = { windowStart: start, known: window.count, pending, flushedAt: now };
  if (!previous && tallies.size >= MAX_TALLIES) dropEnded(tallies, now);
  tallies.set(bucket, tally);
  return { tally, window };
}

export interface ReadLimitDeps {
  store: RateLimitCounters;
  config: { rateLimits: RateLimitConfig };
  log: Log;
}

/**
 * Counts one read of `client`, refusing it with a 429 past the minute's limit.
 * Output: the reads left in the minute, or undefined when the limit is off.
 * Primary course: counted in this process, written to the counter in batches (see above); the first read of a
 * window is written at once, and ended windows are pruned when it opens one.
 */
export async function countRead(deps: ReadLimitDeps, client: string): Promise<RateLimitStatus | undefined> {
  const limit = deps.config.rateLimits.readRequestsPerMinute;
  if (limit === 0) return undefined;
  const bucket = `read:${client}`;
  const tallies = talliesOf(deps.store);
  const now = Date.now();
  let tally = tallies.get(bucket);
  if (!tally || now >= tally.windowStart + READ_WINDOW_S * 1000) {
    tallies.delete(bucket);
    const flushed = await flush(deps.store, tallies, bucket, 1, now);
    tally = flushed.tally;
    await pruneWhenOpened(deps.store, flushed.window, deps.log);
  } else {
    tally.pending += 1;
    if (tally.pending >= READ_BATCH || now - tally.flushedAt >= READ_FLUSH_MS) {
      const n = tally.pending;
      tally.pending = 0;
      tally = (await flush(deps.store, tallies, bucket, n, now)).tally;
    }
  }
  const count = tally.known + tally.pending;
  const resetAt = new Date(tally.windowStart + READ_WINDOW_S * 1000);
  if (count > limit) throw new RateLimitedError(`at most ${limit} requests per minute from one client`, limit, resetAt);
  return { limit, remaining: limit - count, resetAt };
}
