/**
 * One open notebook and the session attached to it: holds the claim (so the server leaves the file
 * alone), follows the session's events and turns them into cells of the notebook model.
 *
 * Events are read from `GET .../chat/stream` with `Last-Event-ID`: a running task streams live
 * (outputs as they arrive), an idle session answers at once with what was missed; the bridge asks
 * again every few seconds, or at once when this window starts a task.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { IMessageHandler, IMessageHook, Message, MessageLoop } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, DSAgentClient } from '../api/client';
import { AgentEvent, readEvents } from '../api/stream';
import { HITLResponse, LiveCell, Session } from '../api/types';
import { AgentCells } from './cells';
import { CellReviews } from './reviews';

const HEARTBEAT_MS = 5_000; // at most; always well within the lease, so a slow request is survived
const IDLE_POLL_MS = 2_000;
const START_CHECKS_MS = [200, 600];
const REPORT_DELAY_MS = 300; // cells written in a burst are reported in one claim
const TYPING_DELAY_MS = 500; // the user's edits of a moment are reported in one claim

export class NotebookBridge implements IDisposable, IMessageHook {
  readonly cells: AgentCells;
  /** The agent's edits of the user's cells, reviewed in the cells. */
  readonly reviews: CellReviews;
  /** The user changed the notebook since the server last heard of its cells. */
  private cellsChanged = true;
  /** Whether this window writes the cells (another window may hold the claim). */
  holdsClaim = false;
  private writtenThrough: number | null = null;
  private inTask = false;
  private userCell = false;
  private anchor: string | null = null;
  private round = 0;
  private timer: number | undefined;
  private heartbeatMs = HEARTBEAT_MS;
  private report: number | undefined;
  private beating: Promise<void> = Promise.resolve();
  /** The cells as the tab began to close (by the time it is disposed, its model is gone). */
  private closingCells: LiveCell[] | undefined;
  private abort = new AbortController();
  private wakeUp: (() => void) | null = null;
  private disposedFlag = false;
  private readonly pendingChanged_ = new Signal<this, boolean>(this);

  constructor(
    private readonly client: DSAgentClient,
    readonly panel: NotebookPanel,
    public session: Session,
    private readonly clientId: string
  ) {
    this.cells = new AgentCells(() => panel.model, session.id);
    this.reviews = new CellReviews(panel, {
      approve: () => this.approve(),
      reject: () => this.reject()
    });
    void panel.context.ready.then(() => {
      this.cellsChanged = true;
      panel.model?.contentChanged.connect(this.notebookChanged, this);
    });
    MessageLoop.installMessageHook(panel, this);
    window.addEventListener('pagehide', this.pageHidden);
    void this.beat().then(() => this.follow());
    void this.pendingEdit();
    this.heartbeat();
  }

  /**
   * The page reloads or closes: how far the notebook holds the agent's cells reaches the server even
   * if the last report was still waiting, so the next page does not write them a second time.
   */
  private readonly pageHidden = (): void => {
    if (this.holdsClaim && !this.disposedFlag) {
      window.clearTimeout(this.report);
      this.report = undefined;
      void this.client
        .claim(this.session.id, this.clientId, this.writtenThrough, undefined, true)
        .catch(() => undefined);
    }
  };

  /** Sees the tab's close request first, while its cells can still be read for the hand-over. */
  messageHook(_handler: IMessageHandler, msg: Message): boolean {
    if (msg.type === 'close-request' && this.cellsChanged) {
      this.closingCells = liveCells(this.panel);
    }
    return true;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** True while the agent waits for approval of code shown as a pending cell. */
  get pendingChanged(): ISignal<this, boolean> {
    return this.pendingChanged_;
  }

  /**
   * This window is about to start a task: its cells go below `cellId` (default: the active cell).
   * Resolves once the server knows the notebook's cells as they are now, so an edit the agent makes
   * of a cell the user just added or typed in goes ahead (the model sees the cells as the task
   * starts; the server must not judge them by an older report).
   */
  async taskStarting(cellId?: string): Promise<void> {
    this.anchor = cellId ?? this.panel.content.activeCell?.model.id ?? null;
    await this.reportNow();
    // the request that starts the task is on its way: look again once it had time to arrive
    START_CHECKS_MS.forEach(ms => window.setTimeout(() => this.wake(), ms));
  }

  /** Approve the pending cell: its text as the user left it. */
  async approve(): Promise<void> {
    await this.client.respond(this.session.id, this.withCellEdits({ action: 'approve' }));
  }

  /**
   * A decision as it must reach the server, wherever it was taken (the cell's toolbar or the panel's
   * card): approving a pending cell the user edited is a `modify` with the cell's text, so the edit
   * runs rather than the code the agent proposed.
   */
  withCellEdits(decision: HITLResponse): HITLResponse {
    const proposal = decision.action === 'approve' ? this.cells.proposal() : null;
    if (proposal && proposal.source !== proposal.original) {
      return { ...decision, action: 'modify', modified_code: proposal.source };
    }
    return decision;
  }

  async reject(): Promise<void> {
    await this.client.respond(this.session.id, { action: 'reject' });
  }

  dispose(): void {
    if (this.disposedFlag) {
      return;
    }
    this.disposedFlag = true;
    window.clearTimeout(this.timer);
    window.clearTimeout(this.report);
    this.reviews.dispose();
    this.abort.abort();
    this.wake();
    MessageLoop.removeMessageHook(this.panel, this);
    window.removeEventListener('pagehide', this.pageHidden);
    if (this.holdsClaim) {
      // hand over: the server writes what comes next into the file, and until the release lands it
      // judges the agent's edits by the cells as the window last held them
      const cells = this.cellsChanged ? (this.closingCells ?? openCells(this.panel)) : undefined;
      void this.beating
        .then(() => this.client.claim(this.session.id, this.clientId, this.writtenThrough, cells))
        .then(() => this.client.release(this.session.id, this.clientId))
        .catch(() => undefined);
    }
    Signal.clearData(this);
  }

  /** A report waiting for its delay goes out now. */
  private reportNow(): Promise<void> {
    window.clearTimeout(this.report);
    this.report = undefined;
    return this.beat();
  }

  /** Renew the claim, with the cells if they changed; one claim at a time, so reports land in order. */
  private beat(): Promise<void> {
    this.beating = this.beating.then(() => this.claim());
    return this.beating;
  }

  private async claim(): Promise<void> {
    if (this.disposedFlag) {
      return;
    }
    const cells = this.cellsChanged ? liveCells(this.panel) : undefined;
    this.cellsChanged &&= cells === undefined;
    try {
      const claim = await this.client.claim(
        this.session.id,
        this.clientId,
        this.writtenThrough,
        cells
      );
      this.heartbeatMs = Math.min(HEARTBEAT_MS, (claim.expires_in * 1000) / 3);
      if (!this.holdsClaim || this.writtenThrough === null) {
        this.writtenThrough = claim.written_through;
      }
      this.holdsClaim = true;
    } catch (error) {
      // 409: another window writes the cells; try again at the next beat
      this.holdsClaim = false;
      this.cellsChanged ||= cells !== undefined;
      if (!(error instanceof ApiError)) {
        console.warn('DSAgent: could not claim the notebook', error);
      }
    }
  }

  private heartbeat(): void {
    this.timer = window.setTimeout(() => {
      void this.beat().then(() => !this.disposedFlag && this.heartbeat());
    }, this.heartbeatMs);
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private async follow(): Promise<void> {
    const url = this.client.url('api', 'sessions', this.session.id, 'chat', 'stream');
    while (!this.disposedFlag) {
      if (this.holdsClaim) {
        try {
          const response = await this.client.fetch(url, {
            headers: {
              Accept: 'text/event-stream',
              'Last-Event-ID': String(this.writtenThrough ?? 0)
            },
            signal: this.abort.signal
          });
          await readEvents(response, event => this.apply(event));
        } catch (error) {
          if (this.disposedFlag) {
            return;
          }
          console.warn('DSAgent: lost the session stream, retrying', error);
        }
      }
      await new Promise<void>(resolve => {
        const timer = window.setTimeout(resolve, IDLE_POLL_MS);
        this.wakeUp = () => {
          window.clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  private apply(event: AgentEvent): void {
    if (this.disposedFlag || !this.holdsClaim) {
      return;
    }
    if (event.id !== null && this.writtenThrough !== null && event.id <= this.writtenThrough) {
      return; // already in the notebook
    }
    const data = event.data ?? {};
    if (event.event === 'code_executing' && data.source === 'user') {
      this.userCell = true; // code a client ran through the API: not the agent's, no cell
    } else if (this.userCell && event.event === 'code_result') {
      this.userCell = false;
    } else {
      this.write(event.event, data);
    }
    this.advance(event);
  }

  /** One event of a task as cells. */
  private write(name: string, data: any): void {
    // a task begins with its first round (or with whatever comes first when joining mid-task)
    if ((!this.inTask && name !== 'done') || (name === 'thinking' && data.round === 1)) {
      this.inTask = true;
      this.cells.startTask(this.anchor ?? this.panel.content.activeCell?.model.id ?? null);
      this.anchor = null;
    }
    const markdown = this.session.notebook_markdown_cells !== false;
    switch (name) {
      case 'thinking':
      case 'llm_response':
        this.round = data.round ?? this.round;
        break;
      case 'plan':
        if (markdown && data.steps?.length) {
          this.cells.markdown('plan', this.round, planMarkdown(data));
        }
        break;
      case 'hitl_request':
        if (data.request_type === 'code' && data.code && data.cell?.id) {
          this.reviews.propose(data.cell.id, data.code);
        } else if (data.request_type === 'code' && data.code) {
          this.cells.propose(this.round, data.code);
          this.pendingChanged_.emit(true);
        }
        break;
      case 'hitl_resolved':
        if (data.request_type === 'code') {
          this.reviews.withdraw();
          if (data.action !== 'approve' && data.action !== 'modify') {
            this.cells.withdraw();
          }
          this.pendingChanged_.emit(false);
        }
        break;
      case 'code_executing':
        if (data.cell) {
          this.cells.edit(data.round ?? this.round, data.cell, data.code);
        } else if (data.source !== 'user') {
          this.cells.code(data.round ?? this.round, data.code);
        }
        break;
      case 'code_output':
        this.cells.output(data.round ?? this.round, data.output);
        break;
      case 'code_result':
        this.cells.result(data.round ?? this.round, data.outputs, data.execution_count ?? null);
        break;
      case 'round_complete':
        if (data.stop_reason === 'cancelled' && data.execution_result) {
          // a stopped cell's outputs so far come only with its round
          const result = data.execution_result;
          this.cells.result(data.round, result.outputs, result.execution_count ?? null);
        }
        if (markdown && data.has_answer && data.answer) {
          this.cells.markdown('answer', data.round, data.answer);
        }
        break;
      case 'done':
        this.inTask = false;
        this.cells.withdraw();
        this.reviews.withdraw();
        this.pendingChanged_.emit(false);
        break;
    }
  }

  /** A window opened (or reloaded) while the agent waits for approval of an edit: show it in the cell. */
  private async pendingEdit(): Promise<void> {
    try {
      const status = await this.client.hitlStatus(this.session.id);
      if (status.awaiting_type === 'code' && status.pending_cell?.id && status.pending_code) {
        this.reviews.propose(status.pending_cell.id, status.pending_code);
      }
    } catch {
      // the stream brings the next request
    }
  }

  /** The user changed the notebook: the server hears of its cells soon (an agent's edit of a cell
   * changed since the model saw it must not go ahead). */
  private notebookChanged(): void {
    this.cellsChanged = true;
    this.closingCells = undefined; // a close the user cancelled: the next one reads them again
    if (this.holdsClaim) {
      this.report ??= window.setTimeout(() => {
        this.report = undefined;
        void this.beat();
      }, TYPING_DELAY_MS);
    }
  }

  private advance(event: AgentEvent): void {
    if (event.id === null) {
      return;
    }
    this.writtenThrough = event.id;
    if (event.event === 'done') {
      void this.reportNow(); // the task's cells are all in: tell the server now
      return;
    }
    // tell the server soon: a reload or a closed tab must not write these cells again
    this.report ??= window.setTimeout(() => {
      this.report = undefined;
      void this.beat();
    }, REPORT_DELAY_MS);
  }
}

/** The cells of a notebook whose model may already be disposed (then unknown). */
function openCells(panel: NotebookPanel): LiveCell[] | undefined {
  return panel.model && !panel.model.isDisposed ? liveCells(panel) : undefined;
}

/** The notebook's cells as the claim reports them. */
function liveCells(panel: NotebookPanel): LiveCell[] | undefined {
  const cells = panel.model?.cells;
  if (!cells) {
    return undefined;
  }
  const live: LiveCell[] = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    const type = cell.type as LiveCell['cell_type'];
    live.push({ id: cell.id, cell_type: type, source: cell.sharedModel.getSource() });
  }
  return live;
}

/** The plan as a markdown task list. */
function planMarkdown(plan: { steps?: { description: string; completed: boolean }[] }): string {
  const steps = plan.steps ?? [];
  return [
    '**Plan**',
    '',
    ...steps.map(s => `- [${s.completed ? 'x' : ' '}] ${s.description}`)
  ].join('\n');
}
