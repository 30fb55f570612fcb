// A reader for the YAML that kubeconfig files are written in: block mappings and sequences (a
// sequence may sit at its key's indentation, as kubectl writes it), flow collections on one line,
// plain, single- and double-quoted scalars, comments. Anything else (block scalars, anchors,
// tags, plain scalars over several lines, several documents, scalars that YAML would read as
// numbers) makes it answer undefined, and the caller parses the file with the `yaml` package,
// whose loading costs virtctl more time and memory than the whole request. The unit tests check
// it against that package.

type Value = null | boolean | string | Value[] | { [key: string]: Value };

interface Line {
  indent: number;
  text: string;
}

/** Thrown inside the reader for what it does not read; parseKubeconfigYaml turns it into undefined. */
class Unsupported extends Error {}
const unsupported = (): never => {
  throw new Unsupported();
};

/** The document as plain data, or undefined when it uses YAML this reader leaves to the `yaml` package. */
export function parseKubeconfigYaml(text: string): unknown {
  const document = text.replace(/^\uFEFF/, '');
  // YAML's white space is the space and the tab; the reader's trimming and patterns take any of
  // JavaScript's, so a document holding another (a no-break space, a form feed) is left to the package.
  if (/[^\S \t\r\n]/.test(document)) return undefined;
  const lines: Line[] = [];
  for (const raw of document.split(/\r?\n/)) {
    const content = raw.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const indentation = raw.slice(0, raw.length - content.length);
    if (indentation.includes('\t')) return undefined;
    lines.push({ indent: indentation.length, text: content.trimEnd() });
  }
  if (lines[0]?.text === '---' && lines[0].indent === 0) lines.shift();
  if (lines.length === 0) return undefined;
  try {
    const reader = new Reader(lines);
    const value = reader.block(lines[0].indent);
    if (reader.at < lines.length) unsupported();
    return value;
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  }
}

