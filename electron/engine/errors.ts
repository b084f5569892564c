/**
 * One error class for everything the engine refuses or fails at. Callers branch on
 * `code`, never on message text; messages say what was wrong and what to do next.
 */
export type ErrorCode =
  | 'E_ARG' // an argument of the wrong type, size or range
  | 'E_NATIVE_LOAD' // the compute addon could not be loaded
  | 'E_NATIVE_ALLOC'
  | 'E_NATIVE_DEVICE'
  | 'E_NATIVE'
  | 'E_BACKEND_UNAVAILABLE'
  | 'E_CANCELLED'
  | 'E_NONFINITE'
  | 'E_BUSY'
  | 'E_DISPOSED'
  | 'E_NOT_FOUND'
  | 'E_IMPORT' // a data set could not be imported
  | 'E_MODEL' // an ONNX model does not fit its description
  | 'E_DB'
  | 'E_DOWNLOAD'
  | 'E_CHECKSUM'
  | 'E_EXPORT'
  | 'E_EXISTS' // a file of that name exists and was not replaced (pass --force to replace it)
  | 'E_OUT_OF_MEMORY' // a job's worker ran out of its heap and was stopped
  | 'E_WORKER' // a job's worker died before it finished
  | 'E_TIMEOUT' // a job ran past its kind's time limit and was stopped
  | 'E_LEAK' // the request would let test images into training (an Ω trained on them)
  | 'E_INTERNAL' // a bug: anything that is not one of the above
  // Raised by the front ends, not the engine:
  | 'E_USAGE' // the CLI's words were off
  | 'E_CHANNEL' // an IPC channel that is not in the contract
  | 'E_TOKEN' // web mode: a missing or wrong token
  | 'E_SENDER' // Electron: IPC from a frame other than the workbench window
  | 'E_CONNECTION'; // the renderer could not reach the server

export class EmbaugError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'EmbaugError';
    this.code = code;
    this.details = details;
  }
}

/**
 * The one mapping from anything thrown to `{ code, message }`, used by the IPC handlers, the
 * job worker and the CLI alike: the engine's own errors keep their code, argument errors
 * (TypeError, RangeError from the validators) are E_ARG, anything else is E_INTERNAL.
 */
export function errorInfo(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof EmbaugError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: err instanceof TypeError || err instanceof RangeError ? 'E_ARG' : 'E_INTERNAL', message };
}

/** Native errors carry a `code` property set by the addon; keep it, and the message. */
export function fromNative(err: unknown): EmbaugError {
  if (err instanceof EmbaugError) return err;
  const e = err as { code?: string; message?: string; history?: unknown };
  const code = (typeof e?.code === 'string' ? e.code : 'E_NATIVE') as ErrorCode;
  return new EmbaugError(code, e?.message ?? String(err), e?.history);
}
