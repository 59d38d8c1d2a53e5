// The one text folding of Search: what the word index stores (catalog/words.ts) and what
// SearchCriteria constants and property values are compared as (upnp/search.ts), so a match
// never depends on how the text was typed or tagged:
// - Unicode compatibility normalisation (NFKC): "e" + U+0301 (combining acute) is "é", the
//   ligature "ﬁ" is "fi", full-width "ＡＢＣ" is "ABC";
// - full case folding, locale-independent, as String#toLowerCase, #toUpperCase, #toLowerCase
//   give it: "ÉTÉ" is "été", "ß" and "ẞ" are "ss" ("Straße" = "STRASSE"; the capital ẞ
//   upper-cases to itself, hence the first lowering);
// - NFKC again (a case mapping can leave a decomposed letter: "ǰ" upper-cases to "J" + U+030C).
// ASCII text (most of it) takes the plain toLowerCase, which is the same thing.

const ASCII = /^[\u0000-\u007f]*$/;

export function foldText(s: string): string {
  if (ASCII.test(s)) return s.toLowerCase();
  return s.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC');
}
