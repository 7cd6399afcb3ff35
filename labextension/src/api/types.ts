/**
 * Bodies of the DSAgent HTTP API, as served by `dsagent_ext/models.py`.
 */
import * as nbformat from '@jupyterlab/nbformat';

export type HITLMode = 'none' | 'plan_only' | 'on_error' | 'plan_and_answer' | 'full';

/** From least to most human oversight: the server's `min_hitl_mode` follows this order. */
export const HITL_MODES: HITLMode[] = ['none', 'on_error', 'plan_only', 'plan_and_answer', 'full'];

export type SessionStatus = 'active' | 'paused' | 'completed' | 'error' | 'archived';

export interface RunningTask {
  message: string;
  completed_rounds: number;
}

export interface Session {
  id: string;
  name: string | null;
  status: SessionStatus;
  created_at: string;
  updated_at: string;
  message_count: number;
  workspace_path: string | null;
  model: string;
  hitl_mode: HITLMode;
  missing_api_key: string | null;
  running_task?: RunningTask | null;
  /** The notebook the session works in (relative to the server root), or null: its own workspace. */
  notebook_path?: string | null;
  kernel_id?: string | null;
  /** Whether plans and answers become markdown cells in the attached notebook. */
  notebook_markdown_cells?: boolean;
}

export interface SessionUpdate {
  name?: string;
  status?: SessionStatus;
  model?: string;
  hitl_mode?: HITLMode;
  /** Attach to a notebook; null detaches. */
  notebook_path?: string | null;
}

export interface ImageOutput {
  format: string;
  mime?: string;
  data: string;
}

/** One output of a cell, in nbformat v4 form (`stream`, `execute_result`, `display_data`, `error`). */
export type NotebookOutput = nbformat.IOutput;

export interface ExecutionResult {
  /** The outputs in order, as a notebook would store them. */
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  stdout: string;
  stderr: string;
  error: string | null;
  images: ImageOutput[];
  success: boolean;
  execution_time_ms?: number | null;
  truncated?: boolean;
}

export interface PlanStep {
  number: number;
  description: string;
  completed: boolean;
}

export interface Plan {
  steps: PlanStep[];
  raw_text?: string;
  total_steps: number;
  completed_steps: number;
  is_complete: boolean;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd?: number | null;
}

export type HITLRequestType = 'plan' | 'code' | 'error' | 'answer';

export type HITLAction = 'approve' | 'reject' | 'modify' | 'retry' | 'skip' | 'feedback';

export interface HITLDecision {
  request_type?: HITLRequestType;
  action: HITLAction;
  message?: string | null;
  by?: string;
  timed_out?: boolean;
}

/** The `round_complete` event, and one entry of `/turns`. */
export interface RoundResult {
  round: number;
  content: string;
  code: string | null;
  execution_result: ExecutionResult | null;
  plan: Plan | null;
  has_answer: boolean;
  answer: string | null;
  thinking: string | null;
  is_complete: boolean;
  usage?: Usage | null;
  stop_reason?: string | null;
  hitl?: HITLDecision[];
  /** Images the model was shown with this round's request (figures of the previous cell, notebook images). */
  images_seen?: number;
}

export interface Turn extends RoundResult {
  timestamp: string;
  user_message: string | null;
  /** Set on a kernel restore's entry (round 0). */
  restore?: RestoreProgress | null;
}

export interface KernelVariable {
  name: string;
  type: string;
  value_preview: string | null;
}

/** `GET .../kernel`, as far as the panel reads it. */
export interface KernelState {
  variables: KernelVariable[];
  is_running: boolean;
  /** The history was built in a kernel that is gone: a restore replays it. */
  is_new?: boolean;
  /** The kernel lacks state the history built (new, or used after a kernel that is gone). */
  lacks_state?: boolean;
}

/** The data of a `restore_progress` event. */
export interface RestoreProgress {
  status: 'started' | 'running' | 'completed' | 'failed' | 'cancelled';
  auto?: boolean;
  total: number;
  cell: number | null;
  replayed: number;
  code: string | null;
  error: string | null;
  skipped?: { code: string; reason: 'writes_files' | 'slow' }[];
  kernel?: KernelState | null;
}

export interface TurnsPage {
  turns: Turn[];
  total: number;
  has_more: boolean;
  /** The session's last logged event when the page was read (absent from older servers). */
  last_event_id?: number;
}

/** The `hitl_request` event. */
export interface HITLRequest {
  request_type: HITLRequestType;
  /** What the server asks the human (absent from older servers). */
  message?: string;
  plan: Plan | null;
  code: string | null;
  error: string | null;
  answer: string | null;
  timeout?: number;
}

export interface HITLStatus {
  enabled: boolean;
  mode: HITLMode;
  awaiting_feedback: boolean;
  awaiting_type: HITLRequestType | null;
  pending_plan: { raw_text: string; steps: PlanStep[] } | null;
  pending_code: string | null;
  pending_error: string | null;
  pending_answer: string | null;
  /** The pause's prompt, as its `hitl_request` words it (absent from older servers). */
  pending_message?: string | null;
}

export interface HITLResponse {
  action: HITLAction;
  message?: string;
  modified_plan?: string;
  modified_code?: string;
}

export type ArtifactType = 'image' | 'document' | 'data' | 'model' | 'code' | 'notebook' | 'other';

export interface Artifact {
  name: string;
  size: number;
  modified: string;
  type: ArtifactType;
  url: string;
}

export interface StoredFile {
  name: string;
  size: number;
  modified: string;
  category: 'data' | 'artifacts' | 'notebooks';
}

/** A model the caller may pick (`GET /api/models`). */
export interface CatalogueModel {
  id: string;
  provider: string;
  label: string;
  available: boolean;
  missing_api_key: string | null;
  default: boolean;
  source: 'admin' | 'provider' | 'api_base';
  context_window: number | null;
  input_usd_per_million: number | null;
  output_usd_per_million: number | null;
}

export interface ModelCatalogue {
  models: CatalogueModel[];
  default_model: string;
  warning: string | null;
}

export interface Spent {
  cost_usd: number;
  tokens: number;
  unpriced_tokens: number;
}

/** The admin's policy and the caller's spending (`GET /api/policy`). */
export interface Policy {
  allowed_models: string[];
  blocked_models: string[];
  min_hitl_mode: HITLMode;
  hitl_modes: HITLMode[];
  default_model: string;
  default_hitl_mode: HITLMode;
  limits: {
    max_tokens_per_task: number | null;
    max_cost_per_session: number | null;
    max_cost_per_user_per_day: number | null;
  };
  user: string;
  day: string;
  spent_today: Spent;
  remaining_today_usd: number | null;
  session_spent: Spent | null;
}

/** The open notebook as the model sees it: the live cells, so unsaved edits count. */
export interface NotebookContext {
  cells: {
    cell_type: 'code' | 'markdown' | 'raw';
    source: string;
    id?: string;
    execution_count?: number | null;
    outputs?: NotebookOutput[];
  }[];
  active_cell_index?: number;
  selected_cell_indices?: number[];
}

export interface NotebookClaim {
  client_id: string;
  expires_in: number;
  written_through: number | null;
}
