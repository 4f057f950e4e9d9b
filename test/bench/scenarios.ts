// What the load runs ask: the read endpoints over the seeded pools, the peer's two paths, and the
// ceiling variants of each; plus the probe that checks every request answers what it should first.
import type { LoadRequest } from './load.js';
import type { Pools } from './seed.js';

export type ReadScenarioId =
  | 'get-hit' | 'get-miss' | 'versions' | 'search-exact' | 'search-substring' | 'last-builds' | 'download';
export type PeerScenarioId = 'peer-metadata' | 'peer-tarball';

export interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

export interface Scenario<Id extends string = string> {
  id: Id;
  label: string;
  requests: LoadRequest[];
  /** Why `answer` is wrong for this scenario, or null when it is right. */
  check(answer: Answer): string | null;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function envelopeList(answer: Answer, nonEmpty: boolean): string | null {
  if (answer.status !== 200) return `status ${answer.status}: ${answer.body.toString('utf8', 0, 200)}`;
  if (answer.contentType !== JSON_TYPE) return `content type ${answer.contentType}`;
  const parsed = JSON.parse(answer.body.toString('utf8')) as { result?: unknown; response?: unknown };
  if (parsed.result !== true || !Array.isArray(parsed.response)) return 'not a successful envelope with a list';
  if (nonEmpty && parsed.response.length === 0) return 'an empty list';
  return null;
}

function artifact(bytes: number) {
  return (answer: Answer): string | null => {
    if (answer.status !== 200) return `status ${answer.status}: ${answer.body.toString('utf8', 0, 200)}`;
    if (answer.contentType !== 'application/x-tar') return `content type ${answer.contentType}`;
    return answer.body.length === bytes ? null : `${answer.body.length} bytes, expected ${bytes}`;
  };
}

const json = (value: unknown) => JSON.stringify(value);

/** The seven read-path scenarios of the issue, over `pools`. */
export function readScenarios(pools: Pools, artifactBytes: number): Scenario<ReadScenarioId>[] {
  return [
    {
      id: 'get-hit',
      label: 'POST /get (hit)',
      requests: pools.hits.map((h) => ({
        method: 'POST', path: '/get', body: json({ full_name: h.fullName, versions: [{ ref: h.ref, erl_version: h.erlVersion }] }),
      })),
      check: artifact(artifactBytes),
    },
    {
      id: 'get-miss',
      label: 'POST /get (miss)',
      // The single-object form, as the enot client sends it.
      requests: pools.misses.map((m) => ({ method: 'POST', path: '/get', body: json({ full_name: m.fullName, versions: { ref: m.ref } }) })),
      check: (a) => (a.status === 200 && a.body.toString('utf8') === 'No such build' ? null : `status ${a.status}: ${a.body.toString('utf8', 0, 200)}`),
    },
    {
      id: 'versions',
      label: 'POST /versions',
      requests: pools.packages.map((p) => ({ method: 'POST', path: '/versions', body: json({ full_name: p }) })),
      check: (a) => envelopeList(a, true),
    },
    {
      id: 'search-exact',
      label: 'GET /search (exact name)',
      requests: pools.exactNames.map((n) => ({ method: 'GET', path: `/search?name=${encodeURIComponent(n)}` })),
      check: (a) => envelopeList(a, true),
    },
    {
      id: 'search-substring',
      label: 'GET /search (substring)',
      requests: pools.substrings.map((s) => ({ method: 'GET', path: `/search?name=${encodeURIComponent(s)}` })),
      check: (a) => envelopeList(a, true),
    },
    {
      id: 'last-builds',
      label: 'GET /last_builds',
      requests: [{ method: 'GET', path: '/last_builds' }],
      check: (a) => envelopeList(a, true),
    },
    {
      id: 'download',
      label: 'GET /download/{id}',
      requests: pools.downloads.map((id) => ({ method: 'GET', path: `/download/${id}` })),
      check: artifact(artifactBytes),
    },
  ];
}

/** The peer's metadata and tarball paths (verdaccio.ts serves them). */
export function peerScenarios(pkg: string, tarballBytes: number): Scenario<PeerScenarioId>[] {
  return [
    {
      id: 'peer-metadata',
      label: `Verdaccio GET /${pkg}`,
      requests: [{ method: 'GET', path: `/${pkg}` }],
      check: (a) => {
        if (a.status !== 200) return `status ${a.status}`;
        const doc = JSON.parse(a.body.toString('utf8')) as { name?: string };
        return doc.name === pkg ? null : 'not the package document';
      },
    },
    {
      id: 'peer-tarball',
      label: `Verdaccio GET /${pkg}/-/${pkg}-1.0.0.tgz`,
      requests: [{ method: 'GET', path: `/${pkg}/-/${pkg}-1.0.0.tgz` }],
      check: (a) => (a.status === 200 && a.body.length === tarballBytes ? null : `status ${a.status}, ${a.body.length} bytes`),
    },
  ];
}

/** The same requests (method and body) sent to the ceiling server's `/plain/<id>` or `/query/<id>`. */
export function ceilingRequests(scenario: Scenario, variant: 'plain' | 'query'): LoadRequest[] {
  return scenario.requests.map((r) => ({ ...r, path: `/${variant}/${scenario.id}` }));
}

export interface Probe {
  /** Requests checked. */
  checked: number;
  /** The median answer (by size): what the ceiling answers for this scenario. */
  median: Answer;
}

/** How many requests of a pool are checked before a run. */
const PROBE_LIMIT = 60;

/**
 * Sends up to PROBE_LIMIT of the scenario's requests one by one and checks each answer, so a run
 * never measures error pages; throws on the first wrong answer.
 */
export async function probe(baseUrl: string, scenario: Scenario): Promise<Probe> {
  const answers: Answer[] = [];
  for (const request of scenario.requests.slice(0, PROBE_LIMIT)) {
    const res = await fetch(baseUrl + request.path, {
      method: request.method,
      body: request.body,
      headers: request.body ? { 'content-type': 'application/json' } : {},
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    const answer = { status: res.status, contentType: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) };
    const wrong = scenario.check(answer);
    if (wrong) throw new Error(`${scenario.label}: ${request.method} ${request.path} ${request.body ?? ''} answered wrong: ${wrong}`);
    answers.push(answer);
  }
  answers.sort((a, b) => a.body.length - b.body.length);
  return { checked: answers.length, median: answers[Math.floor(answers.length / 2)] };
}
