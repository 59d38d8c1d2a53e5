// A module imported on first use instead of when its importer loads. A module's source,
// bytecode and objects stay in the V8 heap for the life of the process once it is imported;
// the server runs for months, and most of them are needed only on some paths (music-metadata
// and exifr only when a scan reads a new file, xml2js only for a SOAP request the fast path
// does not take). bench/README.md, "Where the server's resident memory goes", has the figures.

/** A function that imports the module the first time it is called and returns the same promise after. */
export function lazyImport<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((err) => {
      loading = undefined; // a failed import (a missing optional file) is retried next time
      throw err;
    });
    return loading;
  };
}
