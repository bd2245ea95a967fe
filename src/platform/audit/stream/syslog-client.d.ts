/**
 * Types of the parts of `syslog-client` (1.1, which ships none) the syslog sink uses: a client
 * sending RFC 5424 (or RFC 3164) messages over UDP or TCP.
 */
declare module 'syslog-client' {
  import type { EventEmitter } from 'node:events';

  /** Options of `createClient`; `port` default 514, `rfc3164` default true (false: RFC 5424). */
  export interface ClientOptions {
    port?: number;
    transport?: number;
    rfc3164?: boolean;
    facility?: number;
    severity?: number;
    appName?: string;
    syslogHostname?: string;
    tcpTimeout?: number;
  }

  /** Options of one `log` call: `msgid` (RFC 5424 MSGID), `timestamp` (the header's TIMESTAMP). */
  export interface LogOptions {
    msgid?: string;
    timestamp?: Date;
    facility?: number;
    severity?: number;
  }

  /** A client; emits `error` on transport failures (and forgets the transport, so the next log reconnects). */
  export interface Client extends EventEmitter {
    log(message: string, options: LogOptions, cb: (err?: Error) => void): Client;
    close(): Client;
  }

  const syslog: {
    createClient(target: string, options: ClientOptions): Client;
    Transport: { Tcp: number; Udp: number };
    Severity: { Informational: number };
  };
  export default syslog;
}
