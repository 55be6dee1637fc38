import winston from 'winston';

/** The winston logger type, re-exported so callers need not import winston themselves. */
export type Logger = winston.Logger;

/**
 * Log levels accepted by {@link createLogger}, most to least severe, plus `silent`, which turns
 * logging off (tests, benchmarks).
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Environment variable that sets the level when no flag does. */
export const LOG_LEVEL_ENV = 'PORTICO_LOG_LEVEL';

/** Level used when neither the flag nor {@link LOG_LEVEL_ENV} says otherwise. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/** Thrown for a log level that is not one of {@link LOG_LEVELS}. */
export class InvalidLogLevelError extends Error {
  /**
   * @param source where the value came from, a flag (`--log-level`) or an environment variable
   * @param value the rejected value
   */
  constructor(source: string, value: string) {
    const allowed = LOG_LEVELS.map((level) => `"${level}"`).join(', ');
    super(`${source}: Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed}`);
    this.name = 'InvalidLogLevelError';
  }
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Decides the log level: the flag value if given, else {@link LOG_LEVEL_ENV}, else
 * {@link DEFAULT_LOG_LEVEL}. Level names are case-insensitive. A bad value is an error rather
 * than a silent fallback, because an operator who asked for `debug` and got `info` would chase
 * the missing lines in the wrong place.
 */
export function resolveLogLevel(flagValue?: string, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const [source, raw] =
    flagValue !== undefined && flagValue !== ''
      ? ['--log-level', flagValue]
      : [LOG_LEVEL_ENV, env[LOG_LEVEL_ENV] ?? ''];
  if (raw === '') return DEFAULT_LOG_LEVEL;
  const level = raw.toLowerCase();
  if (!isLogLevel(level)) throw new InvalidLogLevelError(source, raw);
  return level;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The `--log-level` flag value; see {@link resolveLogLevel} for the fallbacks. */
  level?: string;
  /**
   * Where the JSON lines go; standard output when absent. Tests pass a stream they read back,
   * so they can assert on log records without printing them.
   */
  destination?: NodeJS.WritableStream;
  /** Fields put on every record of this logger and its children, such as `component`. */
  fields?: Record<string, unknown>;
}

/**
 * Creates the process logger: one JSON object per line with `level`, `message`, `timestamp` and
 * any fields, which is what log collectors in a cluster parse without configuration.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = resolveLogLevel(options.level);
  const destination = options.destination ?? process.stdout;
  return winston.createLogger({
    level: level === 'silent' ? DEFAULT_LOG_LEVEL : level,
    silent: level === 'silent',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: options.fields,
    transports: [new winston.transports.Stream({ stream: destination })],
  });
}

/** Returns a child of `logger` whose records carry `controller: controllerName`. */
export function controllerLogger(logger: Logger, controllerName: string): Logger {
  return logger.child({ controller: controllerName });
}

/**
 * Returns a child of `logger` whose records carry `key` (the `namespace/name` of the object being
 * reconciled), so every line of one reconcile can be found with a single filter.
 */
export function keyLogger(logger: Logger, key: string): Logger {
  return logger.child({ key });
}

/** Log fields that describe an error; see {@link errorFields}. */
export interface ErrorFields {
  /** The error message (or the thrown value as text when it was not an Error). */
  error: string;
  /** The stack trace, when the thrown value had one. */
  stack?: string;
}

/**
 * Turns a caught value into log fields. Passing an Error object straight into winston's JSON
 * format loses its message and stack, because those are not enumerable properties.
 */
export function errorFields(caught: unknown): ErrorFields {
  if (caught instanceof Error) {
    return caught.stack === undefined
      ? { error: caught.message }
      : { error: caught.message, stack: caught.stack };
  }
  return { error: String(caught) };
}
