// The BuildQueue on SQS (AWS runtime): one message per build id, consumed by workers/start-build.
// The SDK is loaded on first use, not at import: only the functions that queue builds ever send.
import type { SQSClient, SQSClientConfig, SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { buildMessageBody } from '#core/build-queue-message.js';
import type { BuildQueue } from '#core/ports.js';
import { lazyRequire } from '#adapters/lazy-require.js';

type SqsSdk = typeof import('@aws-sdk/client-sqs');

const sqsSdk = lazyRequire<SqsSdk>('@aws-sdk/client-sqs');

/** SendMessageBatch takes at most this many entries. */
export const SQS_BATCH_MAX = 10;

export interface SqsBuildQueueOptions {
  queueUrl: string;
  /** A ready client (tests); else one is made from `clientConfig` on first use. */
  client?: SQSClient;
  clientConfig?: SQSClientConfig;
}

export class SqsBuildQueue implements BuildQueue {
  private client: SQSClient | undefined;

  constructor(private readonly options: SqsBuildQueueOptions) {
    this.client = options.client;
  }

  /**
   * Sends every id, in batches of SQS_BATCH_MAX. Entries SQS refuses are sent once more (a refusal is
   * usually a passing one); ids still refused make it throw, naming them, so the request that queued
   * them fails instead of leaving builds nobody will start (the reaper would re-send them, but late).
   */
  async enqueue(buildIds: readonly string[]): Promise<void> {
    const ids = [...new Set(buildIds)];
    const refused: string[] = [];
    for (let i = 0; i < ids.length; i += SQS_BATCH_MAX) {
      const chunk = ids.slice(i, i + SQS_BATCH_MAX);
      const first = await this.sendBatch(chunk);
      if (first.length === 0) continue;
      const second = await this.sendBatch(first.map((f) => f.buildId));
      refused.push(...second.map((f) => `${f.buildId} (${f.reason})`));
    }
    if (refused.length > 0) {
      throw new Error(`SQS refused ${refused.length} build message(s): ${refused.join(', ')}`);
    }
  }

  /** Sends one batch; returns the entries that failed. */
  private async sendBatch(buildIds: readonly string[]): Promise<{ buildId: string; reason: string }[]> {
    const sdk = sqsSdk();
    this.client ??= new sdk.SQSClient(this.options.clientConfig ?? {});
    // Entry ids only need to be unique within the call; the position maps a failure back to its build.
    const entries: SendMessageBatchRequestEntry[] = buildIds.map((buildId, i) => ({
      Id: `b${i}`,
      MessageBody: buildMessageBody(buildId),
    }));
    const out = await this.client.send(new sdk.SendMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: entries }));
    const failed: { buildId: string; reason: string }[] = [];
    for (const f of out.Failed ?? []) {
      const at = entries.findIndex((e) => e.Id === f.Id);
      if (at < 0) continue;
      failed.push({ buildId: buildIds[at], reason: [f.Code, f.Message].filter(Boolean).join(': ') || 'unknown' });
    }
    return failed;
  }
}
