// The real server in the netns lab's server namespace; from the client namespace a
// control point discovers it over real SSDP multicast, fetches the descriptions,
// browses the whole tree (the demo playlist too), searches, subscribes to events and downloads byte ranges,
// then fetches album art, thumbnails and subtitles as a generic client and as a Samsung TV.
// Then SIGTERM: byebye for every USN, clean exit; a restart keeps the device UUID.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, jsonLines, labAvailable, type JsonLineProcess } from './helpers/lab.js';

type Line = Record<string, any>;
const why = labAvailable();
const lab = why ? undefined : createLab('tdint', '10.93.0');
const dataDir = mkdtempSync(join(tmpdir(), 'tapedeck-int-'));

test.before(async () => {
  await lab?.up();
});
test.after.always(async () => {
  await lab?.down();
  rmSync(dataDir, { recursive: true, force: true });
});

function startServer(): JsonLineProcess<Line> {
  const child = lab!.spawnNode('srv', 'src/cli.ts', ['serve', '--data', dataDir, '--interface', lab!.srvIf, '--port', '0', '--name', 'Lab Tapedeck', '--ssdp-interval', '30']);
  return jsonLines<Line>(child);
}

async function discover(st: string): Promise<Line[]> {
  const cli = jsonLines<Line>(lab!.spawnNode('cli', 'test/fixtures/ssdp-client.ts'));
  await cli.waitFor((l) => l.type === 'ready', 15_000, 'ssdp client ready');
  cli.send({ cmd: 'search', id: 's', from: lab!.cliIp, st, mx: 1 });
  await new Promise((r) => setTimeout(r, 2000));
  cli.send({ cmd: 'exit' });
  await cli.exited(5000).catch(() => undefined);
  return cli.lines.filter((l) => l.type === 'response');
}

