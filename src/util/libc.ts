// glibc functions Node.js has no binding for (malloc_trim, madvise), called through koffi (an
// optional dependency with its prebuilt binaries in the npm package). Loading koffi costs ~5 MB
// of the process itself (its library's pages and its call stacks): it is loaded on the first
// call only, never where nothing asks for one, and its stacks are made small (the calls here
// take a few integers). Anywhere koffi or glibc is missing (musl, macOS, an install without
// optional dependencies), `libcFunction` returns null and the caller does without.

import { createRequire } from 'node:module';

interface Koffi {
  config(c: Record<string, number>): unknown;
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

let lib: { func(signature: string): (...args: unknown[]) => unknown } | null | undefined;

function load(): typeof lib {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    // its defaults (1 MiB stack + 2 MiB heap for synchronous calls, 4 pools for async ones)
    // are for calls that pass large structures; these take a few integers
    koffi.config({ sync_stack_size: 65536, sync_heap_size: 65536, async_stack_size: 65536, async_heap_size: 65536, resident_async_pools: 0 });
    return koffi.load('libc.so.6');
  } catch {
    return null; // no koffi, no glibc
  }
}

/** A function of glibc by its C signature (koffi's syntax), or null when it cannot be called here. */
export function libcFunction(signature: string): ((...args: number[]) => number) | null {
  if (lib === undefined) lib = load();
  if (!lib) return null;
  try {
    return lib.func(signature) as (...args: number[]) => number;
  } catch {
    return null; // not in this libc
  }
}
