import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useState } from 'react';

import { Session } from '../api/types';
import { PanelServices, ServicesContext, useServices } from '../context';
import { ChatView } from './ChatView';
import { AdminContext, SpendingFooter, useAdminState } from './Policy';
import { SessionList } from './SessionList';

// the open session survives a page reload, per server (base URL)
const OPEN_SESSION_KEY = 'dsagent-ext:open-session';

/** The sidebar: the session list, or the chat of the open session. */
function Panel(): JSX.Element {
  const { client } = useServices();
  const storageKey = `${OPEN_SESSION_KEY}:${client.settings.baseUrl}`;
  const [sessions, setSessions] = useState<Session[]>([]);
  const [openId, setOpenId] = useState<string | null>(() => localStorage.getItem(storageKey));
  const [error, setError] = useState<string | null>(null);
  const admin = useAdminState(client);

  const refresh = useCallback(async () => {
    try {
      setSessions((await client.listSessions()).sessions);
      setError(null);
    } catch (e: any) {
      setError(e.message);
    }
  }, [client]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const open = (id: string | null) => {
    setOpenId(id);
    if (id) {
      localStorage.setItem(storageKey, id);
    } else {
      localStorage.removeItem(storageKey);
      void refresh();
    }
  };

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
        {openSession ? (
          <ChatView
            key={openSession.id}
            session={openSession}
            onBack={() => open(null)}
            onUpdate={async update => replace(await client.updateSession(openSession.id, update))}
          />
        ) : (
          <SessionList
            sessions={sessions}
            onRefresh={() => void refresh()}
            onOpen={session => open(session.id)}
            onCreate={body =>
              guard(async () => {
                const session = await client.createSession(body);
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
