/**
 * The notebook's ways into DSAgent: "work in this notebook", the quick actions on a cell, and the
 * approval of a proposed cell; in the palette, the notebook toolbar and the context menus.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ICodeCellModel } from '@jupyterlab/cells';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { CommandToolbarButton } from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { agentIcon } from '../icon';
import { notebookContext } from './context';
import { NotebookSessions } from './sessions';

export const CommandIds = {
  workIn: 'dsagent:work-in-notebook',
  fix: 'dsagent:fix-cell',
  explain: 'dsagent:explain-cell',
  approve: 'dsagent:approve-cell',
  reject: 'dsagent:reject-cell'
};

/** A task the panel should start: the message and the cell in focus. */
export interface Ask {
  sessionId: string;
  message: string;
  /** Index of the focused cell among the notebook's cells. */
  focus: number;
  /** False: the agent must not rewrite the user's cells (Explain). */
  editCells?: boolean;
}

export function registerNotebookCommands(
  app: JupyterFrontEnd,
  notebooks: NotebookSessions,
  options: {
    showPanel: () => void;
    ask: (ask: Ask) => void;
    onError: (message: string) => void;
    palette: ICommandPalette | null;
  }
): void {
  const { commands } = app;
  const { tracker } = notebooks;
  const guard = (action: () => Promise<unknown>) =>
    action().catch(error => options.onError(error.message));
  const panelFor = (args: any): NotebookPanel | null =>
    (args.path ? tracker.find(p => p.context.path === args.path) : tracker.currentWidget) ?? null;

  commands.addCommand(CommandIds.workIn, {
    label: args => (args.toolbar ? '' : 'DSAgent: work in this notebook'),
    caption: 'Open the DSAgent panel on a session that runs in this notebook and its kernel',
    icon: args => (args.toolbar ? agentIcon : undefined),
    isEnabled: () => tracker.currentWidget !== null,
    execute: args =>
      guard(async () => {
        const panel = panelFor(args);
        if (panel) {
          options.showPanel();
          await notebooks.workIn(panel);
        }
      })
  });

  const quickAction = (kind: 'fix' | 'explain') => () =>
    guard(async () => {
      const panel = tracker.currentWidget;
      if (!panel) {
        return;
      }
      const focus = panel.content.activeCellIndex;
      const index = notebookContext(panel, focus).active_cell_index ?? focus;
      options.showPanel();
      const session = await notebooks.workIn(panel);
      const message =
        kind === 'fix' ? `Fix the error in cell [${index}].` : `Explain cell [${index}].`;
      options.ask({ sessionId: session.id, message, focus, editCells: kind === 'fix' });
    });

  commands.addCommand(CommandIds.fix, {
    label: 'Fix with DSAgent',
    caption: 'Ask the agent to fix the error of this cell, in this notebook',
    isVisible: () => activeCellHasError(tracker.currentWidget),
    execute: quickAction('fix')
  });
  commands.addCommand(CommandIds.explain, {
    label: 'Explain with DSAgent',
    caption: 'Ask the agent to explain this cell',
    isEnabled: () => tracker.activeCell !== null,
    execute: quickAction('explain')
  });

  const pending = (args: any) => {
    const panel = panelFor(args);
    return Boolean(panel && notebooks.bridge(panel.context.path)?.cells.proposal());
  };
  const decide = (action: 'approve' | 'reject') => (args: any) =>
    guard(async () => {
      const panel = panelFor(args);
      const bridge = panel && notebooks.bridge(panel.context.path);
      await (action === 'approve' ? bridge?.approve() : bridge?.reject());
    });
  commands.addCommand(CommandIds.approve, {
    label: 'Approve and run',
    caption: 'Run the proposed DSAgent cell as it is now (your edits included)',
    isVisible: pending,
    execute: decide('approve')
  });
  commands.addCommand(CommandIds.reject, {
    label: 'Reject',
    caption: 'Do not run the proposed DSAgent cell',
    isVisible: pending,
    execute: decide('reject')
  });

  // the approval buttons follow the proposals of every open notebook
  const watched = new WeakSet<object>();
  notebooks.bridgesChanged.connect(() => {
    tracker.forEach(panel => {
      const bridge = notebooks.bridge(panel.context.path);
      if (bridge && !watched.has(bridge)) {
        watched.add(bridge);
        bridge.pendingChanged.connect(() => {
          commands.notifyCommandChanged(CommandIds.approve);
          commands.notifyCommandChanged(CommandIds.reject);
        });
      }
    });
  });

  for (const command of [CommandIds.workIn, CommandIds.fix, CommandIds.explain]) {
    options.palette?.addItem({ command, category: 'DSAgent' });
  }
  app.contextMenu.addItem({ command: CommandIds.fix, selector: '.jp-Notebook .jp-Cell', rank: 20 });
  app.contextMenu.addItem({
    command: CommandIds.explain,
    selector: '.jp-Notebook .jp-Cell',
    rank: 21
  });
  app.contextMenu.addItem({ command: CommandIds.workIn, selector: '.jp-Notebook', rank: 22 });
  app.docRegistry.addWidgetExtension('Notebook', new ToolbarButtons(app));
}

/** The notebook toolbar: "work in this notebook", and Approve / Reject while a cell is proposed. */
class ToolbarButtons implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const { commands } = this.app;
    const args = { path: panel.context.path, toolbar: true };
    const buttons: [string, CommandToolbarButton][] = [
      ['dsagent-work-in', new CommandToolbarButton({ commands, id: CommandIds.workIn, args })],
      ['dsagent-approve', new CommandToolbarButton({ commands, id: CommandIds.approve, args })],
      ['dsagent-reject', new CommandToolbarButton({ commands, id: CommandIds.reject, args })]
    ];
    let after = 'cellType';
    for (const [name, button] of buttons) {
      panel.toolbar.insertAfter(after, name, button);
      after = name;
    }
    return new DisposableDelegate(() => buttons.forEach(([, button]) => button.dispose()));
  }
}

function activeCellHasError(panel: NotebookPanel | null): boolean {
  const model = panel?.content.activeCell?.model;
  if (model?.type !== 'code') {
    return false;
  }
  const outputs = (model as ICodeCellModel).outputs;
  for (let i = 0; i < outputs.length; i++) {
    if (outputs.get(i).type === 'error') {
      return true;
    }
  }
  return false;
}
