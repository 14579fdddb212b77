# One image for every service; the service is chosen by the command:
#   docker run IMAGE agent | scheduler | start | backup --domain NAME ...
# Build from the repository root: docker build -t vm-babysitter .

# --- Stage 1: only the npm manifests -----------------------------------------------------------------------------------
# Copies package.json + package-lock.json of the root and of every workspace in the build context (libs/*, services/*,
# cli; .dockerignore leaves out the test-only workspaces libs/lab and bench), keeping their paths, and nothing else.
# `COPY libs/*/package.json` would flatten the paths, and listing each workspace by hand breaks `npm ci` whenever a
# workspace is added. Because the COPY --from below is cached by file content, `npm ci` re-runs only when a manifest
# changes, not on every source edit.
FROM node:24-bookworm-slim AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json ! -name package-lock.json -delete \
 && find . -mindepth 1 -type d -empty -delete

# --- Stage 2: the image ----------------------------------------------------------------------------------------------
FROM node:24-bookworm-slim

# virtnbdbackup/virtnbdrestore: the backup engine; python3-libvirt: the agent's libvirt connection (libs/virt/bridge;
# it talks to the HOST's libvirtd through the bind-mounted /run/libvirt socket); libvirt-clients: virsh, for an admin
# inside the container; qemu-utils: qemu-img (bitmap checks); rsync + openssh-client + rclone: mirroring;
# nats-server + redis-server: what `vmbs start` runs itself when NATS_URL / REDIS_URL are unset (one container alone);
# nbdkit + nbdkit-plugin-python: instant recovery, which serves a chain read-only to a VM (libs/virt/nbdkit).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      virtnbdbackup python3-libvirt libvirt-clients qemu-utils rsync openssh-client rclone ca-certificates \
      nats-server redis-server nbdkit nbdkit-plugin-python \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY --from=manifests /src/ ./
RUN npm ci --no-audit --no-fund

COPY . .
# Local tsc (not `npx tsc`, which could fetch the unrelated "tsc" package). Builds the cli project and the product
# projects it references (the root tsconfig.json, which adds the test projects, the lab and bench, is not in the
# context); then drop devDependencies.
RUN ./node_modules/.bin/tsc -b cli \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

ENV NODE_ENV=production

# VMBS_STATE_DIR (its default): the agent's event outbox and command journal, the mirror's outbox, and for
# `vmbs start` its nats-server's store and bus credentials. A volume, so a recreated container keeps them.
VOLUME ["/var/lib/vm-babysitter"]

# NATS answers with the container's credential (`vmbs healthcheck`; compose adds --agent / --status-page where they apply).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "/app/cli/dist/main.js", "healthcheck"]

# --max-semi-space-size: see cli/src/node-flags.ts (the same flag as the shebang of vmbs and npm start).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/cli/dist/main.js"]
CMD ["agent"]
