// HTTP plumbing over uWebSockets.js: reading a bounded body, decoding JSON or msgpack, writing
// JSON/msgpack answers and RFC 9457 problem+json errors. uWS hands a request object that is only
// valid until the handler returns, so everything a route needs from it is copied out first
// (`readRequest`), and a response whose client went away must never be written (`aborted`).

import { Packr } from 'msgpackr';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

export const msgpackType = 'application/msgpack';
export const problemType = 'application/problem+json';

const packr = new Packr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

/** An error a client caused: it becomes a problem+json answer with this status and detail. */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    /** Extra members of the problem object (RFC 9457 extensions), e.g. shortfalls. */
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

const statusText: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  406: '406 Not Acceptable',
  409: '409 Conflict',
  410: '410 Gone',
  413: '413 Content Too Large',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Content',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function statusLine(status: number): string {
  return statusText[status] ?? `${status} Status`;
}

/** What a route needs from the request, copied out of uWS's stack-allocated request object. */
export interface RequestInfo {
  method: string;
  url: string;
  query: string;
  params: string[];
  authorization: string;
  apiKeyHeader: string;
  contentType: string;
  contentLength: number | undefined;
  accept: string;
  origin: string;
  /** A path segment that is not valid percent-encoding (the route answers 400 after the key check). */
  badParam?: string;
}

/**
 * Never throws: it runs in uWS's handler before any response exists, where a throw ends the
 * process. A segment that does not decode (`%E0`, `%ZZ`) is kept raw and named in `badParam`.
 */
export function readRequest(req: HttpRequest, paramCount: number): RequestInfo {
  const params: string[] = [];
  let badParam: string | undefined;
  for (let i = 0; i < paramCount; i++) {
    const raw = req.getParameter(i) ?? '';
    try {
      params.push(decodeURIComponent(raw));
    } catch {
      badParam ??= raw;
      params.push(raw);
    }
  }
  const length = req.getHeader('content-length');
  return {
    method: req.getCaseSensitiveMethod(),
    url: req.getUrl(),
    query: req.getQuery() ?? '',
    params,
    authorization: req.getHeader('authorization'),
    apiKeyHeader: req.getHeader('x-api-key'),
    contentType: req.getHeader('content-type'),
    contentLength: length === '' ? undefined : Number(length),
    accept: req.getHeader('accept'),
    origin: req.getHeader('origin'),
    ...(badParam === undefined ? {} : { badParam }),
  };
}

/** Tracks a client that went away: uWS forbids touching its response afterwards. */
export interface ResponseState {
  aborted: boolean;
  done: boolean;
}

/**
 * Reads the whole body, at most `bytesMax`. A declared or actual size past the bound answers 413
 * at once, without buffering the rest (the bound is what keeps one client from taking memory).
 */
export function readBody(res: HttpResponse, info: RequestInfo, bytesMax: number, state: ResponseState): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (info.contentLength !== undefined && info.contentLength > bytesMax) {
      reject(new HttpProblem(413, 'Content Too Large', `the body is ${info.contentLength} bytes: at most ${bytesMax} are accepted`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed || state.aborted) return;
      size += chunk.byteLength;
      if (size > bytesMax) {
        failed = true;
        reject(new HttpProblem(413, 'Content Too Large', `the body is over ${bytesMax} bytes: at most ${bytesMax} are accepted`));
        return;
      }
      // The chunk's memory is reused by uWS after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  });
}

export function isMsgpack(contentType: string): boolean {
  return contentType.split(';')[0]!.trim().toLowerCase() === msgpackType;
}

/** Decodes a JSON or msgpack body; an empty or undecodable one is a 400 that says why. */
export function decodeBody(body: Buffer, contentType: string): unknown {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (body.length === 0) throw new HttpProblem(400, 'Bad Request', 'the request has no body: expected a JSON (or msgpack) object');
  if (type === msgpackType) {
    try {
      return packr.unpack(body);
    } catch (error) {
      throw new HttpProblem(400, 'Bad Request', `the body is not valid msgpack: ${error instanceof Error ? error.message.slice(0, 120) : String(error)}`);
    }
  }
  if (type !== 'application/json' && type !== '') {
    throw new HttpProblem(415, 'Unsupported Media Type', `content-type ${JSON.stringify(contentType)} is not accepted: send application/json or ${msgpackType}`);
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpProblem(400, 'Bad Request', `the body is not valid JSON: ${error instanceof Error ? error.message.slice(0, 120) : String(error)}`);
  }
}

/** msgpack when the client asks for it (accept), or sent msgpack and did not ask for JSON. */
export function wantsMsgpack(info: RequestInfo): boolean {
  if (info.accept.includes(msgpackType)) return true;
  if (info.accept.includes('application/json')) return false;
  return isMsgpack(info.contentType);
}

export function encodeBody(value: unknown, msgpack: boolean): { body: Buffer | string; contentType: string } {
  return msgpack ? { body: packr.pack(value), contentType: msgpackType } : { body: JSON.stringify(value), contentType: 'application/json' };
}

export function writeResponse(res: HttpResponse, state: ResponseState, status: number, contentType: string, body: Buffer | string, headers: Record<string, string> = {}): void {
  if (state.aborted || state.done) return;
  state.done = true;
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('content-type', contentType);
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    res.end(body);
  });
}

export function problemBody(status: number, title: string, detail: string, instance: string, extensions: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'about:blank', title, status, detail, instance, ...extensions });
}

/** Parses a query string into a map (last value wins); names are what the routes document. */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) out.set(k, v);
  return out;
}
