/**
 * The chat event stream: Server-Sent Events read with `fetch` (through `ServerConnection`, so
 * POST bodies, the token and XSRF work; `EventSource` can do neither) and `eventsource-parser`.
 * A stream that drops before `done` is resumed with `Last-Event-ID`.
 */
import { createParser } from 'eventsource-parser';

import { ApiError, DSAgentClient } from './client';
import { NotebookContext } from './types';

export interface AgentEvent {
  event: string;
  /** The event's sequence number in the session log; null for `llm_delta`. */
  id: number | null;
  data: any;
}

export interface StreamOptions {
  client: DSAgentClient;
  sessionId: string;
  /** Start a task with this message; without it, follow the session's latest task. */
  message?: string;
  /** The open notebook the session works in, sent with the message. */
  notebookContext?: NotebookContext;
  /** False: the agent may only add cells to the notebook, not rewrite one (an explanation). */
  editCells?: boolean;
  onEvent: (event: AgentEvent) => void;
  signal: AbortSignal;
}

const MAX_RECONNECTS = 5;

/** Resolves after `done`, or when aborted; rejects when the server refuses or stays unreachable. */
export async function streamChat(options: StreamOptions): Promise<void> {
  const { client, sessionId, message, notebookContext, editCells, onEvent, signal } = options;
  const url = client.url('api', 'sessions', sessionId, 'chat', 'stream');
  let lastId: number | null = null;
  let finished = false;
  const handle = (event: AgentEvent) => {
    if (event.id !== null) {
      lastId = event.id;
    }
    finished ||= event.event === 'done';
    onEvent(event);
  };

  let first = true;
  for (let failures = 0; !signal.aborted; failures++) {
    const resume = !first || message === undefined;
    first = false;
    const seen: number | null = lastId;
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (resume && lastId !== null) {
      headers['Last-Event-ID'] = String(lastId);
    }
    try {
      const response = await client.fetch(url, {
        method: resume ? 'GET' : 'POST',
        body: resume
          ? undefined
          : JSON.stringify({
              message,
              notebook_context: notebookContext,
              edit_cells: editCells ?? true
            }),
        headers,
        signal
      });
      await readEvents(response, handle);
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      // a refusal (400 no key, 409 busy, 404) is final; a network error is worth a retry
      if (error instanceof ApiError || failures >= MAX_RECONNECTS) {
        throw error;
      }
    }
    if (finished || signal.aborted) {
      return;
    }
    if (lastId !== seen) {
      failures = 0; // it made progress: only consecutive empty reconnects count
    } else if (failures >= MAX_RECONNECTS) {
      throw new Error('The agent stream ended before the task finished');
    }
    await sleep(Math.min(250 * 2 ** failures, 4000), signal);
  }
}

/**
 * Restore the session's kernel: its `restore_progress` events until the one that ends it. Not
 * resumed when the connection drops: the restore goes on and its end is in `/turns`.
 */
export async function streamRestore(
  client: DSAgentClient,
  sessionId: string,
  onEvent: (event: AgentEvent) => void,
  signal: AbortSignal
): Promise<void> {
  const url = client.url('api', 'sessions', sessionId, 'kernel', 'restore');
  const response = await client.fetch(url, {
    method: 'POST',
    body: '{}',
    headers: { Accept: 'text/event-stream' },
    signal
  });
  await readEvents(response, onEvent);
}

export async function readEvents(
  response: Response,
  onEvent: (event: AgentEvent) => void
): Promise<void> {
  const parser = createParser({
    onEvent: message => {
      onEvent({
        event: message.event ?? 'message',
        id: message.id ? Number(message.id) : null,
        data: JSON.parse(message.data)
      });
    }
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    parser.feed(value);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
