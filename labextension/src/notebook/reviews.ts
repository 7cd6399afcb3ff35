/**
 * The agent's edits of the user's cells, reviewed where they are. A cell whose `metadata.dsagent`
 * keeps a previous source shows a diff against it with Keep and Revert (so a review survives a reload
 * and shows as well for an edit the server wrote into a closed notebook); while the agent waits for
 * approval of an edit, the cell shows the proposed change with Approve and Reject instead.
 */
import { Cell, ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { PanelLayout, Widget } from '@lumino/widgets';

import { stopCapturing } from './cells';
import { AGENT_KEY } from './context';
import { lineDiff, renderDiff } from './diff';

/** What an edited cell's `metadata.dsagent` keeps until the edit is kept or reverted. */
export interface Review {
  session_id: string;
  round: number;
  previous_source: string;
  previous_outputs?: nbformat.IOutput[];
  previous_execution_count?: number | null;
}

export function reviewOf(cell: ICellModel): Review | null {
  const mark = cell.getMetadata(AGENT_KEY) as Review | undefined;
  return mark && typeof mark.previous_source === 'string' ? mark : null;
}

/** Keep the agent's edit: the cell is the user's again, as it is now. */
export function keepEdit(model: INotebookModel, cell: ICellModel): void {
  stopCapturing(model);
  cell.deleteMetadata(AGENT_KEY);
  stopCapturing(model);
}

/** Put back what the cell held before the agent's edit (its source, outputs and execution count). */
export function revertEdit(model: INotebookModel, cell: ICellModel): void {
  const review = reviewOf(cell);
  if (!review) {
    return;
  }
  stopCapturing(model);
  model.sharedModel.transact(() => {
    cell.sharedModel.setSource(review.previous_source);
    if (cell.type === 'code') {
      const code = cell as ICodeCellModel;
      code.outputs.clear();
      (review.previous_outputs ?? []).forEach(output => code.outputs.add(output));
      code.executionCount = review.previous_execution_count ?? null;
    }
    cell.deleteMetadata(AGENT_KEY);
  });
  stopCapturing(model);
}

const REVERT_TIP =
  "Put back the cell's previous source and outputs. What the new code did in the kernel (variables " +
  'it changed, files it wrote) cannot be undone.';

interface Proposal {
  cellId: string;
  code: string;
}

/** The reviews and the proposal of one open notebook. */
export class CellReviews implements IDisposable {
  private widgets = new Map<Cell, ReviewWidget>();
  private watched = new WeakSet<ICellModel>();
  private proposal: Proposal | null = null;
  private timer: number | undefined;
  private disposed = false;
  private readonly changed_ = new Signal<this, number>(this);

  constructor(
    private readonly panel: NotebookPanel,
    private readonly decide: { approve(): Promise<void>; reject(): Promise<void> }
  ) {
    void panel.context.ready.then(() => {
      panel.model?.cells.changed.connect(this.schedule, this);
      this.scan();
    });
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The number of edits awaiting review changed. */
  get changed(): ISignal<this, number> {
    return this.changed_;
  }

  /** The cells with an edit awaiting review. */
  get edited(): ICellModel[] {
    const cells = this.panel.model?.cells;
    const edited: ICellModel[] = [];
    for (let i = 0; cells && i < cells.length; i++) {
      if (reviewOf(cells.get(i))) {
        edited.push(cells.get(i));
      }
    }
    return edited;
  }

  /** The agent asks to replace the cell `cellId` with `code`: shown before it runs. */
  propose(cellId: string, code: string): void {
    this.proposal = { cellId, code };
    this.schedule();
  }

  withdraw(): void {
    if (this.proposal) {
      this.proposal = null;
      this.schedule();
    }
  }

  keepAll(): void {
    const model = this.panel.model;
    this.edited.forEach(cell => model && keepEdit(model, cell));
  }

  revertAll(): void {
    const model = this.panel.model;
    this.edited.forEach(cell => model && revertEdit(model, cell));
  }

  dispose(): void {
    if (this.disposed) {
      return;
    }
    this.disposed = true;
    window.clearTimeout(this.timer);
    this.widgets.forEach(widget => widget.dispose());
    this.widgets.clear();
    Signal.clearData(this);
  }

  private schedule(): void {
    if (!this.disposed && this.timer === undefined) {
      this.timer = window.setTimeout(() => {
        this.timer = undefined;
        this.scan();
      }, 0);
    }
  }

  /** Show, update or take away each cell's review to match its metadata and the proposal. */
  private scan(): void {
    if (this.disposed) {
      return;
    }
    const seen = new Set<Cell>();
    let count = 0;
    for (const cell of this.panel.content.widgets) {
      const model = cell.model;
      if (!this.watched.has(model)) {
        this.watched.add(model);
        model.sharedModel.changed.connect(this.schedule, this);
      }
      const source = model.sharedModel.getSource();
      const review = reviewOf(model);
      count += review ? 1 : 0;
      let widget = this.widgets.get(cell);
      if (this.proposal && this.proposal.cellId === model.id) {
        widget = this.show(cell, widget, 'proposal');
        widget.update_(source, this.proposal.code);
      } else if (review) {
        widget = this.show(cell, widget, 'review');
        widget.update_(review.previous_source, source);
      } else {
        continue;
      }
      seen.add(cell);
    }
    for (const [cell, widget] of this.widgets) {
      if (!seen.has(cell)) {
        widget.dispose();
        this.widgets.delete(cell);
      }
    }
    this.changed_.emit(count);
  }

  private show(cell: Cell, widget: ReviewWidget | undefined, mode: ReviewMode): ReviewWidget {
    if (widget && widget.mode === mode && !widget.isDisposed) {
      return widget;
    }
    widget?.dispose();
    const model = this.panel.model;
    const actions: [string, string, () => void][] =
      mode === 'proposal'
        ? [
            [
              'Approve and run',
              'Replace the cell with the proposed code and run it',
              () => void this.decide.approve()
            ],
            ['Reject', 'Leave the cell as it is and stop the task', () => void this.decide.reject()]
          ]
        : [
            ['Keep', 'Keep the new source and outputs', () => model && keepEdit(model, cell.model)],
            ['Revert', REVERT_TIP, () => model && revertEdit(model, cell.model)]
          ];
    const created = new ReviewWidget(mode, actions);
    // below the input, above the outputs
    (cell.layout as PanelLayout).insertWidget(2, created);
    this.widgets.set(cell, created);
    return created;
  }
}

type ReviewMode = 'review' | 'proposal';

/** The diff and its buttons, inside the cell. */
class ReviewWidget extends Widget {
  private readonly diff: HTMLElement;
  private shown: string | null = null;

  constructor(
    readonly mode: ReviewMode,
    actions: [string, string, () => void][]
  ) {
    super();
    this.addClass('jp-dsagent-review');
    this.addClass(`jp-mod-${mode}`);
    this.node.setAttribute('role', 'group');
    this.node.setAttribute(
      'aria-label',
      mode === 'proposal' ? 'Proposed DSAgent edit' : 'DSAgent edit'
    );
    const bar = document.createElement('div');
    bar.className = 'jp-dsagent-review-bar';
    const label = document.createElement('span');
    label.textContent =
      mode === 'proposal' ? 'DSAgent proposes to change this cell' : 'Edited by DSAgent';
    bar.appendChild(label);
    for (const [text, title, act] of actions) {
      const button = document.createElement('button');
      button.className = `jp-Button jp-mod-styled ${text === 'Keep' || text.startsWith('Approve') ? 'jp-mod-accept' : 'jp-mod-reject'}`;
      button.textContent = text;
      button.title = title;
      button.setAttribute('aria-label', text);
      button.onclick = act;
      bar.appendChild(button);
    }
    this.diff = document.createElement('div');
    this.diff.className = 'jp-dsagent-diff';
    this.node.append(bar, this.diff);
  }

  update_(before: string, after: string): void {
    const key = `${before}\u0000${after}`;
    if (key !== this.shown) {
      this.shown = key;
      renderDiff(this.diff, lineDiff(before, after));
    }
  }
}
