// What `tapedeck serve` loads: only the serve command's module graph, with the libraries that
// only some paths need (tag readers, xml2js, the demo's encoders, the operator commands and
// the stager) imported on first use. Every module imported stays in the V8 heap for the
// server's life (bench/README.md, "Where the server's resident memory goes").
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildCli, COMMAND_NAMES } from '../src/cli.js';
import { lazyImport } from '../src/util/lazy.js';
import ts from 'typescript';

const dir = mkdtempSync(join(tmpdir(), 'tapedeck-lazy-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('a command line naming a command registers only that command; anything else registers all', async (t) => {
  t.deepEqual((await buildCli(['node', 'tapedeck', 'serve'])).commands.map((c) => c.name()), ['serve']);
  t.deepEqual((await buildCli(['node', 'tapedeck', 'archive', 'x'])).commands.map((c) => c.name()), ['tape', 'archive', 'recall', 'jobs']);
  const all = ['serve', 'scan', 'config', 'tape', 'archive', 'recall', 'jobs', 'ls', 'policy', 'stager'];
  t.deepEqual((await buildCli()).commands.map((c) => c.name()), all);
  t.deepEqual((await buildCli(['node', 'tapedeck', 'serv'])).commands.map((c) => c.name()), all, 'a typo still gets "did you mean"');
  t.deepEqual((await buildCli(['node', 'tapedeck', '--help'])).commands.map((c) => c.name()), all);
  t.deepEqual([...COMMAND_NAMES].sort(), [...all].sort());
});

test('tapedeck serve does not load the tag readers, xml2js, the demo, the operator commands or the stager', (t) => {
  const log = join(dir, 'loaded.txt');
  writeFileSync(log, '');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(log)}, url + '\\n');
  return next(url, context);
}
`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  // `serve --help` evaluates the serve command's whole static module graph, then prints its help
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', pathToFileURL(register).href, 'src/cli.ts', 'serve', '--help'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TAPEDECK_CONFIG: '' },
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /run the media server/);
  const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  t.true(loaded.some((u) => u.endsWith('/src/server.ts')), 'the server module is loaded');
  t.true(loaded.some((u) => u.endsWith('/src/media/probe.ts')), 'the prober itself is loaded');
  for (const unwanted of ['/node_modules/music-metadata/', '/node_modules/strtok3/', '/node_modules/exifr/', '/node_modules/image-size/', '/node_modules/xml2js/', '/node_modules/cli-progress/', '/src/demo/', '/src/archive/cli.ts', '/src/policy/cli.ts', '/src/staging/cli.ts', '/src/staging/worker.ts', '/src/commands/scan.ts']) {
    t.deepEqual(
      loaded.filter((u) => u.includes(unwanted)),
      [],
      `${unwanted} is not loaded by serve`,
    );
  }
});

test('lazyImport imports once, and again after a failed import', async (t) => {
  let calls = 0;
  let fail = true;
  const load = lazyImport(async () => {
    calls++;
    if (fail) throw new Error('missing');
    return { value: calls };
  });
  await t.throwsAsync(load(), { message: 'missing' });
  fail = false;
  const [a, b] = await Promise.all([load(), load()]);
  t.is(a, b);
  t.is(calls, 2);
  t.deepEqual(await load(), { value: 2 });
});

test('the build (npm run build, the tree install.sh installs) leaves the comments out of the JavaScript', (t) => {
  // the source of every imported module stays in the V8 heap: a third of ours was comments
  const file = ts.readConfigFile('tsconfig.json', (p) => readFileSync(p, 'utf8'));
  const { options } = ts.parseJsonConfigFileContent(file.config, ts.sys, '.');
  const out = ts.transpileModule('// a line comment\n/** a doc comment */\nexport const x = 1; /* trailing */\n', { compilerOptions: { ...options, sourceMap: false } }).outputText;
  t.regex(out, /x = 1;/);
  t.notRegex(out, /comment|trailing/);
});
