/**
 * The agent's prose without its protocol tags: plan, code and answer have their own components.
 */
const HIDDEN = /<(plan|code|answer|think|thinking|intent)(\s[^<>]*)?>[\s\S]*?(<\/\1>|$)/g;
// a tag still being streamed, e.g. "<pla" or '<code cell="' at the very end of the text so far
const PARTIAL_TAG = /<\/?[a-z]*(\s[^<>]*)?$/;
const FENCED_CODE = /```(?:python|py)?\n[\s\S]*?(```|$)/g;

export function prose(content: string): string {
  return content
    .replace(HIDDEN, '')
    .replace(PARTIAL_TAG, '')
    .replace(FENCED_CODE, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