/** A plain scalar as YAML 1.2's core schema reads it: null, a boolean or a string; what could be a number is not read here. */
function plain(text: string): Value {
  if (/^(?:~|null|Null|NULL)?$/.test(text)) return null;
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?\.?[0-9]/.test(text) || /^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/.test(text)) unsupported();
  // Indicators that start something other than a plain scalar, and "-" or ":" followed by a space.
  if (/^[&*!|>%@`'"{}[\],#?]/.test(text) || /^[-:](?:\s|$)/.test(text) || /:(?:\s|$)|\s#/.test(text)) unsupported();
  return text;
}

/** A scalar or flow collection at the start of `text`; returns it and where it ends. */
function inline(text: string, at: number, inFlow: boolean): [Value, number] {
  const c = text[at];
  if (c === '"') {
    let out = '';
    let i = at + 1;
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') {
        out += text[i];
        continue;
      }
      const e = text[++i];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', ' ': ' ' };
      if (e in simple) out += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) {
        out += String.fromCharCode(Number.parseInt(text.slice(i + 1, i + 5), 16));
        i += 4;
      } else unsupported();
    }
    if (i >= text.length) unsupported(); // continues on the next line
    return [out, i + 1];
  }
  if (c === "'") {
    let out = '';
    let i = at + 1;
    for (;;) {
      if (i >= text.length) unsupported();
      if (text[i] === "'") {
        if (text[i + 1] !== "'") break;
        out += "'";
        i += 2;
      } else out += text[i++];
    }
    return [out, i + 1];
  }
  if (c === '{' || c === '[') return flow(text, at);
  // A plain scalar ends at a comment, and in a flow collection at its punctuation.
  const comment = /\s#/.exec(text.slice(at));
  const end = inFlow ? flowScalarEnd(text, at) : comment ? at + comment.index : text.length;
  return [plain(text.slice(at, end).trimEnd()), end];
}

/** Where a plain scalar inside a flow collection ends: at , [ ] { } or ": ". */
function flowScalarEnd(text: string, at: number): number {
  let i = at;
  while (i < text.length && !',[]{}'.includes(text[i]) && !(text[i] === ':' && /[\s,[\]{}]/.test(text[i + 1] ?? ' '))) i++;
  return i;
}

const skipSpaces = (text: string, at: number) => {
  let i = at;
  while (text[i] === ' ') i++;
  return i;
};

/** A flow mapping or sequence on one line: {a: b, c: [d, e]}. */
function flow(text: string, at: number): [Value, number] {
  const mapping = text[at] === '{';
  const close = mapping ? '}' : ']';
  const items: Value[] = [];
  const object: Record<string, Value> = {};
  let i = skipSpaces(text, at + 1);
  while (text[i] !== close) {
    if (i >= text.length) unsupported();
    let [value, end] = inline(text, i, true);
    i = skipSpaces(text, end);
    if (mapping) {
      if (typeof value !== 'string' || text[i] !== ':' || value === '__proto__' || value in object) unsupported();
      const key = value as string;
      i = skipSpaces(text, i + 1);
      if (text[i] === ',' || text[i] === close) value = null;
      else {
        [value, end] = inline(text, i, true);
        i = skipSpaces(text, end);
      }
      object[key] = value;
    } else items.push(value);
    if (text[i] === ',') i = skipSpaces(text, i + 1);
    else if (text[i] !== close) unsupported();
  }
  return [mapping ? object : items, i + 1];
}

/** A whole value on the rest of a line: nothing may follow it but a comment. */
function lineValue(text: string): Value {
  const [value, end] = inline(text, 0, false);
  const rest = text.slice(end);
  if (rest.trim() !== '' && !/^\s+#/.test(rest)) unsupported();
  return value;
}

/** A mapping entry's key and the text after ": ", when the line is one. */
function entry(text: string): { key: string; rest: string } | undefined {
  let key: string;
  let after: number;
  if (text[0] === '"' || text[0] === "'") {
    const [value, end] = inline(text, 0, false);
    if (text[end] !== ':') return undefined;
    key = value as string;
    after = end + 1;
  } else {
    const colon = text.search(/:(?:\s|$)/);
    if (colon <= 0) return undefined;
    const value = plain(text.slice(0, colon).trimEnd());
    if (typeof value !== 'string') unsupported();
    key = value as string;
    after = colon + 1;
  }
  if (after < text.length && text[after] !== ' ') return undefined;
  if (key === '__proto__' || key === '<<') unsupported();
  return { key, rest: text.slice(after).trim() };
}

const isItem = (text: string) => text === '-' || text.startsWith('- ');

class Reader {
  at = 0;
  readonly #lines: Line[];
  constructor(lines: Line[]) {
    this.#lines = lines;
  }

  /** The mapping or sequence whose lines start at `indent`. */
  block(indent: number): Value {
    const line = this.#lines[this.at];
    if (line.indent !== indent) unsupported();
    if (isItem(line.text)) return this.#sequence(indent);
    if (entry(line.text)) return this.#mapping(indent);
    // A lone scalar as a block (a plain scalar over several lines, or a document that is one scalar).
    return unsupported();
  }

  /** The value after "key:" or "-" when nothing follows on the line: a more indented block, a sequence at `indent` (mappings only), or null. */
  #nested(indent: number, sequenceAtSameIndent: boolean): Value {
    const next = this.#lines[this.at];
    if (!next) return null;
    if (next.indent > indent) return this.block(next.indent);
    if (sequenceAtSameIndent && next.indent === indent && isItem(next.text)) return this.#sequence(indent);
    return null;
  }

  /** After a value that ended its line, the next line may not be more indented (a plain scalar going on). */
  #endOfValue(indent: number) {
    const next = this.#lines[this.at];
    if (next && next.indent > indent) unsupported();
  }

  #mapping(indent: number): Value {
    const object: Record<string, Value> = {};
    while (this.at < this.#lines.length) {
      const line = this.#lines[this.at];
      if (line.indent < indent) break;
      if (line.indent > indent || isItem(line.text)) unsupported();
      const found = entry(line.text);
      if (!found || found.key in object) return unsupported();
      this.at++;
      if (found.rest === '' || found.rest.startsWith('#')) object[found.key] = this.#nested(indent, true);
      else {
        object[found.key] = lineValue(found.rest);
        this.#endOfValue(indent);
      }
    }
    return object;
  }

  #sequence(indent: number): Value {
    const items: Value[] = [];
    while (this.at < this.#lines.length) {
      const line = this.#lines[this.at];
      if (line.indent < indent || (line.indent === indent && !isItem(line.text))) break;
      if (line.indent > indent) unsupported();
      const rest = line.text.slice(1).trimStart();
      if (rest === '' || rest.startsWith('#')) {
        this.at++;
        items.push(this.#nested(indent, false));
      } else if (isItem(rest) || entry(rest)) {
        // "- key: value" or "- - x": a block that starts on this line, at the column after "- ".
        this.#lines[this.at] = { indent: indent + line.text.length - rest.length, text: rest };
        items.push(this.block(this.#lines[this.at].indent));
      } else {
        this.at++;
        items.push(lineValue(rest));
        this.#endOfValue(indent);
      }
    }
    return items;
  }
}
