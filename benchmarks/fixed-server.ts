// The floor of the availability benchmark: a uWebSockets.js endpoint that reads the request body
// and answers a fixed JSON body of a given size, with nothing else. Run as a child process:
//   node dist/benchmarks/fixed-server.js <port> <responseBytes>
// It prints "ready <port>" once listening.

import { App, us_socket_local_port, type us_socket } from 'uWebSockets.js';

const port = Number(process.argv[2] ?? 0);
const bytes = Number(process.argv[3] ?? 2048);
const body = JSON.stringify({ options: [], padding: 'x'.repeat(Math.max(0, bytes - 27)) });

App()
  .post('/v1/availability', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((_chunk, isLast) => {
      if (!isLast || aborted) return;
      res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(body));
    });
  })
  .listen('127.0.0.1', port, (socket) => {
    if (!socket) {
      process.stderr.write(`fixed-server: cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write(`ready ${us_socket_local_port(socket as unknown as us_socket)}\n`);
  });
