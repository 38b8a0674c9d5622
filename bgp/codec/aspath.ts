// AS_PATH helpers used by best-path selection and export.
import { AsPathSegmentType, type AsPathSegment } from './types.js';

/** RFC 4271 §9.1.2.2 a): AS_SET counts 1, confederation segments count 0. */
export function asPathLength(path: readonly AsPathSegment[] | undefined): number {
  if (!path) return 0;
  let n = 0;
  for (const s of path) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

/** The neighbour AS (first AS of the first AS_SEQUENCE), undefined for an empty/odd path. */
export function asPathFirstAs(path: readonly AsPathSegment[] | undefined): number | undefined {
  if (!path) return undefined;
  for (const s of path) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) return s.asns[0];
    if (s.type === AsPathSegmentType.AS_SET) return undefined;
  }
  return undefined;
}

/** The origin AS (last AS of the last AS_SEQUENCE), for display. */
export function asPathOriginAs(path: readonly AsPathSegment[] | undefined): number | undefined {
  if (!path || path.length === 0) return undefined;
  const last = path[path.length - 1]!;
  return last.type === AsPathSegmentType.AS_SEQUENCE ? last.asns[last.asns.length - 1] : undefined;
}

export function asPathContains(path: readonly AsPathSegment[] | undefined, asn: number): boolean {
  if (!path) return false;
  for (const s of path) if (s.asns.includes(asn)) return true;
  return false;
}

/** A new path with `asn` prepended `times` times (new AS_SEQUENCE segment when needed; a
 *  sequence is split at 255 ASes). Does not modify the input. */
export function asPathPrepend(
  path: readonly AsPathSegment[] | undefined,
  asn: number,
  times = 1,
): AsPathSegment[] {
  const out = (path ?? []).map((s) => ({ type: s.type, asns: s.asns.slice() }));
  for (let i = 0; i < times; i++) {
    const first = out[0];
    if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255) {
      first.asns.unshift(asn);
    } else {
      out.unshift({ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] });
    }
  }
  return out;
}

/** "65001 65002 {65003,65004} (65005)" like BIRD/GoBGP show it. */
export function formatAsPath(path: readonly AsPathSegment[] | undefined): string {
  if (!path) return '';
  return path
    .map((s) => {
      const a = s.asns.join(' ');
      switch (s.type) {
        case AsPathSegmentType.AS_SET:
          return `{${s.asns.join(',')}}`;
        case AsPathSegmentType.AS_CONFED_SEQUENCE:
          return `(${a})`;
        case AsPathSegmentType.AS_CONFED_SET:
          return `[${s.asns.join(',')}]`;
        default:
          return a;
      }
    })
    .join(' ');
}
