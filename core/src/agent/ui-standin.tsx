// Written by Kiln: the app imported components from a UI kit that is not installed (Material
// UI, Tailwind UI, …). These are plain elements under the same names, so the app runs as
// written; replace them with your own markup or install the kit and change the imports back.
import { createElement } from 'react'
import type { ReactNode } from 'react'

type P = { [prop: string]: any }

// Props a DOM element takes; the kits' own (variant, sx, fullWidth, …) are dropped.
const DOM_PROPS = new Set([
  'className', 'style', 'id', 'title', 'role', 'tabIndex', 'value', 'defaultValue', 'checked',
  'defaultChecked', 'type', 'name', 'placeholder', 'disabled', 'readOnly', 'required', 'autoFocus',
  'autoComplete', 'min', 'max', 'step', 'href', 'target', 'rel', 'download', 'src', 'alt',
  'htmlFor', 'draggable', 'rows', 'cols', 'maxLength', 'pattern', 'form', 'children', 'key', 'ref',
])

function dom(props: P, extra?: P): P {
  const out: P = {}
  for (const [k, v] of Object.entries({ ...props, ...extra })) {
    const handler = /^on[A-Z]/.test(k) && k !== 'onClose' && k !== 'onOpen'
    if (DOM_PROPS.has(k) || handler || k.startsWith('data-') || k.startsWith('aria-')) out[k] = v
  }
  return out
}

function join(...classes: (string | undefined | false)[]): string {
  return classes.filter(Boolean).join(' ')
}

const box = (tag: string, base?: string) => (p: P) =>
  createElement(p.component ?? tag, dom(p, { className: join(base, p.className) }))

// Stands in for anything else a kit's helpers return (a theme's palette.primary.main, …).
const anything: any = new Proxy(function () {}, {
  get: (_t, k) => (k === Symbol.toPrimitive ? () => '' : k === 'then' ? undefined : anything),
  apply: () => anything,
})

export const Box = box('div')
export const Container = box('div', 'mx-auto max-w-5xl px-4')
export const Paper = box('div', 'rounded bg-white p-4 shadow')
export const Card = box('div', 'rounded bg-white shadow')
export const CardContent = box('div', 'p-4')
export const CardHeader = (p: P) =>
  createElement('div', dom(p, { className: join('p-4 font-semibold', p.className) }), p.title, p.subheader != null ? createElement('small', { className: 'block' }, p.subheader) : null, p.action)
export const CardActions = box('div', 'flex gap-2 p-4')
export const Toolbar = box('div', 'flex items-center gap-2 p-2')
export const AppBar = box('header', 'bg-slate-800 text-white')
export const FormControl = box('div', 'flex flex-col gap-1')
export const FormGroup = box('div', 'flex flex-col gap-1')
export const ButtonGroup = box('div', 'flex gap-1')
export const DialogContent = box('div', 'p-4')
export const DialogActions = box('div', 'flex justify-end gap-2 p-4')
export const DialogContentText = box('p')
export const DialogTitle = box('h2', 'p-4 text-xl font-semibold')
export const List = box('ul', 'flex flex-col gap-1')
export const ListItem = box('li', 'flex items-center gap-2')
export const ListItemButton = box('li', 'flex cursor-pointer items-center gap-2')
export const ListItemText = (p: P) =>
  createElement('span', dom(p), p.primary, p.secondary != null ? createElement('small', { className: 'block text-slate-500' }, p.secondary) : null, p.children)
export const ListItemIcon = box('span')
export const ListItemAvatar = box('span')
export const ListItemSecondaryAction = box('span', 'ml-auto')
export const InputLabel = box('label')
export const FormLabel = box('label')
export const FormHelperText = box('small', 'text-slate-500')
export const Table = box('table', 'w-full')
export const TableHead = box('thead')
export const TableBody = box('tbody')
export const TableRow = box('tr')
export const TableCell = box('td', 'p-2')
export const TableContainer = box('div')
export const Accordion = box('div')
export const AccordionSummary = box('div', 'font-semibold')
export const AccordionDetails = box('div')
export const Flex = box('div', 'flex gap-2')
export const Divider = (p: P) => createElement('hr', dom(p))
export const Link = (p: P) => createElement('a', dom(p, { className: join('underline', p.className) }))

export const Stack = (p: P) =>
  createElement('div', dom(p, { className: join('flex gap-2', p.direction === 'row' ? 'flex-row' : 'flex-col', p.className) }))
export const Grid = (p: P) =>
  createElement('div', dom(p, { className: join(p.container && 'flex flex-wrap gap-4', p.className) }))
export const Grid2 = Grid

export const Typography = (p: P) => {
  const v = String(p.variant ?? 'body1')
  const tag = p.component ?? (/^h[1-6]$/.test(v) ? v : v.startsWith('body') ? 'p' : 'span')
  return createElement(tag, dom(p))
}
export const Text = (p: P) => createElement(p.as ?? 'p', dom(p))
export const Heading = (p: P) => createElement(p.as ?? 'h2', dom(p, { className: join('text-2xl font-bold', p.className) }))

