export { CACHE_KIB, openStateDb, stateDbPath, type StateDb } from './db.js';
export { getKv, setKv } from './kv.js';
export { storageWrite } from './storage-write.js';
