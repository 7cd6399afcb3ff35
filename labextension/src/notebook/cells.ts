/**
 * The agent's cells in an open notebook, written through the notebook model (never the file), so
 * they are edits like the user's own: undo removes them, saving keeps them, nothing changes on disk.
 *
 * The first cell of a task goes below the cell that was active when the task started, each further
 * cell below the previous agent cell (or at the end when that cell was deleted meanwhile).
 */
import { ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { INotebookModel } from '@jupyterlab/notebook';

import { EditedCell, NotebookOutput } from '../api/types';
import { AGENT_KEY } from './context';

export type MarkdownKind = 'plan' | 'answer';

export class AgentCells {
  /** The cell the next agent cell goes below. */
  private anchor: string | null = null;
  /** Cells of the current task: `code:<round>`, `plan`, `answer:<round>`, `pending` -> cell id. */
  private cells = new Map<string, string>();
  /** The proposal as the agent made it: unchanged, it is approved rather than sent as an edit. */
  private proposed: string | null = null;

  constructor(
    private readonly model: () => INotebookModel | null,
    private readonly sessionId: string
  ) {}

  /** A new task: its cells go below `anchorId` (the active cell), or at the end. */
  startTask(anchorId: string | null): void {
    this.anchor = anchorId;
    this.cells.clear();
  }

  /** The agent runs `code` in round `round`: its cell (the pending one, if the user approved it). */
  code(round: number, code: string): void {
    const pending = this.take('pending');
    if (pending) {
      pending.sharedModel.setSource(code);
      pending.setMetadata(AGENT_KEY, { session_id: this.sessionId, round });
      (pending as ICodeCellModel).outputs.clear();
      this.cells.set(`code:${round}`, pending.id);
      return;
    }
    this.insert(`code:${round}`, {
      cell_type: 'code',
      source: code,
      metadata: { [AGENT_KEY]: { session_id: this.sessionId, round } },
      outputs: [],
      execution_count: null
    });
  }

  /**
   * The agent rewrites a user's cell: in place while it holds what the model saw (the previous text
   * stays in its metadata until the user keeps or reverts the edit), else as a new cell: an edit the
   * user made meanwhile wins.
   */
  edit(round: number, edit: EditedCell, code: string): void {
    const model = this.model();
    const index = edit.id ? this.indexOf(edit.id) : -1;
    const cell = model && index >= 0 ? model.cells.get(index) : null;
    if (
      !model ||
      !cell ||
      cell.sharedModel.getSource() !== edit.previous_source ||
      cell.type !== (edit.cell_type ?? 'code')
    ) {
      if ((edit.cell_type ?? 'code') === 'code') {
        this.code(round, code);
      }
      return;
    }
    const earlier = (cell.getMetadata(AGENT_KEY) ?? {}) as Record<string, any>;
    const review: Record<string, any> = {
      session_id: this.sessionId,
      round,
      previous_source: earlier.previous_source ?? edit.previous_source
    };
    const code_ = cell.type === 'code' ? (cell as ICodeCellModel) : null;
    if (code_) {
      review.previous_outputs = earlier.previous_outputs ?? code_.outputs.toJSON();
      review.previous_execution_count =
        earlier.previous_execution_count !== undefined
          ? earlier.previous_execution_count
          : code_.executionCount;
    }
    // one undo step, as an edit of the user's own
    stopCapturing(model);
    model.sharedModel.transact(() => {
      cell.sharedModel.setSource(code);
      cell.setMetadata(AGENT_KEY, review);
      if (code_) {
        code_.outputs.clear();
        code_.executionCount = null;
      }
    });
    stopCapturing(model);
    this.cells.set(`code:${round}`, cell.id);
  }

  /** One output as the kernel sends it (stream pieces of the same name merge, as in a notebook). */
  output(round: number, output: NotebookOutput): void {
    this.codeCell(round)?.outputs.add(output);
  }

  /** The finished cell: its outputs in full and its execution count. */
  result(round: number, outputs: NotebookOutput[] | undefined, count: number | null): void {
    const cell = this.codeCell(round);
    if (!cell) {
      return;
    }
    if (outputs) {
      cell.outputs.clear();
      outputs.forEach(output => cell.outputs.add(output));
    }
    cell.executionCount = count;
  }

  /** The plan (one cell per task, updated as steps are ticked) or an answer. */
  markdown(kind: MarkdownKind, round: number, text: string): void {
    const key = kind === 'plan' ? 'plan' : `answer:${round}`;
    const existing = this.find(key);
    const metadata = { session_id: this.sessionId, round, kind };
    if (existing) {
      existing.sharedModel.setSource(text);
      existing.setMetadata(AGENT_KEY, metadata);
      return;
    }
    this.insert(key, { cell_type: 'markdown', source: text, metadata: { [AGENT_KEY]: metadata } });
  }

  /** Code awaiting approval, editable in the notebook. */
  propose(round: number, code: string): void {
    this.proposed = code;
    const existing = this.find('pending');
    if (existing) {
      existing.sharedModel.setSource(code);
      return;
    }
    this.insert('pending', {
      cell_type: 'code',
      source: code,
      metadata: { [AGENT_KEY]: { session_id: this.sessionId, round, pending: true } },
      outputs: [],
      execution_count: null
    });
  }

  /** The text of the proposal as the user left it, or null when there is none. */
  proposal(): { source: string; original: string } | null {
    const cell = this.find('pending');
    if (!cell) {
      return null;
    }
    return { source: cell.sharedModel.getSource(), original: this.proposed ?? '' };
  }

  /** The proposal was rejected or skipped: its cell goes. */
  withdraw(): void {
    const cell = this.take('pending');
    const model = this.model();
    if (cell && model) {
      const index = this.indexOf(cell.id);
      if (index >= 0) {
        model.sharedModel.deleteCell(index);
      }
    }
  }

  private codeCell(round: number): ICodeCellModel | null {
    const cell = this.find(`code:${round}`);
    return cell?.type === 'code' ? (cell as ICodeCellModel) : null;
  }

  private take(key: string): ICellModel | null {
    const cell = this.find(key);
    this.cells.delete(key);
    return cell;
  }

  private find(key: string): ICellModel | null {
    const id = this.cells.get(key);
    const model = this.model();
    if (!id || !model) {
      return null;
    }
    const index = this.indexOf(id);
    return index >= 0 ? model.cells.get(index) : null;
  }

  private indexOf(id: string): number {
    const cells = this.model()?.cells;
    if (cells) {
      for (let i = 0; i < cells.length; i++) {
        if (cells.get(i).id === id) {
          return i;
        }
      }
    }
    return -1;
  }

  private insert(key: string, cell: nbformat.ICell): void {
    const model = this.model();
    if (!model) {
      return;
    }
    const below = this.anchor ? this.indexOf(this.anchor) : -1;
    const index = below >= 0 ? below + 1 : model.cells.length;
    // an undo step of its own: JupyterLab merges the edits of half a second into one step, and undoing
    // the agent's cell must not take along an edit the user made at that moment
    stopCapturing(model);
    const shared = model.sharedModel.insertCell(index, cell as any);
    stopCapturing(model);
    this.anchor = shared.getId();
    this.cells.set(key, shared.getId());
  }
}

/** Close the notebook's current undo step (the shared model's Yjs undo manager). */
export function stopCapturing(model: INotebookModel): void {
  const shared = model.sharedModel as unknown as {
    undoManager?: { stopCapturing(): void };
  };
  shared.undoManager?.stopCapturing();
}
