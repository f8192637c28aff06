// Syntax colours as CSS variables (set per theme in styles.css), so the editor follows the
// light/dark switch without rebuilding its state, and each colour is chosen for WCAG AA
// contrast on the editor's background (CodeMirror's default style is for light pages only).
import { HighlightStyle } from '@codemirror/language'
import { tags as t } from '@lezer/highlight'

export const kilnHighlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.moduleKeyword, t.operatorKeyword, t.definitionKeyword], color: 'var(--syn-keyword)' },
  { tag: [t.string, t.special(t.string), t.regexp], color: 'var(--syn-string)' },
  { tag: [t.number, t.bool, t.null, t.atom], color: 'var(--syn-number)' },
  { tag: [t.comment, t.lineComment, t.blockComment], color: 'var(--syn-comment)', fontStyle: 'italic' },
  { tag: [t.definition(t.variableName), t.function(t.variableName), t.function(t.propertyName)], color: 'var(--syn-def)' },
  { tag: [t.typeName, t.className, t.namespace], color: 'var(--syn-type)' },
  { tag: [t.tagName, t.angleBracket], color: 'var(--syn-tag)' },
  { tag: [t.attributeName, t.propertyName], color: 'var(--syn-attr)' },
  { tag: [t.heading], color: 'var(--syn-keyword)', fontWeight: 'bold' },
  { tag: t.emphasis, fontStyle: 'italic' },
  { tag: t.strong, fontWeight: 'bold' },
  { tag: t.link, color: 'var(--syn-string)', textDecoration: 'underline' },
  { tag: t.invalid, color: 'var(--bad)' },
])
