// IPAM objects as resources (spec shaped like Calico's crd.projectcalico.org/v1 CRDs): used by
// the Kubernetes backend (ipamblocks/blockaffinities/ipamhandles) and the file datastore.
import { createHash } from 'node:crypto';
import type { AllocationBlock, BlockAffinity, IpamHandle } from './model.js';
import { cidrToName } from './model.js';

export function blockName(cidr: string): string {
  return cidrToName(cidr);
}

/** `<node>-<cidrname>`, cut with a hash suffix past 253 chars (Calico's ipam_affinity_v1.go). */
export function affinityName(host: string, cidr: string): string {
  const c = cidrToName(cidr);
  const name = `${host}-${c}`;
  if (name.length < 253) return name;
  const h = createHash('sha256').update(`${host}+${c}`).digest('hex').slice(0, 11);
  return `${host.slice(0, 252 - c.length - 13)}-${c}-${h}`;
}

export const handleName = (id: string) => id.toLowerCase();

export function blockSpec(b: AllocationBlock): Record<string, unknown> {
  return {
    cidr: b.cidr,
    ...(b.affinity ? { affinity: b.affinity } : {}),
    ...(b.affinityClaimTime ? { affinityClaimTime: b.affinityClaimTime } : {}),
    allocations: b.allocations,
    unallocated: b.unallocated,
    attributes: b.attributes.map((a) => ({ ...(a.handle_id ? { handle_id: a.handle_id } : {}), ...(a.secondary ? { secondary: a.secondary } : {}) })),
    sequenceNumber: b.sequenceNumber,
    sequenceNumberForAllocation: b.sequenceNumberForAllocation,
    deleted: b.deleted,
    strictAffinity: b.strictAffinity,
  };
}

export function blockFromSpec(s: any): AllocationBlock {
  return {
    cidr: s.cidr,
    affinity: s.affinity ?? null,
    ...(s.affinityClaimTime ? { affinityClaimTime: s.affinityClaimTime } : {}),
    strictAffinity: !!s.strictAffinity,
    allocations: s.allocations ?? [],
    unallocated: s.unallocated ?? [],
    attributes: (s.attributes ?? []).map((a: any) => ({ handle_id: a.handle_id ?? null, secondary: a.secondary ?? null })),
    sequenceNumber: Number(s.sequenceNumber ?? 0),
    sequenceNumberForAllocation: s.sequenceNumberForAllocation ?? {},
    deleted: s.deleted === true || s.deleted === 'true',
  };
}

/** `deletedAsString`: the v1 CRD declares `deleted` a string; the v3 model a boolean. */
export function affinitySpec(a: BlockAffinity, deletedAsString: boolean): Record<string, unknown> {
  return { state: a.state, node: a.host, cidr: a.cidr, deleted: deletedAsString ? String(a.deleted) : a.deleted };
}

export function affinityFromSpec(s: any): BlockAffinity {
  return { host: s.node, cidr: s.cidr, state: s.state || 'confirmed', deleted: s.deleted === true || s.deleted === 'true' };
}

export function handleSpec(h: IpamHandle): Record<string, unknown> {
  return { handleID: h.handleId, block: h.block, deleted: h.deleted };
}

export function handleFromSpec(s: any): IpamHandle {
  return { handleId: s.handleID, block: s.block ?? {}, deleted: !!s.deleted };
}
