// metav1.LabelSelector: validation and matching.
export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** The error LabelSelectorAsSelector would return, or undefined when the selector is valid. */
export function selectorError(selector: LabelSelector | undefined): string | undefined {
  for (const req of selector?.matchExpressions ?? []) {
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) return "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty";
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) return "values: Invalid value: for 'exists', 'doesnotexist' operators, values set must be empty";
        break;
      default:
        return `"${req.operator}" is not a valid label selector operator`;
    }
  }
  return undefined;
}

/** Whether labels satisfy the selector; an empty or missing selector matches everything. */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[req.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * The selector in the text form of labels.Selector's String() (what kubectl and an HPA read from a
 * scale subresource's labelSelectorPath): requirements sorted by key, joined by commas.
 */
export function selectorString(selector: LabelSelector | undefined): string {
  const requirements: { key: string; text: string }[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) requirements.push({ key, text: `${key}=${value}` });
  for (const req of selector?.matchExpressions ?? []) {
    const values = [...(req.values ?? [])].sort().join(',');
    const text =
      req.operator === 'In'
        ? `${req.key} in (${values})`
        : req.operator === 'NotIn'
          ? `${req.key} notin (${values})`
          : req.operator === 'Exists'
            ? req.key
            : `!${req.key}`;
    requirements.push({ key: req.key, text });
  }
  return requirements
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => r.text)
    .join(',');
}
