// The file datastore (embedded default): see datastore/file/datastore.ts and README "File datastore".
export { FileDatastore, newResourcePath, type FileDatastoreOptions } from './file/datastore.js';
export { withDirectoryLock, LOCK_FILE, type DirectoryLockOptions } from './file/lock.js';
