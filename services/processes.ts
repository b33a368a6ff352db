// Background processes of the local services: started detached with a PID file, stopped by that
// PID (never by process name, so nothing else on the machine is touched), logs under one folder.

import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Layout {
  root: string;
  run: string;
  logs: string;
}

export function layout(dataDir: string): Layout {
  const root = join(dataDir, 'services');
  const out = { root, run: join(root, 'run'), logs: join(root, 'logs') };
  mkdirSync(out.run, { recursive: true });
  mkdirSync(out.logs, { recursive: true });
  return out;
}

export function log(message: string): void {
  process.stdout.write(`[services] ${message}\n`);
}

export function pidFile(paths: Layout, name: string): string {
  return join(paths.run, `${name}.pid`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) still answers signal 0: treat it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** The PID recorded for `name`, if that process is still running. */
export function runningPid(paths: Layout, name: string): number | undefined {
  const file = pidFile(paths, name);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return pid;
  rmSync(file, { force: true });
  return undefined;
}

/** Starts `command` detached from this process, output appended to logs/<name>.log. */
export function startDetached(paths: Layout, name: string, command: string, args: string[], options: SpawnOptions = {}): number {
  const logFile = join(paths.logs, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${command} not found?`);
  child.unref();
  writeFileSync(pidFile(paths, name), `${child.pid}\n`);
  return child.pid;
}

/** Stops the process recorded for `name`: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopByPid(paths: Layout, name: string, graceMs = 15_000): Promise<boolean> {
  const pid = runningPid(paths, name);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    log(`${name} (pid ${pid}) did not stop within ${graceMs} ms: SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (isAlive(pid)) await sleep(50);
  }
  rmSync(pidFile(paths, name), { force: true });
  return true;
}

/** Polls `probe` until it returns true or `timeoutMs` passes; the error says what never answered. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, logHint?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await sleep(250);
  }
  throw new Error(`${what} did not answer within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}${logHint ? `; see ${logHint}` : ''}`);
}

export function commandExists(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian packages that provide missing commands (the services command "installs what is missing"). */
export function ensureDebianPackages(wanted: { command: string; pkg: string }[]): void {
  const missing = [...new Set(wanted.filter((w) => !commandExists(w.command)).map((w) => w.pkg))];
  if (missing.length === 0) return;
  log(`installing Debian packages: ${missing.join(' ')}`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...sudo, ...args] as [string, ...string[]];
    const result = spawnSync(cmd, rest, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (result.status !== 0) throw new Error(`\`${[cmd, ...rest].join(' ')}\` failed (exit ${result.status}); install ${missing.join(' ')} by hand`);
  };
  run(['apt-get', 'update', '-qq']);
  run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
}
