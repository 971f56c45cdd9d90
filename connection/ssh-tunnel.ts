/**
 * One SSH connection per pool (ssh2), opened when the pool first connects, opened again when it
 * drops, closed with the pool. Every database connection of the pool (and its cancel requests)
 * is an SSH channel (direct-tcpip, `ssh -L` without a local port) handed to pg as its socket:
 * no listening port on this machine that other local processes could use, and the database's
 * TLS runs end to end inside the channel, checked against the database's own host name.
 */
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ParsedKey, PasswordAuthMethod, PublicKeyAuthMethod } from 'ssh2';
import { PgActionsError } from './errors/index.js';
import { sshClosedError, sshConnectError, sshForwardError } from './errors/ssh.js';
import { fingerprintOf, sshKeyOf, type ResolvedSshTunnel } from './ssh-config.js';

/** Keepalives find a silently dead SSH connection (after about 3 × 15 s) so the next step reconnects. */
const KEEPALIVE_MS = 15_000;

export class SshTunnel {
  /** The host key fingerprint (SHA256:…) the SSH server presented when last connected. */
  fingerprint?: string;
  private current?: Promise<ssh2.Client>;
  /** The SSH connection once logged in, until it closes. */
  private ready?: ssh2.Client;
  private closed = false;

  constructor(
    private readonly ssh: ResolvedSshTunnel,
    private readonly timeoutMs: number,
  ) {}

  /** What pg's `stream` option takes: a socket that connects through the tunnel. */
  readonly socket = (): TunnelSocket => new TunnelSocket(this);

  /** Whether the SSH connection is up and logged in. */
  get open(): boolean {
    return this.ready !== undefined;
  }

  /** For pg's connect timeout: which hop did not answer in time. */
  timeoutError(cause: Error): PgActionsError {
    const { host, port } = this.ssh;
    return this.ready
      ? new PgActionsError('CONNECTION_TIMEOUT', { message: `No database connection through the SSH host ${host}:${port} within ${this.timeoutMs} ms.`, cause })
      : new PgActionsError('SSH_HOST_UNREACHABLE', { message: `The SSH host ${host}:${port} did not complete the SSH handshake within ${this.timeoutMs} ms.`, cause });
  }

  /** A channel to host:port as the SSH server sees them (typed as a Duplex: public .d.ts files name no ssh2 type). */
  async forward(host: string, port: number): Promise<Duplex> {
    const client = await this.connected();
    return await new Promise<ClientChannel>((resolve, reject) => {
      client.forwardOut('127.0.0.1', 0, host, port, (error, channel) =>
        error ? reject(sshForwardError(error, this.endpoint, { host, port })) : resolve(channel),
      );
    });
  }

  /** Ends the SSH connection; later forwards fail. */
  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    this.ready = undefined;
    const client = await current?.catch(() => undefined);
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (client.destroy(), resolve()), 2000).unref();
      client.once('close', () => (clearTimeout(timer), resolve()));
      client.end();
    });
  }

  /** A little less than the connect timeout, so that a silent SSH host is reported as such, before the pool gives up. */
  private get handshakeMs(): number {
    return Math.round(this.timeoutMs * 0.9);
  }

  private get endpoint() {
    return { host: this.ssh.host, port: this.ssh.port, user: this.ssh.user };
  }

  private connected(): Promise<ssh2.Client> {
    if (this.closed) return Promise.reject(sshClosedError(this.endpoint));
    if (!this.current) {
      const attempt = this.connect();
      this.current = attempt;
      attempt.catch(() => {
        if (this.current === attempt) this.current = undefined;
      });
    }
    return this.current;
  }

  private connect(): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      const expected = this.ssh.hostKeyFingerprint;
      let presented: string | undefined;
      let ready = false;
      client.on('ready', () => {
        ready = true;
        this.ready = client;
        this.fingerprint = presented;
        resolve(client);
      });
      client.on('error', (error) => {
        if (!ready) reject(sshConnectError(error, this.endpoint, { expected, presented }, this.handshakeMs));
        client.destroy();
      });
      client.on('close', () => {
        // Dropped: the channels close with it (their pg clients are discarded); the next connection reconnects.
        if (!ready) reject(sshConnectError(new Error('closed before the SSH handshake completed'), this.endpoint, { expected, presented }, this.timeoutMs));
        if (this.ready === client) {
          this.ready = undefined;
          this.current = undefined;
        }
      });
      const key = sshKeyOf(this.ssh);
      const auth: (PublicKeyAuthMethod | PasswordAuthMethod)[] = [
        ...(key ? [{ type: 'publickey' as const, username: this.ssh.user, key: key as ParsedKey }] : []),
        ...(this.ssh.password !== undefined ? [{ type: 'password' as const, username: this.ssh.user, password: this.ssh.password }] : []),
      ];
      try {
        client.connect({
          host: this.ssh.host,
          port: this.ssh.port,
          username: this.ssh.user,
          authHandler: auth,
          readyTimeout: this.handshakeMs,
          keepaliveInterval: KEEPALIVE_MS,
          keepaliveCountMax: 3,
          hostVerifier: (hostKey: Buffer) => {
            presented = fingerprintOf(hostKey);
            return expected === undefined || presented === `SHA256:${expected}`;
          },
        });
      } catch (error) {
        reject(sshConnectError(error, this.endpoint, { expected, presented }, this.timeoutMs));
      }
    });
  }
}

/**
 * A Duplex that pg (and a CancelRequest) uses like a net.Socket: connect(port, host) opens an
 * SSH channel to host:port and emits 'connect'; bytes pass through the channel unchanged.
 */
export class TunnelSocket extends Duplex {
  private channel?: Duplex;

  constructor(private readonly tunnel: SshTunnel) {
    super();
  }

  connect(port: number, host: string): this {
    this.tunnel.forward(host, port).then(
      (channel) => {
        if (this.destroyed) return void channel.destroy();
        this.channel = channel;
        channel.on('data', (chunk: Buffer) => {
          if (!this.push(chunk)) channel.pause();
        });
        channel.on('end', () => this.push(null));
        channel.on('close', () => this.destroy());
        channel.on('error', (error: Error) => this.destroy(error));
        this.emit('connect');
      },
      (error: unknown) => this.destroy(error as Error),
    );
    return this;
  }

  override _read(): void {
    this.channel?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.channel) this.channel.write(chunk, callback);
    else this.once('connect', () => this.channel!.write(chunk, callback));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.channel?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.channel?.destroy();
    // pg's connect timeout destroys the socket: say which hop did not answer.
    if (!this.channel && error?.message === 'timeout expired' && !(error instanceof PgActionsError)) error = this.tunnel.timeoutError(error);
    // A TLS layer on top destroys this socket when verification fails and reports its error on
    // the next tick: 'close' comes after it, so pg reports the certificate, not a lost connection.
    setImmediate(() => callback(error));
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  // pg refs a checked-out client's socket and unrefs an idle one; the SSH connection's own socket stays referenced until closed.
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
