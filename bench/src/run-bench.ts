/**
 * Runs a bench's `main` until done: the first SIGINT/SIGTERM aborts its signal so it can clean up (lab domains,
 * servers), a second one quits at once. Exit 0 done, 1 failed, 130 interrupted.
 */
export function runBench(name: string, main: (stop: AbortSignal) => Promise<void>): void {
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.signal.aborted) process.exit(130); // a second signal: give up on cleaning up
    process.stderr.write(`\n${sig}: stopping and cleaning up (send again to quit at once)\n`);
    stop.abort(new Error(`interrupted by ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  main(stop.signal).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(stop.signal.aborted ? 130 : 1);
    },
  );
}
