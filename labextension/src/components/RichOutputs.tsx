/**
 * A cell's outputs beyond text and figures (DataFrame tables, JSON, markdown, LaTeX, ...), rendered
 * by JupyterLab's rendermime registry, so they look as they do in a notebook.
 */
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { Widget } from '@lumino/widgets';
import React, { useLayoutEffect, useRef } from 'react';

import { ExecutionResult, NotebookOutput } from '../api/types';
import { useServices } from '../context';

const IMAGES = ['image/png', 'image/jpeg', 'image/svg+xml'];

/** Bundles the console and the gallery cannot show: those with a mime type beyond text and images. */
export function richOutputs(result: ExecutionResult): NotebookOutput[] {
  return (result.outputs ?? []).filter(output => {
    if (output.output_type !== 'execute_result' && output.output_type !== 'display_data') {
      return false;
    }
    const mimes = Object.keys((output.data as object) ?? {});
    return !mimes.some(mime => IMAGES.includes(mime)) && mimes.some(mime => mime !== 'text/plain');
  });
}

/** The text a result shows in its console: its outputs' streams and plain results, in order. */
export function consoleText(result: ExecutionResult): { stdout: string; stderr: string } {
  if (!result.outputs) {
    return { stdout: result.stdout, stderr: result.stderr };
  }
  const rich = new Set(richOutputs(result));
  let stdout = '';
  let stderr = '';
  for (const output of result.outputs) {
    if (output.output_type === 'stream') {
      const text = join(output.text as string | string[]);
      if (output.name === 'stderr') {
        stderr += text;
      } else {
        stdout += text;
      }
    } else if (output.output_type === 'execute_result' && !rich.has(output)) {
      const data = (output.data ?? {}) as Record<string, unknown>;
      if (!IMAGES.some(mime => mime in data) && 'text/plain' in data) {
        stdout += join(data['text/plain'] as string | string[]) + '\n';
      }
    }
  }
  return { stdout, stderr };
}

export function RichOutputs(props: { outputs: NotebookOutput[] }): JSX.Element | null {
  const { rendermime } = useServices();
  const host = useRef<HTMLDivElement>(null);
  const { outputs } = props;
  // a layout effect: its cleanup runs while the host is still in the page, where a widget can be
  // detached (a passive effect's cleanup runs after React removed it, and detaching then throws)
  useLayoutEffect(() => {
    if (!host.current) {
      return;
    }
    // untrusted, as outputs of a notebook opened from disk: HTML is sanitized, no script runs
    const model = new OutputAreaModel({ values: outputs, trusted: false });
    const area = new OutputArea({ model, rendermime });
    Widget.attach(area, host.current);
    return () => {
      area.dispose();
      model.dispose();
    };
  }, [outputs, rendermime]);
  if (outputs.length === 0) {
    return null;
  }
  return <div className="jp-dsagent-rich-outputs" aria-label="Rich output" ref={host} />;
}

function join(text: string | string[]): string {
  return Array.isArray(text) ? text.join('') : text;
}
