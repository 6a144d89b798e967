export { CACHE_KIB, openStateDb, type StateDb } from './db.js';
export { stateLayout, healLayout, type HealLayout } from './layout.js';
export { getKv, setKv } from './kv.js';
export { storageWrite, stateWriteFailure } from './storage-write.js';
