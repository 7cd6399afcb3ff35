/**
 * The conversation as the panel shows it, built by one reducer from live events and from
 * `/turns`: a round from history and a round streamed live go through the same code.
 */
import {
  ExecutionResult,
  HITLDecision,
  HITLRequest,
  HITLStatus,
  Plan,
  RestoreProgress,
  RoundResult,
  Turn,
  Usage
} from '../api/types';
import { AgentEvent } from '../api/stream';

export interface Execution {
  code: string;
  status: 'running' | 'success' | 'error';
  /** When it started, in this browser (live executions only). */
  startedAt?: number;
  result?: ExecutionResult;
}

export interface UserItem {
  kind: 'user';
  key: string;
  text: string;
}

export interface RoundItem {
  kind: 'round';
  key: string;
  task: number;
  round: number;
  /** The model's text: the deltas so far, then the whole response. */
  text: string;
  executions: Execution[];
  complete: boolean;
  answer: string | null;
  stopReason: string | null;
  usage: Usage | null;
  hitl: HITLDecision[];
  /** Images the model was shown when it wrote this round's reply. */
  imagesSeen: number;
}

export interface ErrorItem {
  kind: 'error';
  key: string;
  message: string;
}

/** A kernel restore: one line that follows its progress. */
export interface RestoreItem {
  kind: 'restore';
  key: string;
  progress: RestoreProgress;
}

export type ChatItem = UserItem | RoundItem | ErrorItem | RestoreItem;

export interface ChatState {
  items: ChatItem[];
  /** The latest plan, shown in the plan panel. */
  plan: Plan | null;
  /** What the agent waits for a human decision on. */
  pending: HITLRequest | null;
  /** Changes with each new pause, so its card starts fresh. */
  pendingKey: number;
  running: boolean;
  /** History is shown; until then the message box waits. */
  loaded: boolean;
  /** Banner text: a refused request or a failed task. */
  error: string | null;
  /** Tasks so far; rounds are numbered from 1 in each. */
  task: number;
  /** The highest event id applied: replays after a reconnect skip what is already shown. */
  lastEventId: number;
}

export const initialState: ChatState = {
  items: [],
  plan: null,
  pending: null,
  pendingKey: 0,
  running: false,
  loaded: false,
  error: null,
  task: 0,
  lastEventId: 0
};

export type ChatAction =
  | {
      type: 'history';
      turns: Turn[];
      /** The last event the history covers: what comes after it is new. */
      lastEventId?: number;
      runningMessage?: string;
      runningRounds?: number;
    }
  | { type: 'send'; message: string }
  | { type: 'event'; event: AgentEvent; now: number }
  | { type: 'hitlStatus'; status: HITLStatus }
  | { type: 'failed'; message: string }
  | { type: 'dismissError' };

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'history':
      return fromHistory(
        action.turns,
        action.runningMessage,
        action.runningRounds,
        action.lastEventId
      );
    case 'send':
      return {
        ...state,
        items: [...state.items, userItem(action.message, state.items.length)],
        task: state.task + 1,
        running: true,
        error: null,
        pending: null
      };
    case 'event':
      return applyEvent(state, action.event, action.now);
    case 'hitlStatus':
      return state.pending || !action.status.awaiting_feedback
        ? state
        : { ...state, pending: requestFromStatus(action.status), pendingKey: state.pendingKey + 1 };
    case 'failed':
      return { ...state, running: false, loaded: true, pending: null, error: action.message };
    case 'dismissError':
      return { ...state, error: null };
  }
}

/** Rounds from `/turns`; the rounds of a running task are left out (its stream replays them). */
function fromHistory(
  turns: Turn[],
  runningMessage?: string,
  runningRounds = 0,
  lastEventId = 0
): ChatState {
  let state: ChatState = { ...initialState, loaded: true };
  const done = runningMessage === undefined ? turns : turns.slice(0, turns.length - runningRounds);
  for (const turn of done) {
    if (turn.restore) {
      state = applyRestore(state, turn.restore);
      continue;
    }
    if (turn.user_message !== null || state.task === 0) {
      state = { ...state, task: state.task + 1 };
      if (turn.user_message !== null) {
        state.items = [...state.items, userItem(turn.user_message, state.items.length)];
      }
    }
    state = completeRound(state, turn);
  }
  if (runningMessage !== undefined) {
    state = chatReducer(state, { type: 'send', message: runningMessage });
  } else {
    state = { ...state, lastEventId }; // (a running task's stream replays it from its start)
  }
  return state;
}

function applyEvent(state: ChatState, event: AgentEvent, now: number): ChatState {
  if (event.id !== null) {
    if (event.id <= state.lastEventId) {
      return state; // already applied before a reconnect
    }
    state = { ...state, lastEventId: event.id };
  }
  const data = event.data ?? {};
  switch (event.event) {
    case 'thinking':
      return updateRound(state, data.round ?? 1, r => r);
    case 'llm_delta':
      return updateRound(state, data.round, r => ({ ...r, text: r.text + data.delta }));
    case 'llm_response':
      return updateRound(state, data.round, r => ({ ...r, text: data.content }));
    case 'plan':
      return { ...state, plan: data };
    case 'hitl_request':
      return { ...state, pending: data, pendingKey: state.pendingKey + 1 };
    case 'hitl_resolved':
      return { ...state, pending: null };
    case 'code_executing':
      return updateRound(state, data.round ?? lastRound(state), r => ({
        ...r,
        executions: [...r.executions, { code: data.code, status: 'running', startedAt: now }]
      }));
    case 'code_result':
      return updateRound(state, lastRound(state), r => finishExecution(r, data));
    case 'round_complete':
      return completeRound(state, data);
    case 'error':
      return {
        ...state,
        error: data.error,
        items: [
          ...state.items,
          { kind: 'error', key: `e${state.items.length}`, message: data.error }
        ]
      };
    case 'done':
      return { ...state, running: false, pending: null };
    case 'restore_progress':
      return applyRestore(state, data);
    default:
      return state;
  }
}

