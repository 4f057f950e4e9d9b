import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One process per file, isolated (vitest's defaults, written down so they are not traded for speed): suites
    // install process-wide dependencies (useDeps), mock SDK client prototypes, spy on process.stdout and edit
    // process.env, so a file sharing a process would see another's. Threads instead save a fraction of a second
    // a file here.
    pool: 'forks',
    isolate: true,
    // Two cores: more workers only adds contention on Postgres and the Erlang builds.
    maxWorkers: 2,
  },
});
