// Native functions Node.js has no binding for (glibc's malloc_trim and madvise, a LevelDB setting
// in classic-level's addon), called through koffi (an optional dependency with its prebuilt
// binaries in the npm package). Loading koffi costs ~5 MB
// of the process itself (its library's pages and its call stacks): it is loaded on the first
// call only, never where nothing asks for one, and its stacks are made small (the calls here
// take a few integers). Anywhere koffi or glibc is missing (musl, macOS, an install without
// optional dependencies), `nativeFunction` and `libcFunction` return null and the caller does without.

import { createRequire } from 'node:module';

interface Koffi {
  config(c: Record<string, number>): unknown;
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

type Library = { func(signature: string): (...args: unknown[]) => unknown };

let koffi: Koffi | null | undefined;
const libs = new Map<string, Library | null>();

function loadKoffi(): Koffi | null {
  if (process.platform !== 'linux') return null;
  try {
    const k = createRequire(import.meta.url)('koffi') as Koffi;
    // its defaults (1 MiB stack + 2 MiB heap for synchronous calls, 4 pools for async ones)
    // are for calls that pass large structures; these take a few integers
    k.config({ sync_stack_size: 65536, sync_heap_size: 65536, async_stack_size: 65536, async_heap_size: 65536, resident_async_pools: 0 });
    return k;
  } catch {
    return null; // no koffi here
  }
}

function library(path: string): Library | null {
  let lib = libs.get(path);
  if (lib !== undefined) return lib;
  if (koffi === undefined) koffi = loadKoffi();
  try {
    lib = koffi ? koffi.load(path) : null;
  } catch {
    lib = null; // no such library (no glibc...)
  }
  libs.set(path, lib);
  return lib;
}

/**
 * A function of a shared library (a path, or a name the dynamic loader finds) by its C signature
 * (koffi's syntax), or null when it cannot be called here. A library this process already loaded
 * (a Node.js addon) is the same copy: the loader hands out the loaded one.
 */
export function nativeFunction(path: string, signature: string): ((...args: number[]) => unknown) | null {
  const lib = library(path);
  if (!lib) return null;
  try {
    return lib.func(signature) as (...args: number[]) => unknown;
  } catch {
    return null; // no such symbol there
  }
}

/** A function of glibc by its C signature (koffi's syntax), or null when it cannot be called here. */
export function libcFunction(signature: string): ((...args: number[]) => number) | null {
  return nativeFunction('libc.so.6', signature) as ((...args: number[]) => number) | null;
}
