import { ANY_PLACE, type ClassDetector, IS_KEY, type Subject } from './subject.ts';

const SCORE = {
  protoKey: 95,
  constructorPrototypeKey: 90,
  protoInValue: 80,
  constructorPrototypeInValue: 80,
  prototypeAssignment: 70,
} as const;

const PROTO_IN_KEY = /(?:^|[.[])__proto__(?:$|[.\]])/;
// `constructor.prototype`, `constructor[prototype]`, `[constructor][prototype]`, `"constructor":{"prototype"`.
const CONSTRUCTOR_PROTOTYPE =
  /constructor\s*(?:\.|\[\s*["']?|["']?\s*\]\s*\[\s*["']?|["']?\s*:\s*\{\s*["']?)\s*prototype\b/;
const PROTOTYPE_ASSIGNMENT = /\.prototype\s*(?:\.\s*[\w$]+|\[[^\]]{1,60}\])\s*=[^=]/;

/**
 * Prototype pollution: `__proto__` and `constructor` → `prototype` as keys (JSON, or query keys
 * like `a[__proto__][x]` and `a.constructor.prototype.x`), and the same paths written inside
 * string values (`?__proto__[admin]=1`, `{"__proto__": …}` carried as text). Reading a
 * prototype (`Array.prototype.map()`) is not pollution; assigning to one is.
 */
export const prototypePollutionDetector: ClassDetector = {
  attackClass: 'prototype_pollution',
  scope: ANY_PLACE | IS_KEY,
  inspectsPlainWord: (word) => word.includes('proto'),
  score(subject: Subject): number {
    const text = subject.text;
    if (subject.where & IS_KEY) return keyScore(subject, text);
    if (!text.includes('proto')) return 0;
    subject.mark(0, text.length);
    if (text.includes('__proto__')) return SCORE.protoInValue;
    if (CONSTRUCTOR_PROTOTYPE.test(text)) return SCORE.constructorPrototypeInValue;
    return PROTOTYPE_ASSIGNMENT.test(text) ? SCORE.prototypeAssignment : 0;
  },
};

function keyScore(subject: Subject, key: string): number {
  if (!key.includes('proto')) return 0; // `prototype` too
  subject.mark(0, key.length);
  if (key === '__proto__' || PROTO_IN_KEY.test(key)) return SCORE.protoKey;
  if (key === 'prototype' && subject.parentKey === 'constructor') return SCORE.constructorPrototypeKey;
  return CONSTRUCTOR_PROTOTYPE.test(key) ? SCORE.constructorPrototypeKey : 0;
}
