// Child of test/table-mmap.test.ts: fills a LevelStore, reads all of it and prints what of its
// tables stayed resident, as JSON (run with TAPEDECK_LEVELDB_MMAP=1: LevelDB maps as by itself).
import { readTables } from './level-tables.js';

const teardowns: (() => unknown)[] = [];
const r = await readTables({ teardown: (fn) => void teardowns.push(fn) });
for (const fn of teardowns.reverse()) await fn();
process.stdout.write(`${JSON.stringify(r)}\n`);
