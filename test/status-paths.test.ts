// What the status page says about paths and jobs (issue 13, defect 11).
import test from 'ava';
import { pathRoots, relativePaths } from '../src/http/status-paths.js';
import { jobStatusOf } from '../src/tier.js';
import type { JobRecord } from '../src/archive/jobs.js';

test('paths are shown relative to their media directory (by its name) and the server\'s own directories by setting', (t) => {
  const roots = pathRoots(['/srv/media/music', '/data/tapedeck/demo', '/mnt/b/music'], { data_dir: '/data/tapedeck', cache_dir: '/var/cache/tapedeck' });
  const snap = {
    server: { mediaDirs: ['/srv/media/music', '/data/tapedeck/demo', '/mnt/b/music'] },
    jobs: [{ description: '/srv/media/music/Album/01.flac, /srv/media/musicals/x.flac', error: 'cannot read /data/tapedeck/stubs/i1.stub: EIO' }],
    other: ['/mnt/b/music', 'http://10.0.0.2:8210/', 7, null, true],
  };
  t.deepEqual(relativePaths(snap, roots), {
    server: { mediaDirs: ['music', 'demo', 'music (2)'] },
    jobs: [{ description: 'music/Album/01.flac, /srv/media/musicals/x.flac', error: 'cannot read <data_dir>/stubs/i1.stub: EIO' }],
    other: ['music (2)', 'http://10.0.0.2:8210/', 7, null, true],
  });
  t.is(snap.server.mediaDirs[0], '/srv/media/music', 'the input is not changed');
});

test('job details name items and containers by their titles, not their object IDs', (t) => {
  const job = { id: 'j1', kind: 'archive', state: 'running', targets: ['iabc123', 'video', '/srv/m/a.mkv', 'inotitle'], progress: { bytesDone: 0, bytesTotal: 0, itemsDone: 0, itemsTotal: 4 } } as unknown as JobRecord;
  const titles: Record<string, string> = { iabc123: 'Big Buck Bunny', video: 'Video' };
  t.is(jobStatusOf(job, (id) => titles[id]).description, 'Big Buck Bunny, Video, /srv/m/a.mkv (+1)');
});
