// Leaves many better-sqlite3 Database, Statement and StatementIterator objects to the garbage
// collector while a hot loop allocates, as a long-running agent does. A better-sqlite3 12 build
// whose wrappers derive from Node >= 24.19's node::ObjectWrap aborts here with
// "Assertion failed: (env) != nullptr" (see patches/better-sqlite3-12.11.1.patch); a safe build
// prints one line and exits 0. Used by test/native and by the Nix package's check phase.
import Database from 'better-sqlite3';

const ROUNDS = 300_000;
const db = new Database(':memory:');
db.exec('CREATE TABLE t (a INTEGER)');
db.prepare('INSERT INTO t (a) VALUES (1), (2), (3)').run();

let junk = [];
for (let i = 0; i < ROUNDS; i++) {
  db.prepare(`SELECT a + ${i % 7} AS b FROM t`);
  if (i % 100 === 0) for (const row of db.prepare('SELECT a FROM t').iterate()) junk.push(row);
  if (i % 5_000 === 0) new Database(':memory:').prepare('SELECT 1');
  junk.push({ i, s: 'x'.repeat(i % 50) });
  if (junk.length > 10_000) junk = [];
}
db.close();
console.log(`better-sqlite3: ${ROUNDS} collectable wrappers survived garbage collection on Node ${process.version}`);
