export { configSchema, type Config } from "./config-schema.js";
export { loadConfig, ConfigError, type ConfigProblem } from "./load-config.js";
export { parseWordList, formatWordList } from "./word-list.js";
export { shellQuote, rsyncRemoteShell } from "./shell-words.js";
export { parseSshOptions, sshOptionsWithHostKeyPolicy, type HostKeyMode, type HostKeyPolicy, type SshSettings } from "./ssh-options.js";
export { backupRpo, DEFAULT_RPO_MINUTES } from "./backup-rpo.js";
export { parseDomainPolicies, policyFor, matchingEntry, PolicyFileError, NO_DOMAIN_POLICIES, type DomainPolicies, type EffectivePolicy, type Hook, type PolicyDefaults, type PolicyEntry } from "./domain-policy.js";
export { openPolicySource, noPolicySource, type PolicySource, type PolicySourceOptions } from "./policy-source.js";
export { domainSelection, nameOrGlobMatches, type DomainSelection } from "./domain-selection.js";
