/**
 * Which DSAgent session works in which open notebook: one bridge per open notebook that has an
 * attached session, and the notebook the user is looking at, for the panel to follow.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { UUID } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, DSAgentClient } from '../api/client';
import { NotebookContext, Session } from '../api/types';
import { NotebookBridge } from './bridge';
import { notebookContext } from './context';

/** The notebook in front of the user, and the session working in it (if any). */
export interface CurrentNotebook {
  path: string;
  session: Session | null;
}

export class NotebookSessions {
  /** Identifies this browser tab in claims; kept across reloads, so a reloaded tab keeps its claim. */
  readonly clientId = tabId();
  private bridges = new Map<string, NotebookBridge>();
  private current_: CurrentNotebook | null = null;
  private readonly currentChanged_ = new Signal<this, CurrentNotebook | null>(this);
  private readonly opened_ = new Signal<this, Session>(this);
  private readonly bridgesChanged_ = new Signal<this, void>(this);

  constructor(
    private readonly client: DSAgentClient,
    readonly tracker: INotebookTracker
  ) {
    tracker.widgetAdded.connect((_, panel) => void this.watch(panel));
    tracker.forEach(panel => void this.watch(panel));
    tracker.currentChanged.connect(() => void this.refreshCurrent());
  }

  /** The notebook in front of the user; null when no notebook is current. */
  get current(): CurrentNotebook | null {
    return this.current_;
  }

  get currentChanged(): ISignal<this, CurrentNotebook | null> {
    return this.currentChanged_;
  }

  /** A session to show in the panel ("work in this notebook", a quick action). */
  get opened(): ISignal<this, Session> {
    return this.opened_;
  }

  /** A bridge came or went (pending approvals show in notebook toolbars). */
  get bridgesChanged(): ISignal<this, void> {
    return this.bridgesChanged_;
  }

  bridge(path: string): NotebookBridge | undefined {
    return this.bridges.get(path);
  }

  bridgeOf(sessionId: string): NotebookBridge | undefined {
    return [...this.bridges.values()].find(b => b.session.id === sessionId);
  }

  /** The live notebook of an attached session, for the model; undefined when it is not open here. */
  contextFor(sessionId: string, focus?: number): NotebookContext | undefined {
    const bridge = this.bridgeOf(sessionId);
    return bridge ? notebookContext(bridge.panel, focus) : undefined;
  }

  /** The session attached to the notebook (created if there is none), opened in the panel. */
  async workIn(panel: NotebookPanel): Promise<Session> {
    await panel.context.ready;
    const path = panel.context.path;
    let session = (await this.client.notebookSessions(path))[0];
    if (!session) {
      try {
        session = await this.client.createSession({
          name: baseName(path),
          notebook_path: path
        });
      } catch (error) {
        // another window attached one meanwhile: use it
        if (!(error instanceof ApiError && error.status === 409)) {
          throw error;
        }
        session = (await this.client.notebookSessions(path))[0];
      }
    }
    this.attach(panel, session);
    this.opened_.emit(session);
    return session;
  }

  /** The session stops working in its notebook; it keeps its history. */
  async detach(session: Session): Promise<Session> {
    const updated = await this.client.updateSession(session.id, { notebook_path: null });
    for (const [path, bridge] of this.bridges) {
      if (bridge.session.id === session.id) {
        bridge.dispose();
        this.bridges.delete(path);
      }
    }
    this.bridgesChanged_.emit();
    void this.refreshCurrent();
    return updated;
  }

  private attach(panel: NotebookPanel, session: Session): void {
    const path = panel.context.path;
    const existing = this.bridges.get(path);
    if (existing?.session.id === session.id) {
      existing.session = session;
    } else {
      existing?.dispose();
      this.bridges.set(path, new NotebookBridge(this.client, panel, session, this.clientId));
      this.bridgesChanged_.emit();
    }
    if (this.tracker.currentWidget?.context.path === path) {
      this.setCurrent({ path, session });
    }
  }

  private async watch(panel: NotebookPanel): Promise<void> {
    await panel.context.ready;
    const path = panel.context.path;
    panel.disposed.connect(() => {
      const bridge = this.bridges.get(path);
      if (bridge?.panel === panel) {
        bridge.dispose();
        this.bridges.delete(path);
        this.bridgesChanged_.emit();
      }
    });
    if (this.bridges.has(path) || panel.isDisposed) {
      return;
    }
    try {
      const session = (await this.client.notebookSessions(path))[0];
      if (session && !panel.isDisposed && !this.bridges.has(path)) {
        this.attach(panel, session);
      }
    } catch (error) {
      console.warn('DSAgent: could not look up the session of', path, error);
    }
  }

  private async refreshCurrent(): Promise<void> {
    const panel = this.tracker.currentWidget;
    if (!panel) {
      return; // another kind of tab: the panel keeps what it shows
    }
    await panel.context.ready;
    const path = panel.context.path;
    let session = this.bridges.get(path)?.session ?? null;
    if (!session) {
      try {
        session = (await this.client.notebookSessions(path))[0] ?? null;
      } catch {
        session = null;
      }
    }
    if (this.tracker.currentWidget === panel) {
      this.setCurrent({ path, session });
    }
  }

  private setCurrent(current: CurrentNotebook): void {
    const previous = this.current_;
    if (previous?.path === current.path && previous.session?.id === current.session?.id) {
      return;
    }
    this.current_ = current;
    this.currentChanged_.emit(current);
  }
}

function baseName(path: string): string {
  return path.split('/').pop() ?? path;
}

function tabId(): string {
  const key = 'dsagent-ext:client-id';
  let id = sessionStorage.getItem(key); // per tab, survives a reload
  if (!id) {
    id = UUID.uuid4();
    sessionStorage.setItem(key, id);
  }
  return id;
}
