export { startMirror, type MirrorDeps, type MirrorService } from "./mirror-service.js";
export { parseMirrorTarget, parseSshOptions, describeTarget, type MirrorTarget, type SshSettings } from "./mirror-target.js";
export { openMirrorStore, openSftpStore, MirrorStoreError, type MirrorStore } from "./mirror-store.js";
export { rsyncArgs, runRsync, statsBytes, RsyncError } from "./run-rsync.js";
