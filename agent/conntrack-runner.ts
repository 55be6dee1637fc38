/**
 * Runs the `conntrack -D` deletions that {@link staleUdpConntrackEntries} plans after a sync.
 * Deleting nothing is the common case (the flow was never used), and the tool reports it with
 * exit code 1 and "0 flow entries have been deleted": that is not a failure.
 */
import type { CommandRunner } from './iptables/proxier.ts';
import type { ConntrackDeletion } from './state/conntrack.ts';

/** Outcome of running a batch of deletions. */
export interface ConntrackResult {
  /** Entries the tool reported deleted, summed over the calls. */
  readonly deleted: number;
  /** Calls that failed for another reason than "nothing matched", with the tool's message. */
  readonly errors: readonly string[];
}

const DELETED_PATTERN = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/;

/** Runs each deletion with the `conntrack` tool (one call each: the filters differ per call). */
export async function runConntrackDeletions(
  run: CommandRunner,
  deletions: readonly ConntrackDeletion[],
): Promise<ConntrackResult> {
  let deleted = 0;
  const errors: string[] = [];
  for (const args of deletions) {
    const result = await run('conntrack', args);
    const output = `${result.stdout}\n${result.stderr}`;
    const count = DELETED_PATTERN.exec(output);
    if (count !== null) deleted += Number(count[1]);
    if (result.code === 0 || (result.code === 1 && count !== null && count[1] === '0')) continue;
    errors.push(`conntrack ${args.join(' ')} exited with ${result.code}: ${result.stderr.trim()}`);
  }
  return { deleted, errors };
}
