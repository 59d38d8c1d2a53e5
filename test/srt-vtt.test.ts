import test from 'ava';
import { decodeSubtitleText, srtToVtt } from '../src/media/srt-vtt.js';
import { parseSubtitleName, servedAs } from '../src/media/subtitles.js';

test('SRT to WebVTT: header, dots, three-digit milliseconds, cue numbers dropped, text kept', (t) => {
  const srt = '1\r\n00:00:01,000 --> 00:00:04,000\r\n<i>Hello</i>\r\n42\r\n\r\n2\r\n0:0:5,5 --> 00:00:06,250 X1:100 X2:200 Y1:10 Y2:20\r\nA --> B\r\n';
  t.is(srtToVtt(srt), 'WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<i>Hello</i>\n42\n\n00:00:05.500 --> 00:00:06.250\nA --&gt; B\n');
});

test('SRT to WebVTT: no blank line between cues, CR line ends, junk lines and stray blank lines', (t) => {
  const srt = 'junk before\r1\r00:00:01,000 --> 00:00:02,000\rOne\r2\r00:00:03,000 --> 00:00:04,000\rTwo\r\r\r\r3\r\rnot a cue\r';
  t.is(srtToVtt(srt), 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nOne\n\n00:00:03.000 --> 00:00:04.000\nTwo\n');
});

test('SRT to WebVTT: big malformed input converts in one pass without blowing up', (t) => {
  const junk = 'x'.repeat(4 * 1024 * 1024 - 10); // one 4 MiB line, no cue
  t.is(srtToVtt(junk), 'WEBVTT\n');
  const many = '00:00:01,000 --> 00:00:02,000\n'.repeat(100_000);
  const out = srtToVtt(many);
  t.true(out.startsWith('WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n00:00:01.000'));
  t.true(out.length < many.length * 1.2);
});

test('subtitle text: UTF-8 with or without BOM, UTF-16 by BOM, Windows-1252 otherwise', (t) => {
  t.is(decodeSubtitleText(Buffer.from('\ufeffÄpfel', 'utf8')), 'Äpfel');
  t.is(decodeSubtitleText(Buffer.from('Äpfel', 'utf8')), 'Äpfel');
  t.is(decodeSubtitleText(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Äpfel', 'utf16le')])), 'Äpfel');
  const be = Buffer.from('Äpfel', 'utf16le').swap16();
  t.is(decodeSubtitleText(Buffer.concat([Buffer.from([0xfe, 0xff]), be])), 'Äpfel');
  t.is(decodeSubtitleText(Buffer.from([0xc4, 0x70, 0x80, 0x93, 0x94])), 'Äp€“”');
});

test('subtitle names: the extension chooses the format; SRT also as WebVTT, nothing else', (t) => {
  t.deepEqual(parseSubtitleName('abc.0.srt'), { id: 'abc', n: 0, ext: 'srt' });
  t.deepEqual(parseSubtitleName('a.b.12.VTT'), { id: 'a.b', n: 12, ext: 'vtt' });
  t.deepEqual(parseSubtitleName('abc.3'), { id: 'abc', n: 3 });
  t.is(parseSubtitleName('abc.srt'), undefined);
  t.is(servedAs('srt', 'srt'), 'as-is');
  t.is(servedAs('srt', 'vtt'), 'srt-to-vtt');
  t.is(servedAs('srt', 'ass'), undefined);
  t.is(servedAs('vtt', 'srt'), undefined);
});
