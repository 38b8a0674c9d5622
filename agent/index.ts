export * from './health.js';
export * from './metrics.js';
export * from './log.js';
