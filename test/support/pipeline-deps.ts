// The build-pipeline members of Deps for suites that never queue or mail: a local queue nobody consumes
// and a mailer that refuses, so a test that unexpectedly sends mail fails loudly.
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import type { BuildQueue, Mailer } from '#core/ports.js';

export function idlePipeline(): { queue: BuildQueue; mailer: Mailer } {
  return {
    queue: new LocalBuildQueue(),
    mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
  };
}
