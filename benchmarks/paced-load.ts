// Open-loop load at a fixed rate: requests are sent on a schedule (one every 1/rate s, spread over
// keep-alive connections), whatever the server's answers, and each latency runs from the request's
// scheduled time to the end of its answer, so time a request spent waiting for a free connection
// counts (no coordinated omission).
//
// Why not autocannon's `overallRate`: it gives each connection a quota per second and lets it send
// back to back until the quota is spent, then idle until the next second. "70 % of max" then means
// full load for 0.7 s and nothing for 0.3 s, and p99 is the p99 at max throughput. Its latency
// correction also assumes a 1 ms interval between requests of a connection, which adds synthetic
// samples to every answer slower than 1 ms.
//
// Why raw sockets rather than node:http: the client shares the machine's two cores with the server
// it measures, and its own stalls count in every latency. node:http's client cost ~60 µs of CPU per
// request and allocated a request object, headers and streams for each; here a request is one
// prebuilt buffer written to a keep-alive socket, and an answer is read into one shared buffer and
// counted by its Content-Length or its chunks (HTTP/1.1, one request in flight per connection, no
// pipelining).
//
// The first `warmupSec` (1 s by default) run at the same rate but are not recorded: they open the
// connections and compile the client's code (a cold start measured here cost up to 160 ms).

import { connect, type Socket } from 'node:net';
import { percentile } from './report.js';

export interface PacedResult {
  requestsPerSec: number;
  latencyMs: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  /** Requests still unanswered when the run ended (counted as errors). */
  unanswered: number;
  /**
   * The longest the client itself was late sending a recorded request (ms past its scheduled
   * time, connections free or not): a stall of the client's own event loop (its GC, the machine
   * not running it) shows here, one of the server in the latencies only.
   */
  sendLateMsMax: number;
  /** With `trace`: each recorded request's scheduled time (ms from the start of the recorded part) and latency. */
  trace?: { at: Float64Array; latencyMs: Float64Array };
}

export interface PacedOptions {
  port: number;
  path: string;
  headers: Record<string, string>;
  bodies: string[];
  rate: number;
  durationSec: number;
  connections: number;
  warmupSec?: number;
  /** How long after the last scheduled request the run waits for answers (10 s by default). */
  graceSec?: number;
  trace?: boolean;
}

const headerEnd = Buffer.from('\r\n\r\n');

/** One HTTP/1.1 request, whole, ready to write. */
function encodeRequest(port: number, path: string, headers: Record<string, string>, body: string): Buffer {
  const payload = Buffer.from(body);
  const lines = [`POST ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`), `content-length: ${payload.length}`];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), payload]);
}

interface AnswerHead {
  status: number;
  /** Where the body starts. */
  bodyStart: number;
  /** The body's length by Content-Length; undefined for a chunked body. */
  contentLength?: number;
}

/** The head of the answer at the start of `data`, or undefined while it is incomplete. Throws on an answer with neither Content-Length nor chunks. */
function answerHead(data: Buffer): AnswerHead | undefined {
  const end = data.indexOf(headerEnd);
  if (end < 0) return undefined;
  const head = data.toString('latin1', 0, end);
  const status = Number(head.slice(9, 12));
  const bodyStart = end + headerEnd.length;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) return { status, bodyStart, contentLength: Number(length[1]) };
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) throw new Error(`answer with neither content-length nor chunks: ${head.slice(0, 200)}`);
  return { status, bodyStart };
}

/** Where a chunked body starting at `at` ends ("<size in hex>\r\n<size bytes>\r\n", the last of size 0, no trailers), or undefined while it is incomplete. */
function chunkedEnd(data: Buffer, at: number): number | undefined {
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.toString('latin1', at, lineEnd), 16);
    at = lineEnd + 2 + size + 2;
    if (at > data.length) return undefined;
    if (size === 0) return at;
  }
}

