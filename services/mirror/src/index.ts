export { startMirror, type MirrorDeps, type MirrorHandle } from "./mirror-service.js";
export { parseMirrorTarget, describeTarget, type MirrorTarget } from "./mirror-target.js";
export { HostKeyError } from "./known-hosts.js";
export { localMirrorStore, openSftpStore, MirrorStoreError, type MirrorStore } from "./mirror-store.js";
export { rcloneStore, rcloneCopy } from "./rclone.js";
export { rsyncArgs, runRsync, statsBytes, RsyncError } from "./run-rsync.js";
