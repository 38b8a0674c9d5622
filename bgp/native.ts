// Loader for the socket-option addon (bgp/native, built by `npm ci` through node-gyp).
// `native` is null when the addon is not built; the speaker then refuses peers that need
// TCP-MD5 or TTL security with a clear status message instead of running them unprotected.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeSockopt {
  /** errno (0 = ok); empty key removes the peer's key. */
  setMd5(fd: number, peer: string, key: string): number;
  setTtlSecurity(fd: number, hops: number, v4peer: boolean): number;
  setUserTimeout(fd: number, ms: number): number;
  /** fd (>= 0) of a non-blocking socket whose connect is in progress, or -errno. */
  connect(peer: string, port: number, local: string, md5Key: string, ttlHops: number): number;
  /** 1 connected, 0 in progress, -errno failed. */
  connectStatus(fd: number): number;
  close(fd: number): void;
  /** malloc_trim(0): return freed malloc memory to the OS. */
  trimMemory?(): void;
}

function load(): NativeSockopt | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  // bgp/native.ts (tests) or dist/bgp/native.js (built)
  for (const root of [resolve(here, '..'), resolve(here, '../..')]) {
    const p = resolve(root, 'bgp/native/build/Release/petrel_sockopt.node');
    if (existsSync(p)) {
      try {
        return require(p) as NativeSockopt;
      } catch {
        /* try the next */
      }
    }
  }
  return null;
}

export const native: NativeSockopt | null = load();
