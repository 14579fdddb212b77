export { startHttpReceiver, type HttpReceiver, type ReceivedRequest } from "./http-receiver.js";
