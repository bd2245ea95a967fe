/**
 * Runs in every test file (vitest `setupFiles`): after the file's own hooks (vitest runs `afterAll`
 * hooks in reverse order of registration, and these register first), removes the temp directories
 * the file made with `tempDir()`.
 */
import { afterAll } from 'vitest';
import { removeTempDirs } from './helpers/harness.js';

afterAll(() => removeTempDirs());
