// Public surface of the CNI plugin folder. The plugin itself is the `petrel-cni` binary (cni/main.ts).
export * from './ipam/index.js';
export { hostVethName, workloadEndpointName, handleIdFor } from './names.js';
export { DEFAULT_ROUTE_PROTOCOL } from './config.js';
export { SUPPORTED_VERSIONS, convertResult, ErrorCode } from './types.js';
export { renderTemplate, DEFAULT_TEMPLATE } from './install.js';
