// A stand-in for the RDS Data API: speaks its REST protocol over HTTP to the AWS SDK and runs the SQL on a real Postgres.
// Modelled on the service's observable behaviour: one statement per call, string parameters typed `character varying`
// unless a typeHint says otherwise, no array parameters, timestamps returned as UTC strings without a zone,
// SQL errors as 400 BadRequestException "ERROR: ...; SQLState: ...". The request's `database` is ignored: every call
// runs against the database of the URL the server was started with.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface DataApiServer {
  /** Pass as `endpoint` to RDSDataClient. */
  endpoint: string;
  close(): Promise<void>;
}

type FieldValue = {
  isNull?: boolean;
  booleanValue?: boolean;
  longValue?: number;
  doubleValue?: number;
  stringValue?: string;
  blobValue?: string;
  arrayValue?: unknown;
};

interface SqlParameter {
  name?: string;
  value?: FieldValue;
  typeHint?: 'UUID' | 'TIMESTAMP' | 'DATE' | 'TIME' | 'DECIMAL' | 'JSON';
}

interface ExecuteRequest {
  resourceArn?: string;
  secretArn?: string;
  sql?: string;
  database?: string;
  transactionId?: string;
  parameters?: SqlParameter[];
  parameterSets?: SqlParameter[][];
  includeResultMetadata?: boolean;
  formatRecordsAs?: 'NONE' | 'JSON';
}

/** An error the service would answer, raised by the SDK as an exception named `type`. */
class ServiceError extends Error {
  constructor(readonly status: number, readonly type: string, message: string) {
    super(message);
  }
}

const badRequest = (message: string) => new ServiceError(400, 'BadRequestException', message);

const TYPE_HINT_CASTS: Record<string, string> = {
  UUID: 'uuid', TIMESTAMP: 'timestamp', DATE: 'date', TIME: 'time', DECIMAL: 'numeric', JSON: 'json',
};

/** The value pg receives and the cast that gives it the type the service would. */
function bindParameter(p: SqlParameter): { value: unknown; cast: string } {
  const v = p.value ?? {};
  if (v.arrayValue !== undefined) throw badRequest('Array parameters are not supported.');
  if (v.isNull) return { value: null, cast: '' };
  if (v.stringValue !== undefined) {
    const hinted = p.typeHint ? TYPE_HINT_CASTS[p.typeHint] : undefined;
    return { value: v.stringValue, cast: `::${hinted ?? 'varchar'}` };
  }
  if (v.longValue !== undefined) return { value: v.longValue, cast: '::int8' };
  if (v.doubleValue !== undefined) return { value: v.doubleValue, cast: '::float8' };
  if (v.booleanValue !== undefined) return { value: v.booleanValue, cast: '::boolean' };
  if (v.blobValue !== undefined) return { value: Buffer.from(v.blobValue, 'base64'), cast: '::bytea' };
  throw badRequest(`Parameter ${p.name ?? '?'} has no value`);
}

/** `:name` -> `($n::type)`, skipping literals, quoted identifiers, comments and `::` casts. */
function toPositional(sql: string, parameters: SqlParameter[]): { text: string; values: unknown[] } {
  const byName = new Map(parameters.map((p) => [p.name ?? '', p]));
  const order: string[] = [];
  const values: unknown[] = [];
  const text = sql.replace(
    /'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\/|::|:([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, name: string | undefined) => {
      if (name === undefined) return match;
      const parameter = byName.get(name);
      if (!parameter) throw badRequest(`No value specified for parameter: ${name}`);
      const bound = bindParameter(parameter);
      let index = order.indexOf(name);
      if (index < 0) {
        order.push(name);
        values.push(bound.value);
        index = order.length - 1;
      }
      return `($${index + 1}${bound.cast})`;
    },
  );
  return { text, values };
}

// Postgres type oids the service renders specially; everything else comes back as its text.
const BOOL = 16, BYTEA = 17, INT8 = 20, INT2 = 21, INT4 = 23, OID = 26, FLOAT4 = 700, FLOAT8 = 701;
const TIMESTAMPTZ = 1184;
const INTEGER_TYPES = new Set([INT2, INT4, INT8, OID]);
const FLOAT_TYPES = new Set([FLOAT4, FLOAT8]);
/** Array oid -> element oid. */
const ARRAY_TYPES = new Map<number, number>([
  [1000, BOOL], [1005, INT2], [1007, INT4], [1016, INT8], [1021, FLOAT4], [1022, FLOAT8],
  [1009, 25], [1015, 1043], [1014, 1042], [2951, 2950], [1231, 1700], [1185, TIMESTAMPTZ],
]);
const TYPE_NAMES: Record<number, [typeName: string, jdbcType: number]> = {
  16: ['bool', -7], 17: ['bytea', -2], 20: ['int8', -5], 21: ['int2', 5], 23: ['int4', 4], 25: ['text', 12],
  26: ['oid', -5], 114: ['json', 1111], 700: ['float4', 7], 701: ['float8', 8], 1042: ['bpchar', 1],
  1043: ['varchar', 12], 1082: ['date', 91], 1083: ['time', 92], 1114: ['timestamp', 93],
  1184: ['timestamptz', 93], 1700: ['numeric', 2], 2950: ['uuid', 1111], 3802: ['jsonb', 1111],
};

