// A child program for crash tests: opens PGlite in the directory it is given and commits numbered rows one by one,
// printing each number once it is committed, until it is killed or has written `max` rows (bounded).
import { openPgliteStore } from '#adapters/postgres/open-store.js';

const [dir, firstText, maxText] = process.argv.slice(2);
const first = Number(firstText);
const max = Number(maxText);
const store = await openPgliteStore(dir);
await store.client.exec('CREATE TABLE IF NOT EXISTS crash_probe (n bigint PRIMARY KEY, pad text NOT NULL);');
process.stdout.write('ready\n');
for (let n = first; n < first + max; n++) {
  // A row of a few kB, so the kill lands in the middle of page and WAL writes.
  await store.client.query('INSERT INTO crash_probe (n, pad) VALUES ($1::bigint, $2::text)', [n, 'x'.repeat(4000)]);
  process.stdout.write(`committed ${n}\n`);
}
await store.close();
