/** Log capture for tests that assert on what a component logged. */
import { Writable } from 'node:stream';

/** A parsed JSON log record. */
export type LogRecord = Record<string, unknown>;

/**
 * A logger destination that parses each JSON line written to it into `records`, so tests read
 * the structured fields instead of matching text.
 */
export function recordingDestination(): { destination: Writable; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line !== '') records.push(JSON.parse(line) as LogRecord);
      }
      callback();
    },
  });
  return { destination, records };
}