const parseTextArray = (pg.types.getTypeParser as (oid: number) => unknown)(1009) as (raw: string) => (string | null)[];
const identityParser = { getTypeParser: () => (raw: string) => raw };

function scalar(raw: string, oid: number): unknown {
  if (oid === BOOL) return raw === 't';
  if (INTEGER_TYPES.has(oid) || FLOAT_TYPES.has(oid)) return Number(raw);
  // The session runs in UTC; the service prints timestamptz without the zone.
  if (oid === TIMESTAMPTZ) return raw.replace(/[+-]\d{2}(?::\d{2})?$/, '');
  if (oid === BYTEA) return Buffer.from(raw.slice(2), 'hex').toString('base64');
  return raw;
}

/** A column value as the typed `records` Field union. */
function toField(raw: string | null, oid: number): FieldValue | { arrayValue: Record<string, unknown[]> } {
  if (raw === null) return { isNull: true };
  const element = ARRAY_TYPES.get(oid);
  if (element !== undefined) {
    const items = parseTextArray(raw).map((item) => (item === null ? null : scalar(item, element)));
    if (element === BOOL) return { arrayValue: { booleanValues: items } };
    if (INTEGER_TYPES.has(element)) return { arrayValue: { longValues: items } };
    if (FLOAT_TYPES.has(element)) return { arrayValue: { doubleValues: items } };
    return { arrayValue: { stringValues: items } };
  }
  const value = scalar(raw, oid);
  if (oid === BOOL) return { booleanValue: value as boolean };
  if (INTEGER_TYPES.has(oid)) return { longValue: value as number };
  if (FLOAT_TYPES.has(oid)) return { doubleValue: value as number };
  if (oid === BYTEA) return { blobValue: value as string };
  return { stringValue: value as string };
}

/** A column value as it appears in `formattedRecords` JSON. */
function toJsonValue(raw: string | null, oid: number): unknown {
  if (raw === null) return null;
  const element = ARRAY_TYPES.get(oid);
  if (element !== undefined) return parseTextArray(raw).map((item) => (item === null ? null : scalar(item, element)));
  return scalar(raw, oid);
}

function columnMetadata(field: pg.FieldDef) {
  const element = ARRAY_TYPES.get(field.dataTypeID);
  const [typeName, type] = element !== undefined
    ? [`_${TYPE_NAMES[element]?.[0] ?? 'unknown'}`, 2003]
    : (TYPE_NAMES[field.dataTypeID] ?? ['unknown', 1111]);
  return {
    name: field.name, label: field.name, typeName, type, schemaName: '', tableName: '',
    isAutoIncrement: false, isSigned: INTEGER_TYPES.has(field.dataTypeID) || FLOAT_TYPES.has(field.dataTypeID),
    isCurrency: false, isCaseSensitive: type === 12, nullable: 2, precision: 0, scale: 0, arrayBaseColumnType: 0,
  };
}

function sqlError(error: unknown): ServiceError {
  if (error instanceof ServiceError) return error;
  const e = error as pg.DatabaseError;
  if (typeof e?.code === 'string' && typeof e.message === 'string') {
    let message = `ERROR: ${e.message}`;
    if (e.detail) message += `\n  Detail: ${e.detail}`;
    if (e.hint) message += `\n  Hint: ${e.hint}`;
    if (e.position) message += `\n  Position: ${e.position}`;
    return badRequest(`${message}; SQLState: ${e.code}`);
  }
  return new ServiceError(500, 'InternalServerErrorException', String((error as Error)?.message ?? error));
}

