/**
 * The chat of one session: loads its history, follows a task still running (after a reload),
 * starts and stops tasks, and takes HITL decisions.
 */
import { useCallback, useEffect, useReducer, useRef } from 'react';

import { DSAgentClient } from '../api/client';
import { AgentEvent, streamChat } from '../api/stream';
import { HITLResponse, NotebookContext, Session } from '../api/types';
import { ChatState, chatReducer, initialState } from './model';

export interface Chat {
  state: ChatState;
  /** Start a task; `focus` is the notebook cell it is about. */
  send: (message: string, focus?: number) => void;
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
  notebookContext: (focus?: number) => NotebookContext | undefined = () => undefined
): Chat {
  const [state, dispatch] = useReducer(chatReducer, initialState);
  const abort = useRef<AbortController | null>(null);
  const roundDone = useRef(onRoundDone);
  roundDone.current = onRoundDone;
  const context = useRef(notebookContext);
  context.current = notebookContext;

  const follow = useCallback(
    (message?: string, focus?: number) => {
      abort.current?.abort();
      const controller = new AbortController();
      abort.current = controller;
      streamChat({
        client,
        sessionId,
        message,
        notebookContext: message === undefined ? undefined : context.current(focus),
        signal: controller.signal,
        onEvent: event => {
          dispatch({ type: 'event', event, now: Date.now() });
          if (event.event === 'round_complete' || event.event === 'done') {
            roundDone.current();
          }
        }
      }).catch(error => dispatch({ type: 'failed', message: error.message }));
    },
    [client, sessionId]
  );

  // open: history first, then the running task (if any) from its start, then its pending pause
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      const session: Session = await client.getSession(sessionId);
      const turns = await client.turns(sessionId);
      if (cancelled) {
        return;
      }
      const task = session.running_task;
      dispatch({
        type: 'history',
        turns,
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
  }, [client, sessionId, follow]);

  const send = useCallback(
    (message: string, focus?: number) => {
      dispatch({ type: 'send', message });
      follow(message, focus);
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
