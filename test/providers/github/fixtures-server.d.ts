/** Types for @octokit/fixtures-server (the package ships none). */
declare module '@octokit/fixtures-server' {
  import type { Router } from 'express';

  /** Options of the express middleware (see the package README). */
  export interface FixturesServerOptions {
    /** The origin that rewritten URLs (Link, Location, upload_url) point at. */
    fixturesUrl?: string;
    logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
    /** How long a loaded scenario lives, in ms (default 60 000). */
    ttl?: number;
    /** Scenario name -> recorded entries (replaces the shipped set). */
    fixtures?: Record<string, unknown[]>;
  }

  /** The middleware: `POST /fixtures {"scenario"}` loads a scenario; `/<host>/<id>/...` replays it. */
  export default function fixturesServer(options?: FixturesServerOptions): Router;
}
