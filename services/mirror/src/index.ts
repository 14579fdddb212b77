export { startMirror, type MirrorDeps, type MirrorService } from "./mirror-service.js";
export { parseMirrorTarget, parseSshOptions, rsyncSshOptions, describeTarget, type MirrorTarget, type SshSettings } from "./mirror-target.js";
export { HostKeyError, type HostKeyPolicy } from "./known-hosts.js";
export { localMirrorStore, openSftpStore, MirrorStoreError, type MirrorStore } from "./mirror-store.js";
export { rcloneStore, rcloneCopy } from "./rclone.js";
export { rsyncArgs, runRsync, statsBytes, RsyncError } from "./run-rsync.js";
