// Race tests wait for a concurrent statement to block on a lock instead of sleeping and hoping it got there:
// Postgres shows a session that waits for a row or key another transaction holds with wait_event_type 'Lock'.
import { vi } from 'vitest';
import type { SqlClient } from '#adapters/postgres/sql-client.js';

const LOCK_WAITERS = `SELECT count(*)::int AS waiting FROM pg_stat_activity
  WHERE datname = current_database() AND wait_event_type = 'Lock'`;

/**
 * Resolves once a session of `client`'s database waits on a lock, or once `pending` settles (it never had to wait).
 * A race test calls it between starting the statement that should block and releasing the transaction in its way,
 * so the release comes after that statement reached the lock, however busy the machine is. Past `timeoutMs` it
 * resolves all the same: the lock holder is then released and the test's assertions decide, rather than a hang.
 */
export async function lockWaitOrSettled(client: SqlClient, pending: Promise<unknown>, timeoutMs = 10_000): Promise<void> {
  let settled = false;
  const settle = () => { settled = true; };
  pending.then(settle, settle);
  await vi.waitFor(async () => {
    if (settled) return;
    const [row] = await client.query(LOCK_WAITERS);
    if (Number(row.waiting) === 0) throw new Error('no statement waits on a lock yet');
  }, { timeout: timeoutMs, interval: 10 }).catch(() => {});
}
