// Samsung TVs ask a media GET/HEAD for `getMediaInfo.sec: 1` and show and seek by the duration
// in the `MediaInfo.sec: SEC_Duration=<ms>;` answer (MiniDLNA and others send it).
import test from 'ava';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { itemIdForPath } from '../src/catalog/layout.js';
import { secMediaInfo } from '../src/media/dlna.js';
import { REPO_ROOT } from '../src/util/paths.js';
import { browse } from './helpers/upnp-client.js';
import { serveMedia } from './helpers/serve.js';
import { tempDir } from './helpers/temp.js';

test('secMediaInfo: milliseconds, nothing for an unknown duration', (t) => {
  t.is(secMediaInfo(2555.856), 'SEC_Duration=2555856;');
  for (const d of [undefined, 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) t.is(secMediaInfo(d), undefined, String(d));
});

test('getMediaInfo.sec: 1 on GET and HEAD of a video gets MediaInfo.sec with its duration; not asked, none', async (t) => {
  t.timeout(90_000);
  const dir = await tempDir(t, 'tapedeck-mediainfo-');
  const m = join(dir, 'media');
  await mkdir(m);
  await copyFile(join(REPO_ROOT, 'test/fixtures/media/clip.mkv'), join(m, 'Film.mkv'));
  const { base } = await serveMedia(t, m);
  const id = itemIdForPath(join(m, 'Film.mkv'));
  const xml = (await browse(`${base}/upnp/control/cds`, id, 'BrowseMetadata')).out.Result as string;
  const [, h, mi, s] = /duration="(\d+):(\d\d):(\d\d(?:\.\d+)?)"/.exec(xml) ?? [];
  t.truthy(h, 'the item has a duration');
  const ms = Math.round((Number(h) * 3600 + Number(mi) * 60 + Number(s)) * 1000);
  const samsung = { 'user-agent': 'DLNADOC/1.50 SEC_HHP_[TV]UE40D7000/1.0', 'getMediaInfo.sec': '1', 'getcontentFeatures.dlna.org': '1' };
  for (const method of ['HEAD', 'GET']) {
    const r = await fetch(`${base}/media/${id}.mkv`, { method, headers: { ...samsung, range: 'bytes=0-0' } });
    await r.arrayBuffer();
    const got = /^SEC_Duration=(\d+);$/.exec(r.headers.get('mediainfo.sec') ?? '');
    t.truthy(got, `${method}: ${r.headers.get('mediainfo.sec')}`);
    t.true(Math.abs(Number(got![1]) - ms) <= 1, `${method}: ${got![1]} ms vs res@duration ${ms} ms`);
    t.truthy(r.headers.get('contentfeatures.dlna.org'));
  }
  const notAsked = await fetch(`${base}/media/${id}.mkv`, { method: 'HEAD', headers: { 'user-agent': samsung['user-agent'] } });
  t.is(notAsked.headers.get('mediainfo.sec'), null);
});
