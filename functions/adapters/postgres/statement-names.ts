// Names for prepared statements: one per distinct SQL text, so a driver parses and plans a statement once per session.
import { createHash } from 'node:crypto';

/**
 * How many distinct statement texts get a prepared statement. SqlStore builds its SQL from fixed
 * fragments, so it sends a few dozen texts; the cap only guards against a caller that builds texts
 * without bound, whose statements beyond it run unnamed (planned per call) instead of piling up
 * prepared statements in every session.
 */
export const MAX_PREPARED_STATEMENTS = 200;

export class StatementNames {
  private readonly names = new Map<string, string>();

  constructor(private readonly max = MAX_PREPARED_STATEMENTS) {}

  /** The prepared statement name for `sql`, or undefined when it should run unnamed. */
  nameOf(sql: string): string | undefined {
    const known = this.names.get(sql);
    if (known !== undefined || this.names.size >= this.max) return known;
    // 64 bits of SHA-256: a collision among a few hundred texts is out of reach.
    const name = `enot_${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
    this.names.set(sql, name);
    return name;
  }

  /** How many texts have a name. */
  get size(): number {
    return this.names.size;
  }
}
