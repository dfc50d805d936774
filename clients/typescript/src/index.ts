/**
 * Flywheel's TypeScript client: `PromptOptimizer` (AutoDev's interface), the request's dataset
 * types, the errors it throws, and the generated OpenAPI types for everything else.
 *
 * @module
 */

export {
  type DatasetExport,
  type PromptOptimizationDataset,
  type PromptOptimizationRow,
  parseExport,
} from "./dataset.ts";
export { FlywheelClientError, FlywheelError, FlywheelTransportError, type ErrorDetail } from "./errors.ts";
export type { components, operations, paths } from "./generated/openapi.ts";
export { type ClientOptions, type RetryOptions, settings, typedClient } from "./http.ts";
export * from "./optimizer.ts";
