export { startTestApiServer, loadCrdManifests } from './server.js';
export type { TestApiServer, TestApiServerOptions, TestApiServerCounters, FailRule, ResourceType } from './server.js';