/** Starts the server on 127.0.0.1 (a free port) against the Postgres at `pgUrl`. */
export async function startDataApiServer(pgUrl: string): Promise<DataApiServer> {
  const pool = new pg.Pool({ connectionString: pgUrl, options: '-c TimeZone=UTC', max: 20 });
  pool.on('error', () => {});
  const transactions = new Map<string, pg.PoolClient>();

  function requireTarget(req: ExecuteRequest): void {
    if (!req.resourceArn) throw badRequest('resourceArn is required');
    if (!req.secretArn) throw badRequest('secretArn is required');
  }

  function transactionClient(id: string): pg.PoolClient {
    const client = transactions.get(id);
    if (!client) throw new ServiceError(404, 'TransactionNotFoundException', `Transaction ${id} is not found`);
    return client;
  }

  async function run(client: pg.PoolClient | pg.Pool, sql: string, parameters: SqlParameter[]) {
    const { text, values } = toPositional(sql, parameters);
    // The extended protocol refuses several statements in one call, as the service does.
    const config = { text, values, rowMode: 'array', types: identityParser, queryMode: 'extended' };
    try {
      return await client.query(config as pg.QueryArrayConfig);
    } catch (error) {
      throw sqlError(error);
    }
  }

  async function execute(req: ExecuteRequest) {
    requireTarget(req);
    if (!req.sql) throw badRequest('sql is required');
    const client = req.transactionId ? transactionClient(req.transactionId) : pool;
    const result = await run(client, req.sql, req.parameters ?? []);
    const updated = ['INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(result.command) ? (result.rowCount ?? 0) : 0;
    const out: Record<string, unknown> = { numberOfRecordsUpdated: updated, generatedFields: [] };
    const fields = result.fields ?? [];
    if (fields.length > 0) {
      const rows = result.rows as (string | null)[][];
      if (req.formatRecordsAs === 'JSON') {
        out.formattedRecords = JSON.stringify(
          rows.map((row) => Object.fromEntries(fields.map((f, i) => [f.name, toJsonValue(row[i], f.dataTypeID)]))),
        );
      } else {
        out.records = rows.map((row) => fields.map((f, i) => toField(row[i], f.dataTypeID)));
      }
      if (req.includeResultMetadata) out.columnMetadata = fields.map(columnMetadata);
    }
    return out;
  }

  async function batchExecute(req: ExecuteRequest) {
    requireTarget(req);
    if (!req.sql) throw badRequest('sql is required');
    const sets = req.parameterSets && req.parameterSets.length > 0 ? req.parameterSets : [[]];
    const runAll = async (client: pg.PoolClient) => {
      for (const set of sets) await run(client, req.sql!, set);
      return { updateResults: sets.map(() => ({ generatedFields: [] })) };
    };
    if (req.transactionId) return runAll(transactionClient(req.transactionId));
    // Outside a transaction the batch still applies all or nothing.
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const out = await runAll(client);
      await client.query('COMMIT');
      return out;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async function beginTransaction(req: ExecuteRequest) {
    requireTarget(req);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
    } catch (error) {
      client.release(true);
      throw sqlError(error);
    }
    const transactionId = randomBytes(24).toString('base64');
    transactions.set(transactionId, client);
    return { transactionId };
  }

  async function endTransaction(req: ExecuteRequest, commit: boolean) {
    requireTarget(req);
    if (!req.transactionId) throw badRequest('transactionId is required');
    const client = transactionClient(req.transactionId);
    transactions.delete(req.transactionId);
    let result: pg.QueryResult;
    try {
      result = await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    } catch (error) {
      client.release(true);
      throw sqlError(error);
    }
    client.release();
    // Postgres answers COMMIT of a failed transaction with a silent ROLLBACK; say so instead of pretending.
    if (commit && result.command !== 'COMMIT') {
      throw badRequest(`Transaction ${req.transactionId} was rolled back because a statement in it failed`);
    }
    return { transactionStatus: commit ? 'Transaction Committed' : 'Rollback Complete' };
  }

  const operations: Record<string, (req: ExecuteRequest) => Promise<unknown>> = {
    '/Execute': execute,
    '/BatchExecute': batchExecute,
    '/BeginTransaction': beginTransaction,
    '/CommitTransaction': (req) => endTransaction(req, true),
    '/RollbackTransaction': (req) => endTransaction(req, false),
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    let status = 200;
    let body: unknown;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    try {
      const operation = request.method === 'POST' ? operations[(request.url ?? '').split('?')[0]] : undefined;
      if (!operation) throw new ServiceError(404, 'UnknownOperationException', `Unknown operation ${request.method} ${request.url}`);
      let req: ExecuteRequest;
      try {
        req = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExecuteRequest) : {};
      } catch {
        throw badRequest('The request body is not valid JSON');
      }
      body = await operation(req);
    } catch (error) {
      const e = sqlError(error);
      status = e.status;
      headers['x-amzn-errortype'] = e.type;
      body = { message: e.message };
    }
    const text = JSON.stringify(body);
    response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
    response.end(text);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: String(error) }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      for (const client of transactions.values()) {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
      }
      transactions.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.end();
    },
  };
}
