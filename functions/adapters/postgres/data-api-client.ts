// SqlClient over the RDS Data API (Aurora): one HTTPS call per statement, no connection held by the function.
import { createRequire } from 'node:module';
import type * as RdsData from '@aws-sdk/client-rds-data';
import type { Field, RDSDataClient, SqlParameter } from '@aws-sdk/client-rds-data';
import { splitStatements, type SqlClient, type SqlParam, type SqlRow } from './sql-client.js';

// The SDK is CommonJS: require loads its one bundled file, far cheaper at cold start than the ESM import graph.
const {
  BeginTransactionCommand, CommitTransactionCommand, ExecuteStatementCommand, RDSDataClient: DataApiSdkClient,
  RollbackTransactionCommand,
} = createRequire(import.meta.url)('@aws-sdk/client-rds-data') as typeof RdsData;

export interface DataApiOptions {
  /** The Aurora cluster ARN. */
  resourceArn: string;
  /** The Secrets Manager secret holding the database credentials. */
  secretArn: string;
  database: string;
  region?: string;
  /** Endpoint override (the Data API test server). */
  endpoint?: string;
  /** A ready client (tests, custom credentials); region and endpoint are then ignored. */
  client?: RDSDataClient;
  /** How often a call is retried while a paused Aurora Serverless cluster resumes. */
  resumeRetries?: number;
}

/** $1..$n -> :p1..:pn, leaving string literals, quoted identifiers and comments alone. */
export function toNamedParameters(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\$(\d+)/g, (match, index: string | undefined) =>
    index === undefined ? match : `:p${index}`,
  );
}

function toField(value: SqlParam): Field {
  if (value === null) return { isNull: true };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (Number.isSafeInteger(value)) return { longValue: value };
  return { doubleValue: value };
}

function toParameters(params: SqlParam[]): SqlParameter[] {
  return params.map((value, i) => ({ name: `p${i + 1}`, value: toField(value) }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createDataApiClient(options: DataApiOptions): SqlClient {
  const rds = options.client ?? new DataApiSdkClient({
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  });
  const target = { resourceArn: options.resourceArn, secretArn: options.secretArn };
  const resumeRetries = options.resumeRetries ?? 3;

  // A paused Serverless v2 cluster answers DatabaseResumingException until it is up (seconds).
  async function send<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const resuming = error instanceof Error && error.name === 'DatabaseResumingException';
        if (!resuming || attempt >= resumeRetries) throw error;
        await sleep(1000 * 2 ** attempt);
      }
    }
  }

  async function query(sql: string, params: SqlParam[], transactionId?: string): Promise<SqlRow[]> {
    const out = await send(() =>
      rds.send(new ExecuteStatementCommand({
        ...target,
        database: options.database,
        sql: toNamedParameters(sql),
        parameters: toParameters(params),
        formatRecordsAs: 'JSON',
        ...(transactionId ? { transactionId } : {}),
      })),
    );
    return out.formattedRecords ? (JSON.parse(out.formattedRecords) as SqlRow[]) : [];
  }

  // The Data API runs one statement per call.
  async function exec(sql: string, transactionId?: string): Promise<void> {
    for (const statement of splitStatements(sql)) await query(statement, [], transactionId);
  }

  function bound(transactionId?: string): SqlClient {
    const client: SqlClient = {
      query: (sql, params = []) => query(sql, params, transactionId),
      exec: (sql) => exec(sql, transactionId),
      transaction: transactionId ? (fn) => fn(client) : transaction,
      close: async () => {
        if (!transactionId && !options.client) rds.destroy();
      },
    };
    return client;
  }

  async function transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const begun = await send(() =>
      rds.send(new BeginTransactionCommand({ ...target, database: options.database })),
    );
    const transactionId = begun.transactionId;
    if (!transactionId) throw new Error('BeginTransaction returned no transactionId');
    let result: T;
    try {
      result = await fn(bound(transactionId));
    } catch (error) {
      await rds.send(new RollbackTransactionCommand({ ...target, transactionId })).catch(() => {});
      throw error;
    }
    await rds.send(new CommitTransactionCommand({ ...target, transactionId }));
    return result;
  }

  return bound();
}
