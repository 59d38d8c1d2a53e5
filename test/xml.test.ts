import test from 'ava';
import { parseStringPromise } from 'xml2js';
import { el, escAttr, escText, stripIllegal } from '../src/util/xml.js';

test('element text: markup characters and CR are escaped; characters illegal in XML 1.0 are dropped', (t) => {
  t.is(escText('a & b < c > d "e"'), 'a &amp; b &lt; c &gt; d "e"');
  t.is(escText('tab\tand\rcr\nlf'), 'tab\tand&#13;cr\nlf');
  t.is(stripIllegal('x\u0000\u0008\u000b\u000c\ufffe\uffffy\u{1f600}'), 'xy\u{1f600}');
});

test('attributes: quotes and whitespace that attribute normalisation would change are escaped', (t) => {
  t.is(escAttr('a"b\tc\nd\re&<>'), 'a&quot;b&#9;c&#10;d&#13;e&amp;&lt;&gt;');
});

test('what a parser reads back is what was escaped, CR included', async (t) => {
  const title = 'tab\tand\rcr & <tags> "q"';
  const doc = await parseStringPromise(el('title', title, { note: title }));
  t.is(doc.title._, title);
  t.is(doc.title.$.note, title);
});
