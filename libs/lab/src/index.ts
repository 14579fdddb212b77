export { waitFor, type WaitForOptions } from "./wait-for.js";
export { startTestNats, startTestRedis, type TestNats, type TestRedis } from "./servers.js";
export { ensureLibvirt, DEFAULT_LIBVIRT_URI } from "./libvirt-daemons.js";
export { createLab, type Lab, type LabOptions, type LabDomain, type CreateDomainOptions } from "./lab.js";
export { imageDigest } from "./disk-digest.js";
export { sweepStaleLabDomains } from "./sweep.js";
export { type GuestWrite } from "./guest-write.js";
export { LAB_DOMAIN_PREFIX, DEFAULT_LAB_IMAGE_DIR } from "./lab-constants.js";
export { ignoredListExcept } from "./ignore-list.js";
