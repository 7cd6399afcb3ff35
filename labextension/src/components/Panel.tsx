import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { Session } from '../api/types';
import { PanelServices, ServicesContext, useServices } from '../context';
import { Ask } from '../notebook/commands';
import { CurrentNotebook } from '../notebook/sessions';
import { ChatView } from './ChatView';
import { AdminContext, SpendingFooter, useAdminState } from './Policy';
import { NotebookOffer } from './NotebookBar';
import { SessionList } from './SessionList';

// the open session survives a page reload, per server (base URL)
const OPEN_SESSION_KEY = 'dsagent-ext:open-session';

/** The sidebar: the session list, or the chat of the open session. */
function Panel(): JSX.Element {
  const { client, notebooks, asks } = useServices();
  const storageKey = `${OPEN_SESSION_KEY}:${client.settings.baseUrl}`;
  const [sessions, setSessions] = useState<Session[]>([]);
  const [openId, setOpenId] = useState<string | null>(() => localStorage.getItem(storageKey));
  const [error, setError] = useState<string | null>(null);
  const admin = useAdminState(client);
  // a notebook in front of the user that no session works in yet
  const [offer, setOffer] = useState<string | null>(null);
  const [ask, setAsk] = useState<Ask | null>(null);

  // sessions this panel added: a listing that was under way meanwhile must not drop them
  const added = useRef<Session[]>([]);

  const refresh = useCallback(async () => {
    const since = added.current.length;
    try {
      const listed = (await client.listSessions()).sessions;
      const newer = added.current.slice(since).filter(s => !listed.some(l => l.id === s.id));
      setSessions([...newer, ...listed]);
      setError(null);
    } catch (e: any) {
      setError(e.message);
    }
  }, [client]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const open = useCallback(
    (id: string | null) => {
      setOpenId(id);
      if (id) {
        localStorage.setItem(storageKey, id);
      } else {
        localStorage.removeItem(storageKey);
        void refresh();
      }
    },
    [storageKey, refresh]
  );

  // the panel follows the notebook in front of the user, and opens what a notebook asks for
  useEffect(() => {
    const show = (session: Session) => {
      added.current.push(session);
      setSessions(list => [session, ...list.filter(s => s.id !== session.id)]);
      setOffer(null);
      open(session.id);
    };
    const onCurrent = (_: unknown, current: CurrentNotebook | null) => {
      if (current?.session) {
        show(current.session);
      } else {
        setOffer(current?.path ?? null);
      }
    };
    const onOpened = (_: unknown, session: Session) => show(session);
    const onAsk = (_: unknown, request: Ask) => setAsk(request);
    notebooks.currentChanged.connect(onCurrent);
    notebooks.opened.connect(onOpened);
    asks.connect(onAsk);
    if (notebooks.current) {
      onCurrent(notebooks, notebooks.current); // the notebook in front before the panel first showed
    }
    return () => {
      notebooks.currentChanged.disconnect(onCurrent);
      notebooks.opened.disconnect(onOpened);
      asks.disconnect(onAsk);
    };
  }, [notebooks, asks, open]);

  const guard = (action: () => Promise<unknown>) => async () => {
    try {
      await action();
      setError(null);
    } catch (e: any) {
      setError(e.message);
    }
  };

  const replace = (session: Session) =>
    setSessions(list => list.map(s => (s.id === session.id ? session : s)));

  const openSession = sessions.find(s => s.id === openId);
  return (
    <AdminContext.Provider value={admin}>
      <div className="jp-dsagent-panel">
        {error && (
          <div className="jp-dsagent-banner" role="alert">
            {error}
          </div>
        )}
        {offer && (
          <NotebookOffer
            path={offer}
            onAccept={guard(async () => {
              const panel = notebooks.tracker.find(p => p.context.path === offer);
              if (panel) {
                await notebooks.workIn(panel);
              }
            })}
            onDismiss={() => setOffer(null)}
          />
        )}
        {openSession ? (
          <ChatView
            key={openSession.id}
            session={openSession}
            ask={ask?.sessionId === openSession.id ? ask : null}
            onAsked={() => setAsk(null)}
            onBack={() => open(null)}
            onUpdate={async update => replace(await client.updateSession(openSession.id, update))}
            onDetach={guard(async () => replace(await notebooks.detach(openSession)))}
          />
        ) : (
          <SessionList
            sessions={sessions}
            onRefresh={() => void refresh()}
            onOpen={session => open(session.id)}
            onCreate={body =>
              guard(async () => {
                const session = await client.createSession(body);
                added.current.push(session);
                setSessions(list => [session, ...list]);
                open(session.id);
              })()
            }
            onUpdate={(session, update) =>
              guard(async () => replace(await client.updateSession(session.id, update)))()
            }
            onArchive={session =>
              guard(async () => replace(await client.archiveSession(session.id)))()
            }
            onDelete={session =>
              guard(async () => {
                await client.deleteSession(session.id);
                setSessions(list => list.filter(s => s.id !== session.id));
              })()
            }
          />
        )}
        <SpendingFooter />
      </div>
    </AdminContext.Provider>
  );
}

/** The Lumino widget JupyterLab puts in the sidebar. */
export class DSAgentSidebar extends ReactWidget {
  constructor(private readonly services: PanelServices) {
    super();
    this.addClass('jp-dsagent-sidebar');
  }

  render(): JSX.Element {
    return (
      <ServicesContext.Provider value={this.services}>
        <Panel />
      </ServicesContext.Provider>
    );
  }
}
