// Deterministic, realistic repository names for the benchmark's seed: owners, package names, forks.

/** Words Erlang package names are made of; each is also a substring a user would search for. */
export const NAME_WORDS = [
  'json', 'http', 'cowboy', 'ranch', 'mongo', 'redis', 'pool', 'lager', 'proto', 'gun', 'jiffy', 'jsx', 'uuid',
  'cache', 'queue', 'kafka', 'mqtt', 'amqp', 'rabbit', 'ldap', 'smtp', 'xml', 'yaml', 'toml', 'csv', 'crypto',
  'jwt', 'oauth', 'ssl', 'tls', 'socket', 'websocket', 'rest', 'rpc', 'grpc', 'thrift', 'msgpack', 'bson',
  'template', 'router', 'metrics', 'statsd', 'prometheus', 'telemetry', 'logger', 'trace', 'debug', 'test',
  'mock', 'prop', 'quickcheck', 'bench', 'config', 'env', 'cli', 'getopt', 'shell', 'term', 'color', 'ansi',
  'time', 'date', 'calendar', 'cron', 'timer', 'retry', 'backoff', 'breaker', 'limiter', 'throttle', 'hash',
  'bloom', 'trie', 'graph', 'tree', 'heap', 'list', 'map', 'dict', 'store', 'ets', 'mnesia', 'riak',
  'cassandra', 'postgres', 'pgsql', 'mysql', 'sqlite', 'odbc', 's3', 'aws', 'gcp', 'azure', 'docker', 'k8s',
  'consul', 'etcd', 'zookeeper', 'raft', 'paxos', 'gossip', 'cluster', 'dist', 'node', 'epmd', 'sync',
  'reload', 'release', 'relx', 'rebar', 'erlang', 'otp', 'gen', 'server', 'fsm', 'statem', 'supervisor',
  'worker', 'task', 'job', 'scheduler', 'event', 'pubsub', 'bus', 'stream', 'pipe', 'flow', 'parser', 'lexer',
  'yecc', 'leex', 'regex', 'unicode', 'string', 'binary', 'base64', 'hex', 'zip', 'gzip', 'lz4', 'snappy',
  'image', 'png', 'pdf', 'html', 'css', 'markdown', 'email', 'sms', 'push', 'apns', 'fcm', 'geo', 'ip', 'dns',
  'url', 'uri', 'mime', 'http2', 'quic', 'ssh', 'ftp', 'sftp', 'tcp', 'udp', 'ipv6', 'net', 'proxy',
  'balancer', 'health', 'check', 'admin', 'web', 'api', 'sdk', 'client', 'driver', 'adapter', 'plugin', 'hook',
  'ext', 'util', 'utils', 'tools', 'lib', 'core', 'common', 'base', 'std', 'rocks', 'leveldb', 'bitcask',
];

const SYLLABLES = ['ka', 'ro', 'mi', 'zu', 'te', 'lo', 'an', 'vi', 'de', 'sa', 'ni', 'ko', 'ra', 'el', 'to',
  'ma', 'shi', 'ba', 'ne', 'ri', 'go', 'po', 'li', 'ha', 'ju', 'ya', 'fe', 'qu', 'xo', 'we'];

export interface RepoName {
  namespace: string;
  name: string;
}

/** mulberry32: a small seeded PRNG, so every run (and every scale step) seeds the same names. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The most repositories the seed can name (twice the registry scale). */
export const MAX_REPOSITORIES = 40_000;

let all: RepoName[] | undefined;

/**
 * The first `count` repositories of the benchmark's registry. Always a prefix of the same list, so
 * growing the database in steps adds names without changing those already there.
 * About four repositories per owner (a few owners hold many), names of one to three words with the
 * prefixes and suffixes Erlang projects use, and popular names repeated across owners (forks).
 */
export function repositoryNames(count: number): RepoName[] {
  if (count > MAX_REPOSITORIES) throw new Error(`at most ${MAX_REPOSITORIES} repositories`);
  all ??= generate(MAX_REPOSITORIES);
  return all.slice(0, count);
}

function generate(count: number): RepoName[] {
  const random = prng(0x5eed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const owners: string[] = [];
  const ownerSet = new Set<string>();
  const ownerCount = Math.max(1, Math.ceil(count / 4));
  while (owners.length < ownerCount) {
    let owner = pick(SYLLABLES) + pick(SYLLABLES) + (random() < 0.6 ? pick(SYLLABLES) : '');
    if (random() < 0.3) owner += String(Math.floor(random() * 100));
    if (random() < 0.1) owner = `${owner}-${pick(NAME_WORDS)}`;
    if (ownerSet.has(owner)) continue;
    ownerSet.add(owner);
    owners.push(owner);
  }
  const taken = new Set<string>();
  const made: string[] = [];
  const out: RepoName[] = [];
  for (let i = 0; i < count; i++) {
    // Skewed: low owner indexes get many repositories, as on GitHub.
    const namespace = owners[Math.floor(owners.length * random() ** 2)];
    let name: string;
    const shape = random();
    if (made.length > 20 && shape < 0.08) {
      name = pick(made); // a fork: the same name under another owner
    } else if (shape < 0.35) {
      const w = pick(NAME_WORDS);
      name = pick(['', '', 'erl', 'erlang_', 'e', 'ex_', 'lib']) + w + pick(['', '', '', '_erl', 'lib', '2', '_ex']);
    } else if (shape < 0.9) {
      name = pick(NAME_WORDS) + pick(['_', '_', '_', '-']) + pick(NAME_WORDS);
    } else {
      name = `${pick(NAME_WORDS)}_${pick(NAME_WORDS)}_${pick(NAME_WORDS)}`;
    }
    let unique = name;
    for (let n = 2; taken.has(`${namespace}/${unique}`); n++) unique = `${name}${n}`;
    taken.add(`${namespace}/${unique}`);
    made.push(unique);
    out.push({ namespace, name: unique });
  }
  return out;
}
