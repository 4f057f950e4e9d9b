// A server under load, in its own process (the load generator must not share its event loop): the enot
// local server over pg or PGlite, or the ceiling, a bare node:http server with and without one query.
// Started by servers.ts over IPC: it receives a TargetConfig, answers {ready, url}, and stops on {stop}.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { loadConfig } from '#functions/config.js';
import { startLocalServer } from '#functions/local/server.js';
import { buildDeps } from '#functions/wiring.js';

export type TargetConfig =
  /** The local server as `npm start` wires it: pg when databaseUrl is given, else PGlite in dataDir/pglite; blobs in dataDir/blobs. */
  | { kind: 'enot'; databaseUrl?: string; dataDir: string }
  | {
    kind: 'ceiling';
    databaseUrl: string;
    /** Build ids the one-query variant looks up in turn. */
    buildIds: string[];
    /** Per scenario: the body (base64) and content type that scenario's endpoint answered. */
    bodies: Record<string, { contentType: string; base64: string }>;
  };

export type TargetMessage = { type: 'ready'; url: string } | { type: 'failed'; error: string };

/** Same pool size as the store's pg driver (functions/adapters/postgres/pg-client.ts). */
const POOL_SIZE = 10;

async function startEnot(config: Extract<TargetConfig, { kind: 'enot' }>): Promise<{ url: string; stop(): Promise<void> }> {
  // buildDeps, as `npm start` does: whatever the service wires up, the benchmark gets too.
  const deps = await buildDeps(loadConfig({
    ENOT_DATA_DIR: config.dataDir,
    ENOT_LOG_LEVEL: 'silent',
    PORT: '0',
    // The load comes from one address: every read is counted as in production, none refused.
    ENOT_READ_REQUESTS_PER_MINUTE: '1000000000',
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}),
  }));
  const server = await startLocalServer({ deps, port: 0 });
  return {
    url: server.url,
    async stop() {
      server.closeAllConnections();
      await server.close();
      await deps.store.close();
    },
  };
}

/**
 * The ceiling: what node:http alone answers on this machine. `/plain/<scenario>` sends the scenario's
 * body; `/query/<scenario>` first does one primary-key SELECT on builds through a pg.Pool.
 */
async function startCeiling(config: Extract<TargetConfig, { kind: 'ceiling' }>): Promise<{ url: string; stop(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: POOL_SIZE });
  pool.on('error', () => {});
  const bodies = new Map(Object.entries(config.bodies).map(([name, b]) => [name, { type: b.contentType, bytes: Buffer.from(b.base64, 'base64') }]));
  let next = 0;

  function send(res: ServerResponse, status: number, type: string, bytes: Buffer): void {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(bytes.length) });
    res.end(bytes);
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [, variant, name] = (req.url ?? '/').split('?')[0].split('/');
    const body = bodies.get(name ?? '');
    if (!body || (variant !== 'plain' && variant !== 'query')) return send(res, 404, 'text/plain', Buffer.from('no such body'));
    if (variant === 'query') {
      const id = config.buildIds[next++ % config.buildIds.length];
      const result = await pool.query('SELECT * FROM builds WHERE id = $1::uuid', [id]);
      if (result.rows.length !== 1) return send(res, 500, 'text/plain', Buffer.from('build not found'));
    }
    send(res, 200, body.type, body.bytes);
  }

  const server = createServer((req, res) => {
    // The request body is read to its end, as the endpoints do, before answering.
    req.resume();
    req.on('end', () => {
      answer(req, res).catch(() => send(res, 500, 'text/plain', Buffer.from('error')));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}

function reply(message: TargetMessage): void {
  process.send?.(message);
}

let running: { stop(): Promise<void> } | undefined;

async function stopAndExit(code: number): Promise<never> {
  const stopping = running?.stop().catch(() => {});
  // Bounded: a stop that hangs must not keep the benchmark waiting.
  await Promise.race([stopping, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  process.exit(code);
}

process.on('message', (message: { type: 'start'; config: TargetConfig } | { type: 'stop' }) => {
  if (message.type === 'stop') {
    void stopAndExit(0);
    return;
  }
  const config = message.config;
  (config.kind === 'enot' ? startEnot(config) : startCeiling(config)).then(
    (started) => {
      running = started;
      reply({ type: 'ready', url: started.url });
    },
    (error: unknown) => {
      reply({ type: 'failed', error: String((error as Error)?.stack ?? error) });
      void stopAndExit(1);
    },
  );
});
// The parent going away (a crash, Ctrl-C) must not leave this server behind.
process.on('disconnect', () => void stopAndExit(0));
