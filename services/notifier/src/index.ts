export { startNotifier, type NotifierDeps, type NotifierHandle } from "./notifier.js";
export { renderEvent, type Notification } from "./render-event.js";
export { createSender, SendError, type Sender, type SendDeps } from "./send-notification.js";
export { redisOptions } from "./delivery-queue.js";
export { matchesFilter, globMatch } from "./match-target.js";
export { checkRedis, RedisUnavailableError } from "./check-redis.js";
export { startRedisServer, LocalRedisServerError, type RunningRedisServer } from "./redis-server.js";
