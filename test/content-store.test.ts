import test from 'ava';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, contentKey } from '../src/util/content-store.js';

test('ContentStore.file: a stored regular file with its size; undefined for a malformed name, a missing file or a directory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapedeck-cs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new ContentStore(dir);
  const key = contentKey('hello');
  await store.put(key, 'tn.jpg', Buffer.from('12345'));
  const f = await store.file(key, 'tn.jpg');
  t.is(f?.path, store.path(key, 'tn.jpg'));
  t.is(f?.size, 5);
  t.is(typeof f?.mtimeMs, 'number');
  t.is(await store.file(key, 'sm.jpg'), undefined);
  t.is(await store.file('../../etc/passwd', 'jpg'), undefined);
  t.is(await store.file(key, '../x'), undefined);
  const other = contentKey('dir');
  await mkdir(store.path(other, 'srt'), { recursive: true });
  t.is(await store.file(other, 'srt'), undefined);
  await symlink('/nonexistent', store.path(contentKey('link'), 'srt')).catch(() => undefined);
  t.is(await store.file(contentKey('link'), 'srt'), undefined);
});
