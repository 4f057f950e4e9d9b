// The build-pipeline members of Deps for suites that never queue, mail or take webhooks: a local queue nobody
// consumes, a mailer that refuses, so a test that unexpectedly sends mail fails loudly, and no webhook secret.
import { LocalBuildQueue } from '#adapters/queue/local-build-queue.js';
import type { BuildQueue, Mailer, SecretReader } from '#core/ports.js';

export function idlePipeline(): { queue: BuildQueue; mailer: Mailer; webhookSecret: SecretReader } {
  return {
    queue: new LocalBuildQueue(),
    mailer: { send: () => Promise.reject(new Error('this suite sends no mail')) },
    webhookSecret: () => Promise.resolve(undefined),
  };
}
