// `npm start`: the whole service in one process on PORT, data in ENOT_DATA_DIR (PGlite unless DATABASE_URL).
import { loadConfig } from '#functions/config.js';
import { buildDeps } from '#functions/wiring.js';
import { processLogger } from '#http/log.js';
import { startLocalServer } from './server.js';

/** How long a shutdown waits for in-flight requests before dropping them. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const deps = await buildDeps(config);
  const log = processLogger(config.logLevel);
  const server = await startLocalServer({ deps, port: config.port, host: config.host });
  log.info('listening', { url: server.url, dataDir: config.dataDir });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal, inFlight: server.inFlight() });
    const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    try {
      await server.close();
    } finally {
      clearTimeout(grace);
    }
    // PGlite must be closed, or what it has not flushed yet is lost.
    await deps.store.close();
    log.info('stopped');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      stop(signal).catch((e: unknown) => {
        log.error('shutdown failed', { error: e instanceof Error ? e : String(e) });
        process.exit(1);
      });
    });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'startup failed', error: String(e), stack: (e as Error)?.stack }) + '\n');
  process.exit(1);
});
