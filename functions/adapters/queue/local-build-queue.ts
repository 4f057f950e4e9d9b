// The local BuildQueue: the Store's queued builds are the queue (a restart loses nothing); enqueue only
// wakes the local worker so it claims them at once instead of at its next poll.
import type { BuildQueue } from '#core/ports.js';

export class LocalBuildQueue implements BuildQueue {
  private readonly listeners = new Set<() => void>();

  async enqueue(buildIds: readonly string[]): Promise<void> {
    if (buildIds.length === 0) return;
    for (const listener of this.listeners) listener();
  }

  /** Calls `listener` whenever builds are enqueued; returns the unsubscribe function. */
  onEnqueue(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
