/**
 * What the model is told about the notebook the session works in: the cells of the live model
 * (unsaved edits included, pending agent cells left out) and which cells the user has in focus.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { NotebookPanel } from '@jupyterlab/notebook';

import { NotebookContext } from '../api/types';

/** Metadata key of the cells the agent wrote. */
export const AGENT_KEY = 'dsagent';

/**
 * Characters of image data sent for cells out of focus, in all: a vision model is shown the images
 * of the cells a message names (the server picks them), and a notebook full of charts must not
 * swell every request.
 */
const IMAGE_BUDGET = 2_000_000;

export function notebookContext(panel: NotebookPanel, focus?: number): NotebookContext {
  const notebook = panel.content;
  const cells: NotebookContext['cells'] = [];
  const selected: number[] = [];
  const indices = new Map<number, number>(); // widget index -> index in the context
  const focusIndex = focus ?? notebook.activeCellIndex;
  let budget = IMAGE_BUDGET;
  notebook.widgets.forEach((cell, index) => {
    const model = cell.model;
    if ((model.getMetadata(AGENT_KEY) as any)?.pending) {
      return; // a proposal awaiting approval is not part of the notebook yet
    }
    indices.set(index, cells.length);
    const entry: NotebookContext['cells'][number] = {
      cell_type: model.type as 'code' | 'markdown' | 'raw',
      source: model.sharedModel.getSource(),
      id: model.id
    };
    if (model.type === 'code') {
      const code = model as ICodeCellModel;
      entry.execution_count = code.executionCount;
      const outputs = code.outputs.toJSON();
      // the active and selected cells' images always go; others while the budget lasts
      const inFocus = index === focusIndex || notebook.isSelectedOrActive(cell);
      const size = inFocus ? 0 : imageSize(outputs);
      const fits = size <= budget;
      budget -= fits ? size : 0;
      entry.outputs = fits ? outputs : outputs.map(withoutImages);
    }
    if (notebook.isSelectedOrActive(cell)) {
      selected.push(cells.length);
    }
    cells.push(entry);
  });
  const active = indices.get(focusIndex);
  return {
    cells,
    active_cell_index: active,
    selected_cell_indices: selected
  };
}

function imageSize(outputs: nbformat.IOutput[]): number {
  let size = 0;
  for (const output of outputs) {
    for (const [mime, value] of Object.entries((output.data as nbformat.IMimeBundle) ?? {})) {
      size += mime.startsWith('image/') ? JSON.stringify(value).length : 0;
    }
  }
  return size;
}

/** Past the budget the model is only told that an image is there. */
function withoutImages(output: nbformat.IOutput): nbformat.IOutput {
  const data = output.data as nbformat.IMimeBundle | undefined;
  if (!data || !Object.keys(data).some(mime => mime.startsWith('image/'))) {
    return output;
  }
  const kept: nbformat.IMimeBundle = {};
  for (const [mime, value] of Object.entries(data)) {
    kept[mime] = mime.startsWith('image/') ? `<${mime} omitted>` : value;
  }
  return { ...output, data: kept };
}
