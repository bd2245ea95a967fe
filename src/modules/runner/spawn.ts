/**
 * Spawning a runner's command so that it never runs unless its process group id was recorded
 * first (docs/runner.md, "Exactly once, and crash safety").
 *
 * The command is started behind a fixed gate, `/bin/sh -c 'read -r _ || exit 125; exec "$@"'`:
 * the shell is the new process group's leader (`detached`), it waits for one line on its stdin,
 * then `exec`s the command in place (same pid, same group). The program and its arguments are the
 * shell's positional parameters, expanded only as `"$@"`: each reaches the program verbatim, no
 * shell ever interprets them. The broker records the pid, then {@link openGate}: a broker killed
 * before that closes the pipe by dying, `read` sees end-of-file, and the gate exits 125 without
 * starting the command.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** The gate script; `$@` is the command. */
export const GATE = 'read -r _ || exit 125; exec "$@"';
/** The gate's exit status when it was closed (or its broker died) before the command started. */
export const GATE_CLOSED_EXIT = 125;

/** A gated child: stdin is the gate, stdout and stderr are the command's. */
export type GatedChild = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * Spawns `program args…` behind the gate, in its own process group (`pid` = group id), with
 * `env` as its whole environment and `cwd` as its directory. Nothing runs until {@link openGate}.
 * A program that cannot be found is reported by the gate's shell (exit 127, "not found" on stderr)
 * once the gate opens.
 */
export function spawnGated(program: string, args: string[], opts: { env: Record<string, string>; cwd: string }): GatedChild {
  return spawn('/bin/sh', ['-c', GATE, 'nanoclaw-runner', program, ...args], { shell: false, detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
}

/**
 * Opens the gate (`go`: the command starts, then reads end-of-file on its stdin) or closes it
 * (the gate exits {@link GATE_CLOSED_EXIT}, the command never starts). Call once.
 */
export function openGate(child: GatedChild, go: boolean): void {
  child.stdin.on('error', () => {}); // EPIPE: the gate already exited
  child.stdin.end(go ? '\n' : undefined);
}
