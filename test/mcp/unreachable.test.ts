/**
 * The agents' MCP server when the broker cannot be reached: a real `broker mcp` process on stdio,
 * driven by the MCP SDK's client, pointed at a port where nothing listens. Every tool answers an
 * error result naming the URL and the cause, not the bare "fetch failed".
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient, BrokerUnreachableError } from '../../src/client/index.js';
import { REPO_ROOT, tempDir } from '../helpers/harness.js';
import { BIN } from '../helpers/process.js';

/** A 127.0.0.1 port that was just free: bound, then closed, so a connection to it is refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let mcp: Client;
let origin: string;

beforeAll(async () => {
  origin = `http://127.0.0.1:${await closedPort()}`;
  const secretFile = path.join(tempDir(), '.ipc_secret');
  fs.writeFileSync(secretFile, JSON.stringify({ keyid: 'developer:1', alg: 'hmac-sha256', secret: randomBytes(32).toString('base64url') }), { mode: 0o600 });
  mcp = new Client({ name: 'test-agent', version: '1.0.0' });
  await mcp.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--secret', secretFile, '--url', origin], cwd: REPO_ROOT, stderr: 'pipe' }));
});
afterAll(async () => {
  await mcp?.close();
});

const textOf = (r: Awaited<ReturnType<Client['callTool']>>) => (r.content as { text: string }[])[0]!.text;

describe('broker mcp with the broker unreachable', () => {
  it('a read names the URL and ECONNREFUSED', async () => {
    const res = await mcp.callTool({ name: 'whoami', arguments: {} });
    expect(res.isError).toBe(true);
    expect(textOf(res)).not.toBe('fetch failed');
    const body = JSON.parse(textOf(res));
    expect(body).toMatchObject({ code: 'broker_unreachable', url: `${origin}/v1/whoami`, cause: 'ECONNREFUSED' });
    expect(body.detail).toMatch(new RegExp(`^Cannot reach the broker at ${origin}/v1/whoami: ECONNREFUSED \\(connection refused`));
  });

  it('call_action also names the request_id to retry with', async () => {
    const res = await mcp.callTool({ name: 'call_action', arguments: { action: 'github.get_repo', params: { owner: 'acme', repo: 'api' }, request_id: 'retry-me-1' } });
    expect(res.isError).toBe(true);
    const body = JSON.parse(textOf(res));
    expect(body).toMatchObject({ code: 'broker_unreachable', url: `${origin}/v1/ext/calls`, cause: 'ECONNREFUSED', request_id: 'retry-me-1' });
    expect(body.detail).toContain('Retry with request_id retry-me-1');
  });

  it('a kernel tool that reads before it writes answers the same way', async () => {
    const res = await mcp.callTool({ name: 'transition_task', arguments: { task_id: '01JABCDEFGHJKMNPQRSTVWXYZ0', to: 'REVIEW' } });
    expect(res.isError).toBe(true);
    expect(JSON.parse(textOf(res))).toMatchObject({ code: 'broker_unreachable', cause: 'ECONNREFUSED' });
  });
});

describe('BrokerUnreachableError names the cause', () => {
  const credential = { keyid: 'developer:1', secret: randomBytes(32) };
  /**
   * A real TCP server on 127.0.0.1 that hands each connection to `onConnection` (default: never
   * answers); `stop` destroys its connections and closes it.
   */
  async function tcpServer(onConnection: (s: net.Socket) => void = () => {}): Promise<{ port: number; stop: () => Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      onConnection(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const stop = () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    };
    return { port: (server.address() as net.AddressInfo).port, stop };
  }
  const failure = async (client: BrokerClient) => {
    const err = await client.get('/v1/whoami').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BrokerUnreachableError);
    return err as BrokerUnreachableError;
  };

  it('TLS: an https URL on a server that speaks no TLS', async () => {
    const { port, stop } = await tcpServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const err = await failure(new BrokerClient({ baseUrl: `https://127.0.0.1:${port}`, credential }));
    await stop();
    expect(err.causeCode).toMatch(/^(ERR_SSL_|ERR_TLS_|EPROTO)/);
    expect(err.reason).toMatch(/^TLS failed: /);
    expect(err.message).toContain(`GET https://127.0.0.1:${port}/v1/whoami failed with ${err.causeCode}`);
  });

  it('a timeout: the request is aborted by its signal while the server stays silent', async () => {
    const { port, stop } = await tcpServer();
    const client = new BrokerClient({ baseUrl: `http://127.0.0.1:${port}`, credential, fetch: (u, init) => fetch(u, { ...init, signal: AbortSignal.timeout(100) }) });
    const err = await failure(client);
    await stop();
    expect(err.causeCode).toBe('TimeoutError');
    expect(err.message).toBe(`cannot reach the broker: GET http://127.0.0.1:${port}/v1/whoami failed with TimeoutError (timed out)`);
  });
});
