/** An error of the protocol (`code`, `error`), or one the client makes itself. */
export class ImError extends Error {
  /** The protocol code (400, 401, 429, 503, ...); 0 for the client's own errors. */
  readonly code: number;
  /** A stable snake_case name: the server's `error`, or the client's own (see README). */
  readonly error: string;
  /** How long to wait before the same request can succeed, when the server said. */
  readonly retryAfterMs?: number;
  /** The `cid` of a failed send: send again with it and the message is never stored twice. */
  cid?: string;

  constructor(code: number, error: string, message: string, retryAfterMs?: number) {
    super(message || error);
    this.name = 'ImError';
    this.code = code;
    this.error = error;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

export const disconnectedError = (): ImError =>
  new ImError(503, 'disconnected', 'the connection closed before the answer came');
export const timeoutError = (cmd: string): ImError =>
  new ImError(504, 'timeout', `${cmd} got no answer in time`);
