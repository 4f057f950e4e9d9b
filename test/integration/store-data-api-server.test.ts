// The Data API test server behaves like the service where the Store's Data API driver depends on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchExecuteStatementCommand, BeginTransactionCommand, CommitTransactionCommand, ExecuteStatementCommand,
  RDSDataClient, RollbackTransactionCommand, type SqlParameter,
} from '@aws-sdk/client-rds-data';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '#support/databases.js';
import { startDataApiServer, type DataApiServer } from '#support/data-api-server.js';

const target = {
  resourceArn: 'arn:aws:rds:us-east-1:123456789012:cluster:enot',
  secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:enot-db',
  database: 'enot',
};

describe.skipIf(!TEST_DATABASE_URL)('Data API test server', () => {
  let db: TestDatabase;
  let server: DataApiServer;
  let rds: RDSDataClient;

  const execute = (sql: string, parameters: SqlParameter[] = [], extra: { transactionId?: string } = {}) =>
    rds.send(new ExecuteStatementCommand({ ...target, sql, parameters, ...extra }));
  const count = async (sql: string) => {
    const out = await rds.send(new ExecuteStatementCommand({ ...target, sql, formatRecordsAs: 'JSON' }));
    return (JSON.parse(out.formattedRecords!) as { n: number }[])[0].n;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startDataApiServer(db.url);
    rds = new RDSDataClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await execute('CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, tags text[], at timestamptz)');
  });

  afterAll(async () => {
    rds?.destroy();
    await server?.close();
    await db?.drop();
  });

  it('answers typed records with column metadata, and JSON records', async () => {
    const sql = `SELECT 5000000000::int8 AS n, 'x'::text AS s, true AS b, NULL::text AS z, 1.5::float8 AS f,
      timestamptz '2024-01-02 03:04:05.678+02' AS t, ARRAY['a', 'b'] AS arr, 12.50::numeric AS d`;
    const typed = await rds.send(new ExecuteStatementCommand({ ...target, sql, includeResultMetadata: true }));
    expect(typed.records).toEqual([[
      { longValue: 5000000000 }, { stringValue: 'x' }, { booleanValue: true }, { isNull: true }, { doubleValue: 1.5 },
      { stringValue: '2024-01-02 01:04:05.678' }, { arrayValue: { stringValues: ['a', 'b'] } }, { stringValue: '12.50' },
    ]]);
    expect(typed.columnMetadata?.map((c) => [c.name, c.typeName])).toEqual([
      ['n', 'int8'], ['s', 'text'], ['b', 'bool'], ['z', 'text'], ['f', 'float8'], ['t', 'timestamptz'], ['arr', '_text'], ['d', 'numeric'],
    ]);
    const json = await rds.send(new ExecuteStatementCommand({ ...target, sql, formatRecordsAs: 'JSON' }));
    expect(json.records).toBeUndefined();
    expect(JSON.parse(json.formattedRecords!)).toEqual([
      { n: 5000000000, s: 'x', b: true, z: null, f: 1.5, t: '2024-01-02 01:04:05.678', arr: ['a', 'b'], d: '12.50' },
    ]);
  });

  it('sends strings as character varying unless a typeHint says otherwise', async () => {
    const id = '00000000-0000-4000-8000-000000000001';
    await expect(execute(`SELECT :id = '${id}'::uuid AS same`, [{ name: 'id', value: { stringValue: id } }]))
      .rejects.toMatchObject({ name: 'BadRequestException', message: expect.stringMatching(/character varying = uuid/) });
    const hinted = await execute(`SELECT :id = '${id}'::uuid AS same, :id::text AS again`, [
      { name: 'id', value: { stringValue: id }, typeHint: 'UUID' },
    ]);
    expect(hinted.records).toEqual([[{ booleanValue: true }, { stringValue: id }]]);
    const cast = await execute(`SELECT :at::timestamptz AS at`, [{ name: 'at', value: { stringValue: '2024-05-06T07:08:09Z' } }]);
    expect(cast.records).toEqual([[{ stringValue: '2024-05-06 07:08:09' }]]);
  });

  it('counts updated records and runs a batch once per parameter set', async () => {
    const batch = await rds.send(new BatchExecuteStatementCommand({
      ...target,
      sql: 'INSERT INTO items (id, label) VALUES (:id, :label)',
      parameterSets: [1, 2, 3].map((i) => [
        { name: 'id', value: { longValue: i } }, { name: 'label', value: { stringValue: `item ${i}` } },
      ]),
    }));
    expect(batch.updateResults).toHaveLength(3);
    const updated = await execute(`UPDATE items SET label = label || '!' WHERE id >= :min`, [{ name: 'min', value: { longValue: 2 } }]);
    expect(updated.numberOfRecordsUpdated).toBe(2);
    expect(await count('SELECT count(*) AS n FROM items')).toBe(3);
  });

  it('holds a transaction across calls until commit or rollback', async () => {
    const { transactionId: rolledBack } = await rds.send(new BeginTransactionCommand(target));
    await execute(`INSERT INTO items (id, label) VALUES (10, 'ten')`, [], { transactionId: rolledBack });
    expect(await count('SELECT count(*) AS n FROM items WHERE id = 10')).toBe(0);
    expect((await rds.send(new RollbackTransactionCommand({ ...target, transactionId: rolledBack }))).transactionStatus)
      .toBe('Rollback Complete');
    expect(await count('SELECT count(*) AS n FROM items WHERE id = 10')).toBe(0);

    const { transactionId: committed } = await rds.send(new BeginTransactionCommand(target));
    await execute(`INSERT INTO items (id, label) VALUES (11, 'eleven')`, [], { transactionId: committed });
    expect((await rds.send(new CommitTransactionCommand({ ...target, transactionId: committed }))).transactionStatus)
      .toBe('Transaction Committed');
    expect(await count('SELECT count(*) AS n FROM items WHERE id = 11')).toBe(1);

    await expect(rds.send(new CommitTransactionCommand({ ...target, transactionId: committed })))
      .rejects.toMatchObject({ name: 'TransactionNotFoundException' });
  });

  it('refuses what the service refuses, as BadRequestException', async () => {
    await expect(execute('SELECT * FROM missing')).rejects.toMatchObject({
      name: 'BadRequestException', message: expect.stringMatching(/^ERROR: relation "missing" does not exist[\s\S]*SQLState: 42P01$/),
    });
    await expect(execute('SELECT 1; SELECT 2')).rejects.toMatchObject({ name: 'BadRequestException' });
    await expect(execute('SELECT :a AS a', [{ name: 'a', value: { arrayValue: { stringValues: ['x'] } } }]))
      .rejects.toMatchObject({ name: 'BadRequestException', message: expect.stringMatching(/Array parameters/) });
    await expect(execute('SELECT :a AS a')).rejects.toMatchObject({ name: 'BadRequestException' });
  });
});
