export type { AgentDeps, McpPort, CycleReport, HealingPort } from './agent.js';
export { OrderDispatch } from './order-dispatch.js';
export { openAgentRuntime, mcpClientOptions, receiptKeysFromConfig, type AgentRuntime, type RuntimeOverrides } from './runtime.js';
export { makeDraft } from './drafts.js';
export { readPreviousExit, type PreviousExit, type StartAlerts } from './previous-exit.js';
export { isoSeconds } from '../common/index.js';