export const RESTORE_ENDS = ['completed', 'failed', 'cancelled'];

/** A restore's step: updates the restore under way, or starts a new line. */
function applyRestore(state: ChatState, progress: RestoreProgress): ChatState {
  const items = [...state.items];
  const last = items[items.length - 1];
  if (last?.kind === 'restore' && !RESTORE_ENDS.includes(last.progress.status)) {
    const skipped = progress.skipped ?? last.progress.skipped;
    items[items.length - 1] = { ...last, progress: { ...progress, skipped } };
  } else {
    items.push({ kind: 'restore', key: `k${items.length}`, progress });
  }
  return { ...state, items };
}

/** What a restore line says. */
export function restoreText(progress: RestoreProgress): string {
  const skipped = progress.skipped?.length
    ? ` (${progress.skipped.length} cell(s) not re-run: they only wrote files or ran long)`
    : '';
  switch (progress.status) {
    case 'started':
      return `Restoring the kernel: ${progress.total} cell(s) to replay${skipped}…`;
    case 'running':
      return `Restoring the kernel: cell ${progress.cell} of ${progress.total}…`;
    case 'completed':
      return `Kernel restored: ${progress.replayed} of ${progress.total} cell(s) replayed${skipped}.`;
    case 'failed':
      return `Kernel restore failed${progress.cell ? ` at cell ${progress.cell} of ${progress.total}` : ''}: ${progress.error ?? 'unknown error'}`;
    case 'cancelled':
      return `Kernel restore cancelled after ${progress.replayed} of ${progress.total} cell(s).`;
  }
}

function userItem(text: string, index: number): UserItem {
  return { kind: 'user', key: `u${index}`, text };
}

function lastRound(state: ChatState): number {
  const last = state.items[state.items.length - 1];
  return last?.kind === 'round' && last.task === state.task ? last.round : 1;
}

/** Apply `change` to round `round` of the current task, creating the round when it is new. */
function updateRound(
  state: ChatState,
  round: number,
  change: (item: RoundItem) => RoundItem
): ChatState {
  const index = state.items.findIndex(
    i => i.kind === 'round' && i.task === state.task && i.round === round
  );
  if (index < 0) {
    const item: RoundItem = {
      kind: 'round',
      key: `r${state.task}.${round}`,
      task: state.task,
      round,
      text: '',
      executions: [],
      complete: false,
      answer: null,
      stopReason: null,
      usage: null,
      hitl: [],
      imagesSeen: 0
    };
    return { ...state, items: [...state.items, change(item)] };
  }
  const items = [...state.items];
  items[index] = change(items[index] as RoundItem);
  return { ...state, items };
}

function finishExecution(round: RoundItem, result: ExecutionResult): RoundItem {
  const executions = [...round.executions];
  const last = executions[executions.length - 1];
  const status = result.success ? 'success' : 'error';
  if (last && !last.result) {
    executions[executions.length - 1] = { ...last, status, result };
  }
  return { ...round, executions };
}

/** A finished round (live `round_complete` or a turn of history) merged into its item. */
function completeRound(state: ChatState, result: RoundResult): ChatState {
  const next = updateRound(state, result.round, r => {
    let executions = r.executions;
    if (executions.length === 0 && result.code && result.execution_result) {
      const status = result.execution_result.success ? 'success' : 'error';
      executions = [{ code: result.code, status, result: result.execution_result }];
    } else if (executions.length && !executions[executions.length - 1].result) {
      // cancelled mid-cell: the result (if any) only comes with the round
      const last = executions[executions.length - 1];
      const resultOrError = result.execution_result ?? undefined;
      executions = [
        ...executions.slice(0, -1),
        { ...last, status: resultOrError?.success ? 'success' : 'error', result: resultOrError }
      ];
    }
    return {
      ...r,
      text: result.content,
      executions,
      complete: true,
      answer: result.answer,
      stopReason: result.stop_reason ?? null,
      usage: result.usage ?? null,
      hitl: result.hitl ?? [],
      imagesSeen: result.images_seen ?? 0
    };
  });
  return { ...next, plan: result.plan ?? next.plan };
}

function requestFromStatus(status: HITLStatus): HITLRequest {
  const plan = status.pending_plan
    ? {
        ...status.pending_plan,
        total_steps: status.pending_plan.steps.length,
        completed_steps: status.pending_plan.steps.filter(s => s.completed).length,
        is_complete: false
      }
    : null;
  return {
    request_type: status.awaiting_type ?? 'plan',
    plan,
    code: status.pending_code,
    error: status.pending_error,
    answer: status.pending_answer,
    message: status.pending_message ?? undefined
  };
}

/** Tokens and cost of every finished round. */
export function totalUsage(items: ChatItem[]): Usage {
  const total: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost_usd: null };
  for (const item of items) {
    if (item.kind === 'round' && item.usage) {
      total.prompt_tokens += item.usage.prompt_tokens;
      total.completion_tokens += item.usage.completion_tokens;
      total.total_tokens += item.usage.total_tokens;
      if (item.usage.cost_usd !== null && item.usage.cost_usd !== undefined) {
        total.cost_usd = (total.cost_usd ?? 0) + item.usage.cost_usd;
      }
    }
  }
  return total;
}
