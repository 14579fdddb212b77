import type { StreamConfig } from "@nats-io/jetstream";

/**
 * An existing stream (or a bucket's) with another replica count than asked for (VMBS_STREAM_REPLICAS). Set-up
 * neither recreates nor rescales it on its own: it holds the history, and a rescale is the operator's decision.
 */
export class StreamReplicasError extends Error {
  constructor(readonly stream: string, readonly actual: number, readonly wanted: number) {
    super(
      `stream ${stream} has ${actual} replica(s) but VMBS_STREAM_REPLICAS is ${wanted}: set-up does not change an existing ` +
        `stream — set VMBS_STREAM_REPLICAS=${actual}, or rescale the stream (a stream update with num_replicas ${wanted}, ` +
        `e.g. nats stream edit ${stream} --replicas ${wanted}) and run set-up again`,
    );
    this.name = "StreamReplicasError";
  }
}

/** Throws {@link StreamReplicasError} when `wanted` is given and `existing` has another count. */
export function assertReplicas(existing: StreamConfig, wanted: number | undefined): void {
  if (wanted !== undefined && existing.num_replicas !== wanted) throw new StreamReplicasError(existing.name, existing.num_replicas, wanted);
}
