/**
 * The chat of one session: loads its history, follows a task still running (after a reload),
 * starts and stops tasks, and takes HITL decisions. While no task of this window runs it watches
 * the session for runs started elsewhere (another window, the REST API): a kernel restore shows its
 * progress as it comes, a task is followed as when the session is opened.
 */
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';

import { DSAgentClient } from '../api/client';
import { AgentEvent, readEvents, streamChat } from '../api/stream';
import { HITLResponse, NotebookContext, Session } from '../api/types';
import { ChatState, chatReducer, initialState } from './model';

export interface Chat {
  state: ChatState;
  /** Start a task; `focus` is the notebook cell it is about. */
  send: (message: string, focus?: number, editCells?: boolean) => void;
  stop: () => Promise<void>;
  decide: (decision: HITLResponse) => Promise<void>;
  dismissError: () => void;
  /** Show an event that came another way than the chat stream (a restore's progress). */
  apply: (event: AgentEvent) => void;
}

export function useChat(
  client: DSAgentClient,
  sessionId: string,
  onRoundDone: () => void,
  /** Called as a task starts: the notebook the session works in, if it is open here. */
  notebookContext: (focus?: number) => Promise<NotebookContext | undefined> = async () => undefined
): Chat {
  const [state, dispatch] = useReducer(chatReducer, initialState);
  const [reloads, setReloads] = useState(0);
  const lastEventId = useRef(0);
  lastEventId.current = state.lastEventId;
  const abort = useRef<AbortController | null>(null);
  const idleWatch = useRef<AbortController | null>(null);
  const roundDone = useRef(onRoundDone);
  roundDone.current = onRoundDone;
  const context = useRef(notebookContext);
  context.current = notebookContext;

  const follow = useCallback(
    (message?: string, focus?: number, editCells?: boolean) => {
      // at once, not after the next render: the idle watch must not take this window's own task
      // for one started elsewhere (and reload the session under it)
      idleWatch.current?.abort();
      abort.current?.abort();
      const controller = new AbortController();
      abort.current = controller;
      const start = async () =>
        streamChat({
          client,
          sessionId,
          message,
          notebookContext: message === undefined ? undefined : await context.current(focus),
          editCells,
          signal: controller.signal,
          onEvent: event => {
            dispatch({ type: 'event', event, now: Date.now() });
            if (event.event === 'round_complete' || event.event === 'done') {
              roundDone.current();
            }
          }
        });
      start().catch(error => dispatch({ type: 'failed', message: error.message }));
    },
    [client, sessionId]
  );

  // open: history first, then the running task (if any) from its start, then its pending pause
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      const session: Session = await client.getSession(sessionId);
      const { turns, lastEventId } = await client.turns(sessionId);
      if (cancelled) {
        return;
      }
      const task = session.running_task;
      dispatch({
        type: 'history',
        turns,
        lastEventId,
        runningMessage: task?.message,
        runningRounds: task?.completed_rounds
      });
      if (task) {
        follow();
        const status = await client.hitlStatus(sessionId);
        if (!cancelled) {
          dispatch({ type: 'hitlStatus', status });
        }
      }
    };
    load().catch(error => dispatch({ type: 'failed', message: error.message }));
    return () => {
      cancelled = true;
      abort.current?.abort();
    };
  }, [client, sessionId, follow, reloads]);

  // idle: what happens in the session from elsewhere (the events after the last one shown)
  const idle = state.loaded && !state.running;
  useEffect(() => {
    if (!idle) {
      return;
    }
    const controller = new AbortController();
    idleWatch.current = controller;
    const url = client.url('api', 'sessions', sessionId, 'chat', 'stream');
    const watch = async () => {
      let after = lastEventId.current;
      while (!controller.signal.aborted) {
        let task = false;
        after = Math.max(after, lastEventId.current);
        try {
          // answered at once when nothing runs; streams a run to its end (a restore) or to `done`
          const response = await client.fetch(url, {
            method: 'GET',
            headers: { Accept: 'text/event-stream', 'Last-Event-ID': String(after) },
            signal: controller.signal
          });
          await readEvents(response, event => {
            if (controller.signal.aborted) {
              return; // this window has started a task meanwhile: its own stream shows it
            }
            after = Math.max(after, event.id ?? 0);
            if (event.event === 'restore_progress') {
              dispatch({ type: 'event', event, now: Date.now() });
            } else if (TASK_EVENTS.includes(event.event) && !task) {
              task = true; // a task started elsewhere: shown as on opening the session
              controller.abort();
            }
          });
        } catch {
          // aborted, or the server is away for a moment: look again at the next turn
        }
        if (task) {
          setReloads(n => n + 1);
          return;
        }
        await sleep(IDLE_POLL_MS, controller.signal);
      }
    };
    void watch();
    return () => controller.abort();
  }, [client, sessionId, idle]);

  const send = useCallback(
    (message: string, focus?: number, editCells?: boolean) => {
      dispatch({ type: 'send', message });
      follow(message, focus, editCells);
    },
    [follow]
  );

  const stop = useCallback(async () => {
    try {
      await client.cancel(sessionId);
    } catch (error: any) {
      dispatch({ type: 'failed', message: error.message });
    }
  }, [client, sessionId]);

  const decide = useCallback(
    async (decision: HITLResponse) => {
      await client.respond(sessionId, decision);
    },
    [client, sessionId]
  );

  const dismissError = useCallback(() => dispatch({ type: 'dismissError' }), []);
  const apply = useCallback(
    (event: AgentEvent) => dispatch({ type: 'event', event, now: Date.now() }),
    []
  );

  return { state, send, stop, decide, dismissError, apply };
}

const IDLE_POLL_MS = 2_000;
/** Events only a task sends: one seen while idle is a task started elsewhere. */
const TASK_EVENTS = ['thinking', 'llm_response', 'round_complete', 'done'];

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      window.clearTimeout(timer);
      resolve();
    });
  });
}
