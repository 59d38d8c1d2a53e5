import test from 'ava';
import { innermostRoot, isInside } from '../src/util/inside.js';

test('isInside: the directory itself and below it, whole components only', (t) => {
  t.true(isInside('/srv/music', '/srv/music'));
  t.true(isInside('/srv/music', '/srv/music/a/b.flac'));
  t.false(isInside('/srv/music', '/srv/musicals/a.flac'));
  t.false(isInside('/srv/music', '/srv'));
  t.false(isInside('/srv/music', '/srv/music/../x'));
  t.true(isInside('/srv/music', '/srv/music/..x'), "a name starting with '..' is a name, not the parent");
  t.true(isInside('/srv/music', '/srv/music/..x/y.flac'));
  t.true(isInside('/srv/music', '/srv/music/...'));
});

test('innermostRoot: the longest root holding the path, else undefined', (t) => {
  const roots = ['/srv', '/srv/media/music', '/srv/media'];
  t.is(innermostRoot(roots, '/srv/media/music/a.flac'), '/srv/media/music');
  t.is(innermostRoot(roots, '/srv/media/film.mkv'), '/srv/media');
  t.is(innermostRoot(roots, '/srv/x'), '/srv');
  t.is(innermostRoot(roots, '/home/a'), undefined);
  t.is(innermostRoot(roots, '/srv/media/musicals/a'), '/srv/media');
  t.is(innermostRoot(roots, '/srv/media/music/..hidden/a.flac'), '/srv/media/music');
});