(lab ? test.serial : test.skip)('discover, describe, browse, search, subscribe and download in the lab', async (t) => {
  if (why) return t.log(why);
  const srv = startServer();
  try {
    const started = await srv.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 60_000, 'server library line');
    t.true(started.library.items > 0, 'demo library scanned');
    t.true(srv.lines.some((l) => Array.isArray(l.urls) && l.urls.some((u: string) => u.includes(lab!.srvIp))), 'logs its URL');

    // Real multicast discovery from the client host
    const all = await discover('ssdp:all');
    const usns = all.map((r) => r.headers.USN as string);
    t.is(new Set(usns).size, usns.length, 'one reply per USN');
    t.true(usns.some((u) => u.endsWith('::urn:schemas-upnp-org:device:MediaServer:1')));
    t.true(usns.some((u) => u.endsWith('::upnp:rootdevice')));
    t.true(usns.some((u) => u.endsWith('::urn:schemas-upnp-org:service:ContentDirectory:1')));
    t.true(usns.some((u) => u.endsWith('::urn:schemas-upnp-org:service:ConnectionManager:1')));
    const location = all[0].headers.LOCATION as string;
    t.true(location.startsWith(`http://${lab!.srvIp}:`), location);
    t.true(all.every((r) => r.headers.LOCATION === location));
    t.regex(all[0].headers['CACHE-CONTROL'], /max-age=1800/);
    const uuid = /^uuid:([^:]+)/.exec(usns[0])![1];

    // The control point walk
    const walk = await lab!.execCli(process.execPath, ['--import', 'tsx', 'test/fixtures/cp-walk.ts', location, lab!.cliIp], { timeoutMs: 120_000 });
    const r = JSON.parse(walk.stdout.trim().split('\n').pop() || '{}');
    t.falsy(r.error, r.error);
    t.is(r.description.status, 200);
    t.is(r.description.friendlyName, 'Lab Tapedeck');
    t.is(r.description.udn, `uuid:${uuid}`);
    t.is(r.description.deviceType, 'urn:schemas-upnp-org:device:MediaServer:1');
    for (const s of Object.values(r.scpds) as { status: number; actions: number }[]) {
      t.is(s.status, 200);
      t.true(s.actions > 0);
    }
    t.is(r.icons.length, 4);
    for (const i of r.icons) {
      t.is(i.status, 200);
      t.is(i.type, i.mimetype);
      t.true(i.bytes > 100);
    }
    t.deepEqual(r.walk.childCountMismatches, [], 'every childCount equals what Browse returns');
    t.true(r.walk.distinctItems >= 15);
    t.true(r.walk.containers > 10);
    t.deepEqual(
      r.walk.classes.map((c: string) => c.split('.').slice(0, 3).join('.')).filter((v: string, i: number, a: string[]) => a.indexOf(v) === i),
      ['object.item.audioItem', 'object.item.imageItem', 'object.item.videoItem'],
    );
    t.true(r.walk.resUrlsOnServer, 'resource URLs use the address the client reached');
    // the demo playlist, browsed from the client namespace: a playlistContainer of references
    t.is(r.playlists.length, 1, JSON.stringify(r.playlists));
    const mix = r.playlists[0];
    t.is(mix.title, 'Demo Mix');
    t.is(mix.cls, 'object.container.playlistContainer');
    t.is(mix.childCount, 4);
    t.deepEqual(mix.entries.map((e: Line) => e.title), ['The Sine Waves - Dawn', 'The Sine Waves - Low Tide', 'Square Root - Pixel Bloom', 'Square Root - Harmonic Drift']);
    t.true(mix.entries.every((e: Line) => e.refID?.startsWith('i') && e.parentOk && e.res === 1 && e.meta), JSON.stringify(mix.entries));
    t.is(r.search.total, r.search.distinctAudio);
    t.true(r.search.sorted);
    t.is(r.search.badCriteria, 708);
    t.is(r.events.subscribeStatus, 200);
    t.regex(r.events.sid, /^uuid:/);
    t.is(r.events.timeout, 'Second-300');
    t.deepEqual(r.events.initial, { seq: '0', sidMatches: true, hasSystemUpdateID: true });
    t.is(r.events.renewStatus, 200);
    t.is(r.events.unsubscribeStatus, 200);
    t.is(r.ranges.length, r.walk.distinctItems);
    for (const x of r.ranges) {
      t.is(x.fullStatus, 200, x.id);
      t.true(x.sizeMatches, `${x.id} size`);
      t.true(x.typeMatches, `${x.id} type`);
      t.deepEqual(x.rangeStatus, [206, 206, 206, 416], x.id);
      t.true(x.contentRange && x.unsatisfied && x.reassembled && x.suffixOk && x.headLength && x.contentFeatures, JSON.stringify(x));
    }

    // Art and subtitles from the client host: the demo's album, track, picture and video (the
    // video and one album live on tape by now: their art and subtitles come from the data directory)
    await srv.waitFor((l) => typeof l.msg === 'string' && /on tape only/.test(l.msg) && l.library?.onTapeOnly > 0, 60_000, 'demo half on tape');
    const artRun = await lab!.execCli(process.execPath, ['--import', 'tsx', 'test/fixtures/cp-art.ts', location], { timeoutMs: 60_000 });
    const a = JSON.parse(artRun.stdout.trim().split('\n').pop() || '{}');
    t.falsy(a.error, a.error);
    for (const [name, max] of [['albumArt', 160], ['trackArt', 160], ['videoArt', 160]] as const) {
      t.like(a[name], { status: 200, type: 'image/jpeg', format: 'jpg' }, name);
      t.true(a[name].width <= max && a[name].height <= max, `${name} ${a[name].width}x${a[name].height}`);
      t.regex(a[name].features, /^DLNA\.ORG_PN=JPEG_TN;/);
    }
    t.like(a.pictureSm, { status: 200, type: 'image/jpeg', format: 'jpg' });
    t.true(a.pictureSm.width <= 640 && a.pictureSm.height <= 480 && a.pictureSm.width > 160);
    t.true(a.videoThumbRes, 'the video has a JPEG_TN res');
    t.like(a.genericSubtitle, { status: 200, type: 'text/srt' });
    t.true(a.genericSubtitle.text.startsWith('1\n00:00:00,000 --> 00:00:01,000\nSecond 1'));
    t.false(a.genericCaptionEx);
    t.is(a.samsungCaptionEx, a.genericSubtitle.url, 'Samsung gets sec:CaptionInfoEx with the same URL');
    t.false(a.samsungSrtRes);
    t.is(a.samsungHeader, a.genericSubtitle.url, 'CaptionInfo.sec header');
    t.regex(all[0].headers.SERVER, /^Linux\/\d+(\.\d+)? UPnP\/1\.0 DLNADOC\/1\.50 Tapedeck\/0\.1\.0$/);

    // Orderly shutdown: byebye for every USN reaches the client host
    const listener = jsonLines<Line>(lab!.spawnNode('cli', 'test/fixtures/ssdp-client.ts', ['--listen', lab!.cliIp]));
    await listener.waitFor((l) => l.type === 'ready', 15_000, 'listener ready');
    process.kill(srv.child.pid!, 'SIGTERM');
    t.is(await srv.exited(15_000), 0, 'exit code 0 on SIGTERM');
    t.true(srv.lines.some((l) => l.msg === 'stopped'));
    await new Promise((res) => setTimeout(res, 500));
    listener.send({ cmd: 'exit' });
    await listener.exited(5000).catch(() => undefined);
    const byebye = new Set(listener.lines.filter((l) => l.type === 'notify' && l.headers.NTS === 'ssdp:byebye').map((l) => l.headers.USN));
    for (const u of new Set(usns)) t.true(byebye.has(u), `byebye for ${u}`);
  } finally {
    if (srv.child.exitCode === null) process.kill(srv.child.pid!, 'SIGKILL');
  }

  // Restart on the same data directory: same UUID, catalog reused
  const again = startServer();
  try {
    await again.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('library:'), 60_000, 'restart library line');
    const scanLine = again.lines.find((l) => l.scan?.done);
    t.is(scanLine?.scan.probed, 0, 'rescan reads nothing unchanged');
    const replies = await discover('urn:schemas-upnp-org:device:MediaServer:1');
    t.is(replies.length, 1);
    t.true((replies[0].headers.USN as string).includes(`uuid:${/^uuid:([^:]+)/.exec(replies[0].headers.USN)![1]}`));
    const firstUuid = srv.lines.find((l) => l.uuid)?.uuid;
    t.true((replies[0].headers.USN as string).startsWith(`uuid:${firstUuid}::`), 'UUID kept across restarts');
  } finally {
    process.kill(again.child.pid!, 'SIGTERM');
    await again.exited(15_000).catch(() => process.kill(again.child.pid!, 'SIGKILL'));
  }
});
