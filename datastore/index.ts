export * from './types.js';
export * from './net.js';
export * from './model.js';
export * from './validate.js';
export * from './manifest.js';
export * from './derive.js';
export * from './file.js';
export * from './factory.js';