export async function pacedLoad(options: PacedOptions): Promise<PacedResult> {
  const warmup = Math.round(options.rate * (options.warmupSec ?? 1));
  const total = warmup + Math.round(options.rate * options.durationSec);
  const requests = options.bodies.map((body) => encodeRequest(options.port, options.path, options.headers, body));
  const latencies = new Float64Array(total - warmup);
  const scheduled = options.trace ? new Float64Array(total - warmup) : undefined;
  let recorded = 0;
  const intervalMs = 1000 / options.rate;
  let sent = 0;
  let answered = 0;
  let non2xx = 0;
  let errors = 0;
  // Requests whose time has come while every connection was busy, by number (FIFO).
  const waiting: number[] = [];
  let waitingHead = 0;
  const idle: Connection[] = [];
  let finished = false;
  let finish = () => {};
  const settled = new Promise<void>((resolve) => {
    finish = () => {
      finished = true;
      resolve();
    };
  });
  const t0 = performance.now();

  // Every socket reads into this one buffer (onread), so that answers allocate nothing: at 4,000
  // answers of 13 KB a second, a Buffer per read made V8 run a 5-6 ms mark-compact every second
  // (external memory pressure), a stall in the client counted in the latencies of the requests it
  // held. What an answer must keep across reads (an incomplete head, a chunked body) is copied.
  const readBuffer = Buffer.allocUnsafe(64 * 1024);

  class Connection {
    private readonly socket: Socket;
    /** The start of the answer, copied, while its head (or chunked body) is incomplete. */
    private kept: Buffer | undefined;
    /** Body bytes of the answer still to come (Content-Length), once its head is read. */
    private bodyLeft = 0;
    private status = 0;
    /** The request in flight (its number), or -1. */
    private current = -1;

    constructor() {
      this.socket = connect({
        host: '127.0.0.1',
        port: options.port,
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback: (bytes: number, buffer: Uint8Array) => {
            this.onRead(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
            return true;
          },
        },
      });
      this.socket.on('connect', () => this.release());
      this.socket.on('error', () => this.fail());
      this.socket.on('close', () => this.fail());
    }

    send(n: number): void {
      this.current = n;
      this.socket.write(requests[n % requests.length]!);
    }

    close(): void {
      this.socket.removeAllListeners();
      this.socket.destroy();
    }

    /** `data` is a view of the shared read buffer. Bytes past the answer fail the connection: one request is in flight, so they belong to none. */
    private onRead(data: Buffer): void {
      if (this.bodyLeft > 0) {
        if (data.length > this.bodyLeft) return this.fail();
        this.bodyLeft -= data.length;
        if (this.bodyLeft === 0) this.answered();
        return;
      }
      const joined = this.kept ? Buffer.concat([this.kept, data]) : data;
      let head: AnswerHead | undefined;
      try {
        head = answerHead(joined);
      } catch {
        return this.fail();
      }
      let end = head && head.contentLength !== undefined ? head.bodyStart + head.contentLength : head && chunkedEnd(joined, head.bodyStart);
      if (!head || end === undefined) {
        this.kept = Buffer.from(joined);
        return;
      }
      this.kept = undefined;
      this.status = head.status;
      if (joined.length < end) {
        this.bodyLeft = end - joined.length;
        end = joined.length;
      }
      if (joined.length > end) return this.fail();
      if (this.bodyLeft === 0) this.answered();
    }

    private answered(): void {
      const n = this.current;
      this.current = -1;
      if (n >= warmup) {
        const at = t0 + n * intervalMs;
        latencies[recorded] = performance.now() - at;
        if (scheduled) scheduled[recorded] = (n - warmup) * intervalMs;
        recorded += 1;
        if (this.status < 200 || this.status > 299) non2xx += 1;
      }
      answered += 1;
      if (answered + errors >= total) finish();
      else this.release();
    }

    /** Takes the next waiting request, or joins the idle connections. */
    private release(): void {
      if (waitingHead < waiting.length) this.send(waiting[waitingHead++]!);
      else idle.push(this);
    }

    /** A broken connection: its request counts as an error, and a new connection replaces it. */
    private fail(): void {
      this.close();
      const index = idle.indexOf(this);
      if (index >= 0) idle.splice(index, 1);
      if (this.current >= 0) {
        errors += 1;
        this.current = -1;
        if (answered + errors >= total) finish();
      }
      // Replaced a moment later, so that a server refusing connections is not hammered.
      setTimeout(() => {
        if (!finished) connections[connections.indexOf(this)] = new Connection();
      }, 10);
    }
  }

  const connections = Array.from({ length: options.connections }, () => new Connection());
  const finishAt = t0 + total * intervalMs + (options.graceSec ?? 10) * 1000;
  let sendLateMsMax = 0;
  const tick = () => {
    if (finished) return;
    const now = performance.now();
    if (sent >= warmup && sent < total) sendLateMsMax = Math.max(sendLateMsMax, now - (t0 + sent * intervalMs));
    // Every request whose time has come, each stamped with its own scheduled time.
    while (sent < total && t0 + sent * intervalMs <= now) {
      const connection = idle.pop();
      if (connection) connection.send(sent);
      else waiting.push(sent);
      sent += 1;
    }
    if (sent < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + sent * intervalMs - performance.now())));
    else if (now > finishAt) finish();
    else setTimeout(tick, 50);
  };
  tick();
  await settled;
  const elapsedSec = (performance.now() - t0) / 1000;
  for (const connection of connections) connection.close();
  const unanswered = total - answered - errors;
  const sorted = latencies.slice(0, recorded).sort();
  const at = (p: number) => Math.round(percentile(sorted, p) * 100) / 100;
  return {
    requestsPerSec: answered / elapsedSec,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
    non2xx,
    errors: errors + unanswered,
    unanswered,
    sendLateMsMax: Math.round(sendLateMsMax * 100) / 100,
    ...(scheduled ? { trace: { at: scheduled.slice(0, recorded), latencyMs: latencies.slice(0, recorded) } } : {}),
  };
}
