import { schedule } from "node-cron";
import type { Config } from "@vmbs/config";
import { parseRotationSettings, rotateLogFile, type Logger } from "@vmbs/logger";

/**
 * Rotates LOGFILE_PATH (and SCHEDULE_LOGFILE_PATH when something writes it) at LOGROTATE_SCHEDULE with the
 * LOGROTATE_SETTINGS directives, in-process: no logrotate binary or cron daemon is needed.
 */
export function startLogRotation(config: Config, logger: Logger, reopenLog: () => void): () => Promise<void> {
  const settings = parseRotationSettings(config.LOGROTATE_SETTINGS);
  const files: [string, () => void][] = [
    [config.LOGFILE_PATH, reopenLog],
    [config.SCHEDULE_LOGFILE_PATH, () => undefined],
  ];
  const task = schedule(
    config.LOGROTATE_SCHEDULE ?? "@daily",
    async () => {
      for (const [file, reopen] of files) {
        const rotated = await rotateLogFile(file, settings, reopen).catch((err: unknown) => {
          logger.warn({ err, file }, "log rotation failed");
          return undefined;
        });
        if (rotated) logger.info({ file, rotated }, "log rotated");
      }
    },
    { timezone: config.TZ, name: "log-rotation", noOverlap: true },
  );
  return async () => {
    await task.destroy();
  };
}
