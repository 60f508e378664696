/**
 * A mistake in what the user gave (flags, a config file): the CLI prints its message as
 * one line and exits with status 2, without a stack trace.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
