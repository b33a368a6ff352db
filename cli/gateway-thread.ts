// A worker thread of `instock gateway` or `instock start` with GATEWAY_THREADS > 1
// (gateway/threads.ts): the same gateway as the main thread's, serving the connections the main
// thread accepts and hands to it, talking to the main thread for its feeds, live changes, metrics
// and stop (and, on the in-memory store, for every store operation: gateway/thread-store.ts).

import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../config/config.js';
import type { ThreadData } from '../gateway/threads.js';
import { start } from './start.js';

if (!parentPort) throw new Error('cli/gateway-thread.js runs as a worker thread of `instock gateway` or `instock start`');
const code = await start(loadConfig(), 'gateway', { data: workerData as ThreadData, port: parentPort });
// In a worker, process.exit ends this thread only (the main thread's port listener would keep it alive).
process.exit(code);
