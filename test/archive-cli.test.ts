// The tape-tier CLI in direct mode (no server): results, --json and exit codes
// (0 ok, 2 bad input, 3 resource problem).
import test from 'ava';
import type { JobRecord } from '../src/archive/jobs.js';
import { summary } from '../src/archive/cli.js';
import { makeLab, runCli } from './fixtures/archive/setup.js';

test('archive, jobs, tape ls and bad input through the CLI', async (t) => {
  const lab = await makeLab();
  t.teardown(() => lab.cleanup());
  await lab.close();
  const common = ['--data', lab.data, '--json'];
  const bad = await runCli(['archive', 'inosuchitem', ...common]);
  t.is(bad.code, 2);
  t.is(bad.err.split('\n')[0], 'tapedeck: unknown object ID: inosuchitem');
  t.regex(bad.err, /searched the catalog in data directory /);
  const unknownLabel = await runCli(['tape', 'import', 'ZZ0001L9', ...common]);
  t.is(unknownLabel.code, 2);
  t.regex(unknownLabel.err, /unknown cartridge ZZ0001L9/);

  const arch = await runCli(['archive', `${lab.media}/Video`, '--keep', ...common]);
  t.is(arch.code, 0, arch.err);
  const job = JSON.parse(arch.out) as JobRecord;
  t.is(job.state, 'done');
  t.is(job.result!.archived, 2);
  t.deepEqual(job.opts, { keepDisk: true });

  const show = await runCli(['jobs', job.id, '--items', ...common]);
  t.is(show.code, 0, show.err);
  const shown = JSON.parse(show.out);
  t.is(shown.id, job.id);
  t.deepEqual(shown.items.map((i: { phase: string }) => i.phase), ['done', 'done']);
  const human = await runCli(['tape', 'ls', '--data', lab.data]);
  t.is(human.code, 0, human.err);
  t.regex(human.out, /TD0001L9\s+(drive \d|slot \d+)\s+yes/);
  t.regex(human.out, /archive pool: 1 cartridge/);
  // sizes in binary units, as the config writes them: a 64M cartridge has 64.0 MiB, not "67.1 MB"
  const label = await runCli(['tape', 'label', 'TD0009L9', '--data', lab.data, '--tape-capacity', '64M']);
  t.is(label.code, 0, label.err);
  t.regex(label.out, /TD0009L9: created, labelled; in the archive pool, 6\d\.\d MiB free/);
  t.regex((await runCli(['tape', 'ls', '--data', lab.data])).out, /TD0009L9 .* \d+(\.\d+)? MiB +\d+/);
  t.notRegex((await runCli(['tape', 'ls', '--data', lab.data])).out, /\d (KB|MB|GB)\b/);
});

test('resource problems exit 3: no room, no tape library', async (t) => {
  const lab = await makeLab({ capacity: 1 << 20, files: [['Video/Big.mkv', 1_200_000]] });
  t.teardown(() => lab.cleanup());
  await lab.close();
  const full = await runCli(['archive', lab.media, '--data', lab.data, '--json']);
  t.is(full.code, 3, full.err);
  t.regex(full.err, /archive failed: .*do not fit on any cartridge/);
  t.is(JSON.parse(full.out).code, 'NO_ROOM');
  const none = await runCli(['tape', 'ls', '--data', lab.data, '--tape-backend', 'none']);
  t.is(none.code, 3);
  t.regex(none.err, /no tape library is configured/);
});

test('the text summary of an import names what it skipped and why', (t) => {
  const job = {
    id: 'j1',
    kind: 'import',
    state: 'done',
    targets: ['TD0004L9'],
    opts: {},
    created: '',
    updated: '',
    attempts: 1,
    progress: { bytesDone: 0, bytesTotal: 0, itemsDone: 1, itemsTotal: 1 },
    result: {
      cartridges: [
        {
          label: 'TD0004L9',
          attached: 0,
          recreated: 0,
          docked: 0,
          unchanged: 0,
          pool: false,
          skipped: [{ path: 'demo/Pictures/2019/Checkerboard.jpg', reason: 'disk copy of i123 differs from the tape copies' }],
        },
      ],
    },
  } as JobRecord;
  t.is(
    summary(job),
    'import j1: done: TD0004L9: 0 located, 0 recreated, 0 docked, 0 unchanged, 1 skipped (1/1 cartridges)\n' +
      '  skipped TD0004L9 demo/Pictures/2019/Checkerboard.jpg: disk copy of i123 differs from the tape copies',
  );
});