export const Button = (p: P) =>
  createElement('button', dom(p, {
    type: p.type ?? 'button',
    className: join('rounded bg-blue-600 px-4 py-2 text-white disabled:opacity-50', p.className),
  }), p.startIcon, p.children, p.endIcon)
export const IconButton = (p: P) =>
  createElement('button', dom(p, { type: p.type ?? 'button', 'aria-label': p['aria-label'] ?? p.title }))
export const Fab = Button
export const Tab = (p: P) => createElement('button', dom(p, { type: 'button', role: 'tab', children: p.label ?? p.children }))
export const Tabs = (p: P) => createElement('div', dom(p, { role: 'tablist', className: join('flex gap-2', p.className) }))
export const Chip = (p: P) =>
  createElement('span', dom(p, { className: join('rounded-full bg-slate-200 px-2 py-1 text-sm', p.className), children: p.label ?? p.children }))
export const Avatar = (p: P) =>
  p.src ? createElement('img', dom(p, { className: join('h-8 w-8 rounded-full', p.className) })) : box('span', 'rounded-full bg-slate-300 px-2')(p)
export const Badge = (p: P) => createElement('span', dom(p), p.children, p.badgeContent != null ? ` ${p.badgeContent}` : null)
export const Alert = (p: P) => createElement('div', dom(p, { role: 'alert', className: join('rounded border p-3', p.className) }))
export const Tooltip = (p: P) => createElement('span', { title: typeof p.title === 'string' ? p.title : undefined, children: p.children })
export const CircularProgress = (p: P) => createElement('progress', dom(p, { value: p.value, max: 100 }))
export const LinearProgress = CircularProgress

export const Dialog = (p: P) =>
  p.open === false ? null : createElement('div', dom(p, { role: 'dialog', className: join('rounded bg-white p-4 shadow-lg', p.className) }))
export const Modal = Dialog
export const Snackbar = (p: P) => (p.open === false ? null : createElement('div', dom(p, { role: 'status', children: p.message ?? p.children })))

function field(p: P, multiline: boolean) {
  const props = dom({ ...p, ...p.inputProps, ...p.InputProps?.inputProps }, {
    className: join('rounded border px-3 py-2', p.className),
    children: undefined,
  })
  const input = createElement(multiline ? 'textarea' : 'input', props)
  if (p.label == null && p.helperText == null) return input
  return createElement('label', { className: 'flex flex-col gap-1' },
    p.label, input, p.helperText != null ? createElement('small', null, p.helperText) : null)
}
export const TextField = (p: P) => field(p, !!p.multiline)
export const Input = (p: P) => field(p, !!p.multiline)
export const InputBase = Input
export const OutlinedInput = Input
export const FilledInput = Input
export const TextInput = Input
export const Textarea = (p: P) => field(p, true)
export const TextArea = Textarea
export const TextareaAutosize = Textarea
export const Checkbox = (p: P) => createElement('input', dom(p, { type: 'checkbox' }))
export const Switch = Checkbox
export const Radio = (p: P) => createElement('input', dom(p, { type: 'radio' }))
export const Slider = (p: P) =>
  createElement('input', dom(p, { type: 'range', onChange: p.onChange && ((e: any) => p.onChange(e, Number(e.target.value))) }))
export const FormControlLabel = (p: P) =>
  createElement('label', { className: join('flex items-center gap-2', p.className) }, p.control, p.label)
export const Select = (p: P) => createElement('select', dom(p, { className: join('rounded border px-3 py-2', p.className) }))
export const MenuItem = (p: P) => createElement('option', dom(p))
export const NativeSelect = Select
export const Option = MenuItem

// Providers and reset styles: only their children.
const passThrough = (p: { children?: ReactNode }) => createElement('div', { style: { display: 'contents' } }, p.children)
export const ThemeProvider = passThrough
export const StyledEngineProvider = passThrough
export const StylesProvider = passThrough
export const ChakraProvider = passThrough
export const CssBaseline = () => null

export const theme: any = anything
export const createTheme = (t?: P): any =>
  new Proxy(t ?? {}, { get: (o, k) => (k in o ? o[k as string] : anything) })
export const createMuiTheme = createTheme
export const useTheme = (): any => anything
export const useMediaQuery = () => false
export const alpha = (color: string) => color
// makeStyles(…) returns a hook whose classes are named after its keys.
export const makeStyles = (_styles: unknown) => () =>
  new Proxy({} as Record<string, string>, { get: (_t, k) => String(k) })
export const withStyles = (_styles: unknown) => (component: any) => component
// styled(Button)({…}), styled('div')({…}) and styled.div`…`: the element, unstyled.
export const styled: any = new Proxy((component: any) => () => component, {
  get: (_t, tag) => () => tag,
})
