export * from './types.js';
export * from './net.js';
