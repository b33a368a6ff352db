// Reads that callers ask for in one turn of the event loop, sent as one request: the gateway
// handles every request that one poll of its sockets brings before it sends anything (setImmediate
// runs after the poll), so a turn's baskets share one round trip. Used for the Redis read views
// (scripts.ts: one MGET) and for a gateway thread's reads of the main thread's store
// (gateway/thread-store.ts: one message). Values are as live as one request per caller: every
// caller's keys are read by a request sent after it asked.

interface Caller<Part> {
  keys: string[];
  resolve: (part: Part) => void;
  reject: (error: unknown) => void;
}

export class TurnBatch<Reply, Part> {
  private pending: Caller<Part>[] = [];
  private pendingKeys = 0;

  constructor(
    /** A batch that reaches this many keys is sent at once (bounds one request and its reply). */
    private readonly keysMax: number,
    /** Sends every key of the batch, its callers' in the order they asked. */
    private readonly send: (keys: string[]) => Promise<Reply>,
    /** Each caller's part of the reply; `counts`: how many keys each caller asked, in order. */
    private readonly split: (reply: Reply, counts: number[]) => Part[],
  ) {}

  get(keys: string[]): Promise<Part> {
    return new Promise((resolve, reject) => {
      this.pending.push({ keys, resolve, reject });
      this.pendingKeys += keys.length;
      if (this.pendingKeys >= this.keysMax) this.flush();
      else if (this.pending.length === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.pendingKeys = 0;
    const keys = batch.length === 1 ? batch[0]!.keys : batch.flatMap((caller) => caller.keys);
    this.send(keys).then(
      (reply) => {
        const parts = this.split(
          reply,
          batch.map((caller) => caller.keys.length),
        );
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(parts[i]!);
      },
      (error: unknown) => {
        for (const caller of batch) caller.reject(error);
      },
    );
  };
}
