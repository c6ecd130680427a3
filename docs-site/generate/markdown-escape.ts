/**
 * Text for a generated page: HTML-escaped, safe inside a Markdown table cell (`|`, newlines) and
 * not read as a Vue interpolation by VitePress (`{{`).
 */
export const escapeForPage = (text: string): string =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\|/g, '&#124;')
    .replace(/\{\{/g, '&#123;&#123;')
    .replace(/\n/g, ' ');
