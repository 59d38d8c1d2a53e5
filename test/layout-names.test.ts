// placements() remembers the container IDs and sort keys it makes from artist, album and genre
// names (a bounded memo): what it answers must stay the plain function of the names, past the
// memo's bound and with names seen again after it was cleared.
import test from 'ava';
import { placements, shortHash } from '../src/catalog/layout.js';
import type { CatalogObject } from '../src/catalog/types.js';
import { naturalSortKey } from '../src/upnp/sort.js';
import { foldText } from '../src/util/fold.js';

function track(n: number, artist: string, album: string, genre: string): CatalogObject {
  const path = `/m/a${n % 7}/${n}.flac`;
  return { id: `i${n}`, parentId: '', container: false, upnpClass: 'object.item.audioItem.musicTrack', title: `T ${n}`, kind: 'audio', meta: { artist, album, genre, trackNumber: n % 20 }, res: { mime: 'audio/flac', size: 1 }, origPath: path, mediaRoot: '/m', relPath: path.slice(3) };
}

test('artist, album and genre containers keep their IDs and sort keys across 10,000 distinct names, each seen twice', (t) => {
  for (const round of [0, 1]) {
    for (let n = 0; n < 10_000; n++) {
      const artist = `Artist ${n}`;
      const album = `Album ${(n * 7) % 10_000} Ä`;
      const genre = `Genre ${n % 300}`;
      const { containers } = placements(track(n + round, artist, album, genre));
      const byId = new Map(containers.map((c) => [c.id, c]));
      const artistId = 'music/artists/' + shortHash('artist\u0000' + foldText(artist), 10);
      const albumId = 'music/albums/' + shortHash('album\u0000' + foldText(artist) + '\u0000' + foldText(album), 10);
      const genreId = 'music/genres/' + shortHash('genre\u0000' + foldText(genre), 10);
      const ok =
        byId.get(artistId)?.sortKey === '0' + naturalSortKey(artist) &&
        byId.get(artistId + '/' + shortHash('album\u0000' + foldText(album), 10))?.sortKey === '0' + naturalSortKey(album) &&
        byId.get(albumId)?.sortKey === '0' + naturalSortKey(album) + '\u0000' + naturalSortKey(artist) &&
        byId.get(genreId)?.sortKey === '0' + naturalSortKey(genre);
      if (!ok) return t.fail(`round ${round}, track ${n}: ${JSON.stringify(containers.slice(-4))}`);
    }
  }
  t.pass();
});
