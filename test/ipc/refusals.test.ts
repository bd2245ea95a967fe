/**
 * What the file transport refuses, on real directories: links (a request file that is a symbolic
 * link to another group's file, a `requests/` directory swapped for a link, an answer name
 * prepared as a link), hard links, malformed files, names that are not `<id>.json`, files that
 * are not regular, oversize files. Each refused entry is moved to `rejected/` with a problem+json
 * error file beside it, never deleted; nothing outside the group's own directory is read or
 * written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/harness.js';
import { answerOf, drop, names, rejectionOf, signedFile, startIpcBroker, type IpcBroker } from './helpers.js';

let b: IpcBroker;
beforeAll(async () => {
  // No periodic sweep: each test sweeps when it is ready (settle), so a directory swap is never raced.
  b = await startIpcBroker({ env: { BROKER_BODY_LIMIT_BYTES: '1024' }, sweepMs: 3_600_000 });
});
afterAll(async () => {
  await b.ipc.idle();
  await b.stop();
});

/** Runs sweeps until every file found is handled. */
async function settle(): Promise<void> {
  await b.ipc.sweep();
  await b.ipc.idle();
  await b.ipc.sweep();
  await b.ipc.idle();
}

describe('links', () => {
  it('a request file that is a symbolic link to another group\'s file is moved to rejected/ as the link; the target is untouched', async () => {
    const victim = b.dir('security', 'responses', 'victim.json');
    fs.writeFileSync(victim, JSON.stringify(await signedFile(b, 'developer', 'GET', '/v1/whoami')));
    fs.symlinkSync(victim, b.dir('developer', 'requests', 'evil.json'));
    await settle();
    const error = await rejectionOf(b, 'developer', 'evil.json');
    expect(error).toMatchObject({ type: 'urn:nanoclaw-broker:problem:bad_request', status: 400, code: 'bad_request', reason: 'symlink', file: 'evil.json', rejected_as: 'evil.json' });
    expect(fs.lstatSync(b.dir('developer', 'rejected', 'evil.json')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(b.dir('developer', 'rejected', 'evil.json'))).toBe(victim);
    expect(fs.existsSync(victim)).toBe(true);
    expect(names(b, 'developer', 'responses')).toEqual([]); // never answered as if it were a request
  });

  it('a requests/ directory swapped for a link to another directory is moved to rejected/, made again, and what it pointed at is never read', async () => {
    const outside = tempDir('broker-ipc-outside-');
    fs.writeFileSync(path.join(outside, 'bait.json'), JSON.stringify(await signedFile(b, 'developer', 'GET', '/v1/whoami')));
    fs.renameSync(b.dir('developer', 'requests'), b.dir('developer', 'old-requests'));
    fs.symlinkSync(outside, b.dir('developer', 'requests'));
    await settle();
    expect(fs.lstatSync(b.dir('developer', 'rejected', 'requests')).isSymbolicLink()).toBe(true);
    expect(JSON.parse(fs.readFileSync(b.dir('developer', 'rejected', 'requests.error.json'), 'utf8'))).toMatchObject({ code: 'bad_request', reason: 'symlink' });
    const made = fs.lstatSync(b.dir('developer', 'requests'));
    expect([made.isDirectory(), made.mode & 0o777]).toEqual([true, 0o700]);
    expect(fs.readdirSync(outside)).toEqual(['bait.json']);
    expect(names(b, 'developer', 'responses')).not.toContain('bait.json');
    // The transport goes on through the new directory.
    drop(b, 'developer', 'after.json', await signedFile(b, 'developer', 'GET', '/v1/whoami'));
    await settle();
    expect((await answerOf(b, 'developer', 'after')).status).toBe(200);
  });

  it('a link planted under an answer\'s name is replaced by the answer, never written through', async () => {
    const victim = b.dir('security', 'responses', 'keep.json');
    fs.writeFileSync(victim, 'security\'s own file\n');
    fs.symlinkSync(victim, b.dir('developer', 'responses', 'planted.json'));
    drop(b, 'developer', 'planted.json', await signedFile(b, 'developer', 'GET', '/v1/whoami'));
    await settle();
    expect(fs.readFileSync(victim, 'utf8')).toBe('security\'s own file\n');
    const answer = fs.lstatSync(b.dir('developer', 'responses', 'planted.json'));
    expect([answer.isFile(), answer.mode & 0o777]).toEqual([true, 0o600]);
    expect((await answerOf(b, 'developer', 'planted')).body).toMatchObject({ group: 'developer' });
  });

  it('a hard link to another group\'s file is refused', async () => {
    const victim = b.dir('security', 'responses', 'linked.json');
    fs.writeFileSync(victim, JSON.stringify(await signedFile(b, 'developer', 'GET', '/v1/whoami')));
    fs.linkSync(victim, b.dir('developer', 'requests', 'hard.json'));
    await settle();
    expect(await rejectionOf(b, 'developer', 'hard.json')).toMatchObject({ code: 'bad_request', reason: 'hard_link' });
    expect(fs.existsSync(victim)).toBe(true);
  });
});

describe('malformed files', () => {
  it.each([
    ['not JSON', 'broken.json', '{"method": "GET", ', 'malformed_json', 400, 'malformed_json'],
    ['an unknown header (a bearer token)', 'bearer.json', JSON.stringify({ method: 'GET', path: '/v1/whoami', headers: { authorization: 'Bearer x' } }), 'validation_failed', 422, 'invalid_file'],
    ['a header value with a line break', 'crlf.json', JSON.stringify({ method: 'GET', path: '/v1/whoami', headers: { signature: 'broker=:x:\r\nx-evil: 1' } }), 'validation_failed', 422, 'invalid_file'],
    ['a path with ".."', 'dots.json', JSON.stringify({ method: 'GET', path: '/v1/ext/../grants', headers: {} }), 'validation_failed', 422, 'invalid_file'],
    ['an encoded "/"', 'slash.json', JSON.stringify({ method: 'GET', path: '/v1/ext/calls%2F..%2Fx', headers: {} }), 'validation_failed', 422, 'invalid_file'],
    ['a query not as a URL writes it', 'query.json', JSON.stringify({ method: 'GET', path: '/v1/tasks', query: 'a=b c', headers: {} }), 'validation_failed', 422, 'invalid_file'],
    ['a body on a GET', 'getbody.json', JSON.stringify({ method: 'GET', path: '/v1/whoami', headers: {}, body: 'x' }), 'validation_failed', 422, 'invalid_file'],
    ['a name that is not <id>.json', 'notes.txt', '{}', 'bad_request', 400, 'bad_name'],
    ['an oversize file', 'big.json', JSON.stringify({ method: 'POST', path: '/v1/tasks', headers: {}, body: 'x'.repeat(20_000) }), 'payload_too_large', 413, 'too_large'],
  ])('%s is moved to rejected/ with an error file, its bytes kept', async (_what, name, content, code, status, reason) => {
    drop(b, 'main', name, content);
    await settle();
    const error = await rejectionOf(b, 'main', name);
    expect(error).toMatchObject({ code, status, reason, file: name, type: `urn:nanoclaw-broker:problem:${code}` });
    expect(typeof error.detail).toBe('string');
    expect(fs.readFileSync(b.dir('main', 'rejected', name), 'utf8')).toBe(content);
    expect(names(b, 'main', 'requests')).toEqual([]);
    expect(names(b, 'main', 'processing')).toEqual([]);
  });

  it('a directory and a FIFO in requests/ are not regular files', async () => {
    fs.mkdirSync(b.dir('main', 'requests', 'adir.json'));
    execFileSync('mkfifo', [b.dir('main', 'requests', 'pipe.json')]);
    await settle();
    expect(await rejectionOf(b, 'main', 'adir.json')).toMatchObject({ reason: 'not_regular' });
    expect(await rejectionOf(b, 'main', 'pipe.json')).toMatchObject({ reason: 'not_regular' });
    expect(fs.lstatSync(b.dir('main', 'rejected', 'pipe.json')).isFIFO()).toBe(true);
  });

  it('a second file refused under a name already in rejected/ keeps both', async () => {
    drop(b, 'security', 'twice.json', 'first');
    await settle();
    await rejectionOf(b, 'security', 'twice.json');
    drop(b, 'security', 'twice.json', 'second');
    await settle();
    const kept = names(b, 'security', 'rejected').filter((n) => n.startsWith('twice.json') && !n.endsWith('.error.json'));
    expect(kept).toHaveLength(2);
    expect(kept.map((n) => fs.readFileSync(b.dir('security', 'rejected', n), 'utf8')).sort()).toEqual(['first', 'second']);
    expect(names(b, 'security', 'rejected').filter((n) => n.startsWith('twice.json') && n.endsWith('.error.json'))).toHaveLength(2);
  });
});
