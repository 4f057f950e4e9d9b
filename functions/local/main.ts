// `npm start`: the whole service in one process on PORT, data in ENOT_DATA_DIR (PGlite unless DATABASE_URL),
// building with the Erlang/OTP installed here.
import { join } from 'node:path';
import { DataDirectoryInUseError } from '#core/errors.js';
import { loadConfig, type Config } from '#functions/config.js';
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import { buildDeps } from '#functions/wiring.js';
import { processLogger, requestLogger } from '#functions/log.js';
import { startLocalBuilds } from './build-worker.js';
import { detectLocalOtp, registerLocalErts } from './local-erlang.js';
import { startRetentionTimer } from './retention-timer.js';
import { startLocalServer } from './server.js';

/** How long a shutdown waits for in-flight requests before dropping them. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  const loaded = loadConfig();
  const log = processLogger(loaded.logLevel);

  const otp = await detectLocalOtp();
  if (otp) log.info('building with the local Erlang/OTP', { release: otp.release, version: otp.version, root: otp.root });
  else log.warn('no Erlang/OTP installed on this machine: the API answers, but every build will fail until `erl` is on PATH');
  // The release requests get when they name none: the configured one, else the one installed here.
  const config: Config = loaded.defaultErlVersion || !otp ? loaded : { ...loaded, defaultErlVersion: otp.release };
  if (!config.defaultErlVersion) log.warn('no default OTP release: build requests must name erl_version');

  const deps = await buildDeps(config);
  if (!(deps.queue instanceof LocalBuildQueue)) throw new Error('the local service needs the local build queue');

  if (otp) {
    try {
      const registered = await registerLocalErts({
        store: deps.store, blobs: deps.blobs, otp, scratchDir: join(config.dataDir, 'tmp'), signer: deps.signer, arch: config.arch,
      });
      log.info(registered.kind === 'registered' ? 'registered the local ERTS' : 'the local ERTS is registered already', {
        release: registered.erts.release, ertsVersion: registered.erts.ertsVersion,
      });
    } catch (error) {
      log.warn('the local ERTS could not be registered; /download_erts will not serve it', {
        release: otp.release, error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  const builds = await startLocalBuilds({ deps, queue: deps.queue, otp, log: requestLogger({}, () => config.logLevel) });
  // GET /health asks it whether this machine can build.
  deps.builder = builds.builder;
  const sandbox = await builds.builder.sandboxStatus();
  if (sandbox.mode === 'bubblewrap') log.info('builds run in the sandbox', { sandbox: sandbox.reason, limits: config.buildLimits });
  else if (sandbox.mode === 'off') log.warn('BUILDS ARE NOT SANDBOXED (ENOT_SANDBOX=off): a package\'s code runs with this service\'s rights', { sandbox: sandbox.reason });
  else log.error('the build sandbox does not work here: every build is refused until it does, or ENOT_SANDBOX=off is set', { sandbox: sandbox.reason });
  // Expired logs and superseded artifacts go daily (README, Retention).
  const retention = startRetentionTimer(deps, requestLogger({ worker: 'sweep-retention' }, () => config.logLevel));
  const server = await startLocalServer({ deps, port: config.port, host: config.host });
  log.info('listening', { url: server.url, dataDir: config.dataDir, buildConcurrency: config.buildConcurrency });
  if (config.adminTokenHashes.length === 0) {
    // Only the hash goes into the configuration; the token is printed once, to keep.
    log.warn('no admin token: the /v2 admin routes answer 401. To make one: '
      + 'TOKEN=$(openssl rand -hex 32); echo "admin token: $TOKEN"; '
      + 'export ENOT_ADMIN_TOKENS=sha256:$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1); then start again');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal, inFlight: server.inFlight(), building: builds.builder.active() });
    const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    try {
      await server.close();
    } finally {
      clearTimeout(grace);
    }
    // Running builds are killed and queued again: the next start builds them.
    await builds.stop();
    await retention.stop();
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
  if (e instanceof DataDirectoryInUseError) {
    // Refused before anything in the directory was read or written: say whose it is, no stack.
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'startup refused', error: e.message, owner: e.owner }) + '\n');
    process.exit(1);
  }
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'startup failed', error: String(e), stack: (e as Error)?.stack }) + '\n');
  process.exit(1);
});
