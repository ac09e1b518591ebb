/**
 * The server package's programmatic entry, for tests and tools that run Jobwire in-process.
 * The process entry is `main.ts`.
 */
export { startJobwire, type JobwireServer } from "./main.js";
export { configFromEnv, defaultServerConfig, type ServerConfig } from "./config.js";
export { createLogger, type Logger } from "./logger.js";
export { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "./db/embedded-postgres.js";
export { CronSchedule } from "./schedules/cron-schedule.js";
export { createApiKey, type ApiKeySpec, type CreatedApiKey } from "./auth/create-api-key.js";
export { accessControl } from "./auth/access-control.js";
export { authorizationTable, ruleFor, type MethodRule } from "./auth/authorization-table.js";
export { roles, type Role } from "./auth/roles.js";
