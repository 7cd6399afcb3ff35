import { MimeModel } from '@jupyterlab/rendermime';
import React, { useEffect, useRef, useState } from 'react';

import { useServices } from '../context';

// streamed text changes many times a second: render at most once per interval
const RENDER_INTERVAL_MS = 100;

/** Markdown rendered by JupyterLab's own renderer (sanitized, themed, code highlighted). */
export function Markdown(props: { source: string; className?: string }): JSX.Element {
  const { rendermime } = useServices();
  const host = useRef<HTMLDivElement>(null);
  const [renderer] = useState(() => rendermime.createRenderer('text/markdown'));

  useEffect(() => {
    host.current?.appendChild(renderer.node);
    return () => renderer.dispose();
  }, [renderer]);

  const lastRender = useRef(0);

  useEffect(() => {
    const render = () => {
      lastRender.current = Date.now();
      const model = new MimeModel({ data: { 'text/markdown': props.source } });
      renderer.renderModel(model).catch(error => console.warn('DSAgent: markdown', error));
    };
    const wait = RENDER_INTERVAL_MS - (Date.now() - lastRender.current);
    if (wait <= 0) {
      render();
      return;
    }
    const timer = setTimeout(render, wait);
    return () => clearTimeout(timer);
  }, [renderer, props.source]);

  return <div ref={host} className={`jp-dsagent-markdown ${props.className ?? ''}`} />;
}

/** A fenced block, so the markdown renderer highlights it with the current theme. */
export function fenced(code: string, language = 'python'): string {
  const longest = Math.max(2, ...(code.match(/`+/g) ?? []).map(run => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${code}\n${fence}`;
}
