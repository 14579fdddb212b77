/**
 * Node options every long-running `vmbs` process runs with. Node 22+ grows V8's young generation to 16–32 MiB
 * per semi-space, which the idle `vmbs start` (every service in one process) kept as RSS: 196 MB against the 150 MB
 * target, 131 MB with 2 MiB semi-spaces (bench:memory). V8 reads it only at start-up, so it must be on the command
 * line: the shebang of main.ts, `npm start`, the image's ENTRYPOINT and the systemd unit carry the same flag.
 */
export const SERVICE_NODE_FLAGS = ["--max-semi-space-size=2"] as const;
