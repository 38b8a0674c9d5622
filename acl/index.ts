// Public surface of acl/: selectors, policy model, label index, rendering, iptables/ipset dataplane.
export * from './selector.js';
export * from './model.js';
export { LabelIndex } from './labelindex.js';
export { DesiredState, type DesiredIpset, type IpsetType } from './desired.js';
export { Names, DEFAULT_PREFIX, defaultRenderConfig, type Family, type Table, type RenderConfig } from './render.js';
export { PolicyEngine, type EndpointInput, type NetworkSetInput, type PoolInput, type EngineOptions } from './engine.js';
export {
  IptablesDataplane,
  detectBackend,
  parseIptablesSave,
  parseIpsetSave,
  DataplaneReadError,
  DataplaneWriteError,
  type IptablesDataplaneOptions,
  type DataplaneStatus,
  type Backend,
  type Exec,
} from './iptables.js';
