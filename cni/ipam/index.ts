// Public surface of the IPAM (Calico's block-affinity model) for the agent and `petrel ctl`.
export * from './model.js';
export { type IpamStore, type Rev, CasConflict } from './store.js';
export { Ipam, IpamError, type AssignRequest, contains } from './ipam.js';
export { snapshot, usage, allocations, check, type IpamSnapshot, type UsageRow, type Allocation, type CheckReport } from './audit.js';
export { MemoryIpamStore } from './memory.js';
export { openIpamStore } from './open.js';
