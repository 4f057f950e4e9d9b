// Finds the processes of local builds: those working in, or pointing at, a scratch dir under a data dir.
// Suites use it to check that a killed build, or a killed service, leaves no process behind.
import { join } from 'node:path';
import { processTreePids } from '#adapters/builder/process-tree.js';

/** Pids of live processes whose working directory or environment is under `<dataDir>/builds/`. */
export async function buildProcesses(dataDir: string): Promise<number[]> {
  // The builds directory holds every scratch dir, so the builder's own rule for one build's processes covers all.
  return (await processTreePids({ dir: join(dataDir, 'builds') })) ?? [];
}
